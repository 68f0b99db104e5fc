// Heuristic quality rules for text: Gopher's quality and repetition rules (Rae et al. 2021, appendix A; thresholds
// from their table A1, code shape from datatrove's gopher_quality_filter / gopher_repetition_filter) and FineWeb's
// three additions (Penedo et al. 2024; datatrove's fineweb_quality_filter). Each rule returns why a text fails, or
// nothing; the first failing rule (in the order below, datatrove's) removes the text.
//
// Differences from datatrove, each on purpose:
//  - words come from a small regex tokenizer (words, and punctuation runs as separate tokens), not NLTK's; a token
//    that is one punctuation character is not a word (datatrove: `w not in string.punctuation`);
//  - bullets are the bullet glyphs (• ‣ ◦ ⁃ ●), as datatrove checks "•": markdown "-" / "*" lists are normal in
//    chat answers;
//  - a "top n-gram" must occur at least twice: an n-gram seen once is not repetition, and without this every
//    short text (a one-line answer) fails top_2_gram;
//  - FineWeb's duplicated-line character share defaults to the paper's 0.1 (datatrove's code default is 0.01).
// The model-based score filter (loss of each response under a reference model and adapter) is a separate, later
// piece: it needs a model and lives with the training code, not here.

export interface GopherQualityOptions {
  minWords: number; // 50
  maxWords: number; // 100 000
  minMeanWordLength: number; // 3
  maxMeanWordLength: number; // 10
  /** "#" per word and "..."/"…" per word, each at most this (0.1) */
  maxSymbolRatio: number;
  /** share of lines starting with a bullet, at most (0.9) */
  maxBulletLines: number;
  /** share of lines ending with an ellipsis, at most (0.3) */
  maxEllipsisLines: number;
  /** share of words holding an alphabetic character, at least (0.8) */
  minAlphaWords: number;
  /** words among the, be, to, of, and, that, have, with: at least (2) */
  minStopWords: number;
}

export interface GopherRepetitionOptions {
  maxDupLineFrac: number; // 0.30
  maxDupParaFrac: number; // 0.30
  maxDupLineCharFrac: number; // 0.20
  maxDupParaCharFrac: number; // 0.20
  /** [n, max share of characters in the most frequent n-gram] */
  topNgrams: readonly (readonly [number, number])[];
  /** [n, max share of characters in duplicated n-grams] */
  dupNgrams: readonly (readonly [number, number])[];
}

export interface FinewebOptions {
  /** share of lines ending in terminal punctuation, at least (0.12) */
  minLinePunct: number;
  /** share of lines of at most shortLineLength characters, at most (0.67) */
  maxShortLines: number;
  shortLineLength: number; // 30
  /** characters in duplicated lines over all characters (newlines excluded), at most (0.1) */
  maxDupLineChars: number;
  /** newlines per word, at most (0.3: "list-like" documents) */
  maxNewlineRatio: number;
}

export const GOPHER_QUALITY: GopherQualityOptions = {
  minWords: 50, maxWords: 100_000, minMeanWordLength: 3, maxMeanWordLength: 10, maxSymbolRatio: 0.1,
  maxBulletLines: 0.9, maxEllipsisLines: 0.3, minAlphaWords: 0.8, minStopWords: 2,
};
export const GOPHER_REPETITION: GopherRepetitionOptions = {
  maxDupLineFrac: 0.3, maxDupParaFrac: 0.3, maxDupLineCharFrac: 0.2, maxDupParaCharFrac: 0.2,
  topNgrams: [[2, 0.2], [3, 0.18], [4, 0.16]],
  dupNgrams: [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]],
};
export const FINEWEB: FinewebOptions = { minLinePunct: 0.12, maxShortLines: 0.67, shortLineLength: 30, maxDupLineChars: 0.1, maxNewlineRatio: 0.3 };

/** Why a text failed: the rule's name, the measured value and the threshold it crossed. */
export interface RuleFailure {
  rule: string;
  value: number;
  threshold: number;
}

export const STOP_WORDS = new Set(['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with']);
const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const BULLETS = ['•', '‣', '◦', '⁃', '●'];
const TERMINAL = ['.', '\'', '"', '!', '?'];

/** Word tokens: runs of letters/digits (with inner apostrophes), and runs of other non-space characters. */
export function tokens(text: string): string[] {
  return text.match(/[\p{L}\p{N}\p{M}_]+(?:'[\p{L}\p{N}]+)*|[^\s\p{L}\p{N}\p{M}_]+/gu) ?? [];
}

const isWord = (t: string): boolean => !(t.length === 1 && PUNCT.has(t));
const fail = (rule: string, value: number, threshold: number): RuleFailure => ({ rule, value: Math.round(value * 1e4) / 1e4, threshold });

export function gopherQuality(text: string, o: GopherQualityOptions = GOPHER_QUALITY): RuleFailure | null {
  const toks = tokens(text);
  const words = toks.filter(isWord);
  const n = words.length;
  if (n < o.minWords) return fail('gopher_short_doc', n, o.minWords);
  if (n > o.maxWords) return fail('gopher_long_doc', n, o.maxWords);
  if (n === 0) return fail('gopher_short_doc', 0, o.minWords);
  const mean = words.reduce((a, w) => a + [...w].length, 0) / n;
  if (mean < o.minMeanWordLength) return fail('gopher_below_avg_threshold', mean, o.minMeanWordLength);
  if (mean > o.maxMeanWordLength) return fail('gopher_above_avg_threshold', mean, o.maxMeanWordLength);
  const hashes = count(text, '#') / n;
  if (hashes > o.maxSymbolRatio) return fail('gopher_too_many_hashes', hashes, o.maxSymbolRatio);
  const ellipses = (count(text, '...') + count(text, '…')) / n;
  if (ellipses > o.maxSymbolRatio) return fail('gopher_too_many_ellipsis', ellipses, o.maxSymbolRatio);
  const lines = text.split(/\r?\n/u);
  const bullets = lines.filter((l) => BULLETS.some((b) => l.trimStart().startsWith(b))).length / lines.length;
  if (bullets > o.maxBulletLines) return fail('gopher_too_many_bullets', bullets, o.maxBulletLines);
  const endEllipsis = lines.filter((l) => /(\.\.\.|…)$/u.test(l.trimEnd())).length / lines.length;
  if (endEllipsis > o.maxEllipsisLines) return fail('gopher_too_many_end_ellipsis', endEllipsis, o.maxEllipsisLines);
  const alpha = words.filter((w) => /\p{L}/u.test(w)).length / n;
  if (alpha < o.minAlphaWords) return fail('gopher_below_alpha_threshold', alpha, o.minAlphaWords);
  const stops = toks.filter((t) => STOP_WORDS.has(t.toLowerCase())).length;
  if (stops < o.minStopWords) return fail('gopher_enough_stop_words', stops, o.minStopWords);
  return null;
}

/** Duplicate elements after their first occurrence: how many, and their characters. */
export function findDuplicates(xs: readonly string[]): { elements: number; chars: number } {
  const seen = new Set<string>();
  let elements = 0, chars = 0;
  for (const x of xs) {
    if (seen.has(x)) {
      elements++;
      chars += x.length;
    } else seen.add(x);
  }
  return { elements, chars };
}

/** Characters in the most frequent n-gram times its count, when it occurs at least twice (else 0). */
export function topNgramChars(words: readonly string[], n: number): number {
  const counts = new Map<string, number>();
  let best = 0, bestKey = '';
  for (let i = 0; i + n <= words.length; i++) {
    const k = words.slice(i, i + n).join(' ');
    const c = (counts.get(k) ?? 0) + 1;
    counts.set(k, c);
    if (c > best) [best, bestKey] = [c, k];
  }
  return best >= 2 ? bestKey.length * best : 0;
}

/** Characters in n-grams that repeat an earlier one, skipping past each repeat (no double counting of overlaps). */
export function duplicateNgramChars(words: readonly string[], n: number): number {
  const seen = new Set<string>();
  let chars = 0;
  for (let i = 0; i + n <= words.length; ) {
    const k = words.slice(i, i + n).join(' ');
    if (seen.has(k)) {
      chars += k.length;
      i += n;
    } else {
      seen.add(k);
      i++;
    }
  }
  return chars;
}

export function gopherRepetition(text: string, o: GopherRepetitionOptions = GOPHER_REPETITION): RuleFailure | null {
  const len = text.length;
  if (len === 0) return null;
  const paras = text.trim().split(/\n{2,}/u);
  const p = findDuplicates(paras);
  if (p.elements / paras.length > o.maxDupParaFrac) return fail('dup_para_frac', p.elements / paras.length, o.maxDupParaFrac);
  if (p.chars / len > o.maxDupParaCharFrac) return fail('dup_para_char_frac', p.chars / len, o.maxDupParaCharFrac);
  const lines = text.split(/\n+/u).filter((l) => l !== '');
  const l = findDuplicates(lines);
  if (lines.length > 0 && l.elements / lines.length > o.maxDupLineFrac) return fail('dup_line_frac', l.elements / lines.length, o.maxDupLineFrac);
  if (l.chars / len > o.maxDupLineCharFrac) return fail('dup_line_char_frac', l.chars / len, o.maxDupLineCharFrac);
  const words = tokens(text).filter(isWord);
  for (const [n, max] of o.topNgrams) {
    const share = topNgramChars(words, n) / len;
    if (share > max) return fail(`top_${n}_gram`, share, max);
  }
  for (const [n, max] of o.dupNgrams) {
    const share = duplicateNgramChars(words, n) / len;
    if (share > max) return fail(`duplicated_${n}_n_grams`, share, max);
  }
  return null;
}

export function finewebQuality(text: string, o: FinewebOptions = FINEWEB): RuleFailure | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return fail('fineweb_empty', 0, 1);
  const punct = lines.filter((l) => TERMINAL.some((c) => l.trimEnd().endsWith(c))).length / lines.length;
  if (punct < o.minLinePunct) return fail('line_punct_ratio', punct, o.minLinePunct);
  const short = lines.filter((l) => [...l].length <= o.shortLineLength).length / lines.length;
  if (short > o.maxShortLines) return fail('short_line_ratio', short, o.maxShortLines);
  const chars = text.replace(/\n/gu, '').length;
  const dup = chars === 0 ? 0 : findDuplicates(lines).chars / chars;
  if (dup > o.maxDupLineChars) return fail('char_dup_ratio', dup, o.maxDupLineChars);
  const nl = count(text, '\n') / Math.max(1, tokens(text).length);
  if (nl > o.maxNewlineRatio) return fail('list_ratio', nl, o.maxNewlineRatio);
  return null;
}

function count(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}
