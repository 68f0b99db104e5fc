// ROUGE-L against values computed by hand (LCS, then F = 2PR/(P+R)), and rouge_score's tokenizer rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lcsLength, rougeL, rougeLTokens, rougeTokens, SimilarityPool } from './rouge.js';

const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);

test('tokens: lower-cased [a-z0-9] runs; punctuation splits, non-ASCII letters drop out', () => {
  assert.deepEqual(rougeTokens('Hello, WORLD! 42x'), ['hello', 'world', '42x']);
  assert.deepEqual(rougeTokens("don't café"), ['don', 't', 'caf']);
  assert.deepEqual(rougeTokens(' ... '), []);
});

test('LCS: a subsequence, not a substring', () => {
  assert.equal(lcsLength(['a', 'b', 'c', 'd', 'e'], ['a', 'x', 'c', 'y', 'e']), 3);
  assert.equal(lcsLength(['a', 'b'], ['b', 'a']), 1);
  assert.equal(lcsLength([], ['a']), 0);
});

test('ROUGE-L F by hand', () => {
  // 6 and 6 tokens, LCS "the cat on the mat" = 5: P = R = F = 5/6
  close(rougeL('the cat sat on the mat', 'the cat is on the mat'), 5 / 6);
  // reference 6 tokens, candidate 7, LCS "write a poem about the" = 5: P = 5/7, R = 5/6, F = 50/65
  const s = rougeLTokens(rougeTokens('Write a poem about the sea.'), rougeTokens('Write a short poem about the ocean'));
  close(s.precision, 5 / 7);
  close(s.recall, 5 / 6);
  close(s.fmeasure, 10 / 13);
  close(rougeL('Hello, WORLD!', 'hello world'), 1);
  assert.equal(rougeL('', 'anything'), 0);
  assert.equal(rougeL('abc', 'xyz'), 0);
});

test('pool: the nearest entry and its score', () => {
  const pool = new SimilarityPool(['Write a poem about the sea.', 'Sort these numbers.']);
  const near = pool.nearest('Write a short poem about the ocean');
  close(near.score, 10 / 13);
  assert.equal(near.text, 'Write a poem about the sea.');
  assert.deepEqual(new SimilarityPool().nearest('x'), { score: 0, text: null });
});
