// Byte-level BPE trainer producing a standard Hugging Face tokenizer.json (GPT-2 style: ByteLevel pre-tokenizer
// with the GPT-2 regex, BPE vocab + merges, ByteLevel decoder). The 256 byte symbols are always in the vocab, so
// any UTF-8 text encodes and decodes back exactly.
//
// Algorithm (as in HF tokenizers' BpeTrainer): count pre-tokenized words; repeatedly merge the most frequent
// adjacent symbol pair (ties: lexicographically smallest pair). Pair counts are kept incrementally: merging a pair
// only re-counts the words that contain it (found through a pair → words index), and the best pair comes from a
// max-heap whose stale entries are skipped when popped.
import { byteLevelEncode, byteToChar } from './bytelevel.js';
import { Heap } from './heap.js';
import type { HfAddedToken, HfBpeModel, TokenizerJson } from './hf-json.js';

export interface TrainBpeOptions {
  /** Final vocab size, special tokens and the 256 byte symbols included. */
  vocabSize: number;
  /** Added as special tokens with the first ids, in this order (e.g. ['<|endoftext|>']). */
  specialTokens?: string[];
  /** Stop merging when the best pair occurs fewer times than this (default 2: a pair seen once never helps). */
  minFrequency?: number;
}

/** The GPT-2 pre-tokenizer regex, as the ByteLevel pre-tokenizer applies it. */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const KEY = 1 << 21; // pair key = a * KEY + b (ids < 2^21)

export function trainBpe(texts: Iterable<string>, options: TrainBpeOptions): TokenizerJson & { model: HfBpeModel } {
  const specials = options.specialTokens ?? [];
  const minFreq = options.minFrequency ?? 2;
  const base = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base) {
    throw new Error(`trainBpe: vocabSize ${options.vocabSize} must be an integer >= ${base} (special tokens + 256 bytes)`);
  }
  if (options.vocabSize >= KEY) throw new Error(`trainBpe: vocabSize must be < ${KEY}`);

  // Vocab: special tokens, then the byte alphabet in byte order.
  const tokens: string[] = [...specials, ...byteToChar];
  const idOfChar = new Map<string, number>(byteToChar.map((c, b) => [c, specials.length + b]));

  // 1. Word counts.
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(GPT2_SPLIT)) {
      const w = byteLevelEncode(m[0]);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    words.push(Array.from(w, (ch) => idOfChar.get(ch) as number));
    freq.push(c);
  }

  // 2. Initial pair counts and where each pair occurs.
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number): void => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i] * KEY + w[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[wi]);
      if (sign > 0) {
        let s = where.get(k);
        if (s === undefined) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  type Entry = { key: number; count: number };
  const pairLess = (a: number, b: number): boolean => {
    const la = tokens[Math.floor(a / KEY)], lb = tokens[Math.floor(b / KEY)];
    return la !== lb ? la < lb : tokens[a % KEY] < tokens[b % KEY];
  };
  const heap = new Heap<Entry>((x, y) => x.count > y.count || (x.count === y.count && pairLess(x.key, y.key)));
  for (const [key, count] of pairCount) heap.push({ key, count });

  // 3. Merge loop.
  const merges: [string, string][] = [];
  while (tokens.length < options.vocabSize) {
    const top = heap.pop();
    if (top === undefined) break;
    const current = pairCount.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push({ key: top.key, count: current }); // stale entry: requeue with its true count
      continue;
    }
    if (current < minFreq || current <= 0) break;
    const a = Math.floor(top.key / KEY), b = top.key % KEY;
    const id = tokens.length;
    tokens.push(tokens[a] + tokens[b]);
    merges.push([tokens[a], tokens[b]]);
    const touched = new Set<number>();
    for (const wi of where.get(top.key) ?? []) {
      const w = words[wi];
      let hit = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) { hit = true; break; }
      if (!hit) continue;
      for (let i = 0; i + 1 < w.length; i++) touched.add(w[i] * KEY + w[i + 1]);
      addPairs(wi, -1);
      const merged: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) { merged.push(id); i++; }
        else merged.push(w[i]);
      }
      words[wi] = merged;
      addPairs(wi, 1);
      for (let i = 0; i + 1 < merged.length; i++) touched.add(merged[i] * KEY + merged[i + 1]);
    }
    where.delete(top.key);
    pairCount.delete(top.key);
    for (const k of touched) {
      const c = pairCount.get(k);
      if (c === undefined || k === top.key) continue;
      if (c <= 0) pairCount.delete(k);
      else heap.push({ key: k, count: c });
    }
  }

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  const added_tokens: HfAddedToken[] = specials.map((content, id) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}
