// StreamLoader against the in-memory reference: an epoch's rows are packExamples' (or padRows') rows over that epoch's
// order, dropped rows left out; a restore from any saved state continues the same batches; bad records stop with
// file:line or are skipped; countRows is exact for small sources and a scaled sample for large ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arraySource, type ConversationSource } from '../data/conversation-source.js';
import type { Conversation } from '../data/types.js';
import { epochOrder, finetuneRows, type Batch, type BatchMode, type Example, type Row } from './batching.js';
import { countRows, ExampleCache, StreamLoader } from './stream-rows.js';

/** Conversation i: a prompt of 2 + 3·(i mod 5) tokens (mask 0) and a reply of 1 + (i mod 7) tokens (mask 1). */
function exampleOf(c: Conversation): Example {
  const i = Number(c.messages[0].content);
  const p = 2 + 3 * (i % 5), r = 1 + (i % 7);
  const ids = Array.from({ length: p + r }, (_, k) => 100 * i + k);
  return { ids, mask: ids.map((_, k) => (k < p ? 0 : 1)) };
}
const convs = (n: number): Conversation[] => Array.from({ length: n }, (_, i) => ({ messages: [{ role: 'user', content: String(i) }, { role: 'assistant', content: 'x' }] }));

/** Row i of the batch sequence, flattened to plain arrays (a batch pads rows to its longest). */
function rowsOf(b: Batch): { ids: number[]; labels: number[] }[] {
  return Array.from({ length: b.B }, (_, r) => ({ ids: [...b.ids.subarray(r * b.T, (r + 1) * b.T)], labels: [...b.labels.subarray(r * b.T, (r + 1) * b.T)] }));
}
const plain = (rows: Row[]): { ids: number[]; labels: number[] }[] => rows.map((r) => ({ ids: [...r.ids], labels: [...r.labels] }));

for (const mode of ['packed', 'padded'] as BatchMode[]) {
  test(`${mode}: each epoch's rows are finetuneRows over that epoch's order`, () => {
    const n = 23, T = 6, seed = 5;
    const examples = convs(n).map(exampleOf);
    const loader = new StreamLoader(new ExampleCache(arraySource(convs(n)), exampleOf), { mode, seqLen: T, batchSize: 1000, seed });
    for (let epoch = 0; epoch < 3; epoch++) {
      const order = epochOrder(n, seed, epoch);
      const want = finetuneRows(Array.from(order, (i) => examples[i]), mode, T);
      const got = loader.next(); // batchSize > an epoch's rows: one batch is the whole epoch
      assert.equal(got.B, want.rows.length, `epoch ${epoch}`);
      // padded rows are as long as their example: the batch right-pads them with 0 / -100
      const padTo = (r: { ids: number[]; labels: number[] }): { ids: number[]; labels: number[] } => ({
        ids: [...r.ids, ...Array<number>(got.T - r.ids.length).fill(0)], labels: [...r.labels, ...Array<number>(got.T - r.labels.length).fill(-100)],
      });
      assert.deepEqual(rowsOf(got), plain(want.rows).map(padTo), `epoch ${epoch}`);
      assert.ok(want.dropped > 0, "the case drops rows");
    }
  });

  test(`${mode}: restoring any saved state continues the same batches`, () => {
    const make = (): StreamLoader => new StreamLoader(new ExampleCache(arraySource(convs(17)), exampleOf), { mode, seqLen: 5, batchSize: 3, seed: 9 });
    const ref = make();
    const states = [], batches = [];
    for (let i = 0; i < 30; i++) {
      states.push(JSON.parse(JSON.stringify(ref.state)) as typeof ref.state);
      batches.push(rowsOf(ref.next()));
    }
    for (const at of [0, 1, 4, 7, 13, 22]) {
      const l = make();
      l.restore(states[at]);
      for (let i = at; i < Math.min(at + 8, 30); i++) assert.deepEqual(rowsOf(l.next()), batches[i], `restored at batch ${at}, batch ${i}`);
    }
    assert.ok(states.some((s) => (s.skip ?? 0) > 0) || mode === 'padded', 'some states fall inside a conversation');
  });
}

/** A source whose record 3 is bad. */
function withBad(n: number): ConversationSource {
  const good = arraySource(convs(n), 'data.jsonl');
  return { size: n, read: (i) => (i === 3 ? { where: 'data.jsonl:4', error: 'invalid JSON' } : good.read(i)) };
}

test('a bad record stops reading naming file:line, or is reported and skipped', () => {
  const stop = new StreamLoader(new ExampleCache(withBad(8), exampleOf), { mode: 'padded', seqLen: 16, batchSize: 8, shuffle: false });
  assert.throws(() => stop.next(), /data\.jsonl:4: invalid JSON/);
  const seen: string[] = [];
  const skip = new StreamLoader(new ExampleCache(withBad(8), exampleOf, (w, e) => seen.push(`${w}: ${e}`)), { mode: 'padded', seqLen: 16, batchSize: 8, shuffle: false });
  assert.equal(skip.next().B, 7);
  assert.deepEqual(seen, ['data.jsonl:4: invalid JSON']);
});

test('an epoch with no trained token is an error, not an endless loop', () => {
  const noReply = (c: Conversation): Example => ({ ids: [1, 2, 3, Number(c.messages[0].content)], mask: [0, 0, 0, 0] });
  const l = new StreamLoader(new ExampleCache(arraySource(convs(5)), noReply), { mode: 'packed', seqLen: 4, batchSize: 2 });
  assert.throws(() => l.next(), /made no row with a trained token/);
});

test('countRows: exact up to the limit, a scaled even sample past it', () => {
  const n = 400;
  const examples = convs(n).map(exampleOf);
  for (const mode of ['packed', 'padded'] as BatchMode[]) {
    const exact = finetuneRows(examples, mode, 8);
    const c = countRows(new ExampleCache(arraySource(convs(n)), exampleOf), mode, 8, 0, n);
    assert.deepEqual(c, { rows: exact.rows.length, dropped: exact.dropped, exact: true, sampled: n });
    const s = countRows(new ExampleCache(arraySource(convs(n)), exampleOf), mode, 8, 0, 100);
    assert.equal(s.exact, false);
    assert.ok(Math.abs(s.rows - exact.rows.length) <= 0.05 * exact.rows.length, `${mode}: ${s.rows} ≈ ${exact.rows.length}`);
  }
});
