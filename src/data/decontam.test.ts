// Decontamination: GPT-3-style 13-gram overlap and whole-item matching of short eval items.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContaminationIndex, decontamWords, stringLeaves } from './decontam.js';

const Q = "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four.";

test('words: lower case, punctuation removed (not spaced), whitespace split', () => {
  assert.deepEqual(decontamWords("Janet's ducks, LAY 16 eggs!"), ['janets', 'ducks', 'lay', '16', 'eggs']);
});

test('a shared 13-gram marks a record; 12 shared words do not', () => {
  const idx = new ContaminationIndex();
  idx.add(Q, { where: 'gsm8k-test.jsonl:1', field: 'question' });
  const words = decontamWords(Q);
  const thirteen = `Some preamble. ${words.slice(3, 16).join(' ').toUpperCase()}! and more`;
  const twelve = `Some preamble. ${words.slice(3, 15).join(' ')} xyzzy ${words.slice(16, 18).join(' ')}`;
  const hit = idx.check(['unrelated question', thirteen]);
  assert.deepEqual(hit, { ref: { where: 'gsm8k-test.jsonl:1', field: 'question' }, ngram: words.slice(3, 16).join(' '), kind: 'ngram' });
  assert.equal(idx.check([twelve]), null);
});

test('short items match whole turns only; one-word items are ignored', () => {
  const idx = new ContaminationIndex();
  idx.add('5 + 4 =', { where: 'skills add-digit #0', field: 'prompt' });
  idx.add('writing', { where: 'x:1', field: 'category' });
  assert.equal(idx.items, 1);
  assert.equal(idx.check(['5 + 4 =', '9'])?.kind, 'whole');
  assert.equal(idx.check(['What is 5 + 4 = ?']), null);
  assert.equal(idx.check(['writing']), null);
});

test('string leaves carry their paths', () => {
  assert.deepEqual(stringLeaves({ question_id: 81, turns: ['a', 'b'], meta: { c: 'd' } }), [
    { field: 'turns[0]', text: 'a' },
    { field: 'turns[1]', text: 'b' },
    { field: 'meta.c', text: 'd' },
  ]);
});
