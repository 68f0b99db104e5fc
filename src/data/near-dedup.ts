// Streaming deduplication plan: exact (normalized text) and near-duplicate (MinHash-LSH over word n-grams) in
// two passes over a record source, so that only small per-record state stays in memory (a 52-bit key and one
// 32-bit hash per band), never the texts:
//   pass 1  signatures on worker threads → exact keys and band hashes;
//           candidates = records sharing a band hash (found by sorting each band, not by a hash table of buckets);
//   pass 2  word n-gram sets of the candidate records only → exact Jaccard confirms each pair → union-find clusters.
// In every cluster the first record is kept. Same seed, same input → same plan (workers only change the speed).

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { jaccardSorted, optimalParams, UnionFind, wordShingles } from './lsh.js';
import { signBatch, type SignParams, type SignRequest, type SignResult } from './near-dedup-sign.js';

export interface DedupConfig {
  /** words per shingle (default 5) */
  ngram?: number;
  /** MinHash functions (default 128) */
  numPerm?: number;
  /** Jaccard similarity at or above which two records are near-duplicates (default 0.8) */
  threshold?: number;
  /** weights of the false positive and false negative probabilities when bands and rows are derived (datasketch's
   *  `weights`). Default [0.1, 0.9], not datasketch's [0.5, 0.5]: every candidate is confirmed by exact Jaccard, so
   *  a false positive costs one comparison while a false negative keeps a duplicate. At threshold 0.8 and 128
   *  functions this gives 14 bands × 9 rows (a pair at J = 0.8 becomes a candidate with p ≈ 0.87, at 0.85 with
   *  p ≈ 0.97) instead of 9 × 13 (p ≈ 0.40 and 0.69). */
  weights?: readonly [number, number];
  /** LSH bands and rows; default: datasketch's optimum for threshold, numPerm and weights (optimalParams) */
  bands?: number;
  rows?: number;
  /** hash seed (default 1) */
  seed?: number;
  /** worker threads for signatures (default: cores, at most 8; 0 = compute inline) */
  workers?: number;
  /** exact duplicates only: skip MinHash */
  exactOnly?: boolean;
}

export interface DedupCluster {
  kind: 'exact' | 'near';
  /** index of the kept record (the first of the cluster) */
  kept: number;
  /** removed records with their exact Jaccard similarity to the kept one */
  removed: { index: number; jaccard: number }[];
}

export interface DedupPlan {
  total: number;
  /** removed[i] = 1 when record i is a duplicate */
  removed: Uint8Array;
  clusters: DedupCluster[];
  bands: number;
  rows: number;
  /** candidate pairs from LSH, and how many exact Jaccard confirmed */
  candidatePairs: number;
  confirmedPairs: number;
}

/** Visits every record's text in order; called once per pass (it must yield the same records each time). */
export type TextSource = (visit: (text: string, index: number) => void | Promise<void>) => Promise<void>;

export const DEFAULT_LSH_WEIGHTS: readonly [number, number] = [0.1, 0.9];
const BATCH = 1024;
/** Records sharing a band with more than this many others are paired with the first few only (bounded work). */
const FULL_PAIRS_RUN = 64, CAPPED_PARTNERS = 8;

/** A small pool: batches go round-robin to workers; results come back as promises. */
class SignPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: SignResult) => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL('./minhash-worker.js', import.meta.url));
      w.on('message', (r: SignResult) => {
        this.waiting.get(r.id)?.resolve(r);
        this.waiting.delete(r.id);
      });
      w.on('error', (e) => {
        for (const [, p] of this.waiting) p.reject(e);
        this.waiting.clear();
      });
      this.workers.push(w);
    }
  }

  sign(req: SignRequest): Promise<SignResult> {
    if (this.workers.length === 0) return Promise.resolve(signBatch(req));
    return new Promise((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      this.workers[this.next++ % this.workers.length].postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Growable typed array. */
class Grow<T extends Uint32Array | Float64Array> {
  length = 0;
  constructor(public data: T, private readonly make: (n: number) => T) {}
  push(xs: T): void {
    if (this.length + xs.length > this.data.length) {
      const d = this.make(Math.max(this.data.length * 2, this.length + xs.length));
      d.set(this.data.subarray(0, this.length));
      this.data = d;
    }
    this.data.set(xs, this.length);
    this.length += xs.length;
  }
}

export function resolveParams(cfg: DedupConfig): SignParams & { threshold: number } {
  const ngram = cfg.ngram ?? 5, numPerm = cfg.numPerm ?? 128, threshold = cfg.threshold ?? 0.8, seed = cfg.seed ?? 1;
  if (!Number.isInteger(ngram) || ngram < 1) throw new Error(`ngram must be a positive integer, got ${ngram}`);
  if (!(threshold > 0 && threshold < 1)) throw new Error(`threshold must be in (0, 1), got ${threshold}`);
  let { bands, rows } = cfg;
  const [fpw, fnw] = cfg.weights ?? DEFAULT_LSH_WEIGHTS;
  if (!(fpw >= 0 && fnw >= 0 && fpw + fnw > 0)) throw new Error(`LSH weights must be non-negative and not both 0, got ${fpw}, ${fnw}`);
  if (bands === undefined || rows === undefined) ({ bands, rows } = optimalParams(threshold, numPerm, fpw, fnw));
  if (!Number.isInteger(bands) || !Number.isInteger(rows) || bands < 1 || rows < 1 || bands * rows > numPerm) throw new Error(`bands × rows must be ≤ numPerm (${numPerm}), got ${bands} × ${rows}`);
  return { ngram, numPerm, threshold, seed, bands, rows };
}

export async function planDedup(source: TextSource, cfg: DedupConfig = {}): Promise<DedupPlan> {
  const p = resolveParams(cfg);
  const nWorkers = cfg.exactOnly ? 0 : (cfg.workers ?? Math.min(8, availableParallelism()));
  const pool = new SignPool(nWorkers);
  const bandsOut = new Grow<Uint32Array>(new Uint32Array(1 << 16), (n) => new Uint32Array(n));
  const exactOut = new Grow<Float64Array>(new Float64Array(1 << 12), (n) => new Float64Array(n));
  const inFlight: Promise<SignResult>[] = [];
  let batch: string[] = [], id = 0;
  const store = (r: SignResult): void => {
    bandsOut.push(r.bands);
    exactOut.push(r.exact);
  };
  const dispatch = async (): Promise<void> => {
    const texts = batch;
    batch = [];
    // exact-only: keys are cheap, no MinHash (bands = 0)
    inFlight.push(pool.sign({ ...p, bands: cfg.exactOnly ? 0 : p.bands, id: id++, texts }));
    while (inFlight.length > Math.max(2, 2 * nWorkers)) store(await inFlight.shift()!);
  };
  // pass 1: signatures
  try {
    await source(async (text) => {
      batch.push(text);
      if (batch.length >= BATCH) await dispatch();
    });
    if (batch.length > 0) await dispatch();
    for (const f of inFlight) store(await f);
  } finally {
    await pool.close();
  }
  const total = exactOut.length;
  const exact = exactOut.data.subarray(0, total);
  // exact duplicates: first occurrence kept; dupOf[i] = the first record with i's normalized text
  const first = new Map<number, number>();
  const dupOf = Int32Array.from({ length: total }, (_, i) => i);
  for (let i = 0; i < total; i++) {
    const f = first.get(exact[i]);
    if (f === undefined) first.set(exact[i], i);
    else dupOf[i] = f;
  }
  first.clear();
  const uf = new UnionFind(total);
  for (let i = 0; i < total; i++) if (dupOf[i] !== i) uf.union(dupOf[i], i);
  const isDup = (i: number): boolean => dupOf[i] !== i;
  if (cfg.exactOnly) {
    const plan = buildClusters(total, uf, dupOf, () => 1);
    return { ...plan, bands: 0, rows: 0, candidatePairs: 0, confirmedPairs: 0 };
  }

  // candidates: per band, sort the records (exact duplicates left out) by band hash; equal runs are candidates
  const bandHash = bandsOut.data;
  const live = Uint32Array.from({ length: total }, (_, i) => i).filter((i) => !isDup(i));
  const pairs = new Set<number>();
  const addPair = (a: number, b: number): void => void pairs.add(a < b ? a * 2 ** 26 + b : b * 2 ** 26 + a);
  if (total >= 2 ** 26) throw new Error(`near-duplicate detection handles up to ${2 ** 26} records, got ${total}`);
  for (let b = 0; b < p.bands; b++) {
    const order = live.slice().sort((x, y) => bandHash[x * p.bands + b] - bandHash[y * p.bands + b] || x - y);
    for (let s = 0; s < order.length; ) {
      const h = bandHash[order[s] * p.bands + b];
      let e = s + 1;
      while (e < order.length && bandHash[order[e] * p.bands + b] === h) e++;
      const m = e - s;
      for (let i = s; i < e; i++) for (let j = i + 1; j < e && (m <= FULL_PAIRS_RUN || i < s + CAPPED_PARTNERS); j++) addPair(order[i], order[j]);
      s = e;
    }
  }
  // pass 2: shingle sets of candidate records only, then exact Jaccard
  const needed = new Set<number>();
  for (const k of pairs) {
    needed.add(Math.floor(k / 2 ** 26));
    needed.add(k % 2 ** 26);
  }
  const sets = new Map<number, Uint32Array>();
  if (needed.size > 0) await source((text, i) => void (needed.has(i) && sets.set(i, wordShingles(text, p.ngram))));
  let confirmed = 0;
  for (const k of [...pairs].sort((x, y) => x - y)) {
    const a = Math.floor(k / 2 ** 26), b = k % 2 ** 26;
    if (jaccardSorted(sets.get(a)!, sets.get(b)!) >= p.threshold) {
      uf.union(a, b);
      confirmed++;
    }
  }
  // Jaccard of a removed record to its cluster's kept one: an exact duplicate compares as the record it copies
  const jac = (root: number, i: number): number => {
    const a = sets.get(dupOf[root]), b = sets.get(dupOf[i]);
    return dupOf[root] === dupOf[i] || a === undefined || b === undefined ? 1 : Math.round(jaccardSorted(a, b) * 1e4) / 1e4;
  };
  const plan = buildClusters(total, uf, dupOf, jac);
  return { ...plan, bands: p.bands, rows: p.rows, candidatePairs: pairs.size, confirmedPairs: confirmed };
}

/** Clusters from the union-find: the smallest index of each set is kept, the others removed; a cluster whose
 *  members all copy the kept record's normalized text is 'exact', any other 'near'. */
function buildClusters(total: number, uf: UnionFind, dupOf: Int32Array, jaccard: (root: number, i: number) => number): { total: number; removed: Uint8Array; clusters: DedupCluster[] } {
  const removed = new Uint8Array(total);
  const byRoot = new Map<number, DedupCluster>();
  for (let i = 0; i < total; i++) {
    const root = uf.find(i);
    if (root === i) continue;
    let c = byRoot.get(root);
    if (c === undefined) byRoot.set(root, (c = { kind: 'exact', kept: root, removed: [] }));
    c.removed.push({ index: i, jaccard: jaccard(root, i) });
    if (dupOf[i] !== dupOf[root]) c.kind = 'near';
    removed[i] = 1;
  }
  return { total, removed, clusters: [...byRoot.values()].sort((a, b) => a.kept - b.kept) };
}
