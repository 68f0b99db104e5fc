// Tests for dataset hygiene: exact and MinHash near-duplicate removal, quality filters, seeded train/eval split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  conversationText,
  dedupExact,
  dedupNear,
  estimateJaccard,
  filterConversations,
  jaccard,
  minhashSignature,
  normalizeText,
  qualityIssues,
  repetitionRatio,
  shingles,
  textRatio,
  trainEvalSplit,
  type Conversation,
} from '../src/data/index.js';

const conv = (u: string, a: string): Conversation => ({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });

test('exact dedup ignores case and whitespace runs, keeps the first occurrence', () => {
  assert.equal(normalizeText('  Hello\t\n  WORLD  '), 'hello world');
  const items = [conv('Hi there', 'Hello'), conv('hi  THERE', 'hello '), conv('Hi there', 'Bye')];
  const r = dedupExact(items, conversationText);
  assert.deepEqual(r.kept, [items[0], items[2]]);
  assert.deepEqual(r.removed, [{ index: 1, duplicateOf: 0 }]);
});

test('shingles and Jaccard: hand case, and MinHash estimates it', () => {
  // "abcdef" with k = 5 → {abcde, bcdef}; "abcdeg" → {abcde, bcdeg}; J = 1/3
  assert.equal(jaccard(shingles('abcdef', 5), shingles('abcdeg', 5)), 1 / 3);
  assert.equal(shingles('abc', 5).size, 1);
  const t1 = 'The quick brown fox jumps over the lazy dog near the river bank today.';
  const t2 = 'The quick brown fox jumps over the lazy dog near the river bank yesterday.';
  const exact = jaccard(shingles(t1), shingles(t2));
  const est = estimateJaccard(minhashSignature(shingles(t1), 256), minhashSignature(shingles(t2), 256));
  assert.ok(Math.abs(est - exact) < 0.1, `estimate ${est} vs exact ${exact}`);
});

test('near dedup removes a lightly edited copy, keeps unrelated and distant texts', () => {
  const base = 'Photosynthesis converts light energy into chemical energy stored in glucose, releasing oxygen as a by-product.';
  const items = [
    conv('Explain photosynthesis.', base),
    conv('Explain photosynthesis!', base.replace('by-product', 'byproduct')),
    conv('Explain gravity.', 'Gravity is the attraction between masses; it keeps planets in orbit around the sun.'),
    conv('Explain photosynthesis.', 'Plants make food from sunlight.'),
  ];
  const r = dedupNear(items, conversationText, { threshold: 0.8 });
  assert.deepEqual(r.removed, [{ index: 1, duplicateOf: 0 }]);
  assert.equal(r.kept.length, 3);
  assert.equal(dedupNear(items, conversationText, { threshold: 1 }).kept.length, 4);
});

test('repetition ratio, text ratio and the quality filter', () => {
  assert.equal(repetitionRatio('a b c d e'), 0);
  // "the cat the cat the cat the cat": trigrams = 6, distinct {the cat the, cat the cat} = 2 → 1 − 2/6
  assert.equal(repetitionRatio('the cat the cat the cat the cat'), 1 - 2 / 6);
  assert.equal(textRatio('Hello, world!'), 1);
  assert.equal(textRatio('ab☃☃'), 0.5);
  const loop = conv('Tell me a story.', 'once upon a time '.repeat(30));
  const junk = conv('Decode', '\u0001\u0002\u0003▓▓▓▓▓▓▓▓░░░░∑∑∑∑');
  const ok = conv('What is the capital of France?', 'Paris is the capital of France.');
  assert.deepEqual(qualityIssues(ok), []);
  assert.match(qualityIssues(loop)[0], /^repetitive: repetition ratio 0\.9\d\d > 0\.5$/);
  assert.match(qualityIssues(junk).join(), /mostly non-text/);
  assert.match(qualityIssues(ok, { maxChars: 10 })[0], /too long: 62 characters > maxChars 10/);
  const r = filterConversations([ok, loop, junk]);
  assert.deepEqual(r.kept, [ok]);
  assert.deepEqual(r.removed.map((x) => x.index), [1, 2]);
});

test('train/eval split: seeded, disjoint, complete, order-preserving, sized as asked', () => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  const a = trainEvalSplit(items, { evalFraction: 0.2, seed: 5 });
  const b = trainEvalSplit(items, { evalFraction: 0.2, seed: 5 });
  const c = trainEvalSplit(items, { evalFraction: 0.2, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.eval, c.eval);
  assert.equal(a.eval.length, 20);
  assert.deepEqual([...a.train, ...a.eval].sort((x, y) => x - y), items);
  assert.deepEqual(a.train, [...a.train].sort((x, y) => x - y));
  assert.equal(trainEvalSplit(items, { evalCount: 7 }).eval.length, 7);
  assert.throws(() => trainEvalSplit(items, { evalCount: 101 }), /evalCount must be an integer in \[0, 100\]/);
  assert.throws(() => trainEvalSplit(items, { evalFraction: 1.5 }), /evalFraction/);
});
