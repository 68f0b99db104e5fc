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

/** Survivors of top-k → top-p → min-p over penalized logits l, most likely first, with unnormalized weights at the temperature (> 0). */
function candidates(l: Float64Array, c: SamplingConfig): { ids: number[]; weights: number[] } {
  // Candidates sorted by logit, truncated by top-k.
  let idx = Array.from({ length: l.length }, (_, i) => i).sort((a, b) => l[b] - l[a]);
  if (c.topK > 0) idx = idx.slice(0, c.topK);
  const max = l[idx[0]];
  let probs = idx.map((i) => Math.exp(l[i] - max));
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
  if (c.minP > 0) {
    // tokens at least minP × the top token's probability (relative, so no renormalization needed)
    const keep = probs.filter((p) => p >= c.minP * probs[0]).length;
    idx = idx.slice(0, Math.max(1, keep));
  }
  // Temperature on the survivors.
  return { ids: idx, weights: idx.map((i) => Math.exp((l[i] - max) / c.temperature)) };
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
