// Self-tests of the reference backend against values worked out by hand (the conformance suite then checks the
// other backends against this one, and the gradient checks check its backward kernels by finite differences).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionParams, Buf, MatmulParams } from '../backend.js';
import { dropoutKeep } from '../rng.js';
import { ReferenceBackend } from './index.js';

const be = new ReferenceBackend({ precision: 'f64' });

function buf(values: readonly number[]): Buf {
  const b = be.alloc(values.length);
  b.set(values);
  return b;
}

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-12): void {
  assert.equal(got.length, want.length, 'length');
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

const mm = (over: Partial<MatmulParams>): MatmulParams => ({
  batch: 1, M: 2, N: 2, K: 3, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate: false, ...over,
});

void describe('reference backend: memory', () => {
  void test('alloc gives zeroed buffers of the chosen precision and liveBytes tracks alloc/free', () => {
    const f32 = new ReferenceBackend();
    const a = f32.alloc(5);
    assert.ok(a instanceof Float32Array);
    assert.deepEqual([...a], [0, 0, 0, 0, 0]);
    assert.equal(f32.liveBytes(), 20);
    const b = be.alloc(3);
    assert.ok(b instanceof Float64Array);
    f32.free(a);
    assert.equal(f32.liveBytes(), 0);
    assert.equal(a.length, 0, 'freed buffer is detached');
    assert.throws(() => f32.free(a), /already freed/);
    assert.throws(() => f32.free(new Float32Array(2)), /not allocated/);
    be.free(b);
  });
  void test('f32 stores round, f64 stores do not', () => {
    const f32 = new ReferenceBackend({ precision: 'f32' });
    const x = f32.alloc(1);
    f32.affine(x, x, 1, 0, 0.1);
    assert.equal(x[0], Math.fround(0.1));
    const y = be.alloc(1);
    be.affine(y, y, 1, 0, 0.1);
    assert.equal(y[0], 0.1);
  });
});

void describe('reference backend: data movement and elementwise', () => {
  void test('copyStrided transposes a [2, 3] matrix through strides', () => {
    const out = be.alloc(6);
    be.copyStrided(buf([9, 1, 2, 3, 4, 5, 6]), 1, [3, 2], [1, 3], out);
    close(out, [1, 4, 2, 5, 3, 6]);
  });
  void test('binary broadcasts a row and a column', () => {
    const out = be.alloc(6);
    // a[2, 1] + b[1, 3]
    be.binary('add', buf([10, 20]), [1, 0], buf([1, 2, 3]), [0, 1], out, [2, 3]);
    close(out, [11, 12, 13, 21, 22, 23]);
    be.binary('div', buf([1, 2, 3, 4, 5, 6]), [3, 1], buf([2]), [0, 0], out, [2, 3]);
    close(out, [0.5, 1, 1.5, 2, 2.5, 3]);
  });
  void test('unary values and derivatives at known points', () => {
    const x = buf([-1, 0.5, 2]);
    const out = be.alloc(3);
    be.unary('relu', x, out, 3);
    close(out, [0, 0.5, 2]);
    be.unary('silu', x, out, 3);
    close(out, [-1 / (1 + Math.E), 0.5 / (1 + Math.exp(-0.5)), 2 / (1 + Math.exp(-2))]);
    be.unary('gelu', buf([0, 1]), out, 2);
    close(out.subarray(0, 2), [0, 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715))]);
    be.unaryBackward('log', x, buf([1, 1, 3]), out, 3);
    close(out, [-1, 2, 1.5]);
    be.unaryBackward('relu', x, buf([5, 5, 5]), out, 3);
    close(out, [0, 5, 5]);
  });
  void test('affine, axpy and sumSquares', () => {
    const y = buf([1, 2]);
    be.axpy(2, buf([3, 4]), y, 2);
    close(y, [7, 10]);
    be.affine(y, y, 2, -1, 1);
    close(y, [-6, -9]);
    assert.equal(be.sumSquares(y, 2), 117);
  });
  void test('sumTo reduces the dims where the output is 1', () => {
    const x = buf([1, 2, 3, 4, 5, 6]); // [2, 3]
    const rows = be.alloc(2);
    be.sumTo(x, [2, 3], rows, [2, 1]);
    close(rows, [6, 15]);
    const cols = be.alloc(3);
    be.sumTo(x, [2, 3], cols, [1, 3]);
    close(cols, [5, 7, 9]);
    const all = be.alloc(1);
    be.sumTo(x, [2, 3], all, [1, 1]);
    close(all, [21]);
    assert.throws(() => be.sumTo(x, [2, 3], all, [2]), /rank/);
  });
});

void describe('reference backend: matmul', () => {
  // A = [[1,2,3],[4,5,6]], B = [[1,0],[0,1],[1,1]] → AB = [[4,5],[10,11]]
  const A = [1, 2, 3, 4, 5, 6];
  const At = [1, 4, 2, 5, 3, 6];
  const B = [1, 0, 0, 1, 1, 1];
  const Bt = [1, 0, 1, 0, 1, 1];
  void test('all four transposition layouts give the same product', () => {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const c = be.alloc(4);
      be.matmul(buf(transA ? At : A), buf(transB ? Bt : B), c, mm({ transA, transB }));
      close(c, [4, 5, 10, 11]);
    }
  });
  void test('batch with a broadcast B, offsets and accumulate', () => {
    const a = buf([0, ...A, ...A.map((x) => 2 * x)]); // offA = 1, two batch items
    const c = buf([100, 1, 1, 1, 1, 0, 0, 0, 0]); // offC = 1
    be.matmul(a, buf(B), c, mm({ batch: 2, strideA: 6, strideB: 0, strideC: 4, offA: 1, offC: 1, accumulate: true }));
    close(c, [100, 5, 6, 11, 12, 8, 10, 20, 22]);
  });
});

void describe('reference backend: model ops', () => {
  void test('embedding gathers rows and scatter-adds duplicates', () => {
    const table = buf([1, 2, 3, 4, 5, 6]); // [3, 2]
    const out = be.alloc(4);
    be.embeddingForward(table, Int32Array.from([2, 0]), out, 2, 2);
    close(out, [5, 6, 1, 2]);
    const dtable = be.alloc(6);
    be.embeddingBackward(buf([1, 1, 2, 2, 4, 4]), Int32Array.from([1, 1, 0]), dtable, 3, 2);
    close(dtable, [4, 4, 3, 3, 0, 0]);
    assert.throws(() => be.embeddingForward(table, Int32Array.from([3]), out, 1, 2), /outside a table of 3 rows/);
  });
  void test('rmsnorm of [3, 4]', () => {
    const out = be.alloc(2);
    const rstd = be.alloc(1);
    be.rmsnormForward(buf([3, 4]), buf([1, 2]), out, rstd, 1, 2, 0);
    const r = 1 / Math.sqrt(12.5);
    close(rstd, [r]);
    close(out, [3 * r, 8 * r]);
  });
  void test('rope rotates each pair by position · invFreq, in both layouts, and inverse undoes it', () => {
    const x = buf([1, 0, 0, 1]); // [B=1, T=1, H=1, D=4]
    const out = be.alloc(4);
    const invFreq = buf([Math.PI / 2, Math.PI]);
    be.rope(x, out, 1, 1, 1, 4, Int32Array.from([1]), invFreq, 'interleaved', false);
    close(out, [0, 1, 0, -1], 1e-15); // (1,0) by 90° → (0,1); (0,1) by 180° → (0,−1)
    be.rope(x, out, 1, 1, 1, 4, Int32Array.from([1]), invFreq, 'halves', false);
    close(out, [0, 0, 1, -1], 1e-15); // pairs (x0,x2) = (1,0) by 90°, (x1,x3) = (0,1) by 180°
    be.rope(out, out, 1, 1, 1, 4, Int32Array.from([1]), invFreq, 'halves', true);
    close(out, [1, 0, 0, 1], 1e-15);
  });
  void test('attention: one key returns its value, equal scores average, causal rows see only the past, GQA shares heads', () => {
    const p: AttentionParams = { B: 1, Tq: 2, Tk: 2, H: 2, G: 1, D: 1, scale: 1, qOffset: 0, causal: true };
    // q[1, 2, 2, 1] all zero → equal scores; k, v [1, 2, 1, 1]
    const out = be.alloc(4);
    const lse = be.alloc(4);
    be.attentionForward(buf([0, 0, 0, 0]), buf([1, 2]), buf([10, 20]), out, lse, p);
    close(out, [10, 10, 15, 15]); // query 0 sees key 0 only; query 1 averages both; both heads use kv head 0
    close(lse, [0, Math.log(2), 0, Math.log(2)]);
    be.attentionForward(buf([0, 0, 0, 0]), buf([1, 2]), buf([10, 20]), out, lse, { ...p, causal: false });
    close(out, [15, 15, 15, 15]);
  });
  void test('attention decode row with qOffset sees every cached key', () => {
    const p: AttentionParams = { B: 1, Tq: 1, Tk: 3, H: 1, G: 1, D: 1, scale: 0.5, qOffset: 2, causal: true };
    const out = be.alloc(1);
    const lse = be.alloc(1);
    be.attentionForward(buf([2]), buf([0, 1, 2]), buf([1, 2, 3]), out, lse, p); // scores 0, 1, 2
    const z = 1 + Math.E + Math.E ** 2;
    close(out, [(1 + 2 * Math.E + 3 * Math.E ** 2) / z]);
    close(lse, [Math.log(z)]);
  });
  void test('softmax and swiglu', () => {
    const y = be.alloc(2);
    be.softmaxForward(buf([0, Math.log(2)]), y, 1, 2);
    close(y, [1 / 3, 2 / 3]);
    const out = be.alloc(1);
    be.swigluForward(buf([1]), buf([3]), out, 1);
    close(out, [3 / (1 + Math.exp(-1))]);
  });
});

void describe('reference backend: losses, dropout, optimizer', () => {
  void test('cross-entropy of uniform logits is log V, ignored rows count for nothing', () => {
    const logits = buf([0, 0, 0, 0, 5, 1, 2, 3]); // [2, 4]
    const losses = be.alloc(2);
    const lse = be.alloc(2);
    const counted = be.crossEntropyForward(logits, Int32Array.from([3, -100]), losses, lse, 2, 4, -100);
    assert.equal(counted, 1);
    close(losses, [Math.log(4), 0]);
    const d = be.alloc(8);
    be.crossEntropyBackward(logits, Int32Array.from([3, -100]), lse, buf([2, 2]), d, 2, 4, -100);
    close(d, [0.5, 0.5, 0.5, -1.5, 0, 0, 0, 0]);
  });
  void test('KL is zero when student equals teacher and T² · KL otherwise', () => {
    const losses = be.alloc(1);
    be.klDivForward(buf([1, 2]), buf([1, 2]), losses, 1, 2, 2);
    close(losses, [0]);
    // T = 1, student uniform, teacher [0, ln 3] → p_t = [1/4, 3/4]: KL = ¼ln(½) + ¾ln(3/2)
    be.klDivForward(buf([0, 0]), buf([0, Math.log(3)]), losses, 1, 2, 1);
    close(losses, [0.25 * Math.log(0.5) + 0.75 * Math.log(1.5)]);
  });
  void test('dropout mask follows dropoutKeep and scales kept values', () => {
    const n = 1000;
    const x = be.alloc(n);
    x.fill(2);
    const out = be.alloc(n);
    const mask = be.alloc(n);
    be.dropoutForward(x, out, mask, n, 0.25, 42);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const keep = dropoutKeep(42, i, 0.25);
      kept += keep ? 1 : 0;
      assert.equal(mask[i], keep ? 4 / 3 : 0);
      assert.equal(out[i], 2 * mask[i]);
    }
    assert.ok(kept > 700 && kept < 800, `kept ${kept} of ${n} at p = 0.25`);
    assert.throws(() => be.dropoutForward(x, out, mask, n, 1, 42), /p must be in/);
  });
  void test('adamw first step moves each parameter by about lr against its gradient, plus decay', () => {
    const param = buf([1, -1]);
    const m = be.alloc(2);
    const v = be.alloc(2);
    be.adamw(param, buf([0.3, -5]), m, v, 2, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0.01, step: 1 });
    close(param, [1 - 0.1 * (1 + 0.01), -1 + 0.1 * (1 + 0.01)]);
    close(m, [0.03, -0.5]);
    close(v, [0.3 * 0.3 * 0.001, 0.025]);
  });
});
