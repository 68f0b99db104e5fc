// Kernel-level finite-difference gradient checks of every backward kernel of the reference backend, in float64
// (the autograd layer checks op-level gradients separately). L = Σ r ⊙ forward(x) with random r, so the backward
// kernels get dout = r.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionParams, Buf, RopeMode, UnaryOp } from '../backend.js';
import { encodeF16 } from '../quant/index.js';
import { ReferenceBackend } from '../reference/index.js';
import { Rng } from '../rng.js';
import { checkGradient, dot, type GradCheck } from './gradcheck.js';
import { baseSeed } from './run.js';
import { kernelSeed } from './harness.js';

const be = new ReferenceBackend({ precision: 'f64' });
const SEED = baseSeed();

/** A float64 buffer of n normal values · scale (+ shift). */
function randn(rng: Rng, n: number, scale = 1, shift = 0): Buf {
  const b = be.alloc(n);
  for (let i = 0; i < n; i++) b[i] = shift + scale * rng.normal();
  return b;
}

/** Runs the checks of one kernel with its own seed; fails with every mismatch and the seed. */
function gradTest(name: string, build: (rng: Rng) => GradCheck[]): void {
  void test(name, () => {
    const seed = kernelSeed(SEED, `grad:${name}`);
    const rng = new Rng(seed);
    const problems = build(rng).flatMap((g) => checkGradient(g));
    assert.equal(problems.length, 0, `${name} (seed ${SEED}, rerun with NOMOAT_SEED=${SEED}):\n  ${problems.slice(0, 8).join('\n  ')}`);
  });
}

void test('the gradient check catches a gradient off by 1e-4 relative', () => {
  const rng = new Rng(kernelSeed(SEED, 'grad:self-check'));
  const [N, C] = [2, 5];
  const x = randn(rng, N * C);
  const r = randn(rng, N * C);
  const y = be.alloc(N * C);
  const dx = be.alloc(N * C);
  be.softmaxForward(x, y, N, C);
  be.softmaxBackward(y, r, dx, N, C);
  const loss = (): number => (be.softmaxForward(x, y, N, C), dot(r, y));
  assert.deepEqual(checkGradient({ label: 'exact', x, grad: dx, loss }), []);
  const wrong = dx.map((v) => v * (1 + 1e-4));
  assert.ok(checkGradient({ label: 'wrong', x, grad: wrong, loss }).length > 0);
});

void describe('finite-difference gradients of the reference backward kernels (float64)', () => {
  gradTest('unaryBackward', (rng) =>
    (['neg', 'exp', 'log', 'sqrt', 'silu', 'relu', 'gelu'] as UnaryOp[]).map((op) => {
      const n = 17;
      // log/sqrt need positives; relu stays away from its kink at 0 (|x| ≥ 0.1)
      const x = op === 'log' || op === 'sqrt' ? randn(rng, n, 0.3, 2).map(Math.abs) : randn(rng, n, 2).map((v) => (Math.abs(v) < 0.1 ? v + 0.3 : v));
      const r = randn(rng, n);
      const y = be.alloc(n);
      const dx = be.alloc(n);
      be.unaryBackward(op, x, r, dx, n);
      return { label: op, x, grad: dx, loss: () => (be.unary(op, x, y, n), dot(r, y)) };
    }),
  );

  gradTest('swigluBackward', (rng) => {
    const n = 33;
    const gate = randn(rng, n, 3);
    const up = randn(rng, n);
    const r = randn(rng, n);
    const y = be.alloc(n);
    const dgate = be.alloc(n);
    const dup = be.alloc(n);
    be.swigluBackward(gate, up, r, dgate, dup, n);
    const loss = (): number => (be.swigluForward(gate, up, y, n), dot(r, y));
    return [{ label: 'dgate', x: gate, grad: dgate, loss }, { label: 'dup', x: up, grad: dup, loss }];
  });

  gradTest('softmaxBackward', (rng) => {
    const [N, C] = [3, 17];
    const x = randn(rng, N * C, 2);
    const r = randn(rng, N * C);
    const y = be.alloc(N * C);
    const dx = be.alloc(N * C);
    be.softmaxForward(x, y, N, C);
    be.softmaxBackward(y, r, dx, N, C);
    return [{ label: 'dx', x, grad: dx, loss: () => (be.softmaxForward(x, y, N, C), dot(r, y)) }];
  });

  gradTest('rmsnormBackward', (rng) =>
    [[3, 16], [2, 1], [1, 33]].flatMap(([N, C]) => {
      const x = randn(rng, N * C);
      const w = randn(rng, C);
      const r = randn(rng, N * C);
      const out = be.alloc(N * C);
      const rstd = be.alloc(N);
      const dx = be.alloc(N * C);
      const dw = be.alloc(C); // starts at 0: the kernel accumulates into it
      be.rmsnormForward(x, w, out, rstd, N, C, 1e-5);
      be.rmsnormBackward(r, x, w, rstd, dx, dw, N, C);
      const loss = (): number => (be.rmsnormForward(x, w, out, rstd, N, C, 1e-5), dot(r, out));
      return [{ label: `dx N=${N} C=${C}`, x, grad: dx, loss }, { label: `dw N=${N} C=${C}`, x: w, grad: dw, loss }];
    }),
  );

  gradTest('rope (backward = inverse rotation)', (rng) =>
    (['interleaved', 'halves'] as RopeMode[]).map((mode) => {
      const [B, T, H, D] = [2, 3, 2, 8];
      const n = B * T * H * D;
      const x = randn(rng, n);
      const r = randn(rng, n);
      const positions = Int32Array.from([5, 6, 40]);
      const invFreq = be.alloc(D / 2).map((_, i) => Math.pow(10000, (-2 * i) / D));
      const y = be.alloc(n);
      const dx = be.alloc(n);
      be.rope(r, dx, B, T, H, D, positions, invFreq, mode, true);
      return { label: mode, x, grad: dx, loss: () => (be.rope(x, y, B, T, H, D, positions, invFreq, mode, false), dot(r, y)) };
    }),
  );

  gradTest('attentionBackward', (rng) => {
    const shapes: AttentionParams[] = [
      { B: 1, Tq: 4, Tk: 4, H: 4, G: 2, D: 4, scale: 0.5, qOffset: 0, causal: true }, // GQA, causal
      { B: 2, Tq: 3, Tk: 3, H: 2, G: 1, D: 4, scale: 0.5, qOffset: 0, causal: false }, // MQA, full
      { B: 1, Tq: 2, Tk: 5, H: 3, G: 3, D: 8, scale: 0.35, qOffset: 3, causal: true }, // KV cache
    ];
    return shapes.flatMap((p) => {
      const nq = p.B * p.Tq * p.H * p.D;
      const nkv = p.B * p.Tk * p.G * p.D;
      const [q, k, v, r] = [randn(rng, nq), randn(rng, nkv), randn(rng, nkv), randn(rng, nq)];
      const out = be.alloc(nq);
      const lse = be.alloc(p.B * p.H * p.Tq);
      const [dq, dk, dv] = [be.alloc(nq), be.alloc(nkv), be.alloc(nkv)];
      be.attentionForward(q, k, v, out, lse, p);
      be.attentionBackward(q, k, v, out, lse, r, dq, dk, dv, p);
      const loss = (): number => (be.attentionForward(q, k, v, out, lse, p), dot(r, out));
      const tag = `H=${p.H} G=${p.G} Tq=${p.Tq} Tk=${p.Tk}${p.causal ? ' causal' : ''}`;
      return [
        { label: `dq ${tag}`, x: q, grad: dq, loss },
        { label: `dk ${tag}`, x: k, grad: dk, loss },
        { label: `dv ${tag}`, x: v, grad: dv, loss },
      ];
    });
  });

  gradTest('crossEntropyBackward', (rng) => {
    const [N, V, ignore] = [5, 7, -100];
    const logits = randn(rng, N * V, 2);
    const targets = Int32Array.from([3, ignore, 0, 6, ignore]);
    const dloss = randn(rng, N);
    const losses = be.alloc(N);
    const lse = be.alloc(N);
    const d = be.alloc(N * V);
    be.crossEntropyForward(logits, targets, losses, lse, N, V, ignore);
    be.crossEntropyBackward(logits, targets, lse, dloss, d, N, V, ignore);
    const loss = (): number => (be.crossEntropyForward(logits, targets, losses, lse, N, V, ignore), dot(dloss, losses));
    return [{ label: 'dlogits (2 of 5 rows ignored)', x: logits, grad: d, loss }];
  });

  gradTest('klDivBackward', (rng) =>
    [1, 2, 0.5].map((T) => {
      const [N, V] = [3, 9];
      const student = randn(rng, N * V, 2);
      const teacher = randn(rng, N * V, 2);
      const dloss = randn(rng, N);
      const losses = be.alloc(N);
      const d = be.alloc(N * V);
      be.klDivBackward(student, teacher, dloss, d, N, V, T);
      return { label: `dstudent T=${T}`, x: student, grad: d, loss: () => (be.klDivForward(student, teacher, losses, N, V, T), dot(dloss, losses)) };
    }),
  );

  gradTest('embeddingBackward (scatter-add, duplicate ids)', (rng) => {
    const [rows, N, C] = [4, 7, 5];
    const table = randn(rng, rows * C);
    const ids = Int32Array.from([2, 0, 2, 2, 3, 0, 2]);
    const r = randn(rng, N * C);
    const out = be.alloc(N * C);
    const dtable = be.alloc(rows * C); // row 1 is never used: its gradient must stay 0
    be.embeddingBackward(r, ids, dtable, N, C);
    return [{ label: 'dtable', x: table, grad: dtable, loss: () => (be.embeddingForward(table, ids, out, N, C), dot(r, out)) }];
  });

  gradTest('matmulQuantT (input gradient through a frozen f16 weight)', (rng) => {
    const [M, N, K] = [3, 5, 7];
    const w = encodeF16(Float32Array.from({ length: N * K }, () => rng.normal()));
    const x = randn(rng, M * K);
    const r = randn(rng, M * N);
    const y = be.alloc(M * N);
    const dx = be.alloc(M * K);
    be.matmulQuantT(r, w, 'f16', dx, M, N, K);
    return [{ label: 'dx', x, grad: dx, loss: () => (be.matmulQuant(x, w, 'f16', y, M, N, K), dot(r, y)) }];
  });
});
