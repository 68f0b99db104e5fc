// Metrics and filters by name, as lm-evaluation-harness computes them: exact_match (its HF-evaluate flavour with
// regexes_to_ignore / ignore_case / ignore_punctuation / ignore_numbers), acc and acc_norm of a multiple-choice
// question, the `regex` and `take_first` filters, means and bootstrap standard errors. Pure: no model, no I/O.
//
// lm-eval task files carry Python regular expressions; pyRegex() turns the Python-only syntax that task files use
// (leading inline flags `(?s)`, `(?P<name>…)`, `\Z`) into a JavaScript RegExp.

import { Rng } from '../engine/rng.js';

/** A Python regex as a JavaScript RegExp (always global: filters use findall, exact_match uses re.sub). */
export function pyRegex(pattern: string): RegExp {
  let flags = 'gu';
  let src = pattern;
  const lead = /^\(\?([aiLmsux]+)\)/.exec(src);
  if (lead !== null) {
    for (const f of lead[1]) {
      if (f === 'i' || f === 'm' || f === 's') flags += f;
      else if (f !== 'u' && f !== 'a') throw new Error(`regex ${JSON.stringify(pattern)}: inline flag (?${f}) is not supported`);
    }
    src = src.slice(lead[0].length);
  }
  src = src.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>').replace(/\\Z/g, '$(?![\\s\\S])');
  try {
    return new RegExp(src, flags);
  } catch {
    // `u` mode refuses some escapes Python accepts (e.g. `\-` outside a class): retry without it
    try {
      return new RegExp(src, flags.replace('u', ''));
    } catch (e) {
      throw new Error(`regex ${JSON.stringify(pattern)} is not valid: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** Python's re.findall: whole matches without groups, the group with one, a tuple of groups ('' if unmatched) with more. */
export function findall(re: RegExp, s: string): (string | string[])[] {
  const out: (string | string[])[] = [];
  for (const m of s.matchAll(re)) {
    if (m.length === 1) out.push(m[0]);
    else if (m.length === 2) out.push(m[1] ?? '');
    else out.push(m.slice(1).map((g) => g ?? ''));
  }
  return out;
}

export interface RegexFilterOptions {
  regex_pattern?: string; // default lm-eval's "#### (\-?[0-9\.\,]+)"
  group_select?: number; // which findall result (negative counts from the end; default 0)
  fallback?: string; // default "[invalid]"
}

/** lm-eval's RegexFilter on one response: the selected findall match (first non-empty group of a tuple), stripped. */
export function regexFilter(resp: string, o: RegexFilterOptions = {}): string {
  const fallback = o.fallback ?? '[invalid]';
  const matches = findall(pyRegex(o.regex_pattern ?? '#### (\\-?[0-9\\.\\,]+)'), resp);
  if (matches.length === 0) return fallback;
  const g = o.group_select ?? 0;
  const m = matches.at(g); // Python indexing: -1 is the last
  if (m === undefined) throw new Error(`regex filter: group_select ${g} is out of range for ${matches.length} match(es)`); // IndexError in lm-eval
  const picked = Array.isArray(m) ? m.find((x) => x !== '') ?? fallback : m;
  return picked.trim();
}

/** Python's string.punctuation (ASCII only), what exact_match's ignore_punctuation removes. */
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

export interface ExactMatchOptions {
  regexes_to_ignore?: readonly string[];
  ignore_case?: boolean;
  ignore_punctuation?: boolean;
  ignore_numbers?: boolean;
}

/** The normalization exact_match applies to both prediction and reference (in lm-eval's order). */
export function exactMatchNormalize(s: string, o: ExactMatchOptions = {}): string {
  let x = s;
  for (const r of o.regexes_to_ignore ?? []) x = x.replace(pyRegex(r), '');
  if (o.ignore_case === true) x = x.toLowerCase();
  if (o.ignore_punctuation === true) x = x.replace(PUNCTUATION, '');
  if (o.ignore_numbers === true) x = x.replace(/[0-9]/g, '');
  return x;
}

/** 1 when prediction equals reference after normalization, else 0. */
export function exactMatch(prediction: string, reference: string, o: ExactMatchOptions = {}): number {
  return exactMatchNormalize(prediction, o) === exactMatchNormalize(reference, o) ? 1 : 0;
}

const utf8 = new TextEncoder();

/** Index of the first maximum (numpy's argmax breaks ties to the lowest index). */
export function argmaxFirst(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

export interface ChoiceScores {
  pred: number; // argmax of the log-likelihoods
  predNorm: number; // argmax of the log-likelihoods per UTF-8 byte of the choice
}

/**
 * The predictions of a multiple-choice question from the log-likelihood of each choice. acc_norm divides by the
 * choice's length in UTF-8 BYTES: lm-eval's acc_norm divides by its length in characters and its acc_bytes by bytes;
 * nomoat's issue asks for bytes (equal for ASCII choices; bytes do not favour scripts with multi-byte characters).
 */
export function chooseAnswer(logprobs: readonly number[], choices: readonly string[]): ChoiceScores {
  if (logprobs.length !== choices.length) throw new Error(`chooseAnswer: ${logprobs.length} log-likelihoods for ${choices.length} choices`);
  const perByte = logprobs.map((lp, i) => lp / utf8.encode(choices[i]).length);
  return { pred: argmaxFirst(logprobs), predNorm: argmaxFirst(perByte) };
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export const BOOTSTRAP_ROUNDS = 1000;

/**
 * Standard error of the mean by bootstrap: the standard deviation (n − 1) of the means of `rounds` resamples (with
 * replacement) drawn from a seeded generator, so the same items give the same number on every run. lm-eval uses the
 * analytic sample stderr (stdev / √n) for a mean; for a mean the bootstrap approximates it (within a few percent at
 * 1000 rounds). NaN for fewer than two items, as lm-eval's "N/A".
 */
export function bootstrapStderr(xs: readonly number[], seed = 1234, rounds = BOOTSTRAP_ROUNDS): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const rng = new Rng(seed);
  const means = new Float64Array(rounds);
  for (let r = 0; r < rounds; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[rng.int(n)];
    means[r] = s / n;
  }
  const m = mean(Array.from(means));
  let v = 0;
  for (const x of means) v += (x - m) ** 2;
  return Math.sqrt(v / (rounds - 1));
}
