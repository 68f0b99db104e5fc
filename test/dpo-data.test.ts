// Anthropic HH-RLHF pairs from the shared data (gzip JSONL of "\n\nHuman: …\n\nAssistant: …" transcripts) read as
// preference pairs: the shared turns are the prompt, the last assistant turns differ; the file's few malformed
// records (an empty reply, two assistant turns in a row) are named by file:line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPreferencePairs } from '../src/data/index.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const HH = sharedPath('instruct', 'hh-rlhf-harmless-base-test.jsonl.gz');

test('HH transcripts: the first lines parse into prompt + differing last assistant turns', needsShared(HH), async () => {
  requireShared(HH);
  const r = await loadPreferencePairs(HH, { limit: 12 });
  assert.equal(r.pairs.length, 12);
  assert.ok(r.formats.every((f) => f === 'hh'));
  assert.equal(r.sources[0], `${HH}:1`);
  const p = r.pairs[0];
  assert.deepEqual(p.prompt[0], { role: 'user', content: 'what are some pranks with a pen i can do?' });
  assert.equal(p.prompt[1].role, 'assistant');
  for (const q of r.pairs) {
    assert.equal(q.prompt[q.prompt.length - 1].role, 'user');
    assert.deepEqual([q.chosen.map((m) => m.role), q.rejected.map((m) => m.role)], [['assistant'], ['assistant']]);
    assert.notEqual(q.chosen[0].content, q.rejected[0].content);
    for (const m of [...q.prompt, ...q.chosen, ...q.rejected]) assert.ok(m.content === m.content.trim() && m.content !== '' && !m.content.includes('\n\nHuman:'));
  }
});

test('HH: the whole file reads with skip, its malformed records named by file:line', needsShared(HH), async () => {
  requireShared(HH);
  await assert.rejects(loadPreferencePairs(HH), (e: Error) => {
    assert.match(e.message, new RegExp(`${HH.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:87: field "chosen": Assistant turn 3 is empty`));
    return true;
  });
  const r = await loadPreferencePairs(HH, { skip: true });
  assert.ok(r.pairs.length > 2000, `${r.pairs.length} pairs`);
  assert.ok(r.skipped.length > 0 && r.skipped.length < 50, `${r.skipped.length} skipped`);
  assert.ok(r.skipped.some((s) => /:\d+: chosen: field "prompt\[\d+\]\.role": expected "user" after "assistant"/.test(`${s.where}: ${s.message}`)));
});
