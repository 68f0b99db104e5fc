// Tape semantics and tensor lifetimes: no-grad, frozen inputs, accumulation across calls, retainGraph, and
// that tidy()/dispose() return every byte (checked through the backend's live-byte counter).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, getBackend, noGrad, Tensor, tidy, withBackend, zeroGrad, type Backend } from './index.js';
import * as op from './ops/index.js';

function param(values: number[], shape: number[]): Tensor {
  const t = Tensor.from(values, shape).keep();
  t.requiresGrad = true;
  return t;
}

test('gradients accumulate across backward calls until zeroGrad', () => {
  const w = param([1, 2, 3], [3]);
  for (let i = 0; i < 2; i++) tidy(() => backward(op.sum(op.mul(w, w))));
  assert.deepEqual([...w.grad!.toArray()], [4, 8, 12]);
  zeroGrad([w]);
  assert.equal(w.grad, null);
  w.dispose();
});

test('noGrad records nothing', () => {
  const w = param([1, 2], [2]);
  tidy(() => {
    const y = noGrad(() => op.mul(w, w));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
  });
  w.dispose();
});

test('frozen inputs get no gradient and their products are skipped', () => {
  const backend = getBackend();
  let matmuls = 0;
  const counting: Backend = Object.create(backend) as Backend;
  counting.matmul = (...args) => {
    matmuls++;
    backend.matmul(...args);
  };
  withBackend(counting, () => {
    const frozen = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]); // requiresGrad false
    const x = param([1, 0, -1, 2, 0.5, 3], [2, 3]);
    tidy(() => backward(op.sum(op.linear(x, frozen))));
    assert.equal(matmuls, 2, 'forward and dX only: no product for the frozen weight');
    assert.equal(frozen.grad, null);
    assert.deepEqual([...x.grad!.toArray()], [5, 7, 9, 5, 7, 9]);
    frozen.dispose();
    x.dispose();
  });
});

test('backward twice needs retainGraph', () => {
  const w = param([0.5, -1], [2]);
  tidy(() => {
    const y = op.sum(op.mul(op.exp(w), w));
    backward(y, { retainGraph: true });
    backward(y);
    assert.throws(() => backward(y), /freed|released/);
  });
  w.dispose();
});

test('tidy and dispose return all memory, including the tape and gradients', () => {
  const b = getBackend();
  const before = b.liveBytes();
  const w = param(Array.from({ length: 64 }, (_, i) => Math.sin(i)), [8, 8]);
  for (let step = 0; step < 5; step++) {
    tidy(() => {
      const x = Tensor.from(Array.from({ length: 32 }, (_, i) => i / 32), [4, 8]);
      const h = op.rmsnorm(op.linear(x, w), Tensor.full([8], 1), 1e-5);
      const loss = op.crossEntropy(h, new Int32Array([1, 2, 3, -100]));
      backward(loss);
      return loss.item();
    });
    zeroGrad([w]);
  }
  // An abandoned graph (no backward) is freed by the scope too.
  tidy(() => {
    op.sum(op.mul(w, w));
  });
  w.dispose();
  assert.equal(b.liveBytes(), before);
});

test('views keep storage alive until their last holder is disposed', () => {
  const b = getBackend();
  const before = b.liveBytes();
  const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  const t = op.transpose(x);
  x.dispose();
  assert.deepEqual([...t.toArray()], [1, 4, 2, 5, 3, 6]);
  t.dispose();
  assert.equal(b.liveBytes(), before);
  assert.throws(() => t.toArray(), /disposed/);
});

test('a leaf used twice, once through a transposed view, keeps its gradient past the scope', () => {
  const w = param([1, 2, 3, 4, 5, 6], [3, 2]);
  tidy(() => {
    const h = op.embedding(w, new Int32Array([0, 2]));
    backward(op.sum(op.linear(h, w))); // tied embedding / LM head
  });
  assert.ok(w.grad !== null && !w.grad.disposed);
  assert.equal(w.grad.toArray().length, 6);
  w.dispose();
});
