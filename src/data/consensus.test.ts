import assert from 'node:assert/strict';
import test from 'node:test';
import { ConsensusVote, promptAndReply } from './consensus.js';
import { toRecord, type DataRecord } from './records.js';

let line = 0;
function chat(prompt: string, reply: string, system?: string): DataRecord {
  const messages = [...(system !== undefined ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }, { role: 'assistant', content: reply }];
  const r = toRecord(`t.jsonl:${++line}`, { messages }, 'openai');
  assert.ok(r.ok);
  return r.record;
}

function vote(records: DataRecord[], opts = {}): (string | null)[] {
  const v = new ConsensusVote(opts);
  records.forEach((r) => v.add(r));
  return records.map((r) => {
    const x = v.verdict(r);
    return x === null ? null : `${x.agree}/${x.top}/${x.votes}`;
  });
}

test('the most common reply to a prompt stays; replies outvoted go, with their counts', () => {
  const rs = [chat('2+2?', '4'), chat('2+2?', '5'), chat('2+2?', '4'), chat('2+2?', ' 4 '), chat('cat says?', 'meow')];
  assert.deepEqual(vote(rs), [null, '1/3/4', null, null, null]);
});

test('prompt and reply compare normalized; the system prompt is part of the prompt', () => {
  assert.deepEqual(promptAndReply(chat('Two  plus TWO?', ' Four\n', 'be brief')), { prompt: 'system: be brief\nuser: two plus two?', reply: 'four' });
  // same user turn under different system prompts: two prompts, no vote between them
  const rs = [chat('x?', 'a', 's1'), chat('x?', 'b', 's2'), chat('x?', 'b', 's2'), chat('x?', 'a', 's1')];
  assert.deepEqual(vote(rs), [null, null, null, null]);
});

test('too few records for a vote, and ties: kept by default, dropped with ties: drop', () => {
  const two = [chat('p', 'a'), chat('p', 'b')];
  assert.deepEqual(vote(two), [null, null]);
  assert.deepEqual(vote(two, { ties: 'drop' }), [null, null], 'two records are below minVotes 3');
  assert.deepEqual(vote(two, { ties: 'drop', minVotes: 2 }), ['1/1/2', '1/1/2']);
  const tie = [chat('q', 'a'), chat('q', 'b'), chat('q', 'a'), chat('q', 'b'), chat('q', 'c')];
  assert.deepEqual(vote(tie), [null, null, null, null, '1/2/5']);
  assert.deepEqual(vote(tie, { ties: 'drop' }), ['2/2/5', '2/2/5', '2/2/5', '2/2/5', '1/2/5']);
});

test('plain text records and records never counted are kept; bad options are refused', () => {
  const text = toRecord('t.jsonl:1', { text: 'hello' }, 'text');
  assert.ok(text.ok);
  const v = new ConsensusVote();
  v.add(text.record);
  assert.equal(v.prompts, 0);
  assert.equal(v.verdict(text.record), null);
  for (const r of [chat('p', 'a'), chat('p', 'a'), chat('p', 'a')]) v.add(r);
  assert.equal(v.verdict(chat('p', 'never counted')), null);
  assert.equal(v.verdict(chat('other', 'x')), null);
  assert.throws(() => new ConsensusVote({ minVotes: 1 }), /minVotes must be an integer ≥ 2/);
});

test('the vote depends on the records, not their order', () => {
  const rs = [chat('a', '1'), chat('a', '2'), chat('a', '1'), chat('b', 'x'), chat('b', 'y'), chat('b', 'y'), chat('b', 'y'), chat('a', '3')];
  const forward = vote(rs);
  const backward = vote([...rs].reverse()).reverse();
  assert.deepEqual(forward, backward);
  assert.deepEqual(forward, [null, '1/2/4', null, '1/3/4', null, null, null, '1/2/4']);
});
