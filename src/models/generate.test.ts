// Generation sessions: a chat's next turn reuses the cached prefix and produces exactly what a fresh cache would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initWeights, tinyConfig } from './init.js';
import { GenerationSession, generateTokens } from './generate.js';
import { LlamaModel } from './llama.js';

function model(seed: number): LlamaModel {
  const cfg = tinyConfig();
  const w = initWeights(cfg, seed, 0.3);
  return new LlamaModel(cfg, (n) => w.get(n));
}

test('a session reuses the shared prefix across turns and generates the same tokens as a fresh cache', () => {
  const m = model(7);
  const greedy = { temperature: 0 };
  const session = new GenerationSession(m, 96);
  // turn 1: prompt → reply; turn 2: the whole turn 1 (prompt + reply) + new tokens, as a chat re-renders it
  const p1 = [1, 5, 9, 13, 7];
  const [g1] = generateTokens(m, null, [p1], { maxTokens: 6, sampling: greedy, session });
  assert.deepEqual(g1.tokens, generateTokens(m, null, [p1], { maxTokens: 6, sampling: greedy })[0].tokens);
  assert.equal(session.reused, 0);
  const p2 = [...p1, ...g1.tokens, 2, 40, 41, 3];
  const [g2] = generateTokens(m, null, [p2], { maxTokens: 6, sampling: greedy, session });
  // the cache held p1 and all replies but the last sampled token (never fed back): that much is reused
  assert.equal(session.reused, p1.length + g1.tokens.length - 1);
  assert.deepEqual(g2.tokens, generateTokens(m, null, [p2], { maxTokens: 6, sampling: greedy })[0].tokens);
  // a prompt that departs early (an edited turn) reuses only what still matches
  const p3 = [1, 5, 30, 31, 32];
  const [g3] = generateTokens(m, null, [p3], { maxTokens: 4, sampling: greedy, session });
  assert.equal(session.reused, 2);
  assert.deepEqual(g3.tokens, generateTokens(m, null, [p3], { maxTokens: 4, sampling: greedy })[0].tokens);
  // the same prompt again: everything but its last token comes from the cache
  generateTokens(m, null, [p3], { maxTokens: 4, sampling: greedy, session });
  assert.equal(session.reused, p3.length - 1);
  session.reset();
  generateTokens(m, null, [p3], { maxTokens: 2, sampling: greedy, session });
  assert.equal(session.reused, 0);
  session.dispose();
  m.dispose();
});

test('a session refuses batches, other models and prompts past its context', () => {
  const [a, b] = [model(1), model(2)];
  const session = new GenerationSession(a, 8);
  assert.throws(() => generateTokens(a, null, [[1, 2], [3, 4]], { maxTokens: 1, session }), /one sequence, got 2/);
  assert.throws(() => generateTokens(b, null, [[1, 2]], { maxTokens: 1, session }), /another model/);
  assert.throws(() => generateTokens(a, null, [[1, 2, 3, 4, 5, 6, 7, 8, 9]], { maxTokens: 1, session }), /context full/);
  // after the failure the session still works from scratch
  const [g] = generateTokens(a, null, [[1, 2, 3]], { maxTokens: 3, sampling: { temperature: 0 }, session });
  assert.deepEqual(g.tokens, generateTokens(a, null, [[1, 2, 3]], { maxTokens: 3, sampling: { temperature: 0 } })[0].tokens);
  assert.throws(() => new GenerationSession(a, 0), /positive integer/);
  session.dispose();
  a.dispose();
  b.dispose();
});
