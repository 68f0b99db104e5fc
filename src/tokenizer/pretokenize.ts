// Pre-tokenizers of llama.cpp's byte-level BPE vocabularies, selected by `tokenizer.ggml.pre`.
// Each pre-tokenizer is a list of steps applied in turn (llama.cpp unicode_regex_split): a step splits every
// current piece into its matches AND the unmatched gaps between them. The GPT-2 and Llama-3 patterns are
// hand-written scanners in llama.cpp (unicode.cpp, unicode_regex_split_custom_*); we port those scanners so that
// their corner cases (e.g. unassigned code points) agree, and run every other pattern as a JavaScript `u` regex.
// Character classes follow llama.cpp: \p{L}, \p{N}, \p{P} as Unicode, and \s as llama.cpp's whitespace set.

/** llama.cpp's whitespace set (unicode-data.cpp), which differs from JavaScript's \s (U+0085 in, U+FEFF out). */
const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Rewrites \s and \S of a pattern to llama.cpp's whitespace set. */
function llamaRegex(src: string): RegExp {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1];
      if (n === 's') out += inClass ? WS : `[${WS}]`;
      else if (n === 'S') out += `[^${WS}]`;
      else out += c + n;
      i++;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    out += c;
  }
  return new RegExp(out, 'gu');
}

type Step = { kind: 'regex'; re: RegExp } | { kind: 'gpt2' } | { kind: 'llama3' };

/** The GPT-2 pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) (scanner). */
const GPT2: Step = { kind: 'gpt2' };
/** The Llama-3 pattern (?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
const LLAMA3: Step = { kind: 'llama3' };
const rx = (s: string): Step => ({ kind: 'regex', re: llamaRegex(s) });

/** Known `tokenizer.ggml.pre` names (llama-vocab.cpp) and their step lists. */
const PRE_STEPS: Record<string, () => Step[]> = {
  default: () => [rx('[\\p{P}\\$\\+<=>\\^~\\|]+'), GPT2, rx('\\p{N}+'), rx('[0-9][0-9][0-9]')],
  'gpt-2': () => [GPT2],
  llama3: () => [LLAMA3],
  'deepseek-coder': () => [rx('[\\r\\n]'), rx('\\s?\\p{L}+'), rx('\\s?\\p{P}+'), rx('[一-龥ࠀ-一가-퟿]+'), rx('\\p{N}')],
  qwen2: () => [
    rx("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  ],
  smollm: () => [rx('\\p{N}'), GPT2],
};

/** Aliases llama.cpp maps to the same pre-tokenizer. */
const PRE_ALIASES: Record<string, string> = {
  'gpt-2': 'gpt-2', 'phi-2': 'gpt-2', mpt: 'gpt-2', olmo: 'gpt-2', jais: 'gpt-2',
  'llama3': 'llama3', 'llama-v3': 'llama3', 'llama-bpe': 'llama3', falcon3: 'llama3', dbrx: 'llama3', 'smaug-bpe': 'llama3',
  qwen2: 'qwen2', 'deepseek-r1-qwen': 'qwen2', stablelm2: 'qwen2', megrez: 'qwen2',
  smollm: 'smollm', starcoder: 'smollm', refact: 'smollm', 'command-r': 'smollm', codeshell: 'smollm', exaone: 'smollm',
  'deepseek-coder': 'deepseek-coder', default: 'default',
};

/** The behaviour llama.cpp attaches to a pre-tokenizer name. */
export interface PreTokenizer {
  name: string;
  /** Whole pieces found in the vocab skip BPE (Llama-3 family). */
  ignoreMerges: boolean;
  /** BOS is added by default (Llama-3 family), unless tokenizer.ggml.add_bos_token says otherwise. */
  addBos: boolean;
  split(text: string): string[];
}

export function supportedPreTokenizers(): string[] {
  return Object.keys(PRE_ALIASES);
}

/** Resolves a `tokenizer.ggml.pre` value (empty/undefined → 'default', as llama.cpp does with a warning). */
export function preTokenizer(pre: string | undefined): PreTokenizer {
  const name = pre === undefined || pre === '' ? 'default' : pre;
  const canonical = PRE_ALIASES[name];
  if (canonical === undefined) {
    throw new Error(`tokenizer.ggml.pre: unsupported pre-tokenizer '${name}' (supported: ${supportedPreTokenizers().join(', ')})`);
  }
  const steps = PRE_STEPS[canonical]();
  const isLlama3 = canonical === 'llama3';
  return { name, ignoreMerges: isLlama3, addBos: isLlama3, split: (text) => runSteps(steps, text) };
}

function runSteps(steps: Step[], text: string): string[] {
  let pieces = text.length > 0 ? [text] : [];
  for (const step of steps) {
    const next: string[] = [];
    for (const p of pieces) {
      if (step.kind === 'regex') splitRegex(step.re, p, next);
      else scan(step.kind, Array.from(p), next);
    }
    pieces = next;
  }
  return pieces;
}

/** Matches and the gaps between them, in order (llama.cpp unicode_regex_split_stl). */
function splitRegex(re: RegExp, text: string, out: string[]): void {
  let last = 0;
  for (const m of text.matchAll(re)) {
    const at = m.index;
    if (at > last) out.push(text.slice(last, at));
    if (m[0].length > 0) out.push(m[0]);
    last = at + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
}

// Code point flags, computed once per code point.
const F_LETTER = 1, F_NUMBER = 2, F_WS = 4, F_DEFINED = 8, F_DONE = 128;
const flagCache = new Map<number, number>();
const reL = /\p{L}/u, reN = /\p{N}/u, reCn = /\p{Cn}/u, reWS = new RegExp(`[${WS}]`, 'u');
function flagsOf(cp: number): number {
  let f = flagCache.get(cp);
  if (f === undefined) {
    const s = String.fromCodePoint(cp);
    f = F_DONE;
    if (reL.test(s)) f |= F_LETTER;
    if (reN.test(s)) f |= F_NUMBER;
    if (reWS.test(s)) f |= F_WS;
    if (!reCn.test(s)) f |= F_DEFINED;
    flagCache.set(cp, f);
  }
  return f;
}

/** Port of unicode_regex_split_custom_gpt2 / _llama3 over the code points `cps` of one piece. */
function scan(kind: 'gpt2' | 'llama3', cps: string[], out: string[]): void {
  const n = cps.length;
  const cpAt = (i: number): number => (i < n ? cps[i].codePointAt(0) ?? -1 : -1);
  const fl = (i: number): number => (i < n ? flagsOf(cpAt(i)) : 0);
  const lower = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c);
  const punct = (f: number): boolean => (f & (F_WS | F_LETTER | F_NUMBER)) === 0 && (f & F_DEFINED) !== 0;
  let prev = 0;
  const add = (end: number): number => {
    const len = end - prev;
    if (len > 0) out.push(cps.slice(prev, end).join(''));
    prev = end;
    return len;
  };
  let pos = 0;
  while (pos < n) {
    const cpt = cpAt(pos);
    const flags = fl(pos);
    // 's|'t|'re|'ve|'m|'ll|'d (case-insensitive for Llama-3)
    if (cpt === 39 && pos + 1 < n) {
      const c1 = kind === 'llama3' ? lower(cpAt(pos + 1)) : cpAt(pos + 1);
      if (c1 === 115 || c1 === 116 || c1 === 109 || c1 === 100) { pos += add(pos + 2); continue; }
      if (pos + 2 < n) {
        const c2 = kind === 'llama3' ? lower(cpAt(pos + 2)) : cpAt(pos + 2);
        if ((c1 === 114 && c2 === 101) || (c1 === 118 && c2 === 101) || (c1 === 108 && c2 === 108)) { pos += add(pos + 3); continue; }
      }
    }
    if (kind === 'gpt2') {
      let f2 = cpt === 32 ? fl(pos + 1) : flags;
      if (f2 & F_LETTER) { // ' ?\p{L}+'
        if (cpt === 32) pos++;
        while (f2 & F_LETTER) f2 = fl(++pos);
        add(pos);
        continue;
      }
      if (f2 & F_NUMBER) { // ' ?\p{N}+'
        if (cpt === 32) pos++;
        while (f2 & F_NUMBER) f2 = fl(++pos);
        add(pos);
        continue;
      }
      if (punct(f2)) { // ' ?[^\s\p{L}\p{N}]+'
        if (cpt === 32) pos++;
        while (punct(f2)) f2 = fl(++pos);
        add(pos);
        continue;
      }
      let nws = 0;
      while (fl(pos + nws) & F_WS) nws++;
      if (nws > 1 && pos + nws < n) { pos += nws - 1; add(pos); continue; } // \s+(?!\S)
      if (nws > 0) { pos += nws; add(pos); continue; } // \s+
      add(++pos);
      continue;
    }
    // Llama-3: [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cpt === 13 || cpt === 10 || flags & F_NUMBER)) {
      if (flags & F_LETTER || fl(pos + 1) & F_LETTER) {
        pos++;
        while (fl(pos) & F_LETTER) pos++;
        add(pos);
        continue;
      }
    }
    if (flags & F_NUMBER) { // \p{N}{1,3}
      let ini = pos;
      while (fl(pos) & F_NUMBER) {
        if (++pos - ini >= 3) { add(pos); ini = pos; }
      }
      add(pos);
      continue;
    }
    let f2 = cpt === 32 ? fl(pos + 1) : flags;
    if (punct(f2) && flags & F_DEFINED) { // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      if (cpt === 32) pos++;
      while (punct(f2)) f2 = fl(++pos);
      let c2 = cpAt(pos);
      while (c2 === 13 || c2 === 10) c2 = cpAt(++pos);
      add(pos);
      continue;
    }
    let nws = 0;
    let lastNl = 0;
    while (fl(pos + nws) & F_WS) {
      const c2 = cpAt(pos + nws);
      if (c2 === 13 || c2 === 10) lastNl = pos + nws + 1;
      nws++;
    }
    if (lastNl > 0) { pos = lastNl; add(pos); continue; } // \s*[\r\n]+
    if (nws > 1 && pos + nws < n) { pos += nws - 1; add(pos); continue; } // \s+(?!\S)
    if (nws > 0) { pos += nws; add(pos); continue; } // \s+
    add(++pos);
  }
}
