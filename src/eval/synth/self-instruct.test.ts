// Self-Instruct's model-free parts: the prompt, the parser on the reply shapes models write (Alpaca's "###" blocks,
// a completion that starts mid-task, chat replies with a preamble and markdown labels, plain numbered lists), the
// rules, and the similarity filter that grows its pool.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../engine/rng.js';
import { SimilarityPool } from './rouge.js';
import { encodePrompt, instructionRule, parseReply, readSeedTasks, sampleSeeds, screen } from './self-instruct.js';

test('prompt: the examples numbered, "<noinput>" for an empty input, ends asking for the next instruction', () => {
  const p = encodePrompt([{ instruction: 'Add  the numbers:', input: '2, 3', output: '5' }, { instruction: 'Name a planet.', input: '', output: 'Mars' }], 20);
  assert.ok(p.startsWith('You are asked to come up with a set of 20 diverse task instructions.'));
  assert.ok(p.includes('###\n1. Instruction: Add the numbers\n1. Input:\n2, 3\n1. Output:\n5\n'));
  assert.ok(p.includes('###\n2. Instruction: Name a planet.\n2. Input:\n<noinput>\n2. Output:\nMars\n'));
  assert.ok(p.endsWith('###\n3. Instruction:'));
});

test('parse: a completion continuing "4. Instruction:", Alpaca blocks, <noinput>', () => {
  const reply = ' Sort the list in ascending order.\n4. Input:\n3, 1, 2\n4. Output:\n1, 2, 3\n###\n5. Instruction: Name the capital of France.\n5. Input:\n<noinput>\n5. Output:\nParis.\n###\n';
  const r = parseReply(reply, { continues: 4 });
  assert.deepEqual(r.tasks, [
    { instruction: 'Sort the list in ascending order.', input: '3, 1, 2', output: '1, 2, 3' },
    { instruction: 'Name the capital of France.', input: '', output: 'Paris.' },
  ]);
  assert.equal(r.dropped, 0);
});

test('parse: a reply cut by the token limit loses its last task', () => {
  const reply = '1. Instruction: Say hi to the user.\n1. Input:\n<noinput>\n1. Output:\nHi!\n###\n2. Instruction: Translate the word into French.\n2. Input:\ncat\n2. Output:\nch';
  const r = parseReply(reply, { truncated: true });
  assert.deepEqual(r.tasks.map((t) => t.instruction), ['Say hi to the user.']);
  assert.equal(r.dropped, 1);
});

test('parse: a chat reply with a preamble, markdown labels and no "###"', () => {
  const reply = 'Sure! Here are more tasks:\n\n**Instruction:** Summarize the paragraph in one sentence.\n**Input:** The sun is a star. It is very hot.\n**Output:** The sun is a hot star.\n\n**Instruction:** Give an antonym of the word.\n**Input:** happy\n**Output:** sad\n';
  const r = parseReply(reply);
  assert.deepEqual(r.tasks, [
    { instruction: 'Summarize the paragraph in one sentence.', input: 'The sun is a star. It is very hot.', output: 'The sun is a hot star.' },
    { instruction: 'Give an antonym of the word.', input: 'happy', output: 'sad' },
  ]);
  // the preamble is not taken for an instruction (chat replies do not continue the prompt)
  assert.equal(parseReply('Sure!\n1. Instruction: Count the vowels in the word.\n1. Input: banana\n1. Output: 3').tasks[0].instruction, 'Count the vowels in the word.');
});

test('parse: a plain numbered list gives instructions without input or output', () => {
  const reply = 'Here you go:\n1. Describe a rainy day\nin three sentences.\n2) List three uses of salt.\nTask 3: Explain what a verb is.\n\nThat is all.';
  const r = parseReply(reply);
  assert.deepEqual(r.tasks, [
    { instruction: 'Describe a rainy day in three sentences.', input: '', output: '' },
    { instruction: 'List three uses of salt.', input: '', output: '' },
    { instruction: 'Explain what a verb is.', input: '', output: '' },
  ]);
});

test('parse: labels without an instruction are counted, not kept; empty reply gives nothing', () => {
  const r = parseReply('1. Instruction:\n1. Input:\nx\n1. Output:\ny\n###\n2. Instruction: Name a fruit that is red.\n2. Output: apple');
  assert.deepEqual(r.tasks, [{ instruction: 'Name a fruit that is red.', input: '', output: 'apple' }]);
  assert.equal(r.dropped, 1);
  assert.deepEqual(parseReply('', { continues: 4 }), { tasks: [], dropped: 0 });
});

test('rules: length, blacklist (whole words, any case), "Write a program", punctuation, non-ASCII', () => {
  assert.equal(instructionRule('Name three fruits'), 'too_short'); // 3 words: Alpaca wants more than 3
  assert.equal(instructionRule('Name three red fruits'), null);
  assert.equal(instructionRule(Array(151).fill('word').join(' ')), 'too_long');
  assert.equal(instructionRule('Describe the IMAGE shown below in detail'), 'blacklist:image');
  assert.equal(instructionRule('Tell me how to go to the station'), 'blacklist:go to');
  assert.equal(instructionRule('Explain how a mapping function works'), null); // "map" only as a whole word
  assert.equal(instructionRule('Write a program that sorts numbers'), 'write_a_program');
  assert.equal(instructionRule('"Quote" this sentence for me please'), 'punctuation');
  assert.equal(instructionRule('Écris une phrase en français ici'), 'non_ascii');
});

test('similarity: ROUGE-L F ≥ 0.7 to a seed or a kept task drops it; kept tasks join the pool', () => {
  const pool = new SimilarityPool(['Write a poem about the sea.']);
  const t = (instruction: string): { instruction: string; input: string; output: string } => ({ instruction, input: '', output: '' });
  // F = 10/13 ≈ 0.769 against the seed
  const near = screen(t('Write a short poem about the ocean'), pool);
  assert.equal(near.rule, 'similar');
  assert.ok(Math.abs(near.similarity - 10 / 13) < 1e-12);
  assert.equal(near.nearest, 'Write a poem about the sea.');
  assert.equal(screen(t('List three prime numbers below twenty.'), pool).rule, null);
  assert.equal(pool.size, 2);
  // now a near copy of the kept task is dropped too
  assert.equal(screen(t('List three prime numbers below thirty.'), pool).rule, 'similar');
  // F = 2·(3/5)(3/6)/(3/5 + 3/6) = 6/11 ≈ 0.545: kept at the default 0.7, dropped at 0.5
  const o = { minWords: 3, maxWords: 150, blacklist: [], maxSimilarity: 0.5 };
  assert.equal(screen(t('Write a song about rain'), new SimilarityPool(['Write a poem about the sea.'])).rule, null);
  assert.equal(screen(t('Write a song about rain'), new SimilarityPool(['Write a poem about the sea.']), o).rule, 'similar');
});

test('seeds: Self-Instruct and Alpaca shapes; errors name file:line and field; sampling is seeded and distinct', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-seeds-'));
  const good = join(dir, 'good.jsonl');
  writeFileSync(good, [
    JSON.stringify({ id: 's0', instruction: 'Add the numbers.', instances: [{ input: '2 3', output: '5' }] }),
    JSON.stringify({ instruction: 'Name a planet.', output: 'Mars' }),
    '',
    JSON.stringify({ instruction: 'Say hello.', input: '', output: 'Hello' }),
  ].join('\n'));
  const seeds = readSeedTasks(good);
  assert.deepEqual(seeds[0], { instruction: 'Add the numbers.', input: '2 3', output: '5' });
  assert.deepEqual(seeds[1], { instruction: 'Name a planet.', input: '', output: 'Mars' });
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify({ instruction: 'x', instances: [{ input: '' }] })}\n`);
  assert.throws(() => readSeedTasks(bad), new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: instances\\[0\\]\\.output: missing`));
  writeFileSync(bad, '{"instruction": 3}\n');
  assert.throws(() => readSeedTasks(bad), /bad\.jsonl:1: instruction: must be a non-empty string/);
  const a = sampleSeeds(seeds, 2, new Rng(7));
  assert.deepEqual(a, sampleSeeds(seeds, 2, new Rng(7)));
  assert.equal(new Set(a).size, 2);
  assert.equal(sampleSeeds(seeds, 10, new Rng(1)).length, 3);
});
