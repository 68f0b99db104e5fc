// Each Gopher / FineWeb rule on hand-made texts at both sides of its threshold (others switched off where they
// would interfere), plus the tokenizer and helper counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  duplicateNgramChars,
  findDuplicates,
  FINEWEB,
  finewebQuality,
  GOPHER_QUALITY,
  GOPHER_REPETITION,
  gopherQuality,
  gopherRepetition,
  tokens,
  topNgramChars,
  type FinewebOptions,
  type GopherRepetitionOptions,
} from './quality.js';

// distinct filler words of 6 letters, none a stop word
const filler = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `wor${String.fromCharCode(97 + ((from + i) % 26))}${String.fromCharCode(97 + Math.floor((from + i) / 26) % 26)}x`);
const doc = (extra: string[] = [], n = 48): string => [...filler(n), 'the', 'and', ...extra].join(' ');
const rule = (t: string): string | undefined => gopherQuality(t)?.rule;

test('tokens: words with inner apostrophes, punctuation runs apart', () => {
  assert.deepEqual(tokens("It's the end... Really?! #1"), ["It's", 'the', 'end', '...', 'Really', '?!', '#', '1']);
});

test('gopher quality: the base document passes every rule', () => {
  assert.equal(gopherQuality(doc()), null);
});

test('gopher: word count bounds 50 and max', () => {
  assert.equal(rule(doc([], 47)), 'gopher_short_doc'); // 49 words
  assert.equal(rule(doc([], 48)), undefined); // 50
  assert.equal(gopherQuality(doc([], 58), { ...GOPHER_QUALITY, maxWords: 60 }), null);
  assert.equal(gopherQuality(doc([], 59), { ...GOPHER_QUALITY, maxWords: 60 })?.rule, 'gopher_long_doc');
});

test('gopher: mean word length 3 … 10', () => {
  assert.equal(rule([...Array<string>(48).fill('abc'), 'the', 'and'].join(' ')), undefined); // mean exactly 3
  assert.equal(rule([...Array<string>(48).fill('ab'), 'the', 'and'].join(' ')), 'gopher_below_avg_threshold');
  assert.equal(rule([...Array<string>(48).fill('abcdefghij'), 'the', 'and'].join(' ')), undefined); // 9.72
  assert.equal(rule([...Array<string>(48).fill('abcdefghijkl'), 'the', 'and'].join(' ')), 'gopher_above_avg_threshold'); // 11.6
});

test('gopher: hash and ellipsis per word ≤ 0.1', () => {
  assert.equal(rule(doc(Array<string>(5).fill('#'))), undefined); // 5 / 50
  assert.equal(rule(doc(Array<string>(6).fill('#'))), 'gopher_too_many_hashes');
  const ell = (k: number, e: string): string => [...filler(48), ...Array<string>(k).fill(e), 'the', 'and'].join(' ');
  assert.equal(rule(ell(5, '...')), undefined); // 5 / 55 (an ellipsis token counts as a word)
  assert.equal(rule(ell(6, '…')), 'gopher_too_many_ellipsis'); // 6 / 56
});

test('gopher: bullet lines ≤ 90 %, ellipsis-ended lines ≤ 30 %', () => {
  const lines = (bullets: number, ellipses: number): string => Array.from({ length: 10 }, (_, i) => `${i < bullets ? '• ' : ''}${filler(5, i * 5).join(' ')}${i === 0 ? ' the and' : ''}${i >= 10 - ellipses ? ' …' : ''}`).join('\n');
  assert.equal(rule(lines(9, 0)), undefined);
  assert.equal(rule(lines(10, 0)), 'gopher_too_many_bullets');
  assert.equal(rule(lines(0, 3)), undefined);
  assert.equal(rule(lines(0, 4)), 'gopher_too_many_end_ellipsis');
});

test('gopher: ≥ 80 % of words alphabetic; ≥ 2 stop words', () => {
  assert.equal(rule(doc(Array<string>(12).fill('123'))), undefined); // 50 / 62
  assert.equal(rule(doc(Array<string>(13).fill('123'))), 'gopher_below_alpha_threshold'); // 50 / 63
  assert.equal(rule([...filler(49), 'the'].join(' ')), 'gopher_enough_stop_words');
  assert.equal(rule([...filler(48), 'The', 'WITH'].join(' ')), undefined);
});

// repetition rules one at a time: every other threshold permissive
const OFF: GopherRepetitionOptions = { maxDupLineFrac: 1, maxDupParaFrac: 1, maxDupLineCharFrac: 1, maxDupParaCharFrac: 1, topNgrams: [], dupNgrams: [] };
const rep = (t: string, o: Partial<GopherRepetitionOptions>): string | undefined => gopherRepetition(t, { ...OFF, ...o })?.rule;

test('gopher repetition: the defaults pass ordinary prose and a one-line answer', () => {
  assert.equal(gopherRepetition(doc()), null);
  assert.equal(gopherRepetition('Paris is the capital of France.'), null);
  assert.equal(gopherRepetition('once upon a time '.repeat(20))?.rule, 'top_2_gram');
});

test('gopher repetition: duplicate paragraph and line fractions (0.3) and their character shares (0.2)', () => {
  const paras = (dups: number): string => [...Array.from({ length: 10 - dups }, (_, i) => `para ${i}`), ...Array<string>(dups).fill('para 0')].join('\n\n');
  assert.equal(rep(paras(3), { maxDupParaFrac: 0.3 }), undefined);
  assert.equal(rep(paras(4), { maxDupParaFrac: 0.3 }), 'dup_para_frac');
  const lines = (dups: number): string => [...Array.from({ length: 10 - dups }, (_, i) => `line ${i}`), ...Array<string>(dups).fill('line 0')].join('\n');
  assert.equal(rep(lines(3), { maxDupLineFrac: 0.3 }), undefined);
  assert.equal(rep(lines(4), { maxDupLineFrac: 0.3 }), 'dup_line_frac');
  // one duplicated line of d characters in a text of length L: share d / L
  const withDup = (d: number): string => `${'x'.repeat(d)}\n${'y'.repeat(100 - 2 * d - 2)}\n${'x'.repeat(d)}`; // length 100
  assert.equal(rep(withDup(20), { maxDupLineCharFrac: 0.2 }), undefined);
  assert.equal(rep(withDup(21), { maxDupLineCharFrac: 0.2 }), 'dup_line_char_frac');
  const withDupPara = (d: number): string => `${'x'.repeat(d)}\n\n${'y'.repeat(100 - 2 * d - 4)}\n\n${'x'.repeat(d)}`;
  assert.equal(rep(withDupPara(20), { maxDupParaCharFrac: 0.2 }), undefined);
  assert.equal(rep(withDupPara(21), { maxDupParaCharFrac: 0.2 }), 'dup_para_char_frac');
});

test('gopher repetition: top n-gram and duplicated n-gram character shares', () => {
  assert.equal(topNgramChars(['a', 'b', 'a', 'b'], 2), 6); // "a b" twice
  assert.equal(topNgramChars(['a', 'b', 'c'], 2), 0); // nothing repeats
  assert.equal(duplicateNgramChars('a b c a b c a b c'.split(' '), 3), 10); // "a b c" twice after the first, 5 chars each
  // "ab cd" (5 chars) four times = 20 chars in a text of 100: share 0.2 passes, 0.21 fails
  const top = (len: number): string => { const s = 'ab cd ab cd ab cd ab cd '; return s + filler(20).join(' ').slice(0, len - s.length); };
  assert.equal(top(100).length, 100);
  assert.equal(rep(top(100), { topNgrams: [[2, 0.2]] }), undefined);
  assert.equal(rep(top(95), { topNgrams: [[2, 0.2]] }), 'top_2_gram');
  // a duplicated 5-gram "a1 a2 a3 a4 a5" (14 chars) once after its first: 14 / 100 ≤ 0.15, 14 / 93 > 0.15
  const five = 'a1 a2 a3 a4 a5 ';
  const dup = (len: number): string => { const s = five + five; return s + filler(20).join(' ').slice(0, len - s.length); };
  assert.equal(rep(dup(100), { dupNgrams: [[5, 0.15]] }), undefined);
  assert.equal(rep(dup(93), { dupNgrams: [[5, 0.15]] }), 'duplicated_5_n_grams');
  assert.deepEqual(GOPHER_REPETITION.dupNgrams.map(([n, f]) => `${n}:${f}`), ['5:0.15', '6:0.14', '7:0.13', '8:0.12', '9:0.11', '10:0.1']);
});

const FW_OFF: FinewebOptions = { minLinePunct: 0, maxShortLines: 1, shortLineLength: 30, maxDupLineChars: 1, maxNewlineRatio: 100 };
const fw = (t: string, o: Partial<FinewebOptions>): string | undefined => finewebQuality(t, { ...FW_OFF, ...o })?.rule;

test('fineweb: line-ending punctuation ≥ 0.12, short lines ≤ 0.67, duplicated-line characters ≤ 0.1, newlines per word ≤ 0.3', () => {
  const punct = (k: number): string => Array.from({ length: 100 }, (_, i) => `line number ${i}${i < k ? '.' : ''}`).join('\n');
  assert.equal(fw(punct(12), { minLinePunct: 0.12 }), undefined);
  assert.equal(fw(punct(11), { minLinePunct: 0.12 }), 'line_punct_ratio');
  const short = (k: number): string => Array.from({ length: 100 }, (_, i) => (i < k ? `short ${i}` : `a much longer line that is well over thirty characters ${i}`)).join('\n');
  assert.equal(fw(short(67), { maxShortLines: 0.67 }), undefined);
  assert.equal(fw(short(68), { maxShortLines: 0.67 }), 'short_line_ratio');
  // one line of d characters repeated once, in 100 characters without newlines
  const dup = (d: number): string => `${'x'.repeat(d)}\n${'y'.repeat(100 - 2 * d)}\n${'x'.repeat(d)}`;
  assert.equal(fw(dup(10), { maxDupLineChars: 0.1 }), undefined);
  assert.equal(fw(dup(11), { maxDupLineChars: 0.1 }), 'char_dup_ratio');
  // 3 newlines over 10 tokens = 0.3 passes; 4 over 10 fails
  assert.equal(fw('a b c\nd e\nf g\nh i j', { maxNewlineRatio: 0.3 }), undefined);
  assert.equal(fw('a b\nc d\ne f\ng h\ni j', { maxNewlineRatio: 0.3 }), 'list_ratio');
  assert.equal(finewebQuality('')?.rule, 'fineweb_empty');
  assert.deepEqual(FINEWEB, { minLinePunct: 0.12, maxShortLines: 0.67, shortLineLength: 30, maxDupLineChars: 0.1, maxNewlineRatio: 0.3 });
  assert.deepEqual(findDuplicates(['a', 'bb', 'a', 'bb', 'bb']), { elements: 3, chars: 5 });
});
