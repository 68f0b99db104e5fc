// Reference products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_k/q6_k): dequantize one weight
// row at a time with engine/quant (ggml's block layouts), then plain dot products summed in double. Never a
// dequantized copy of the whole weight.
// Decode-shaped products (M ≤ INT8_DOT_MAX_M rows) with q8_0/q4_0 weights compute what native/src/quant.c does
// there, as llama.cpp does: each x row quantized to q8 blocks (quantizeRowQ8, bit-exact with the C), integer dots
// per block, the block sums scaled by d_w · d_x and added up. q5_0, iq4_nl, q4_1 and q5_1 weights do too (llama.cpp's
// vec_dot_*_q8_0 / _q8_1): their blocks are integers times an f16 d as well, and q4_1/q5_1's offsets m add
// m · s_x per block, s_x = d_x · Σ_j q_x,j.
// The k-quants (q2_k … q6_k) take the same path with x as q8_K superblocks of 256 (quantizeRowQ8K) and llama.cpp's
// vec_dot_q*_K_q8_K integer sums (matmulQuantK), their float steps in the fixed order native/src/kernels_kquant.h
// defines, so every native SIMD level gives the very bits computed here.

import type { Buf } from '../backend.js';
import { DTYPES, dtypeBytes, type DType } from '../dtype.js';
import { bf16BitsToF32, dequantize, f16BitsToF32, f32ToBf16Bits, KVALUES_IQ4NL, scaleMinK4 } from '../quant/index.js';
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

/** Values per k-quant superblock: the k-quant weights and the q8_K x rows alike. */
const QK_K = 256;

/**
 * x[off, off + K) as q8_K superblocks (llama.cpp's quantize_row_q8_K_ref; native/src/kernels_kquant.h), in float32:
 *   max = the first x_j of largest |x_j|,  iscale = −127 / max,  q_j = min(127, roundHalfEven(iscale · x_j)),
 *   d = 1 / iscale,  bsum_i = Σ_{j<16} q_16i+j  (an all-zero block: d = 0, q = 0).
 * Writes qs[K], d[K / 256], bsum[K / 16]; false when some x is not finite or −127 / max overflows (as the C).
 */
export function quantizeRowQ8K(x: ArrayLike<number>, off: number, K: number, qs: Int8Array, d: Float32Array, bsum: Int16Array): boolean {
  for (let b = 0; b < K / QK_K; b++) {
    const o = off + b * QK_K;
    let [max, amax] = [0, 0];
    for (let j = 0; j < QK_K; j++) {
      const v = f32(x[o + j]);
      const a = Math.abs(v);
      if (!Number.isFinite(a)) return false;
      if (a > amax) [amax, max] = [a, v];
    }
    const q = qs.subarray(b * QK_K, (b + 1) * QK_K);
    if (amax === 0) {
      d[b] = 0;
      q.fill(0);
      bsum.fill(0, b * 16, b * 16 + 16);
      continue;
    }
    const iscale = f32(-127 / max);
    if (!Number.isFinite(iscale)) return false;
    for (let j = 0; j < QK_K; j++) q[j] = Math.min(127, roundHalfEven(f32(iscale * f32(x[o + j]))));
    for (let i = 0; i < 16; i++) {
      let sum = 0;
      for (let j = 0; j < 16; j++) sum += q[16 * i + j];
      bsum[b * 16 + i] = sum;
    }
    d[b] = 1 / iscale; // Float32Array store: one rounding, as the C float division
  }
  return true;
}

/** Weight dtypes of the k-quant int8 path. */
export type KQuantDType = 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k';
const KQUANT_DTYPES: readonly DType[] = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];

/** One superblock unpacked (kq_block in native/src/kernels_kquant.h): values u ≥ 0, the scale s and offset o of each
 *  16-value sub-block, d and dmin; value_k = d·s·u − dmin·o (q2_k, q4_k, q5_k) or d·s·(u − c), o = c·s (q3_k, q6_k). */
interface KBlock { u: Uint8Array; s: Int32Array; o: Int32Array; d: number; dmin: number }

/** Superblock b of one row of a k-quant type as a KBlock (into `kb`); whether its offsets are folded (q3_k, q6_k). */
function unpackK(row: Uint8Array, dtype: KQuantDType, b: number, kb: KBlock): boolean {
  const o = b * DTYPES[dtype].blockBytes;
  const blk = row.subarray(o, o + DTYPES[dtype].blockBytes);
  const f16 = (i: number): number => f16BitsToF32(blk[i] | (blk[i + 1] << 8));
  const { u, s } = kb;
  if (dtype === 'q4_k' || dtype === 'q5_k') {
    const q5 = dtype === 'q5_k';
    const [qs, qh] = [q5 ? 48 : 16, 16];
    for (let i = 0; i < 4; i++) {
      const [s0, m0] = scaleMinK4(2 * i, blk, 4);
      const [s1, m1] = scaleMinK4(2 * i + 1, blk, 4);
      s.fill(s0, 4 * i, 4 * i + 2).fill(s1, 4 * i + 2, 4 * i + 4);
      kb.o.fill(m0, 4 * i, 4 * i + 2).fill(m1, 4 * i + 2, 4 * i + 4);
      for (let l = 0; l < 32; l++) {
        const byte = blk[qs + 32 * i + l];
        const h = q5 ? blk[qh + l] : 0;
        u[64 * i + l] = (byte & 0x0f) | (((h >> (2 * i)) & 1) << 4);
        u[64 * i + 32 + l] = (byte >> 4) | (((h >> (2 * i + 1)) & 1) << 4);
      }
    }
    [kb.d, kb.dmin] = [f16(0), f16(2)];
    return false;
  }
  if (dtype === 'q6_k') {
    for (let j = 0; j < 16; j++) [s[j], kb.o[j]] = [(blk[192 + j] << 24) >> 24, 32 * ((blk[192 + j] << 24) >> 24)];
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const [lo, hi, qh] = [blk[64 * h + l], blk[64 * h + l + 32], blk[128 + 32 * h + l]];
        const v = 128 * h + l;
        u[v] = (lo & 0x0f) | ((qh & 3) << 4);
        u[v + 32] = (hi & 0x0f) | (((qh >> 2) & 3) << 4);
        u[v + 64] = (lo >> 4) | (((qh >> 4) & 3) << 4);
        u[v + 96] = (hi >> 4) | (((qh >> 6) & 3) << 4);
      }
    }
    [kb.d, kb.dmin] = [f16(208), 0];
    return true;
  }
  // q2_k / q3_k: sub-block j = 8n + 2p + h holds the 2-bit field p of qs[32n + 16h + l] (q3_k: + 4 where hmask[16h + l]
  // has bit 4n + p)
  const q3 = dtype === 'q3_k';
  for (let j = 0; j < 16; j++) {
    if (q3) {
      const low = j < 8 ? blk[96 + j] & 0x0f : blk[96 + j - 8] >> 4;
      s[j] = (low | (((blk[96 + 8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
      kb.o[j] = 4 * s[j];
    } else [s[j], kb.o[j]] = [blk[j] & 0x0f, blk[j] >> 4];
  }
  const qs = q3 ? 32 : 16;
  for (let n = 0; n < 2; n++) {
    for (let p = 0; p < 4; p++) {
      for (let l = 0; l < 32; l++) {
        const hbit = q3 ? (blk[l] >> (4 * n + p)) & 1 : 0;
        u[128 * n + 32 * p + l] = ((blk[qs + 32 * n + l] >> (2 * p)) & 3) | (hbit << 2);
      }
    }
  }
  [kb.d, kb.dmin] = q3 ? [f16(108), 0] : [f16(80), f16(82)];
  return q3;
}

/**
 * The k-quant int8 path, in native/src/kernels_kquant.h's order: per superblock, 8 lanes of exact integer sums (lane l
 * takes the values k with k mod 32 in [4l, 4l + 4), offsets o_2l·bsum_2l + o_2l+1·bsum_2l+1), added to 8 float32
 * accumulators, which are summed as ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). False (nothing written) when x
 * cannot be quantized (the float path then).
 */
function matmulQuantK(x: Buf, w: Uint8Array, dtype: KQuantDType, out: Buf, M: number, N: number, K: number): boolean {
  const nsb = K / QK_K;
  const qs = new Int8Array(M * K);
  const d = new Float32Array(M * nsb);
  const bsum = new Int16Array((M * K) / 16);
  for (let m = 0; m < M; m++) {
    if (!quantizeRowQ8K(x, m * K, K, qs.subarray(m * K), d.subarray(m * nsb), bsum.subarray((m * K) / 16))) return false;
  }
  const rowBytes = dtypeBytes(dtype, K);
  const kbs: KBlock[] = [];
  const folded: boolean[] = [];
  const [isum, osum, acc] = [new Int32Array(8), new Int32Array(8), new Float32Array(8)];
  for (let n = 0; n < N; n++) {
    const row = w.subarray(n * rowBytes, (n + 1) * rowBytes);
    for (let b = 0; b < nsb; b++) {
      kbs[b] ??= { u: new Uint8Array(QK_K), s: new Int32Array(16), o: new Int32Array(16), d: 0, dmin: 0 };
      folded[b] = unpackK(row, dtype, b, kbs[b]);
    }
    for (let m = 0; m < M; m++) {
      acc.fill(0);
      for (let b = 0; b < nsb; b++) {
        const kb = kbs[b];
        const [q, bs, dx] = [m * K + b * QK_K, (m * K) / 16 + 16 * b, d[m * nsb + b]];
        isum.fill(0);
        for (let k = 0; k < QK_K; k++) isum[(k & 31) >> 2] += kb.s[k >> 4] * kb.u[k] * qs[q + k];
        for (let l = 0; l < 8; l++) osum[l] = kb.o[2 * l] * bsum[bs + 2 * l] + kb.o[2 * l + 1] * bsum[bs + 2 * l + 1];
        const [dd, dm] = [f32(kb.d * dx), f32(kb.dmin * dx)];
        for (let l = 0; l < 8; l++) { // Float32Array stores round each step
          if (folded[b]) acc[l] = acc[l] + f32(dd * f32(isum[l] - osum[l]));
          else {
            acc[l] = acc[l] + f32(dd * f32(isum[l]));
            acc[l] = acc[l] - f32(dm * f32(osum[l]));
          }
        }
      }
      out[m * N + n] = f32(f32(f32(acc[0] + acc[4]) + f32(acc[2] + acc[6])) + f32(f32(acc[1] + acc[5]) + f32(acc[3] + acc[7])));
    }
  }
  return true;
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
 * (any M with inference) and int8-path weights (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl; the k-quants q2_k … q6_k), x is
 * quantized first (matmulQuantInt8, matmulQuantK), as the native backend and
 * llama.cpp do; with inference and bf16 weights, x is rounded to bf16 first (llama.cpp's vec_dot_type).
 */
export function matmulQuant(x: Buf, w: Uint8Array, dtype: ByteDType, out: Buf, M: number, N: number, K: number, inference = false): void {
  checkShapes('matmulQuant', w, dtype, N, K);
  needLength('matmulQuant', 'x', x, M * K);
  needLength('matmulQuant', 'out', out, M * N);
  if ((M <= INT8_DOT_MAX_M || inference) && INT8_DTYPES.includes(dtype) && matmulQuantInt8(x, w, dtype as Int8DType, out, M, N, K)) return;
  if ((M <= INT8_DOT_MAX_M || inference) && KQUANT_DTYPES.includes(dtype) && matmulQuantK(x, w, dtype as KQuantDType, out, M, N, K)) return;
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
