// Distillation losses: hand-computed values, agreement with the engine's dense klDiv, β limits, and gradients
// against central finite differences (float64 reference backend) for every divergence and temperature.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, klDiv, Rng, Tensor, tidy, withBackend } from '../engine/index.js';
import { ReferenceBackend } from '../engine/reference/index.js';
import { bucketDivergence, distillLoss, sparseTopK, type DivergenceConfig, type SparseTeacher } from './distill-loss.js';

const f64 = new ReferenceBackend({ precision: 'f64' });
const close = (a: number, b: number, tol = 1e-9, what = ''): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

// student q = [0.5, 0.25, 0.25] (logits [ln 2, 0, 0]); teacher p = [0.25, 0.5, 0.25]
const zs = [Math.log(2), 0, 0];
const pt = [0.25, 0.5, 0.25];
const dense = (ids: number[]): SparseTeacher => ({ K: ids.length, ids: Int32Array.from(ids), logp: Float32Array.from(ids.map((i) => Math.log(pt[i]))) });
const loss1 = (t: SparseTeacher, c: Partial<DivergenceConfig>): number => withBackend(f64, () => tidy(() => distillLoss(Tensor.from(zs, [1, 3]), Int32Array.of(0), t, c).item()));

test('distillLoss: hand-computed forward KL, reverse KL and JSD on a full teacher', () => {
  const all = dense([1, 0, 2]);
  close(loss1(all, { divergence: 'forward-kl' }), 0.25 * Math.log(2), 1e-6, 'forward'); // Σ p log p/q
  close(loss1(all, { divergence: 'reverse-kl' }), 0.25 * Math.log(2), 1e-6, 'reverse'); // Σ q log q/p
  // m = [0.375, 0.375, 0.25]: ½KL(p‖m) + ½KL(q‖m) = ¼ log(2/3) + ½ log(4/3)
  close(loss1(all, { divergence: 'jsd', beta: 0.5 }), 0.25 * Math.log(2 / 3) + 0.5 * Math.log(4 / 3), 1e-6, 'jsd');
  close(loss1(all, { divergence: 'jsd', beta: 0 }), loss1(all, { divergence: 'forward-kl' }), 1e-12, 'β = 0 is forward KL');
  close(loss1(all, { divergence: 'jsd', beta: 1 }), loss1(all, { divergence: 'reverse-kl' }), 1e-12, 'β = 1 is reverse KL');
});

test('distillLoss: top-1 with a rest bucket compares {id, rest} masses', () => {
  // P = [0.5, 0.5], Q = [0.25, 0.75]: KL = ½ log 2 + ½ log(2/3) = ½ log(4/3)
  close(loss1(dense([1]), { divergence: 'forward-kl' }), 0.5 * Math.log(4 / 3), 1e-6, 'top-1');
  // the coarsened divergence never exceeds the full one
  assert.ok(loss1(dense([1]), {}) <= loss1(dense([1, 0, 2]), {}) + 1e-12);
  // a student equal to the teacher on the buckets has zero loss even if it differs inside the rest bucket
  assert.ok(Math.abs(bucketDivergence([0.5, 0.5], [0.5, 0.5], { divergence: 'jsd', beta: 0.3 })) < 1e-15);
});

test('distillLoss: with K = V and temperature it equals T²·KL of the engine\'s dense klDiv', () => {
  withBackend(f64, () => tidy(() => {
    const rng = new Rng(3);
    const [N, V] = [5, 9];
    const s = Tensor.from(Array.from({ length: N * V }, () => rng.normal() * 2), [N, V]);
    const tl = Array.from({ length: N * V }, () => rng.normal() * 2);
    const labels = new Int32Array(N); // every row trained
    for (const T of [1, 2, 0.5]) {
      const t = sparseTopK(tl, V, labels, V, T);
      close(distillLoss(s, labels, t, { temperature: T }).item(), klDiv(s, Tensor.from(tl, [N, V]), T).item(), 1e-5, `T ${T}`);
    }
  }));
});

test('sparseTopK: descending log-probs of the trained rows only, at temperature T', () => {
  const logits = [1, 3, 2, 0, /* row 1 untrained */ 9, 9, 9, 9, 0, 0, 5, 1];
  const t = sparseTopK(logits, 4, Int32Array.of(7, -100, 3), 2, 2);
  assert.deepEqual([...t.ids], [1, 2, 2, 3]);
  const lse = Math.log([1, 3, 2, 0].reduce((s, x) => s + Math.exp(x / 2), 0));
  close(t.logp[0], 3 / 2 - lse, 1e-6, 'logp');
  assert.throws(() => sparseTopK(logits, 4, Int32Array.of(0, 0, 0), 5, 1), /top-k must be in \[1, 4\]/);
});

test('distillLoss: refuses a teacher that does not fit', () => {
  const s = Tensor.from(zs, [1, 3]);
  assert.throws(() => distillLoss(s, Int32Array.of(0), { K: 2, ids: Int32Array.of(1, 1), logp: Float32Array.of(-1, -1) }), /appears twice/);
  assert.throws(() => distillLoss(s, Int32Array.of(0), { K: 1, ids: Int32Array.of(3), logp: Float32Array.of(-1) }), /outside the vocabulary/);
  assert.throws(() => distillLoss(s, Int32Array.of(0), dense([1, 0]), { temperature: 0 }), /temperature must be > 0/);
  assert.throws(() => distillLoss(s, Int32Array.of(-100), dense([1])), /0 trained rows need/);
});

test('distillLoss: gradients match central finite differences for each divergence and temperature', () => {
  withBackend(f64, () => tidy(() => {
    const rng = new Rng(11);
    const [N, V, K] = [4, 7, 3];
    const labels = Int32Array.of(2, -100, 5, 0);
    const teacher = sparseTopK(Array.from({ length: N * V }, () => rng.normal() * 1.5), V, labels, K, 1);
    const configs: Partial<DivergenceConfig>[] = [
      { divergence: 'forward-kl', temperature: 1 }, { divergence: 'forward-kl', temperature: 2.5 },
      { divergence: 'reverse-kl', temperature: 1 }, { divergence: 'reverse-kl', temperature: 0.7 },
      { divergence: 'jsd', beta: 0.5, temperature: 1 }, { divergence: 'jsd', beta: 0.2, temperature: 2 },
    ];
    for (const c of configs) {
      const x = Tensor.from(Array.from({ length: N * V }, () => rng.normal()), [N, V]);
      x.requiresGrad = true;
      const t = teacher; // top-k log-probs at T = 1: a valid sub-distribution at any T
      backward(distillLoss(x, labels, t, c));
      const g = x.grad!.toArray();
      const d = x.data;
      const h = 1e-6;
      for (let i = 0; i < d.length; i++) {
        const o = d[i];
        d[i] = o + h;
        const up = distillLoss(x, labels, t, c).item();
        d[i] = o - h;
        const dn = distillLoss(x, labels, t, c).item();
        d[i] = o;
        const fd = (up - dn) / (2 * h);
        assert.ok(Math.abs(fd - g[i]) < 1e-6 + 1e-5 * Math.abs(fd), `${JSON.stringify(c)} element ${i}: analytic ${g[i]} vs numeric ${fd}`);
        if (Math.floor(i / V) === 1) assert.equal(g[i], 0, 'an untrained row gets no gradient');
      }
    }
  }));
});
