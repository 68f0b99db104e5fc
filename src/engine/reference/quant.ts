// Reference products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_k/q6_k): dequantize one weight
// row at a time with formats/quant.ts (ggml's block layouts), then plain dot products summed in double. Never a
// dequantized copy of the whole weight.

import type { Buf } from '../backend.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { dequantize } from '../../formats/quant.js';
import { needLength } from './check.js';

type ByteDType = Exclude<DType, 'f32'>;

/** Row n of w[N, K] as float32 (K must be a multiple of the dtype's block size). */
function weightRow(w: Uint8Array, dtype: ByteDType, n: number, K: number): Float32Array {
  const rowBytes = dtypeBytes(dtype, K);
  return dequantize(dtype, w.subarray(n * rowBytes, (n + 1) * rowBytes), K);
}

function checkShapes(kernel: string, w: Uint8Array, dtype: ByteDType, N: number, K: number): void {
  needLength(kernel, `w (${dtype})`, w, N * dtypeBytes(dtype, K));
}

/** out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ:  out[m, n] = Σ_k x[m, k] · w[n, k]  (written). */
export function matmulQuant(x: Buf, w: Uint8Array, dtype: ByteDType, out: Buf, M: number, N: number, K: number): void {
  checkShapes('matmulQuant', w, dtype, N, K);
  needLength('matmulQuant', 'x', x, M * K);
  needLength('matmulQuant', 'out', out, M * N);
  for (let n = 0; n < N; n++) {
    const wn = weightRow(w, dtype, n, K);
    for (let m = 0; m < M; m++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[m * K + k] * wn[k];
      out[m * N + n] = sum;
    }
  }
}

/** dx[M, K] = dy[M, N] · dequant(w)[N, K]:  dx[m, k] = Σ_n dy[m, n] · w[n, k]  (written, summed in double). */
export function matmulQuantT(dy: Buf, w: Uint8Array, dtype: ByteDType, dx: Buf, M: number, N: number, K: number): void {
  checkShapes('matmulQuantT', w, dtype, N, K);
  needLength('matmulQuantT', 'dy', dy, M * N);
  needLength('matmulQuantT', 'dx', dx, M * K);
  const acc = new Float64Array(M * K);
  for (let n = 0; n < N; n++) {
    const wn = weightRow(w, dtype, n, K);
    for (let m = 0; m < M; m++) {
      const g = dy[m * N + n];
      for (let k = 0; k < K; k++) acc[m * K + k] += g * wn[k];
    }
  }
  for (let i = 0; i < M * K; i++) dx[i] = acc[i];
}
