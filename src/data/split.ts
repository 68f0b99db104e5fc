// Seeded train/eval split: a Fisher–Yates shuffle of indices picks the eval set; both parts keep input order.

import { Rng } from '../engine/rng.js';

export interface SplitOptions {
  /** fraction of items for evaluation, in [0, 1] (default 0.1); ignored when evalCount is given */
  evalFraction?: number;
  /** exact number of eval items */
  evalCount?: number;
  /** shuffle seed (default 0): the same seed and input give the same split */
  seed?: number;
}

export interface Split<T> {
  train: T[];
  eval: T[];
  /** input indices of the eval items, ascending */
  evalIndices: number[];
}

export function trainEvalSplit<T>(items: readonly T[], opts: SplitOptions = {}): Split<T> {
  const n = items.length;
  const frac = opts.evalFraction ?? 0.1;
  if (opts.evalCount === undefined && !(frac >= 0 && frac <= 1)) throw new Error(`evalFraction must be in [0, 1], got ${frac}`);
  const k = opts.evalCount ?? Math.round(frac * n);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`evalCount must be an integer in [0, ${n}], got ${k}`);
  const rng = new Rng(opts.seed ?? 0);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const evalIndices = idx.slice(0, k).sort((a, b) => a - b);
  const isEval = new Uint8Array(n);
  for (const i of evalIndices) isEval[i] = 1;
  return {
    train: items.filter((_, i) => !isEval[i]),
    eval: evalIndices.map((i) => items[i]),
    evalIndices,
  };
}
