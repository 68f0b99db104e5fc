// The serving engine against generateTokens (what `nomoat generate` runs): concurrent requests on different adapter
// stacks, in one running batch with rows joining and leaving, give bit-identical greedy tokens and logprobs to each
// stack generated alone, on the bundled model (F16) and on an F32 copy, with a prompt longer than a prefill chunk
// interleaved with running streams; adapters loaded and removed mid-traffic; cancellation frees the row at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/models/load.js';
import { generateTokens, prefill, PREFILL_CHUNK } from '../src/models/generate.js';
import { KVCache } from '../src/models/kvcache.js';
import { noGrad, tidy } from '../src/engine/index.js';
import { GREEDY } from '../src/models/sampling.js';
import { LoraAdapter } from '../src/lora/index.js';
import { ServeEngine, EngineError, tokenLogprob, type AdapterRef, type CompletionResult, type TokenLogprob } from '../src/serve/engine.js';
import type { LlamaModel } from '../src/models/llama.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { randomize } from './lora-helpers.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');

/**
 * A stack alone, as generate runs it: greedy tokens from generateTokens, and each step's logprob (top 2) from
 * generate's own pieces (prefill, then forwardLast one token at a time, which takes decodeStep).
 */
function alone(model: LlamaModel, tok: Tokenizer, prompt: number[], stack: { adapter: LoraAdapter; scale: number }[], maxTokens: number): { tokens: number[]; logprobs: TokenLogprob[] } {
  for (const { adapter, scale } of stack) adapter.attach(model, { scale, checkBase: false });
  try {
    const tokens = generateTokens(model, tok, [prompt], { maxTokens, sampling: GREEDY })[0].tokens;
    const cache = new KVCache(model.config, 1, prompt.length + maxTokens);
    const logprobs: TokenLogprob[] = [];
    let logits = prefill(model, Int32Array.from(prompt), 1, prompt.length, cache);
    for (const id of tokens) {
      logprobs.push(tokenLogprob(logits, id, 2));
      if (logprobs.length === tokens.length) break;
      logits = noGrad(() => tidy(() => model.forwardLast(Int32Array.of(id), 1, 1, cache).toArray()));
    }
    cache.dispose();
    return { tokens, logprobs };
  } finally {
    for (const { adapter } of [...stack].reverse()) adapter.detach();
  }
}

function adapters(model: LlamaModel, n: number): LoraAdapter[] {
  return Array.from({ length: n }, (_, i) =>
    randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: i % 2 === 0 ? 'all-linear' : ['q_proj', 'v_proj'] }, { seed: i, name: `a${i}` }), 100 + i, 0.05));
}

for (const dtype of ['as-bundled', 'f32'] as const) {
  test(`engine: concurrent stacks in one batch = each stack generated alone (bundled model, ${dtype})`, async () => {
    const { model, tokenizer } = loadModel(BUNDLED, { dtype: dtype === 'f32' ? 'f32' : 'keep' });
    assert.ok(tokenizer !== null);
    const tok = tokenizer;
    const ads = adapters(model, 4);
    const engine = new ServeEngine(model, tok, { parallel: 4, contextSize: 512 });
    ads.forEach((a, i) => engine.addAdapter(`a${i}`, a));
    const long = tok.encode('Once upon a time there was a little dog. '.repeat(40), { parseSpecial: true }).slice(0, PREFILL_CHUNK + 40);
    const jobs: { prompt: number[]; stack: AdapterRef[]; max: number }[] = [
      { prompt: tok.encode('Once upon a time', { parseSpecial: true }), stack: [], max: 24 },
      { prompt: tok.encode('The cat', { parseSpecial: true }), stack: [{ name: 'a0', scale: 1 }], max: 30 },
      { prompt: tok.encode('Lily liked', { parseSpecial: true }), stack: [{ name: 'a1', scale: 0.5 }, { name: 'a0', scale: 1 }], max: 17 },
      { prompt: long, stack: [{ name: 'a2', scale: 1 }], max: 12 },
      { prompt: tok.encode('One day', { parseSpecial: true }), stack: [{ name: 'a0', scale: 1 }, { name: 'a1', scale: 0.5 }], max: 20 },
      { prompt: tok.encode('The sun', { parseSpecial: true }), stack: [{ name: 'a3', scale: -0.7 }], max: 25 },
      { prompt: tok.encode('Once upon a time', { parseSpecial: true }), stack: [{ name: 'a0', scale: 1 }], max: 9 },
    ];
    // all at once: 7 requests for 4 rows, so rows join as others leave, and the long prompt's chunks interleave
    const results = await Promise.all(jobs.map((j) => engine.submit({ prompt: j.prompt, adapters: j.stack, maxTokens: j.max, sampling: GREEDY, topLogprobs: 2 })));
    const stats = engine.stats();
    assert.ok(stats.completed === jobs.length && stats.running === 0 && stats.kvBytes === 0, JSON.stringify(stats));
    jobs.forEach((j, i) => {
      const stack = j.stack.map((s) => ({ adapter: engine.getAdapter(s.name)!, scale: s.scale }));
      const want = alone(model, tok, j.prompt, stack, j.max);
      const what = `request ${i} (${j.stack.map((s) => `${s.name}@${s.scale}`).join('+') || 'base'})`;
      assert.deepEqual(results[i].tokens, want.tokens, `${what}: tokens`);
      // bit for bit: the engine's logprobs of those tokens are generate's own (a stop token, if any, has none)
      assert.deepEqual(results[i].logprobs, want.logprobs.slice(0, results[i].tokens.length), `${what}: logprobs`);
    });
    // batch invariance, bit for bit: every request alone (one row) gives the logprobs it had in the crowd
    const one = new ServeEngine(model, tok, { parallel: 1, contextSize: 512 });
    ads.forEach((a, i) => one.addAdapter(`a${i}`, a));
    for (const [i, j] of jobs.entries()) {
      const solo = await one.submit({ prompt: j.prompt, adapters: j.stack, maxTokens: j.max, sampling: GREEDY, topLogprobs: 2 });
      assert.deepEqual(solo.logprobs, results[i].logprobs, `request ${i}: logprobs alone vs in the batch`);
    }
    one.dispose();
    assert.ok(new Set(results.map((r) => r.tokens.join(','))).size >= 5, 'the stacks should change the replies (else this shows nothing)');
    engine.dispose();
    for (const a of ads) a.dispose();
    model.dispose();
  });
}

test('engine: adapters added and removed mid-traffic; unknown names refused; a cancelled request frees its row', async () => {
  const { model, tokenizer } = loadModel(BUNDLED);
  const tok = tokenizer!;
  const [a0, a1] = adapters(model, 2);
  const engine = new ServeEngine(model, tok, { parallel: 2, contextSize: 256 });
  engine.addAdapter('a0', a0);
  const prompt = tok.encode('Once upon a time', { parseSpecial: true });
  const first = engine.submit({ prompt, adapters: [{ name: 'a0', scale: 1 }], maxTokens: 40, sampling: GREEDY });
  let added = false;
  let removed = false;
  const ac = new AbortController();
  let seen = 0;
  const cancelled = engine.submit({ prompt, adapters: [], maxTokens: 200, sampling: GREEDY }, {
    signal: ac.signal,
    onToken: () => {
      seen++;
      if (seen === 3) {
        engine.addAdapter('a1', a1);
        added = true;
      }
      if (seen === 5) {
        assert.equal(engine.removeAdapter('a0'), a0); // the running request keeps it
        removed = true;
        ac.abort();
      }
    },
  });
  await assert.rejects(cancelled, (e: unknown) => e instanceof EngineError && e.code === 'cancelled');
  assert.ok(added && removed);
  const late = await engine.submit({ prompt, adapters: [{ name: 'a1', scale: 1 }], maxTokens: 5, sampling: GREEDY });
  const r0: CompletionResult = await first;
  assert.equal(r0.tokens.length > 0, true);
  assert.equal(late.tokens.length, 5);
  await assert.rejects(engine.submit({ prompt, adapters: [{ name: 'a0', scale: 1 }], maxTokens: 5, sampling: GREEDY }), (e: unknown) => e instanceof EngineError && e.code === 'unknown_adapter');
  await assert.rejects(engine.submit({ prompt: Array(300).fill(5), adapters: [], maxTokens: 5, sampling: GREEDY }), (e: unknown) => e instanceof EngineError && e.code === 'context_length');
  assert.equal(engine.stats().running, 0);
  engine.dispose();
  a0.dispose();
  a1.dispose();
  model.dispose();
});

test('tokenLogprob: log-softmax and the top alternatives', () => {
  const l = Float32Array.of(1, 3, 2, 3);
  const r = tokenLogprob(l, 2, 3);
  const lse = Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(2));
  assert.ok(Math.abs(r.logprob - (2 - lse)) < 1e-12);
  assert.deepEqual(r.top.map((t) => t.id), [1, 3, 2]);
});
