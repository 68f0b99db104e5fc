// The model-free verifiers: exact answers (numbers, GSM8K's "####", text), regexes, JS function files (booleans,
// numbers, async, and the errors for a bad return or a missing default export), and a missing answer field.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerMatches, answerVerifier, finalAnswer, jsVerifier, regexVerifier, type SynthItem } from './verify.js';

const dir = mkdtempSync(join(tmpdir(), 'nomoat-verify-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const item = (record: Record<string, unknown>): SynthItem => ({ where: 'p.jsonl:3', messages: [{ role: 'user', content: 'q' }], record });

test('answer: numbers by value (separators, "####", the last number), text by its last line', () => {
  assert.equal(finalAnswer('She sold 48 clips.\n#### 72'), '72');
  assert.equal(answerMatches('#### 72', 'First 48, then 24 more: 72 in all.'), 1);
  assert.equal(answerMatches('#### 72', 'The answer is 72, not 48.'), 0); // the last number decides
  assert.equal(answerMatches('1,234', 'It costs $1,234.'), 1);
  assert.equal(answerMatches('#### 5', 'so\n#### 5'), 1);
  assert.equal(answerMatches('0.5', 'half: 0.50'), 1);
  assert.equal(answerMatches('Paris', 'The capital is\nparis.'), 1);
  assert.equal(answerMatches('Paris', 'Paris is big'), 0);
  assert.equal(answerMatches('5', 'no number here'), 0);
});

test('answer verifier: reads the record field; a missing field names where and which', async () => {
  const v = answerVerifier('answer');
  assert.deepEqual(await v.score(item({ answer: '#### 4' }), ['2+2=4', '5', '#### 4']), [1, 0, 1]);
  assert.deepEqual(await v.score(item({ answer: 4 }), ['4']), [1]);
  await assert.rejects(v.score(item({ question: 'x' }), ['4']), /p\.jsonl:3: answer: missing/);
  await assert.rejects(v.score(item({ answer: [4] }), ['4']), /p\.jsonl:3: answer: must be a string or a number/);
});

test('regex verifier: 1 on a match, 0 otherwise; a bad pattern is refused', async () => {
  const v = regexVerifier('^\\d+$');
  assert.equal(v.name, 'regex:^\\d+$');
  assert.deepEqual(await v.score(item({}), ['42', '4 2', '']), [1, 0, 0]);
  assert.throws(() => regexVerifier('(unclosed'), /not a valid regular expression/);
});

test('js verifier: booleans, numbers and promises; the record is passed; bad returns and modules are errors', async () => {
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const len = await jsVerifier(file('len.mjs', 'export default (record, reply) => reply.length * record.weight;\n'));
  assert.deepEqual(await len.score(item({ weight: 2 }), ['ab', 'abcd']), [4, 8]);
  const yes = await jsVerifier(file('yes.mjs', 'export default async (record, reply) => reply.includes(record.want);\n'));
  assert.deepEqual(await yes.score(item({ want: 'x' }), ['axb', 'ab']), [1, 0]);
  const bad = await jsVerifier(file('bad.mjs', 'export default () => "good";\n'));
  await assert.rejects(bad.score(item({}), ['a']), /bad\.mjs: returned string for p\.jsonl:3; it must return a finite number or a boolean/);
  const nan = await jsVerifier(file('nan.mjs', 'export default () => NaN;\n'));
  await assert.rejects(nan.score(item({}), ['a']), /returned NaN/);
  await assert.rejects(jsVerifier(file('none.mjs', 'export const f = 1;\n')), /none\.mjs: has no default export function/);
  await assert.rejects(jsVerifier(file('syntax.mjs', 'export default (;\n')), /cannot load .*syntax\.mjs/);
});
