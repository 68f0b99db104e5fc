// Op-level gradient checks: every op's autograd rule against central finite differences, in float64 on the
// reference backend, through the public op functions (so views, broadcasting and the tape are exercised too).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, Rng, Tensor, tidy, withBackend } from '../index.js';
import { ReferenceBackend } from '../reference/index.js';
import * as op from './index.js';

const f64 = new ReferenceBackend({ precision: 'f64' });

function rand(rng: Rng, shape: readonly number[], lo = -1, hi = 1): Tensor {
  const t = Tensor.zeros(shape);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * rng.next();
  t.requiresGrad = true;
  return t;
}

/**
 * Checks d(Σ w ⊙ f(inputs))/d input against central differences for every input and element.
 * The random weights w make the scalar depend on every output element differently.
 */
function gradCheck(label: string, shapes: readonly (readonly number[])[], f: (...xs: Tensor[]) => Tensor, opts: { seed?: number; lo?: number; hi?: number; tol?: number } = {}): void {
  withBackend(f64, () =>
    tidy(() => {
      const rng = new Rng(opts.seed ?? 7);
      const xs = shapes.map((s) => rand(rng, s, opts.lo, opts.hi));
      const y0 = f(...xs);
      const w = rand(rng, y0.shape);
      w.requiresGrad = false;
      const loss = (): Tensor => op.sum(op.mul(f(...xs), w));
      backward(loss());
      const h = 1e-6;
      for (const [k, x] of xs.entries()) {
        assert.ok(x.grad !== null, `${label}: input ${k} got no gradient`);
        const g = x.grad.toArray();
        const d = x.data;
        for (let i = 0; i < d.length; i++) {
          const orig = d[i];
          d[i] = orig + h;
          const up = tidy(() => loss().item());
          d[i] = orig - h;
          const down = tidy(() => loss().item());
          d[i] = orig;
          const num = (up - down) / (2 * h);
          const err = Math.abs(num - g[i]);
          assert.ok(err <= (opts.tol ?? 1e-6) * Math.max(1, Math.abs(num)), `${label}: d/d input${k}[${i}] analytic ${g[i]} vs numeric ${num}`);
        }
      }
    }),
  );
}

test('broadcasting binary ops', () => {
  gradCheck('add', [[2, 3, 4], [3, 1]], op.add);
  gradCheck('sub', [[4], [2, 3, 4]], op.sub);
  gradCheck('mul', [[2, 1, 4], [1, 3, 1]], op.mul);
  gradCheck('div', [[2, 3], [3]], op.div, { lo: 0.5, hi: 2 });
  gradCheck('same input twice', [[3, 4]], (x) => op.mul(op.add(x, x), x));
});

test('unary and affine', () => {
  gradCheck('affine', [[5]], (x) => op.affine(x, -1.5, 0.25));
  for (const name of ['exp', 'neg', 'silu', 'gelu'] as const) gradCheck(name, [[7]], (x) => op.unary(name, x));
  gradCheck('log', [[7]], op.log, { lo: 0.5, hi: 2 });
  gradCheck('sqrt', [[7]], op.sqrt, { lo: 0.5, hi: 2 });
  gradCheck('relu', [[7]], op.relu, { lo: 0.1, hi: 1 });
});

test('reductions', () => {
  gradCheck('sum axis', [[2, 3, 4]], (x) => op.sum(x, [1]));
  gradCheck('mean keepdims', [[2, 3, 4]], (x) => op.mean(x, [0, 2], true));
  gradCheck('sumTo', [[3, 4]], (x) => op.sumTo(x, [1, 4]));
});

test('movement ops', () => {
  gradCheck('reshape', [[2, 6]], (x) => op.reshape(x, [3, -1]));
  gradCheck('transpose then mul', [[2, 3]], (x) => op.mul(op.transpose(x), op.transpose(x)));
  gradCheck('slice', [[3, 5, 2]], (x) => op.slice(x, 1, 1, 4));
  gradCheck('contiguous of transpose', [[3, 4]], (x) => op.contiguous(op.transpose(x)));
});

test('matmul in every layout', () => {
  gradCheck('plain', [[3, 4], [4, 5]], op.matmul);
  gradCheck('transposed A view', [[4, 3], [4, 5]], (a, b) => op.matmul(op.transpose(a), b));
  gradCheck('transposed B view', [[3, 4], [5, 4]], (a, b) => op.matmul(a, op.transpose(b)));
  gradCheck('both transposed', [[4, 3], [5, 4]], (a, b) => op.matmul(op.transpose(a), op.transpose(b)));
  gradCheck('batched', [[2, 3, 4], [2, 4, 5]], op.matmul);
  gradCheck('batched, shared B', [[2, 3, 4], [4, 5]], op.matmul);
  gradCheck('batched transposed A, shared B', [[2, 4, 3], [4, 5]], (a, b) => op.matmul(op.transpose(a), b));
  gradCheck('batched transposed A, shared transposed B', [[2, 4, 3], [5, 4]], (a, b) => op.matmul(op.transpose(a), op.transpose(b)));
  gradCheck('linear with bias', [[2, 3, 4], [5, 4], [5]], op.linear);
});

test('model ops', () => {
  const ids = new Int32Array([2, 0, 2, 3]);
  gradCheck('embedding (repeated ids)', [[4, 3]], (t) => op.embedding(t, ids, [2, 2]));
  gradCheck('rmsnorm', [[3, 8], [8]], (x, w) => op.rmsnorm(x, w, 1e-5));
  const inv = new Float64Array([1, 0.1, 0.01]);
  for (const mode of ['interleaved', 'halves'] as const) {
    gradCheck(`rope ${mode}`, [[2, 3, 2, 6]], (x) => op.rope(x, new Int32Array([0, 5, 9]), inv, mode));
  }
  gradCheck('attention causal GQA', [[2, 3, 4, 4], [2, 3, 2, 4], [2, 3, 2, 4]], (q, k, v) => op.attention(q, k, v));
  gradCheck('attention kv-cache shape', [[1, 2, 2, 4], [1, 5, 1, 4], [1, 5, 1, 4]], (q, k, v) => op.attention(q, k, v, { qOffset: 3 }));
  gradCheck('attention non-causal', [[1, 3, 2, 4], [1, 4, 2, 4], [1, 4, 2, 4]], (q, k, v) => op.attention(q, k, v, { causal: false }));
  gradCheck('swiglu', [[3, 5], [3, 5]], op.swiglu);
  gradCheck('softmax', [[3, 6]], op.softmax);
});

test('losses', () => {
  gradCheck('cross-entropy with ignored rows', [[4, 7]], (l) => op.crossEntropy(l, new Int32Array([3, -100, 0, 6])), { lo: -3, hi: 3 });
  const teacher = withBackend(f64, () => Tensor.from([0.3, -1, 2, 0.5, 0.1, 0.9, -0.4, 1.2], [2, 4]));
  gradCheck('kl divergence T=2', [[2, 4]], (s) => op.klDiv(s, teacher, 2), { lo: -2, hi: 2 });
  gradCheck('dropout', [[20]], (x) => op.dropout(x, 0.3, 1234));
});

test('fused low-rank update (LoRA): base + k·(h·Aᵀ)·Bᵀ', () => {
  // base is consumed, so each call gets an op's result (scale by 1) rather than the leaf itself.
  const lowRank = (k: number) => (b: Tensor, h: Tensor, a: Tensor, bb: Tensor): Tensor => op.addLowRank(op.scale(b, 1), h, a, bb, k);
  gradCheck('2-D, k = 0.7', [[3, 5], [3, 4], [2, 4], [5, 2]], lowRank(0.7));
  gradCheck('3-D rows, k = 1', [[2, 3, 5], [2, 3, 4], [2, 4], [5, 2]], lowRank(1));
  gradCheck('transposed h view (copied)', [[3, 5], [4, 3], [2, 4], [5, 2]], (b, h, a, bb) => op.addLowRank(op.scale(b, 1), op.transpose(h), a, bb, -0.5));
  // base shared with another reader: the op must copy it, and the other reader must see the old values.
  gradCheck('base still read elsewhere', [[3, 5], [3, 4], [2, 4], [5, 2]], (b, h, a, bb) => {
    const y = op.scale(b, 1);
    const other = op.reshape(y, [5, 3]);
    return op.add(op.addLowRank(y, h, a, bb, 2), op.reshape(other, [3, 5]));
  });
});

test('addLowRank reuses an unshared base buffer, equals the unfused sum and disposes base', () => {
  withBackend(f64, () =>
    tidy(() => {
      const rng = new Rng(11);
      const [x, w, a, b] = [rand(rng, [4, 6]), rand(rng, [5, 6]), rand(rng, [3, 6]), rand(rng, [5, 3])];
      const expectedBase = (): Tensor => op.linear(x, w);
      const expected = op.add(op.linear(x, w), op.linear(op.scale(op.linear(x, a), 0.25), b)).toArray();
      const base = op.linear(x, w);
      const buf = base.storage.data;
      const y = op.addLowRank(base, x, a, b, 0.25);
      assert.equal(y.storage.data, buf, 'the result should live in base\'s buffer');
      assert.ok(base.disposed, 'base should be consumed');
      const got = y.toArray();
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-12, `element ${i}: ${got[i]} vs ${expected[i]}`);
      assert.throws(() => op.addLowRank(rand(rng, [4, 5]), x, a, b, 1), /leaf that requires grad/);
      assert.throws(() => op.addLowRank(op.scale(expectedBase(), 1), x, b, a, 1), /not \[r, in\] and \[out, r\]/);
    }),
  );
});
