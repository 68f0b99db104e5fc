// The sampler's partial selection (bounded top-k heap, lazily ranked nucleus, min-p cut before ranking) against the
// straightforward reference it replaced: sort the whole vocabulary, then top-k → top-p → min-p → temperature. On random
// logits (with ties and -Infinity), for every combination of the filters, both must give the same candidates in the
// same order with the same probabilities, and draw the same token from the same random state.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../engine/rng.js';
import { filteredDistribution, Sampler, type SamplingConfig } from './sampling.js';

/** The naive reference: every id sorted by logit (stable, so ties by id), then each filter over the sorted list. */
function referenceCandidates(logits: ArrayLike<number>, history: readonly number[], c: SamplingConfig): { ids: number[]; weights: number[] } {
  const V = logits.length;
  const l = new Float64Array(V);
  l.set(logits);
  if (c.repeatPenalty !== 1) {
    for (const t of new Set(history.slice(-c.repeatLastN))) if (t >= 0 && t < V) l[t] = l[t] > 0 ? l[t] / c.repeatPenalty : l[t] * c.repeatPenalty;
  }
  let idx = Array.from({ length: V }, (_, i) => i).sort((a, b) => l[b] - l[a]);
  if (c.temperature <= 0) return { ids: [idx[0]], weights: [1] };
  if (c.topK > 0) idx = idx.slice(0, c.topK);
  const max = l[idx[0]];
  let probs = idx.map((i) => Math.exp(l[i] - max));
  const total = probs.reduce((s, p) => s + p, 0);
  if (c.topP < 1) {
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
  if (c.minP > 0) idx = idx.slice(0, Math.max(1, probs.filter((p) => p >= c.minP * probs[0]).length));
  return { ids: idx, weights: idx.map((i) => Math.exp((l[i] - max) / c.temperature)) };
}

/** The reference draw: a walk down the sorted candidates. */
function referenceDraw(rng: Rng, { ids, weights }: { ids: number[]; weights: number[] }, c: SamplingConfig): number {
  if (c.temperature <= 0) return ids[0];
  let r = rng.next() * weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < ids.length; i++) {
    r -= weights[i];
    if (r <= 0) return ids[i];
  }
  return ids[ids.length - 1];
}

/** Logits of a few shapes: peaked or flat, with ties (rounded values) and masked ids (-Infinity). */
function randomLogits(rng: Rng, V: number, shape: number): number[] {
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return Array.from({ length: V }, (_, i) => {
    if (shape === 0) return 3 * gauss(); // peaked
    if (shape === 1) return 0.3 * gauss(); // flat: large nuclei
    if (shape === 2) return Math.round(2 * gauss()); // many ties
    return i % 7 === 3 ? -Infinity : 2 * gauss() + (i % 50 === 0 ? 6 : 0); // masked ids and a few strong ones
  });
}

test('partial selection = full-sort reference: same candidates, probabilities and draws for every filter setting', () => {
  const V = 400;
  let settings = 0;
  for (let seed = 1; seed <= 8; seed++) {
    const rng = new Rng(seed);
    const logits = randomLogits(rng, V, seed % 4);
    const history = Array.from({ length: 20 }, () => Math.floor(rng.next() * V));
    for (const topK of [0, 1, 7, 40, V, V + 5])
      for (const topP of [1, 0.99, 0.9, 0.5, 0.05])
        for (const minP of [0, 0.01, 0.1, 0.5, 1, 1.5])
          for (const temperature of [0, 0.4, 1, 1.7])
            for (const repeatPenalty of [1, 1.3]) {
              const c: SamplingConfig = { temperature, topK, topP, minP, repeatPenalty, repeatLastN: 16, seed: seed * 1000 + settings };
              const what = JSON.stringify(c);
              const want = referenceCandidates(logits, history, c);
              const got = filteredDistribution(logits, history, c);
              assert.deepEqual(got.ids, want.ids, what);
              const total = want.weights.reduce((s, w) => s + w, 0);
              got.probs.forEach((p, i) => assert.ok(Math.abs(p - want.weights[i] / total) < 1e-12, `${what}: p[${i}]`));
              const sampler = new Sampler(c);
              const ref = new Rng(c.seed);
              for (let n = 0; n < 6; n++) assert.equal(sampler.sample(logits, history), referenceDraw(ref, want, c), `${what}: draw ${n}`);
              settings++;
            }
  }
  assert.equal(settings, 8 * 6 * 5 * 6 * 4 * 2);
});

test('a 32k vocabulary with llama.cpp\'s defaults and with no filter: the same draws as the reference', () => {
  const rng = new Rng(7);
  const logits = randomLogits(rng, 32_000, 0);
  for (const c of [
    { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.1, repeatLastN: 64, seed: 3 },
    { temperature: 0.8, topK: 0, topP: 0.95, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 4 },
    { temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 5 },
  ]) {
    const sampler = new Sampler(c);
    const ref = new Rng(c.seed);
    const history: number[] = [];
    for (let n = 0; n < 20; n++) {
      const t = sampler.sample(logits, history);
      assert.equal(t, referenceDraw(ref, referenceCandidates(logits, history, c), c), `${JSON.stringify(c)}: draw ${n}`);
      history.push(t);
    }
  }
});
