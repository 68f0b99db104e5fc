// Streaming deduplication plan: exact (normalized text) and near-duplicate (MinHash-LSH over word n-grams) in
// passes over a record source, so that only small per-record state stays in memory (a 52-bit key and a few bytes of
// bookkeeping, about 40 bytes a record at the peak), never the texts:
//   pass 1  signatures on worker threads → exact keys, and band hashes spilled to one temporary file per band (each
//           read back alone: 4 bytes a record in memory, not 4 × bands); exact duplicates through an open-addressing
//           table of typed arrays;
//           candidates = records sharing a band hash (found by sorting each band, not by a hash table of buckets),
//           as 8-byte pair keys in a typed array, sorted and made unique;
//   pass 2  word n-gram sets of candidate records, in file order: each pair is confirmed by exact Jaccard when its
//           later record is read, and a set is dropped once its last pair is confirmed (near-duplicates close in the
//           file, the usual case, hold few sets at once) → union-find clusters;
//   pass 3  (only when there are near clusters) each removed record's exact Jaccard to its cluster's kept record,
//           holding only the sets of kept records whose cluster is still open.
// In every cluster the first record is kept. Same seed, same input → same plan (workers only change the speed).

import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** One temporary file per LSH band, appended a batch at a time; read back one band at a time. */
class BandSpill {
  private readonly dir = mkdtempSync(join(tmpdir(), 'nomoat-dedup-'));
  private readonly fds: number[] = [];
  constructor(private readonly bands: number) {
    for (let b = 0; b < bands; b++) this.fds.push(openSync(join(this.dir, `band-${b}`), 'w+'));
  }
  /** Appends a batch's hashes, [n, bands] row-major, as each band's column. */
  append(hashes: Uint32Array, n: number): void {
    const col = new Uint32Array(n);
    for (let b = 0; b < this.bands; b++) {
      for (let i = 0; i < n; i++) col[i] = hashes[i * this.bands + b];
      writeSync(this.fds[b], col);
    }
  }
  /** Band b's hashes of all n records. */
  read(b: number, n: number): Uint32Array {
    const out = new Uint32Array(n);
    const bytes = new Uint8Array(out.buffer);
    for (let at = 0; at < bytes.length; ) {
      const got = readSync(this.fds[b], bytes, at, bytes.length - at, at);
      if (got === 0) throw new Error(`dedup: band file ${b} ends at ${at} of ${bytes.length} bytes`);
      at += got;
    }
    return out;
  }
  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Open-addressing map from non-negative integer keys (< 2⁵³, as doubles) to the first index given each: two typed
 *  arrays at load ≤ 1/2 (12 bytes a slot), not a Map of boxed doubles (≈ 70 bytes an entry). */
class FirstIndex {
  private keys: Float64Array;
  private vals: Int32Array;
  private mask: number;
  constructor(n: number) {
    let cap = 16;
    while (cap < 1.34 * n) cap *= 2; // load ≤ 3/4
    this.keys = new Float64Array(cap).fill(-1);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }
  /** The first index stored for key; stores i when the key is new (and returns i). */
  firstOr(key: number, i: number): number {
    let h = (Math.imul((key % 4294967296) ^ Math.floor(key / 4294967296), 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const k = this.keys[h];
      if (k === -1) {
        this.keys[h] = key;
        this.vals[h] = i;
        return i;
      }
      if (k === key) return this.vals[h];
      h = (h + 1) & this.mask;
    }
  }
}

/** Growable Float64Array of pair keys, grown by half (the pairs are a small share of the plan's memory). */
class PairKeys {
  data = new Float64Array(1 << 12);
  length = 0;
  push(k: number): void {
    if (this.length === this.data.length) {
      const d = new Float64Array(Math.ceil(this.data.length * 1.5));
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = k;
  }
  /** Sorted, each key once. */
  sortedUnique(): Float64Array {
    const d = this.data.subarray(0, this.length).sort();
    let n = 0;
    for (let i = 0; i < d.length; i++) if (i === 0 || d[i] !== d[i - 1]) d[n++] = d[i];
    return d.subarray(0, n);
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
  // band hashes go to one temporary file per band as they come (4 bytes a record each), and each band is read back
  // alone when its candidates are found: memory holds one band, not all of them
  const spill = cfg.exactOnly ? null : new BandSpill(p.bands);
  try {
    return await plan(source, cfg, p, spill);
  } finally {
    spill?.close();
  }
}

async function plan(source: TextSource, cfg: DedupConfig, p: ReturnType<typeof resolveParams>, spill: BandSpill | null): Promise<DedupPlan> {
  const nWorkers = cfg.exactOnly ? 0 : (cfg.workers ?? Math.min(8, availableParallelism()));
  const pool = new SignPool(nWorkers);
  const exactParts: Float64Array[] = []; // each batch's keys as the signer returned them (no growing copy)
  let total = 0;
  const inFlight: Promise<SignResult>[] = [];
  let batch: string[] = [], id = 0;
  const store = (r: SignResult): void => {
    spill?.append(r.bands, r.exact.length);
    exactParts.push(r.exact);
    total += r.exact.length;
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
  // every batch but the last holds BATCH records: record i is in part ⌊i / BATCH⌋
  const exactKey = (i: number): number => exactParts[Math.floor(i / BATCH)][i % BATCH];
  // exact duplicates: first occurrence kept; dupOf[i] = the first record with i's normalized text
  const dupOf = new Int32Array(total);
  {
    const first = new FirstIndex(total);
    for (let i = 0; i < total; i++) dupOf[i] = first.firstOr(exactKey(i), i);
  }
  exactParts.length = 0;
  const uf = new UnionFind(total);
  for (let i = 0; i < total; i++) if (dupOf[i] !== i) uf.union(dupOf[i], i);
  const isDup = (i: number): boolean => dupOf[i] !== i;
  if (cfg.exactOnly) {
    const plan = buildClusters(total, uf, dupOf, () => 1);
    return { ...plan, bands: 0, rows: 0, candidatePairs: 0, confirmedPairs: 0 };
  }

  // candidates: per band, sort the records (exact duplicates left out) by band hash; equal runs are candidates.
  // A pair is one double: later · 2²⁶ + earlier, so that sorting orders pairs by their later record (pass 2's order)
  const nb = p.bands;
  if (total >= 2 ** 26) throw new Error(`near-duplicate detection handles up to ${2 ** 26} records, got ${total}`);
  const live = new Uint32Array(total);
  let nLive = 0;
  for (let i = 0; i < total; i++) if (!isDup(i)) live[nLive++] = i;
  const keys = new PairKeys();
  const addPair = (a: number, b: number): void => keys.push(a < b ? b * 2 ** 26 + a : a * 2 ** 26 + b);
  const hashes = new Uint32Array(nLive);
  for (let b = 0; b < nb; b++) {
    const band = spill!.read(b, total);
    for (let k = 0; k < nLive; k++) hashes[k] = band[live[k]];
    const order = Uint32Array.from({ length: nLive }, (_, k) => k).sort((x, y) => hashes[x] - hashes[y] || x - y);
    for (let s = 0; s < nLive; ) {
      const h = hashes[order[s]];
      let e = s + 1;
      while (e < nLive && hashes[order[e]] === h) e++;
      const m = e - s;
      for (let i = s; i < e; i++) for (let j = i + 1; j < e && (m <= FULL_PAIRS_RUN || i < s + CAPPED_PARTNERS); j++) addPair(live[order[i]], live[order[j]]);
      s = e;
    }
  }
  spill!.close(); // (again in planDedup's finally: closing twice is harmless)
  const pairs = keys.sortedUnique(); // by later record, then earlier
  // pass 2: in file order, each record that is in a pair gets its shingle set; the pairs it closes (it is their later
  // record) are confirmed at once; a set is held while pairs that will close later still need it
  const later = (k: number): number => Math.floor(k / 2 ** 26), earlier = (k: number): number => k % 2 ** 26;
  const open = new Uint32Array(total); // pairs still to confirm in which the record is the earlier one
  const closes = new Uint8Array(total); // the record is the later one of some pair
  for (const k of pairs) {
    open[earlier(k)]++;
    closes[later(k)] = 1;
  }
  const held = new Map<number, Uint32Array>();
  let confirmed = 0, at = 0;
  if (pairs.length > 0) {
    await source((text, i) => {
      if (open[i] === 0 && closes[i] === 0) return;
      const set = wordShingles(text, p.ngram);
      for (; at < pairs.length && later(pairs[at]) === i; at++) {
        const a = earlier(pairs[at]);
        if (jaccardSorted(held.get(a)!, set) >= p.threshold) {
          uf.union(a, i);
          confirmed++;
        }
        if (--open[a] === 0) held.delete(a);
      }
      if (open[i] > 0) held.set(i, set);
    });
  }
  held.clear();
  // pass 3 (near clusters only): each removed record's Jaccard to its cluster's kept record; an exact duplicate
  // compares as the record it copies
  const jaccardTo = new Map<number, number>(); // a cluster's distinct text → its Jaccard to the kept record's
  const rootOf = (i: number): number => uf.find(i); // the smallest index of the set: its kept record
  // distinct texts of a cluster other than the kept one's (the other members copy one of them) → the kept record
  const need = new Map<number, number>();
  const left = new Map<number, number>(); // kept record → its distinct texts still to read
  for (let i = 0; i < total; i++) {
    const r = rootOf(i);
    if (dupOf[i] === i && i !== r) {
      need.set(i, r);
      left.set(r, (left.get(r) ?? 0) + 1);
    }
  }
  if (need.size > 0) {
    const rootSets = new Map<number, Uint32Array>();
    await source((text, i) => {
      if (left.has(i)) rootSets.set(i, wordShingles(text, p.ngram));
      const r = need.get(i);
      if (r === undefined) return;
      jaccardTo.set(i, Math.round(jaccardSorted(rootSets.get(r)!, wordShingles(text, p.ngram)) * 1e4) / 1e4);
      const n = left.get(r)! - 1;
      if (n === 0) rootSets.delete(r);
      left.set(r, n);
    });
  }
  const jac = (root: number, i: number): number => (dupOf[root] === dupOf[i] ? 1 : (jaccardTo.get(dupOf[i]) ?? 1));
  const plan = buildClusters(total, uf, dupOf, jac);
  return { ...plan, bands: p.bands, rows: p.rows, candidatePairs: pairs.length, confirmedPairs: confirmed };
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
