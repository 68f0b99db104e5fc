// The line-offset index against the in-memory loader (parseConversations) on the same bytes: the same
// conversations with the same file:line, whether records are checked while indexing or when read, across 1 MiB read
// chunks, with a BOM, CRLF endings, blank lines, no final newline, over-long lines and invalid UTF-8; and the
// record-number split and replay draws against trainEvalSplit and mixReplay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAll, replayIndices, splitIndices } from './conversation-source.js';
import { parseConversations } from './load.js';
import { mixReplay } from './mix.js';
import { indexJsonl } from './record-index.js';
import { trainEvalSplit } from './split.js';
import { evalCount, trainingSet } from './training-set.js';
import { arraySource } from './conversation-source.js';

const chat = (i: number, pad = 0): string =>
  JSON.stringify({ messages: [{ role: 'user', content: `question ${i} ${'x'.repeat(pad)}` }, { role: 'assistant', content: `answer ${i}` }] });

/** ~2.5 MB of records of varied length (some lines cross the 1 MiB read chunks), with blank lines and CRLF. */
function sample(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) {
    lines.push(chat(i, (i * 7919) % 1500));
    if (i % 97 === 0) lines.push('   ');
    if (i % 89 === 0) lines.push('');
  }
  const text = '\ufeff' + lines.map((l, i) => (i % 5 === 0 ? l + '\r' : l)).join('\n'); // no final newline
  return Buffer.from(text, 'utf8');
}

function withFile<T>(data: Buffer, f: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-index-'));
  try {
    const p = join(dir, 'data.jsonl');
    writeFileSync(p, data);
    return f(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('reading an indexed file gives what the in-memory loader gives, checked while indexing or when read', () => {
  const data = sample();
  withFile(data, (p) => {
    const want = parseConversations(data, p);
    for (const checkBytes of [Infinity, 0, 1 << 20]) {
      const { index, skipped } = indexJsonl(p, { checkBytes });
      assert.equal(skipped.length, 0);
      assert.equal(index.size, want.conversations.length, `checkBytes ${checkBytes}`);
      const got = readAll(index);
      assert.deepEqual(got.map((r) => r.where), want.sources);
      assert.deepEqual(got.map((r) => ('conversation' in r ? r.conversation : r.error)), want.conversations);
      index.close();
    }
  });
});

test('bad records: found while indexing (thrown, or skipped with skip), or when read past checkBytes, naming file:line', () => {
  const lines = [chat(0), '{not json', chat(1), JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }), 'y'.repeat(300), chat(2)];
  const data = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from(chat(3) + '\n')]);
  withFile(data, (p) => {
    const want = parseConversations(data, p, { skip: true, maxLineBytes: 200 });
    assert.throws(() => indexJsonl(p, { checkBytes: Infinity, maxLineBytes: 200 }), (e: Error) => e.message.includes(`${p}:2: invalid JSON`) && e.message.includes(`${p}:4:`));
    const eager = indexJsonl(p, { checkBytes: Infinity, skip: true, maxLineBytes: 200 });
    assert.deepEqual(eager.skipped, want.skipped);
    assert.equal(eager.index.size, 4);
    // past checkBytes every non-blank line is indexed; reading gives the same problems, in line order
    const lazy = indexJsonl(p, { checkBytes: 0, maxLineBytes: 200 });
    const read = readAll(lazy.index);
    assert.deepEqual(read.filter((r) => 'error' in r).map((r) => r.where), want.skipped.map((s) => s.where));
    assert.deepEqual(read.filter((r) => 'error' in r).map((r) => ('error' in r ? r.error : '')), want.skipped.map((s) => s.message));
    assert.deepEqual(read.filter((r) => 'conversation' in r).map((r) => ('conversation' in r ? r.conversation : null)), want.conversations);
  });
  withFile(Buffer.from('\n  \n'), (p) => assert.throws(() => indexJsonl(p), /: no records/));
});

test('the record-number split and replay draws are trainEvalSplit and mixReplay on the records', () => {
  const items = Array.from({ length: 57 }, (_, i) => i * 10);
  for (const [k, seed] of [[0, 1], [6, 3], [57, 2]]) {
    const ref = trainEvalSplit(items, { evalCount: k, seed });
    const ids = splitIndices(items.length, k, seed);
    assert.deepEqual(Array.from(ids.eval, (i) => items[i]), ref.eval);
    assert.deepEqual(Array.from(ids.train, (i) => items[i]), ref.train);
  }
  const replay = Array.from({ length: 7 }, (_, i) => -i);
  for (const share of [0, 0.25, 0.5, 0.9]) {
    const ref = mixReplay(items, replay, share, 4);
    assert.deepEqual(Array.from(replayIndices(items.length, replay.length, share, 4), (i) => replay[i]), ref.items.slice(items.length));
  }
});

test('trainingSet: the eval set is round(fraction·n) capped at evalSize, drawn from DATA or from an eval source', () => {
  assert.equal(evalCount(100, 0.05, 200), 5);
  assert.equal(evalCount(1_000_000, 0.05, 200), 200);
  const convs = Array.from({ length: 300 }, (_, i) => ({ messages: [{ role: 'user' as const, content: String(i) }, { role: 'assistant' as const, content: 'a' }] }));
  const s = trainingSet(arraySource(convs), { evalFraction: 0.5, evalSize: 20, seed: 1 });
  assert.equal(s.eval.length, 20);
  assert.equal(s.train.size, 280);
  const seen = new Set([...s.eval, ...readAll(s.train).map((r) => ('conversation' in r ? r.conversation : null))]);
  assert.equal(seen.size, 300, 'train and eval partition DATA');
  const e = trainingSet(arraySource(convs.slice(0, 10)), { evalSource: arraySource(convs), evalSize: 7 });
  assert.equal(e.eval.length, 7);
  assert.equal(e.train.size, 10);
});
