// The sampler's filtered distribution against hand-computed cases in llama.cpp's order (penalties → top-k → top-p →
// min-p → temperature), each case chosen so another order gives another answer; then 20,000 seeded draws against that
// distribution by a chi-square bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filteredDistribution, GREEDY, Sampler, type SamplingConfig } from './sampling.js';

/** Every filter off, temperature 1: the plain softmax. */
const PLAIN: SamplingConfig = { temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 1 };

// Logits whose softmax is exactly P: ids sorted by probability are 1 (.5), 3 (.2), 4 (.15), 0 (.1), 2 (.05).
const P = [0.1, 0.5, 0.05, 0.2, 0.15];
const LOGITS = P.map(Math.log);

function expectDist(got: { ids: number[]; probs: number[] }, ids: number[], probs: number[]): void {
  assert.deepEqual(got.ids, ids);
  assert.equal(got.probs.length, probs.length);
  probs.forEach((p, i) => assert.ok(Math.abs(got.probs[i] - p) < 1e-12, `p[${i}] = ${got.probs[i]}, expected ${p}`));
}

const dist = (o: Partial<SamplingConfig>, logits: number[] = LOGITS, history: number[] = []): { ids: number[]; probs: number[] } =>
  filteredDistribution(logits, history, { ...PLAIN, ...o });

test('filters off at T = 1: the softmax, most likely first', () => {
  expectDist(dist({}), [1, 3, 4, 0, 2], [0.5, 0.2, 0.15, 0.1, 0.05]);
});

test('top-k keeps the k largest logits, renormalized', () => {
  expectDist(dist({ topK: 2 }), [1, 3], [0.5 / 0.7, 0.2 / 0.7]);
  expectDist(dist({ topK: 1 }), [1], [1]);
  expectDist(dist({ topK: 9 }), [1, 3, 4, 0, 2], [0.5, 0.2, 0.15, 0.1, 0.05]); // k > V keeps all
});

test('top-p keeps the smallest prefix whose probability reaches p', () => {
  expectDist(dist({ topP: 0.8 }), [1, 3, 4], [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85]); // .5, .7 < .8 ≤ .85
  expectDist(dist({ topP: 0.6 }), [1, 3], [0.5 / 0.7, 0.2 / 0.7]);
  expectDist(dist({ topP: 0.3 }), [1], [1]); // the top token alone already reaches p
  expectDist(dist({ topP: 0.99 }), [1, 3, 4, 0, 2], [0.5, 0.2, 0.15, 0.1, 0.05]);
});

test('min-p keeps tokens with probability ≥ min-p × the top one', () => {
  expectDist(dist({ minP: 0.25 }), [1, 3, 4], [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85]); // ≥ .125
  expectDist(dist({ minP: 0.35 }), [1, 3], [0.5 / 0.7, 0.2 / 0.7]); // ≥ .175
  expectDist(dist({ minP: 0.95 }), [1], [1]);
});

test('temperature scales the survivors: p^(1/T), renormalized', () => {
  const sq = [0.5, 0.2, 0.15, 0.1, 0.05].map(Math.sqrt);
  const s = sq.reduce((a, b) => a + b, 0);
  expectDist(dist({ temperature: 2 }), [1, 3, 4, 0, 2], sq.map((x) => x / s));
  expectDist(dist({ temperature: 0 }), [1], [1]); // greedy
});

test('order: top-k before top-p (top-p sees the top-k survivors renormalized)', () => {
  // after top-k 3: .588, .235, .176 → top-p .8 stops at 2 (.824); top-p first on the full softmax would keep 3 (.85)
  expectDist(dist({ topK: 3, topP: 0.8 }), [1, 3], [0.5 / 0.7, 0.2 / 0.7]);
});

test('order: top-p before min-p', () => {
  // top-p .8 keeps 3 (cum .85), min-p .25 keeps all three (≥ .125). Min-p first would keep 3, renormalize, and then
  // top-p .8 would stop at 2 (.588 + .235 = .824).
  expectDist(dist({ topP: 0.8, minP: 0.25 }), [1, 3, 4], [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85]);
});

test('order: temperature after top-p and min-p (they filter at T = 1)', () => {
  // T = .5 squares the probabilities: .25, .04, .0225 over the three top-p .8 survivors. Temperature first would make
  // the softmax .769, .123, .069, … and top-p .8 would stop at 2; min-p .25 would keep only the top (.16 < .25).
  const sq = [0.25, 0.04, 0.0225];
  const s = 0.3125;
  expectDist(dist({ temperature: 0.5, topP: 0.8 }), [1, 3, 4], sq.map((x) => x / s));
  expectDist(dist({ temperature: 0.5, minP: 0.25 }), [1, 3, 4], sq.map((x) => x / s));
});

test('repeat penalty: divides positive, multiplies negative logits of distinct tokens in the last N, before top-k', () => {
  const logits = [2, 1, -1, 0.5];
  const softmax = (l: number[]): number[] => {
    const e = l.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  // history 0, 2, 0 with penalty 2: logits become 1, 1, -2, .5 (token 0 counted once, not twice)
  expectDist(dist({ repeatPenalty: 2 }, logits, [0, 2, 0]), [0, 1, 3, 2], [0, 1, 3, 2].map((i) => softmax([1, 1, -2, 0.5])[i]));
  // only the last N = 2 tokens count: 3 and 2 are penalized (.25, -2), token 0 is not
  const lastN = dist({ repeatPenalty: 2, repeatLastN: 2 }, logits, [0, 3, 2]);
  expectDist(lastN, [0, 1, 3, 2], [0, 1, 3, 2].map((i) => softmax([2, 1, -2, 0.25])[i]));
  // before top-k: token 0 (3.0) penalized to 1.5 falls behind token 1 (2.9)
  assert.deepEqual(dist({ repeatPenalty: 2, topK: 1 }, [3, 2.9, 0], [0]).ids, [1]);
  // greedy with a penalty: the penalized argmax
  assert.equal(new Sampler({ ...GREEDY, repeatPenalty: 2 }).sample([3, 2.9, 0], [0]), 1);
  assert.equal(new Sampler(GREEDY).sample([3, 2.9, 0], [0]), 0);
});

/** Chi-square 99.9 % quantile by Wilson–Hilferty (z = 3.09): within 1 % of the exact value for df ≥ 3. */
function chiSquare999(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + 3.09 * Math.sqrt(a)) ** 3;
}

test('20,000 seeded draws follow the filtered distribution (chi-square below its 99.9 % quantile)', () => {
  // 64 logits spread over ~6 nats; llama.cpp's defaults (top-k 40, top-p .95, min-p .05, T .8) and a repeat penalty
  // on a few tokens, so every stage cuts something.
  const V = 64;
  const logits = Array.from({ length: V }, (_, i) => 3 - 0.1 * i + 0.5 * Math.sin(i * 1.7));
  const history = [0, 5, 9];
  const config: SamplingConfig = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.3, repeatLastN: 64, seed: 1234 };
  const { ids, probs } = filteredDistribution(logits, history, config);
  assert.ok(ids.length >= 5 && ids.length < 40, `${ids.length} candidates`);
  const N = 20_000;
  const counts = new Map<number, number>();
  const sampler = new Sampler(config);
  for (let n = 0; n < N; n++) {
    const t = sampler.sample(logits, history);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const t of counts.keys()) assert.ok(ids.includes(t), `drew ${t}, which the filters remove`);
  let chi2 = 0;
  ids.forEach((id, i) => {
    const e = N * probs[i];
    assert.ok(e >= 5, `expected count ${e} too small for chi-square`);
    chi2 += ((counts.get(id) ?? 0) - e) ** 2 / e;
  });
  // A fixed seed makes the draws, so chi2, the same on every run: the test cannot flake. A correct sampler passes
  // a 99.9 % bound for 999 seeds in 1000; a sampler off by a few percent on one candidate exceeds it at N = 20,000.
  const bound = chiSquare999(ids.length - 1);
  assert.ok(chi2 < bound, `chi-square ${chi2.toFixed(1)} ≥ ${bound.toFixed(1)} (df ${ids.length - 1})`);
  // the same seed draws the same tokens
  const a = new Sampler(config);
  const b = new Sampler(config);
  for (let n = 0; n < 100; n++) assert.equal(a.sample(logits, history), b.sample(logits, history));
});
