// The arena's vote log: a vote's line carries FastChat's battle fields (model_a, model_b, winner…) beside nomoat's;
// concurrent votes land as whole lines; a line left unterminated before is ended first; bad paths refused at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { battleRecord, configName, VoteLog } from './arena.js';
import { parseBody, ArenaVoteRequest, ApiError } from './protocol.js';

const VOTE = parseBody(ArenaVoteRequest, {
  prompt: 'hi', config_a: { model: 'tiny' }, config_b: { model: 'tiny', adapters: [{ name: 'math', scale: 0.5 }, { name: 'style', scale: -1 }] },
  reply_a: 'hello', reply_b: 'hey', vote: 'both_bad', judge: 'arena_user_1', sampling: { temperature: 0.7, max_tokens: 64 },
});

test('configName: the model, then each adapter at its scale', () => {
  assert.equal(configName({ model: 'a0', adapters: [] }), 'a0');
  assert.equal(configName(VOTE.config_b), 'tiny+math@0.5+style@-1');
});

test('battleRecord: FastChat\'s battle fields, then nomoat\'s', () => {
  const r = battleRecord(VOTE, 'id-1', 1_700_000_000_500);
  assert.deepEqual(r, {
    question_id: 'id-1', model_a: 'tiny', model_b: 'tiny+math@0.5+style@-1', winner: 'tie (bothbad)', judge: 'arena_user_1',
    conversation_a: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }],
    conversation_b: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hey' }],
    turn: 1, anony: true, tstamp: 1_700_000_000.5,
    vote: 'both_bad', prompt: 'hi', config_a: { model: 'tiny', adapters: [] }, config_b: VOTE.config_b,
    sampling: { temperature: 0.7, max_tokens: 64 }, time: '2023-11-14T22:13:20.500Z',
  });
  const winners = (['a', 'b', 'tie', 'both_bad'] as const).map((vote) => battleRecord({ ...VOTE, vote }, 'x', 0).winner);
  assert.deepEqual(winners, ['model_a', 'model_b', 'tie', 'tie (bothbad)']);
  assert.equal(battleRecord({ ...VOTE, judge: undefined, sampling: undefined }, 'x', 0).judge, 'anonymous');
});

test('ArenaVoteRequest: every bad field named', () => {
  try {
    parseBody(ArenaVoteRequest, { prompt: '', config_a: { model: 'x' }, config_b: {}, reply_a: 'a', vote: 'A' }, { all: true });
    assert.fail('expected a 400');
  } catch (e) {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'prompt');
    assert.equal(e.message, 'prompt: must not be empty; config_b.model: is required; reply_b: is required; vote: must be one of a, b, tie, both_bad');
  }
});

test('VoteLog: concurrent votes are whole lines; a cut line is ended first; count; bad paths refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-votes-'));
  try {
    const path = join(dir, 'votes.jsonl');
    const log = new VoteLog(path);
    assert.equal(await log.count(), 0, 'no file yet');
    const long = 'x'.repeat(100_000); // larger than a pipe buffer: a torn write would show
    const records = await Promise.all(Array.from({ length: 24 }, (_, i) => log.append({ ...VOTE, prompt: `${i}${long}` })));
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'the file ends with a newline');
    assert.equal(lines.length, 24);
    const parsed = lines.map((l) => JSON.parse(l) as { question_id: string; prompt: string });
    assert.deepEqual(parsed.map((p) => p.prompt.length), records.map((r) => r.prompt.length));
    assert.equal(new Set(parsed.map((p) => p.question_id)).size, 24, 'ids are unique');
    assert.equal(await log.count(), 24);

    writeFileSync(path, '{"cut": tr'); // a crash mid-line, by someone
    await log.append(VOTE);
    const after = readFileSync(path, 'utf8').split('\n');
    assert.equal(after[0], '{"cut": tr');
    assert.equal((JSON.parse(after[1]) as { winner: string }).winner, 'tie (bothbad)');
    assert.equal(await log.count(), 2);

    mkdirSync(join(dir, 'folder.jsonl'));
    assert.throws(() => new VoteLog(join(dir, 'folder.jsonl')), /is not a plain file/);
    assert.throws(() => new VoteLog(join(dir, 'missing', 'v.jsonl')), /does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
