// The DPO objective on a tiny model: reference log-probs from the concatenated, right-padded batch equal each row's
// own forward (padding and the chosen/rejected stacking change nothing), a batch's gradient equals the pair-weighted
// mean of its micro-batches' (what weight = pairs promises the Trainer's accumulation), and rows without a pair are
// refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, noGrad, scale, tidy, zeroGrad } from '../engine/index.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { collate, IGNORE_INDEX, type Row } from './batching.js';
import { dpoObjective, referenceLogProbs, type PairRow } from './dpo.js';

/** A row whose last `reply` positions are trained (labels = next ids). */
function row(ids: number[], reply: number): Row {
  const L = ids.length - 1;
  return { ids: Int32Array.from(ids.slice(0, L)), labels: Int32Array.from({ length: L }, (_, t) => (t >= L - reply ? ids[t + 1] : IGNORE_INDEX)) };
}

function pair(prompt: number[], chosen: number[], rejected: number[]): PairRow {
  const c = row([...prompt, ...chosen], chosen.length);
  const r = row([...prompt, ...rejected], rejected.length);
  return { ...c, extra: { chosen: c, rejected: r, lengths: [chosen.length, rejected.length], ref: [NaN, NaN] } };
}

function tiny(): { model: LlamaModel; params: ReturnType<typeof initWeights> } {
  const cfg = tinyConfig();
  const w = initWeights(cfg, 5, 0.3);
  return { model: new LlamaModel(cfg, (n) => w.get(n)), params: w };
}

/** Σ log softmax at the labels of one row, from its own forward (B = 1, no padding), in plain arithmetic. */
function ownLogProb(model: LlamaModel, r: Row): number {
  return noGrad(() => tidy(() => {
    const logits = model.forward(r.ids, 1, r.ids.length).toArray();
    const V = logits.length / r.ids.length;
    let s = 0;
    r.labels.forEach((y, t) => {
      if (y === IGNORE_INDEX) return;
      const z = logits.subarray(t * V, t * V + V);
      const m = Math.max(...z);
      s += z[y] - m - Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
    });
    return s;
  }));
}

const PAIRS = (): PairRow[] => [
  pair([1, 2, 3], [4, 5], [6]),
  pair([7, 8], [9, 10, 11, 12], [13, 14]),
  pair([3, 1, 4, 1, 5], [9], [2, 6]),
  pair([2, 7], [1, 8, 2], [8, 1, 8, 2, 8]),
];

test('reference log-probs from the padded concatenated batch equal each row\'s own forward', () => {
  const { model, params } = tiny();
  const rows = PAIRS();
  referenceLogProbs(model, rows, 3, 0); // batches of 3 and 1 pairs: padding to different lengths
  for (const r of rows) {
    const e = r.extra;
    assert.ok(Math.abs(e.ref[0] - ownLogProb(model, e.chosen)) < 1e-4, `chosen ${e.ref[0]} vs ${ownLogProb(model, e.chosen)}`);
    assert.ok(Math.abs(e.ref[1] - ownLogProb(model, e.rejected)) < 1e-4, `rejected ${e.ref[1]} vs ${ownLogProb(model, e.rejected)}`);
  }
  for (const t of params.values()) t.dispose();
});

test('weight = pairs: one batch\'s gradient = the pair-weighted mean of its micro-batches\' gradients', () => {
  const { model, params } = tiny();
  const rows = PAIRS();
  referenceLogProbs(model, rows, 4, 0);
  // move the policy off the reference so that the loss has a gradient beyond σ(0)
  for (const t of params.values()) t.data[0] += 0.05;
  const ts = [...params.values()];
  for (const t of ts) t.requiresGrad = true;
  const obj = dpoObjective({ beta: 0.3, lossType: 'sigmoid', rpoAlpha: 0 });
  const grads = (batches: Row[][], weights: number[]): Float32Array[] => {
    zeroGrad(ts);
    batches.forEach((b, i) => tidy(() => {
      const batch = collate(b, 0);
      assert.equal(obj.weight?.(batch), b.length);
      const { loss } = obj.loss(model, batch, true);
      backward(scale(loss, weights[i]));
    }));
    return ts.map((t) => Float32Array.from(t.grad?.data ?? new Float32Array(t.size)));
  };
  const whole = grads([rows], [1]);
  const split = grads([rows.slice(0, 1), rows.slice(1)], [1 / 4, 3 / 4]);
  let maxDiff = 0;
  let maxAbs = 0;
  whole.forEach((g, i) => g.forEach((x, j) => {
    maxDiff = Math.max(maxDiff, Math.abs(x - split[i][j]));
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }));
  assert.ok(maxAbs > 1e-4, 'a gradient to compare');
  assert.ok(maxDiff < 1e-5 * Math.max(1, maxAbs), `max difference ${maxDiff} (max |g| ${maxAbs})`);
  zeroGrad(ts);
  for (const t of ts) t.dispose();
});

test('a batch of rows without pairs, or before the reference ran, is refused', () => {
  const { model, params } = tiny();
  const obj = dpoObjective({ beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 });
  assert.throws(() => obj.loss(model, collate([row([1, 2, 3], 1)], 0), true), /carries no pair/);
  assert.throws(() => obj.loss(model, collate(PAIRS(), 0), true), /reference log-probs missing/);
  for (const t of params.values()) t.dispose();
});
