// Token sampling from one row of logits: repetition penalty, temperature, top-k, top-p, min-p, greedy at T=0.
// The order follows llama.cpp's default sampler chain (penalties → top-k → top-p → min-p → temperature → draw).

import { Rng } from '../engine/rng.js';

export interface SamplingConfig {
  temperature: number; // 0 = greedy (default 0.8 as llama.cpp)
  topK: number; // 0 = off (default 40)
  topP: number; // 1 = off (default 0.95)
  minP: number; // 0 = off (default 0.05)
  repeatPenalty: number; // 1 = off (default 1.0); divides positive logits / multiplies negative ones
  repeatLastN: number; // how many recent tokens the penalty looks at (default 64)
  seed: number; // default 42
}

export const SAMPLING_DEFAULTS: SamplingConfig = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, seed: 42 };

export const GREEDY: SamplingConfig = { ...SAMPLING_DEFAULTS, temperature: 0 };

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** The penalized logits: each distinct token of the last repeatLastN divided (positive) or multiplied (negative) by repeatPenalty. */
function penalize(logits: ArrayLike<number>, history: readonly number[], c: SamplingConfig): Float64Array {
  const V = logits.length;
  const l = new Float64Array(V);
  l.set(logits);
  if (c.repeatPenalty !== 1) {
    const seen = new Set(history.slice(-c.repeatLastN));
    for (const t of seen) if (t >= 0 && t < V) l[t] = l[t] > 0 ? l[t] / c.repeatPenalty : l[t] * c.repeatPenalty;
  }
  return l;
}

// Candidates are ranked as a stable sort by logit would rank them: the higher logit first, the lower id among equal
// logits. Only the candidates that can survive are ordered: top-k keeps a bounded heap of k, top-p pops a heap of the
// vocabulary (built in O(V)) until the nucleus is complete, min-p drops what it would cut before any ordering. The
// result is the same list in the same order as a sort of the whole vocabulary (the naive reference is in
// sampling-reference.test.ts); only top-p's normalizer is summed in id order rather than rank order, a last-bit difference.

/** Whether id a ranks before id b: the higher logit, or the lower id among equal ones (NaN − NaN ties: by id). */
function ranksBefore(l: Float64Array, a: number, b: number): boolean {
  return l[a] > l[b] || (!(l[a] < l[b]) && a < b);
}

/** The ids of the k highest-ranked logits, best first: a heap of the k best so far (the worst of them on top). */
function topKIds(l: Float64Array, k: number): number[] {
  const h = new Int32Array(k);
  let n = 0;
  const worse = (a: number, b: number): boolean => ranksBefore(l, b, a);
  for (let id = 0; id < l.length; id++) {
    if (n < k) {
      let i = n++; // sift up
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(id, h[p])) break;
        h[i] = h[p];
        i = p;
      }
      h[i] = id;
    } else if (ranksBefore(l, id, h[0])) {
      siftDown(h, k, 0, id, worse);
    }
  }
  return Array.from(h).sort((a, b) => (ranksBefore(l, a, b) ? -1 : 1));
}

/** Places `id` at slot i of heap h[0..n) and sifts it down; `top(a, b)`: a belongs nearer the root than b. */
function siftDown(h: Int32Array, n: number, i: number, id: number, top: (a: number, b: number) => boolean): void {
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && top(h[c + 1], h[c])) c++;
    if (!top(h[c], id)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = id;
}

/** The given ids best first, one at a time: a binary heap built in O(n), each pop O(log n). */
class Ranked {
  private n: number;
  private readonly top: (a: number, b: number) => boolean;
  constructor(l: Float64Array, private readonly h: Int32Array) {
    this.n = h.length;
    this.top = (a, b) => ranksBefore(l, a, b);
    for (let i = (this.n >> 1) - 1; i >= 0; i--) siftDown(h, this.n, i, h[i], this.top);
  }
  get size(): number {
    return this.n;
  }
  pop(): number {
    const best = this.h[0];
    if (--this.n > 0) siftDown(this.h, this.n, 0, this.h[this.n], this.top);
    return best;
  }
}

function maxOf(l: Float64Array): number {
  let max = -Infinity;
  for (let i = 0; i < l.length; i++) if (l[i] > max) max = l[i];
  return max;
}

/** Survivors of top-k → top-p → min-p over penalized logits l, most likely first, with unnormalized weights at the temperature (> 0). */
function candidates(l: Float64Array, c: SamplingConfig): { ids: number[]; weights: number[] } {
  const V = l.length;
  const max = maxOf(l);
  let idx: number[] = [];
  let probs: number[] = []; // exp(l - max) of idx: the softmax at T = 1, unnormalized
  if (c.topK > 0 && c.topK < V) {
    // top-k: the k best in order; top-p sees them renormalized
    idx = topKIds(l, c.topK);
    probs = idx.map((i) => Math.exp(l[i] - max));
    const total = probs.reduce((s, p) => s + p, 0);
    if (c.topP < 1) {
      // the smallest prefix whose probability (softmax over the top-k survivors, T = 1) reaches topP
      let cum = 0;
      let keep = idx.length;
      for (let i = 0; i < idx.length; i++) {
        cum += probs[i] / total;
        if (cum >= c.topP) {
          keep = i + 1;
          break;
        }
      }
      idx = idx.slice(0, keep);
      probs = probs.slice(0, keep);
    }
  } else {
    // the whole vocabulary: softmax weights first, then only the tokens min-p cannot cut are ranked (min-p's bound is
    // minP × the top token's weight, 1); top-p stops popping once the nucleus reaches p
    const e = new Float64Array(V);
    let total = 0;
    for (let i = 0; i < V; i++) total += e[i] = Math.exp(l[i] - max);
    const floor = Math.min(c.minP, 1); // ≤ 1, so the top token always stays in the pool
    const pool = new Int32Array(V);
    let n = 0;
    for (let i = 0; i < V; i++) if (!(e[i] < floor)) pool[n++] = i;
    const ranked = new Ranked(l, pool.subarray(0, n));
    let cum = 0;
    while (ranked.size > 0) {
      const id = ranked.pop();
      idx.push(id);
      probs.push(e[id]);
      if (c.topP < 1) {
        // the smallest prefix whose probability (softmax over the vocabulary, T = 1) reaches topP
        cum += e[id] / total;
        if (cum >= c.topP) break;
      }
    }
  }
  if (c.minP > 0) {
    // tokens at least minP × the top token's probability (relative, so no renormalization needed)
    const keep = probs.filter((p) => p >= c.minP * probs[0]).length;
    idx = idx.slice(0, Math.max(1, keep));
  }
  // Temperature on the survivors.
  return { ids: idx, weights: idx.map((i) => Math.exp((l[i] - max) / c.temperature)) };
}

/** With no filter on, a draw walks the whole vocabulary best first: rank lazily, stopping at the drawn token. */
function drawUnfiltered(l: Float64Array, temperature: number, u: number): number {
  const V = l.length;
  const max = maxOf(l);
  const w = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += w[i] = Math.exp((l[i] - max) / temperature);
  const all = new Int32Array(V);
  for (let i = 0; i < V; i++) all[i] = i;
  const ranked = new Ranked(l, all);
  let r = u * total;
  let id = 0;
  while (ranked.size > 0) {
    id = ranked.pop();
    r -= w[id];
    if (r <= 0) return id;
  }
  return id; // rounding left r > 0: the last-ranked token, as a walk over the sorted list ends
}

/**
 * The distribution a Sampler draws from: candidate ids (most likely first) and their probabilities (sum 1) after
 * penalties → top-k → top-p → min-p → temperature. At temperature 0 it is the (penalized) argmax with probability 1.
 */
export function filteredDistribution(logits: ArrayLike<number>, history: readonly number[], config: SamplingConfig): { ids: number[]; probs: number[] } {
  const l = penalize(logits, history, config);
  if (config.temperature <= 0) return { ids: [argmax(l)], probs: [1] };
  const { ids, weights } = candidates(l, config);
  const total = weights.reduce((s, w) => s + w, 0);
  return { ids, probs: weights.map((w) => w / total) };
}

export class Sampler {
  private readonly rng: Rng;
  constructor(readonly config: SamplingConfig) {
    this.rng = new Rng(config.seed);
  }

  /** Picks the next token from logits[V] given the tokens so far (for the repetition penalty). */
  sample(logits: ArrayLike<number>, history: readonly number[]): number {
    const c = this.config;
    if (c.temperature <= 0 && c.repeatPenalty === 1) return argmax(logits); // greedy: no copy (V is 49k-128k)
    const l = penalize(logits, history, c);
    if (c.temperature <= 0) return argmax(l);
    if (!(c.topK > 0 && c.topK < l.length) && c.topP >= 1 && c.minP <= 0) return drawUnfiltered(l, c.temperature, this.rng.next());
    const { ids, weights } = candidates(l, c);
    const total = weights.reduce((s, p) => s + p, 0);
    let r = this.rng.next() * total;
    for (let i = 0; i < ids.length; i++) {
      r -= weights[i];
      if (r <= 0) return ids[i];
    }
    return ids[ids.length - 1];
  }
}
