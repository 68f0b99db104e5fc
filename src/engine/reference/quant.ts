// Reference products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_k/q6_k): dequantize one weight
// row at a time with formats/quant.ts (ggml's block layouts), then plain dot products summed in double. Never a
// dequantized copy of the whole weight.
// Decode-shaped products (M ≤ INT8_DOT_MAX_M rows) with q8_0/q4_0 weights compute what native/src/quant.c does
// there, as llama.cpp does: each x row quantized to q8 blocks (quantizeRowQ8, bit-exact with the C), integer dots
// per block, the block sums scaled by d_w · d_x and added up.

import type { Buf } from '../backend.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { bf16BitsToF32, dequantize, f16BitsToF32, f32ToBf16Bits } from '../../formats/quant.js';
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

/** Up to this many rows of x (or at any M with inference), q8_0/q4_0 products take the int8 path (QINT8_MAX_M in
 *  native/src/quant.c). */
export const INT8_DOT_MAX_M = 8;
/** Values per block: q8_0/q4_0 weights and the quantized x rows alike. */
const QK = 32;

const f32 = Math.fround;

/** Round half to even (what the SIMD conversions and the C's 1.5·2²³ trick do). */
function roundHalfEven(v: number): number {
  const r = Math.round(v); // halves go up
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * x[off, off + K) as q8 blocks of 32 (native/src/kernels_quant.h, llama.cpp's AVX quantize_row_q8_0 with a
 * float32 scale), every step rounded to float32 as the C does:
 *   amax = max |x_j|,  d = amax / 127,  id = amax ≠ 0 ? 127 / amax : 0,  q_j = roundHalfEven(x_j · id).
 * Writes qs[K] and d[K / 32]; false (nothing meaningful written) when some x is not finite.
 */
export function quantizeRowQ8(x: ArrayLike<number>, off: number, K: number, qs: Int8Array, d: Float32Array): boolean {
  for (let b = 0; b < K / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const a = Math.abs(f32(x[off + b * QK + j]));
      if (!Number.isFinite(a)) return false;
      if (a > amax) amax = a;
    }
    const id = amax !== 0 ? f32(127 / amax) : 0;
    d[b] = amax / 127; // Float32Array store: rounds once, as the C float division does
    for (let j = 0; j < QK; j++) qs[b * QK + j] = roundHalfEven(f32(f32(x[off + b * QK + j]) * id));
  }
  return true;
}

/** The int8 path's weight block b of one row as integers (q8_0 as stored; q4_0 nibble − 8, low nibbles first) and
 *  its scale. */
function weightBlock(row: Uint8Array, dtype: 'q8_0' | 'q4_0', b: number, w: Int32Array): number {
  const o = b * (dtype === 'q8_0' ? 34 : 18);
  for (let j = 0; j < 16; j++) {
    const byte = row[o + 2 + j];
    if (dtype === 'q8_0') {
      w[j] = (byte << 24) >> 24;
      w[j + 16] = (row[o + 18 + j] << 24) >> 24;
    } else {
      w[j] = (byte & 0x0f) - 8;
      w[j + 16] = (byte >> 4) - 8;
    }
  }
  return f16BitsToF32(row[o] | (row[o + 1] << 8));
}

/** The int8 path; false (nothing written) when some x is not finite, left to the float path. */
function matmulQuantInt8(x: Buf, w: Uint8Array, dtype: 'q8_0' | 'q4_0', out: Buf, M: number, N: number, K: number): boolean {
  const nb = K / QK;
  const qs = new Int8Array(M * K);
  const d = new Float32Array(M * nb);
  for (let m = 0; m < M; m++) if (!quantizeRowQ8(x, m * K, K, qs.subarray(m * K), d.subarray(m * nb))) return false;
  const rowBytes = dtypeBytes(dtype, K);
  const wb = new Int32Array(QK);
  const acc = new Float64Array(M);
  for (let n = 0; n < N; n++) {
    const row = w.subarray(n * rowBytes, (n + 1) * rowBytes);
    acc.fill(0);
    for (let b = 0; b < nb; b++) {
      const dw = weightBlock(row, dtype, b, wb);
      for (let m = 0; m < M; m++) {
        let isum = 0; // exact: |Σ| ≤ 32 · 128 · 127
        for (let j = 0; j < QK; j++) isum += wb[j] * qs[m * K + b * QK + j];
        acc[m] += f32(dw * d[m * nb + b]) * isum;
      }
    }
    for (let m = 0; m < M; m++) out[m * N + n] = acc[m];
  }
  return true;
}

/**
 * out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ:  out[m, n] = Σ_k x[m, k] · w[n, k]  (written). For M ≤ INT8_DOT_MAX_M
 * (any M with inference) and q8_0/q4_0 weights, x is quantized first (matmulQuantInt8), as the native backend and
 * llama.cpp do; with inference and bf16 weights, x is rounded to bf16 first (llama.cpp's vec_dot_type).
 */
export function matmulQuant(x: Buf, w: Uint8Array, dtype: ByteDType, out: Buf, M: number, N: number, K: number, inference = false): void {
  checkShapes('matmulQuant', w, dtype, N, K);
  needLength('matmulQuant', 'x', x, M * K);
  needLength('matmulQuant', 'out', out, M * N);
  if ((M <= INT8_DOT_MAX_M || inference) && (dtype === 'q8_0' || dtype === 'q4_0') && matmulQuantInt8(x, w, dtype, out, M, N, K)) return;
  if (dtype === 'bf16' && inference) x = Float32Array.from(x.subarray(0, M * K), (v) => bf16BitsToF32(f32ToBf16Bits(v)));
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

/** out[N, C] = dequant(table)[ids[n], :] for a frozen table[V, C] in a byte dtype. */
export function gatherQuant(table: Uint8Array, dtype: ByteDType, ids: Int32Array, out: Buf, N: number, C: number): void {
  const rowBytes = dtypeBytes(dtype, C);
  const V = Math.floor(table.length / rowBytes);
  needLength('gatherQuant', 'ids', ids, N);
  needLength('gatherQuant', 'out', out, N * C);
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`gatherQuant: ids[${n}] = ${id} is outside a table of ${V} rows`);
    const row = weightRow(table, dtype, id, C);
    for (let c = 0; c < C; c++) out[n * C + c] = row[c];
  }
}
