// MinHash-LSH pieces for near-duplicate detection over word n-grams: shingling, signatures, band hashes, the
// banding parameters datasketch derives from a threshold, exact Jaccard on sorted shingle sets, and union-find.
// Pure functions (no I/O), shared by the signature workers and the dedup pipeline (near-dedup.ts).

import { createHash } from 'node:crypto';
import { normalizeText } from './dedup.js';

/** Words of normalized text (NFKC, lower case): runs of letters, digits and marks; punctuation is dropped. */
export function words(text: string): string[] {
  return normalizeText(text).match(/[\p{L}\p{N}\p{M}_']+/gu) ?? [];
}

/** 32-bit FNV-1a of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A 32-bit finalizer (murmur3 fmix32): spreads the bits of a combined hash. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The sorted distinct hashes of the word n-grams of text. A text of fewer than n words is one shingle (all of
 *  it), so short records still compare; an empty text has no shingles. */
export function wordShingles(text: string, n = 5): Uint32Array {
  const w = words(text).map(fnv1a);
  const out = new Set<number>();
  const count = Math.max(w.length - n + 1, w.length > 0 ? 1 : 0);
  for (let i = 0; i < count; i++) {
    let h = 0x9747b28c ^ n;
    for (let k = i; k < Math.min(i + n, w.length); k++) h = fmix((h ^ w[k]) + k - i);
    out.add(h);
  }
  return Uint32Array.from(out).sort();
}

/** Exact Jaccard |A ∩ B| / |A ∪ B| of two sorted distinct hash sets (1 for two empty sets). */
export function jaccardSorted(a: Uint32Array, b: Uint32Array): number {
  let i = 0, j = 0, inter = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      inter++;
      i++;
      j++;
    } else if (a[i] < b[j]) i++;
    else j++;
  }
  const union = a.length + b.length - inter;
  return union === 0 ? 1 : inter / union;
}

/** numPerm seeded hash functions h_j(x) = fmix((x ^ b_j) · a_j), a_j odd: a cheap min-wise family over hashes. */
export function permutations(numPerm: number, seed: number): { a: Uint32Array; b: Uint32Array } {
  const a = new Uint32Array(numPerm), b = new Uint32Array(numPerm);
  let s = fmix(seed ^ 0x5bd1e995) || 1;
  const next = (): number => (s = fmix(s + 0x9e3779b9));
  for (let j = 0; j < numPerm; j++) {
    a[j] = next() | 1;
    b[j] = next();
  }
  return { a, b };
}

/** MinHash signature of a shingle set: per hash function, the minimum over the set (all-ones for an empty set). */
export function minhash(shingles: Uint32Array, perm: { a: Uint32Array; b: Uint32Array }): Uint32Array {
  const k = perm.a.length;
  const sig = new Uint32Array(k).fill(0xffffffff);
  for (let i = 0; i < shingles.length; i++) {
    const x = shingles[i];
    for (let j = 0; j < k; j++) {
      const h = fmix(Math.imul(x ^ perm.b[j], perm.a[j]));
      if (h < sig[j]) sig[j] = h;
    }
  }
  return sig;
}

/** One 32-bit hash per LSH band (rows consecutive signature slots each): records sharing a band hash are candidates. */
export function bandHashes(sig: Uint32Array, bands: number, rows: number): Uint32Array {
  const out = new Uint32Array(bands);
  for (let b = 0; b < bands; b++) {
    let h = 0x3c6ef372 ^ b;
    for (let r = 0; r < rows; r++) h = fmix(h ^ sig[b * rows + r]) + r;
    out[b] = h >>> 0;
  }
  return out;
}

/** The key exact dedup compares: 52 bits of SHA-1 of the normalized text (a collision needs ~10^7·10^7 records). */
export function exactKey(text: string): number {
  const d = createHash('sha1').update(normalizeText(text)).digest();
  return d.readUInt32LE(0) * 2 ** 20 + (d.readUInt32LE(4) >>> 12);
}

/** ∫ f over [a, b] by composite Simpson's rule (the integrands are smooth polynomials in s). */
function integrate(f: (s: number) => number, a: number, b: number, n = 200): number {
  const h = (b - a) / n;
  let sum = f(a) + f(b);
  for (let i = 1; i < n; i++) sum += f(a + i * h) * (i % 2 === 1 ? 4 : 2);
  return (sum * h) / 3;
}

/** Probability mass of pairs below the threshold that still collide in some band (false positives). */
export function falsePositiveProbability(threshold: number, b: number, r: number): number {
  return integrate((s) => 1 - (1 - s ** r) ** b, 0, threshold);
}

/** Probability mass of pairs at or above the threshold that collide in no band (false negatives). */
export function falseNegativeProbability(threshold: number, b: number, r: number): number {
  return integrate((s) => 1 - (1 - (1 - s ** r) ** b), threshold, 1);
}

/** datasketch's _optimal_param: the (bands, rows), b·r ≤ numPerm, minimising the weighted false positive and false
 *  negative probability integrals (weights 0.5 / 0.5 by default). */
export function optimalParams(threshold: number, numPerm: number, fpWeight = 0.5, fnWeight = 0.5): { bands: number; rows: number } {
  if (!(threshold > 0 && threshold < 1)) throw new Error(`threshold must be in (0, 1), got ${threshold}`);
  if (!Number.isInteger(numPerm) || numPerm < 2) throw new Error(`numPerm must be an integer ≥ 2, got ${numPerm}`);
  let best = Infinity, opt = { bands: 1, rows: 1 };
  for (let b = 1; b <= numPerm; b++) {
    for (let r = 1; r <= Math.floor(numPerm / b); r++) {
      const err = fpWeight * falsePositiveProbability(threshold, b, r) + fnWeight * falseNegativeProbability(threshold, b, r);
      if (err < best) {
        best = err;
        opt = { bands: b, rows: r };
      }
    }
  }
  return opt;
}

/** Union-find over 0..n-1 with path halving; union keeps the smaller index as root (the record kept). */
export class UnionFind {
  private readonly parent: Uint32Array;
  constructor(n: number) {
    this.parent = Uint32Array.from({ length: n }, (_, i) => i);
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }
  union(a: number, b: number): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra === rb) return;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
  }
}
