// Reference products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_k/q6_k): dequantize one weight
// row at a time with engine/quant (ggml's block layouts), then plain dot products summed in double. Never a
// dequantized copy of the whole weight.
// Decode-shaped products (M ≤ INT8_DOT_MAX_M rows) with q8_0/q4_0 weights compute what native/src/quant.c does
// there, as llama.cpp does: each x row quantized to q8 blocks (quantizeRowQ8, bit-exact with the C), integer dots
// per block, the block sums scaled by d_w · d_x and added up. q5_0, iq4_nl, q4_1 and q5_1 weights do too (llama.cpp's
// vec_dot_*_q8_0 / _q8_1): their blocks are integers times an f16 d as well, and q4_1/q5_1's offsets m add
// m · s_x per block, s_x = d_x · Σ_j q_x,j.

import type { Buf } from '../backend.js';
import { DTYPES, dtypeBytes, type DType } from '../dtype.js';
import { bf16BitsToF32, dequantize, f16BitsToF32, f32ToBf16Bits, KVALUES_IQ4NL } from '../quant/index.js';
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

/** Up to this many rows of x (or at any M with inference), products with these weights take the int8 path
 *  (QINT8_MAX_M in native/src/quant.c). */
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

/** Weight dtypes of the int8 path: blocks of 32 integers times an f16 d (plus an f16 offset m for q4_1/q5_1). */
export type Int8DType = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'iq4_nl';
const INT8_DTYPES: readonly DType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl'];

/** The int8 path's weight block b of one row as integers (q8_0 as stored; q4_0 nibble − 8 and q4_1 nibble, low
 *  nibbles first; q5_0 q − 16 and q5_1 q; iq4_nl the table's level) and its scale d and offset m (0 without). */
function weightBlock(row: Uint8Array, dtype: Int8DType, b: number, w: Int32Array): [number, number] {
  const o = b * DTYPES[dtype].blockBytes;
  const u16 = (i: number): number => row[o + i] | (row[o + i + 1] << 8);
  const d = f16BitsToF32(u16(0));
  if (dtype === 'q5_0' || dtype === 'q5_1') {
    const h = dtype === 'q5_0' ? o + 2 : o + 4;
    const qh = (row[h] | (row[h + 1] << 8) | (row[h + 2] << 16) | (row[h + 3] << 24)) >>> 0;
    const bias = dtype === 'q5_0' ? 16 : 0;
    for (let j = 0; j < 16; j++) {
      const byte = row[h + 4 + j];
      w[j] = ((byte & 0x0f) | (((qh >>> j) << 4) & 0x10)) - bias;
      w[j + 16] = ((byte >> 4) | ((qh >>> (j + 12)) & 0x10)) - bias;
    }
    return [d, dtype === 'q5_1' ? f16BitsToF32(u16(2)) : 0];
  }
  for (let j = 0; j < 16; j++) {
    if (dtype === 'q8_0') {
      w[j] = (row[o + 2 + j] << 24) >> 24;
      w[j + 16] = (row[o + 18 + j] << 24) >> 24;
    } else {
      const byte = row[o + (dtype === 'q4_1' ? 4 : 2) + j];
      const [lo, hi] = [byte & 0x0f, byte >> 4];
      if (dtype === 'q4_0') [w[j], w[j + 16]] = [lo - 8, hi - 8];
      else if (dtype === 'q4_1') [w[j], w[j + 16]] = [lo, hi];
      else [w[j], w[j + 16]] = [KVALUES_IQ4NL[lo], KVALUES_IQ4NL[hi]];
    }
  }
  return [d, dtype === 'q4_1' ? f16BitsToF32(u16(2)) : 0];
}

/** The int8 path; false (nothing written) when some x is not finite, left to the float path. */
function matmulQuantInt8(x: Buf, w: Uint8Array, dtype: Int8DType, out: Buf, M: number, N: number, K: number): boolean {
  const nb = K / QK;
  const qs = new Int8Array(M * K);
  const d = new Float32Array(M * nb);
  for (let m = 0; m < M; m++) if (!quantizeRowQ8(x, m * K, K, qs.subarray(m * K), d.subarray(m * nb))) return false;
  const s = new Float32Array(M * nb); // block sums d_x · Σ q (float32, as the C)
  for (let i = 0; i < M * nb; i++) {
    let sum = 0;
    for (let j = 0; j < QK; j++) sum += qs[i * QK + j];
    s[i] = d[i] * sum;
  }
  const rowBytes = dtypeBytes(dtype, K);
  const wb = new Int32Array(QK);
  const acc = new Float64Array(M);
  for (let n = 0; n < N; n++) {
    const row = w.subarray(n * rowBytes, (n + 1) * rowBytes);
    acc.fill(0);
    for (let b = 0; b < nb; b++) {
      const [dw, mw] = weightBlock(row, dtype, b, wb);
      for (let m = 0; m < M; m++) {
        let isum = 0; // exact: |Σ| ≤ 32 · 128 · 127
        for (let j = 0; j < QK; j++) isum += wb[j] * qs[m * K + b * QK + j];
        acc[m] += f32(dw * d[m * nb + b]) * isum + mw * s[m * nb + b];
      }
    }
    for (let m = 0; m < M; m++) out[m * N + n] = acc[m];
  }
  return true;
}

/**
 * out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ:  out[m, n] = Σ_k x[m, k] · w[n, k]  (written). For M ≤ INT8_DOT_MAX_M
 * (any M with inference) and int8-path weights (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl), x is quantized first (matmulQuantInt8), as the native backend and
 * llama.cpp do; with inference and bf16 weights, x is rounded to bf16 first (llama.cpp's vec_dot_type).
 */
export function matmulQuant(x: Buf, w: Uint8Array, dtype: ByteDType, out: Buf, M: number, N: number, K: number, inference = false): void {
  checkShapes('matmulQuant', w, dtype, N, K);
  needLength('matmulQuant', 'x', x, M * K);
  needLength('matmulQuant', 'out', out, M * N);
  if ((M <= INT8_DOT_MAX_M || inference) && INT8_DTYPES.includes(dtype) && matmulQuantInt8(x, w, dtype as Int8DType, out, M, N, K)) return;
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
