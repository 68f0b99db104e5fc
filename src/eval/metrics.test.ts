// Metrics and filters against hand-computed cases and real GSM8K answer strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { needsShared, requireShared, sharedPath } from '../../test/shared-data.js';
import { bootstrapStderr, chooseAnswer, exactMatch, findall, mean, pyRegex, regexFilter } from './metrics.js';

// gsm8k-cot.yaml's filters and exact_match options (as in assets/eval/gsm8k.yaml)
const STRICT = { regex_pattern: 'The answer is (\\-?[0-9\\.\\,]+).' };
const FLEXIBLE = { regex_pattern: '(-?[$0-9.,]{2,})|(-?[0-9]+)', group_select: -1 };
const PLAIN_STRICT = { regex_pattern: '#### (\\-?[0-9\\.\\,]+)' };
const EM = { ignore_case: true, ignore_punctuation: false, regexes_to_ignore: [',', '\\$', '(?s).*#### ', '\\.$'] };

// Real answers from GSM8K's test set (openai/grade-school-math test.jsonl lines 147 and 490)
const LEGO = 'The first set had 500 pieces, and the second set had 3 times as many as the first set, so the second set has 500*3=<<500*3=1500>>1500 pieces\nThe third set had one-quarter of the 500 pieces, so that means it had 500*.25= <<500*.25=125>>125 pieces\nIn total, that means Johnny picked up 500 + 1500+ 125= <<500+1500+125=2125>>2125 blocks\n#### 2,125';
const TEMPS = '-48 + 21 + (-3) = <<-48+21+(-3)=-30>>-30\n-30/3 = <<-30/3=-10>>-10 degrees\nThe average highest temperature recorded in Southlandia, Northlandia, and Midlandia is -10 degrees Fahrenheit.\n#### -10';

test('acc and acc_norm disagree when a long choice has the higher total but the lower per-byte log-likelihood', () => {
  // "cat" (3 bytes) −3.0 → −1.0/byte; "elephant" (8 bytes) −4.0 → −0.5/byte; "ox" (2 bytes) −5.0 → −2.5/byte
  const r = chooseAnswer([-3.0, -4.0, -5.0], ['cat', 'elephant', 'ox']);
  assert.equal(r.pred, 0);
  assert.equal(r.predNorm, 1);
  // bytes, not characters: "été" is 3 characters, 5 bytes. −4.5/5 = −0.9 beats "abcd" −3.8/4 = −0.95 per byte,
  // while per character (lm-eval's acc_norm) −4.5/3 = −1.5 would lose to −0.95
  const u = chooseAnswer([-4.5, -3.8], ['été', 'abcd']);
  assert.equal(u.pred, 1);
  assert.equal(u.predNorm, 0);
  // ties go to the first choice (numpy's argmax)
  assert.deepEqual(chooseAnswer([-1, -1], ['a', 'b']), { pred: 0, predNorm: 0 });
});

test('GSM8K: the strict and flexible filters and exact_match on real answers', () => {
  const cot = 'In total he picked up 500 + 1500 + 125 = 2125 blocks. The answer is 2,125.';
  assert.equal(regexFilter(cot, STRICT), '2,125');
  assert.equal(exactMatch(regexFilter(cot, STRICT), '2,125', EM), 1); // commas ignored on both sides
  assert.equal(exactMatch(regexFilter(cot, STRICT), '2125', EM), 1);
  // flexible-extract: the last number-like run; "$18." keeps the $ and the dot, which exact_match drops
  assert.equal(regexFilter('She makes 9 * 2 = $18.', FLEXIBLE), '$18.');
  assert.equal(exactMatch('$18.', '18', EM), 1);
  // a lone single digit is the second alternative's group
  assert.equal(regexFilter('so the answer is 7', FLEXIBLE), '7');
  // no match → lm-eval's fallback
  assert.equal(regexFilter('no idea', STRICT), '[invalid]');
  assert.equal(exactMatch('[invalid]', '18', EM), 0);
  // the plain task's "#### N" on the dataset's own answers, negative numbers included
  assert.equal(regexFilter(LEGO, PLAIN_STRICT), '2,125');
  assert.equal(regexFilter(TEMPS, PLAIN_STRICT), '-10');
  assert.equal(regexFilter(TEMPS, FLEXIBLE), '-10');
  // "(?s).*#### " strips a whole worked answer down to its number (a Python inline flag, turned into JS's s flag)
  assert.equal(exactMatch(LEGO, '2125', EM), 1);
  assert.equal(exactMatch(TEMPS, '-10', EM), 1);
  assert.equal(exactMatch(TEMPS, '10', EM), 0);
});

test('GSM8K: every answer of the shared test set gives its "#### N" number to both filters', needsShared(sharedPath('eval', 'gsm8k-test.jsonl')), () => {
  const file = sharedPath('eval', 'gsm8k-test.jsonl');
  requireShared(file);
  const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { answer: string });
  assert.equal(rows.length, 1319);
  for (const { answer } of rows) {
    const n = answer.split('####').at(-1)!.trim(); // gsm8k-cot's doc_to_target
    assert.equal(regexFilter(answer, PLAIN_STRICT), n);
    assert.equal(exactMatch(regexFilter(answer, FLEXIBLE), n, EM), 1, answer);
  }
});

test('exact_match options: ignore_case, ignore_punctuation, ignore_numbers, regexes applied before case', () => {
  assert.equal(exactMatch('Cold', 'cold'), 0);
  assert.equal(exactMatch('Cold', 'cold', { ignore_case: true }), 1);
  assert.equal(exactMatch('cold!', 'cold', { ignore_punctuation: true }), 1);
  assert.equal(exactMatch('cold 1', 'cold 2', { ignore_numbers: true }), 1);
  assert.equal(exactMatch('ANSWER: x', 'x', { regexes_to_ignore: ['answer: '], ignore_case: true }), 0); // regexes run first, case-sensitively
  assert.equal(exactMatch('answer: x', 'x', { regexes_to_ignore: ['answer: '] }), 1);
});

test('findall follows Python: whole match, one group, tuples of groups', () => {
  assert.deepEqual(findall(pyRegex('\\d+'), 'a1b22'), ['1', '22']);
  assert.deepEqual(findall(pyRegex('a(\\d)'), 'a1a2'), ['1', '2']);
  assert.deepEqual(findall(pyRegex('(a)|(b)'), 'ab'), [['a', ''], ['', 'b']]);
  assert.deepEqual(findall(pyRegex('(?P<n>\\d)x(?P=n)'), '1x1 2x3'), ['1']);
  assert.throws(() => pyRegex('(?x)a'), /inline flag \(\?x\) is not supported/);
  assert.throws(() => regexFilter('1 2', { regex_pattern: '\\d', group_select: 5 }), /group_select 5 is out of range/);
});

test('bootstrap stderr: seeded, close to the analytic sample stderr of a mean', () => {
  const xs: number[] = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const a = bootstrapStderr(xs, 7);
  assert.equal(bootstrapStderr(xs, 7), a); // same seed, same number
  const m = mean(xs);
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
  const analytic = sd / Math.sqrt(xs.length);
  assert.ok(Math.abs(a - analytic) / analytic < 0.1, `bootstrap ${a} vs analytic ${analytic}`);
  assert.ok(Number.isNaN(bootstrapStderr([1], 7)));
  assert.equal(bootstrapStderr([1, 1, 1], 7), 0);
});
