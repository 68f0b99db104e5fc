// Reference products with frozen byte-dtype weights: dequantize one weight row at a time (ggml's layouts, via
// formats/quant.ts), then plain dot products. Never a dequantized copy of the whole weight.

import type { Buf } from '../backend.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { dequantize } from '../../formats/quant.js';

type ByteDType = Exclude<DType, 'f32'>;

function row(w: Uint8Array, dtype: ByteDType, n: number, K: number): Float32Array {
  const rb = dtypeBytes(dtype, K);
  return dequantize(dtype, w.subarray(n * rb, (n + 1) * rb), K);
}

/** out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ */
export function matmulQuant(x: Buf, w: Uint8Array, dtype: ByteDType, out: Buf, M: number, N: number, K: number): void {
  for (let n = 0; n < N; n++) {
    const wr = row(w, dtype, n, K);
    for (let m = 0; m < M; m++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * wr[k]!;
      out[m * N + n] = s;
    }
  }
}

/** dx[M, K] = dy[M, N] · dequant(w)[N, K] */
export function matmulQuantT(dy: Buf, w: Uint8Array, dtype: ByteDType, dx: Buf, M: number, N: number, K: number): void {
  const acc = new Float64Array(M * K);
  for (let n = 0; n < N; n++) {
    const wr = row(w, dtype, n, K);
    for (let m = 0; m < M; m++) {
      const g = dy[m * N + n]!;
      if (g === 0) continue;
      for (let k = 0; k < K; k++) acc[m * K + k]! += g * wr[k]!;
    }
  }
  dx.set(acc);
}
