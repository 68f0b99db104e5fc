// qlinear picks the activation precision by the tape: without one (generation, evaluation) q8_0/q4_0 products
// round x to int8 blocks at every row count, as llama.cpp's prefill does; with one (training) only decode-shaped
// products do, so a training forward keeps float activations. bf16 products likewise round x to bf16 without a tape
// (llama.cpp's vec_dot_type), at every M, and keep float x with one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend, noGrad, Tensor, tidy } from '../index.js';
import { encodeBf16, quantize } from '../quant/index.js';
import { INT8_DOT_MAX_M } from '../reference/quant.js';
import { qlinear } from './quant.js';

test('qlinear: int8 activations at any M without a tape, float with one past INT8_DOT_MAX_M', () => {
  const [M, N, K] = [INT8_DOT_MAX_M + 4, 8, 64];
  const xs = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37) * 2);
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    const wq = quantize(dtype, Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.11) * 0.3));
    const w = Tensor.fromBytes(wq, [N, K], dtype).keep();
    const want = (int8: boolean): Float32Array => {
      const out = new Float32Array(M * N);
      getBackend().matmulQuant(xs, wq, dtype, out, M, N, K, int8);
      return out;
    };
    const [int8, float] = [want(true), want(false)];
    assert.ok(int8.some((v, i) => v !== float[i]), 'the two paths round differently (else this test shows nothing)');
    const noTape = noGrad(() => tidy(() => qlinear(Tensor.from(xs, [M, K]), w).toArray()));
    const taped = tidy(() => qlinear(Tensor.from(xs, [M, K]), w).toArray());
    assert.deepEqual(noTape, int8, `${dtype}: without a tape`);
    assert.deepEqual(taped, float, `${dtype}: with the tape`);
    w.dispose();
  }
});

test('qlinear: bf16 activations without a tape, float with one, decode and prefill shapes alike', () => {
  for (const M of [1, 40]) {
    const [N, K] = [8, 64];
    const xs = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37) * 2);
    const wb = encodeBf16(Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.11) * 0.3));
    const w = Tensor.fromBytes(wb, [N, K], 'bf16').keep();
    const want = (inference: boolean): Float32Array => {
      const out = new Float32Array(M * N);
      getBackend().matmulQuant(xs, wb, 'bf16', out, M, N, K, inference);
      return out;
    };
    const [rounded, float] = [want(true), want(false)];
    assert.ok(rounded.some((v, i) => v !== float[i]), 'the two paths round differently (else this test shows nothing)');
    assert.deepEqual(noGrad(() => tidy(() => qlinear(Tensor.from(xs, [M, K]), w).toArray())), rounded, `M=${M}: without a tape`);
    assert.deepEqual(tidy(() => qlinear(Tensor.from(xs, [M, K]), w).toArray()), float, `M=${M}: with the tape`);
    w.dispose();
  }
});
