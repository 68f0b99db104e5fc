// Deduplication of training examples: exact (after whitespace/case normalization) and near-duplicate (MinHash over
// character shingles, LSH banding to find candidates, exact Jaccard to confirm). The first occurrence is kept.

import { hash32 } from '../engine/rng.js';
import type { Conversation } from './types.js';

/** NFKC, lower case, runs of whitespace collapsed to one space, trimmed. */
export function normalizeText(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}

/** The text a conversation is compared by: role-tagged contents, one line each. */
export function conversationText(c: Conversation): string {
  return c.messages.map((m) => `${m.role}: ${m.content}`).join('\n');
}

export interface DedupResult<T> {
  kept: T[];
  /** removed items: their index in the input and the index of the kept item they duplicate */
  removed: { index: number; duplicateOf: number }[];
}

/** Drops items whose normalized text equals an earlier item's. */
export function dedupExact<T>(items: readonly T[], text: (t: T) => string): DedupResult<T> {
  const seen = new Map<string, number>();
  const kept: T[] = [];
  const removed: { index: number; duplicateOf: number }[] = [];
  items.forEach((item, index) => {
    const key = normalizeText(text(item));
    const first = seen.get(key);
    if (first !== undefined) removed.push({ index, duplicateOf: first });
    else {
      seen.set(key, index);
      kept.push(item);
    }
  });
  return { kept, removed };
}

/** FNV-1a over UTF-16 code units: a cheap, stable 32-bit string hash for shingles. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The set of hashed k-character shingles of normalized text (text shorter than k is one shingle). */
export function shingles(text: string, k = 5): Set<number> {
  const t = normalizeText(text);
  const out = new Set<number>();
  if (t.length <= k) {
    out.add(fnv1a(t));
    return out;
  }
  for (let i = 0; i + k <= t.length; i++) out.add(fnv1a(t.slice(i, i + k)));
  return out;
}

/** MinHash signature: for each of numPerm seeded hash functions, the minimum over the shingle set. */
export function minhashSignature(set: ReadonlySet<number>, numPerm = 128): Uint32Array {
  const sig = new Uint32Array(numPerm).fill(0xffffffff);
  for (const x of set) {
    for (let j = 0; j < numPerm; j++) {
      const h = hash32((x ^ Math.imul(j + 1, 0x9e3779b9)) >>> 0);
      if (h < sig[j]) sig[j] = h;
    }
  }
  return sig;
}

/** Fraction of equal signature slots: an unbiased estimate of the Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** Exact Jaccard similarity |A ∩ B| / |A ∪ B| of two shingle sets. */
export function jaccard(a: ReadonlySet<number>, b: ReadonlySet<number>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 1 : inter / union;
}

export interface NearDedupOptions {
  /** Jaccard similarity of shingle sets at or above which two items are duplicates (default 0.8) */
  threshold?: number;
  /** shingle length in characters (default 5) */
  shingleSize?: number;
  /** MinHash functions (default 128); split into `bands` LSH bands of numPerm/bands rows */
  numPerm?: number;
  /** LSH bands (default 16: with 128 functions, pairs above ~0.7 similarity almost surely become candidates) */
  bands?: number;
}

/** Drops items whose shingle-set Jaccard similarity with an earlier kept item is ≥ threshold. Candidates come
 *  from MinHash LSH (items sharing a whole band), and each candidate pair is confirmed with the exact Jaccard. */
export function dedupNear<T>(items: readonly T[], text: (t: T) => string, opts: NearDedupOptions = {}): DedupResult<T> {
  const threshold = opts.threshold ?? 0.8, k = opts.shingleSize ?? 5, numPerm = opts.numPerm ?? 128, bands = opts.bands ?? 16;
  if (numPerm % bands !== 0) throw new Error(`numPerm (${numPerm}) must be a multiple of bands (${bands})`);
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`threshold must be in (0, 1], got ${threshold}`);
  const rows = numPerm / bands;
  const buckets = new Map<string, number[]>(); // band key → indices of kept items
  const sets: Set<number>[] = [];
  const kept: T[] = [];
  const removed: { index: number; duplicateOf: number }[] = [];
  items.forEach((item, index) => {
    const set = shingles(text(item), k);
    sets[index] = set;
    const sig = minhashSignature(set, numPerm);
    const keys: string[] = [];
    for (let b = 0; b < bands; b++) keys.push(`${b}:${Array.from(sig.subarray(b * rows, (b + 1) * rows)).join(',')}`);
    const candidates = new Set<number>();
    for (const key of keys) for (const c of buckets.get(key) ?? []) candidates.add(c);
    let dup = -1;
    for (const c of [...candidates].sort((x, y) => x - y)) {
      if (jaccard(set, sets[c]) >= threshold) {
        dup = c;
        break;
      }
    }
    if (dup >= 0) {
      removed.push({ index, duplicateOf: dup });
      return;
    }
    kept.push(item);
    for (const key of keys) {
      const list = buckets.get(key);
      if (list) list.push(index);
      else buckets.set(key, [index]);
    }
  });
  return { kept, removed };
}
