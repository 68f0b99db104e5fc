// ggml's K-quant writers: quantize_row_q{2,3,4,5,6}_K_ref in ggml-quants.c, which is what llama-quantize runs without
// an importance matrix, and quantize_row_q{2,3,4,5,6}_K_impl, what it runs with one (`weights`: one importance
// weight per column of a row, from the imatrix). Per sub-block a scale (and min) searched by make_qx_quants /
// make_q3_quants / make_qkx2_quants (make_qkx3_quants), the sub-block scales quantized against one f16 super-block
// scale (by rounding in the reference, by make_qp_quants / make_qx_quants with weights), then every value
// requantized against its stored scale. Layouts in legacy.ts's header.
//
// Bit-exactness: the C computes in float32 (SSE, no FMA, no reassociation), one rounding per operation in source
// order, so every product, quotient and running sum below goes through fr() in the same order as the C.

import { checkWeights, nearestInt, putU16 } from './block.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';
import { scaleMinK4 } from './kquants.js';
import { GROUP_MAX_EPS, makeQ3Quants, makeQkx2Quants, makeQpQuants, makeQxQuants } from './scale-search.js';

const fr = Math.fround;
const QK_K = 256;
const F01 = fr(0.1);

function checkRow(what: string, n: number, weights?: Float32Array): void {
  if (!Number.isSafeInteger(n) || n % QK_K !== 0) throw new Error(`${what}: ${n} values is not a multiple of the block size ${QK_K}`);
  if (weights !== undefined) checkWeights(what, n, weights, QK_K);
}

/** The importance weights of super-block b (the imatrix values of its columns), or null without an imatrix. */
function blockWeights(weights: Float32Array | undefined, b: number): Float32Array | null {
  if (weights === undefined) return null;
  const o = (b % (weights.length / QK_K)) * QK_K;
  return weights.subarray(o, o + QK_K);
}

/** Σ x² over the 256 values of a super-block, in order. */
function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let l = 0; l < QK_K; l++) s = fr(s + fr((x[l] ?? 0) * (x[l] ?? 0)));
  return s;
}

/** The _impl paths' weights for x[o..o+n): qw[o+l]·√(σ² + x²) into w[0..n); returns their sum. */
function imatrixWeights(x: Float32Array, qw: Float32Array, o: number, n: number, sigma2: number, w: Float32Array): number {
  let sum = 0;
  for (let l = 0; l < n; l++) {
    const xi = x[o + l] ?? 0;
    w[l] = fr((qw[o + l] ?? 0) * fr(Math.sqrt(fr(sigma2 + fr(xi * xi)))));
    sum = fr(sum + (w[l] ?? 0));
  }
  return sum;
}

/** Packs 2-bit levels L[0..256) as q2_K/q3_K's qs: byte j/4 + l of each 128 holds l, l+32, l+64, l+96. */
function pack2Bit(L: Int8Array | Uint8Array, q: Uint8Array, o: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      q[o + j / 4 + l] = (L[j + l] ?? 0) | ((L[j + l + 32] ?? 0) << 2) | ((L[j + l + 64] ?? 0) << 4) | ((L[j + l + 96] ?? 0) << 6);
    }
  }
}

// ---- q2_K ------------------------------------------------------------------------------------------------------

/** quantize_row_q2_K_ref: 16 sub-blocks of 16, make_qkx2_quants(nmax 3, |x| weights, mad), 4-bit scales and mins.
 *  With importance weights, quantize_row_q2_K_impl: weights qw·√(σ² + x²) (σ² = mean x² of the super-block),
 *  make_qkx3_quants(rmin −0.9, 36 steps, squared error), scales and mins by make_qp_quants. */
export function quantizeQ2_K(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkRow('q2_k', src.length, weights);
  const out = new Uint8Array((src.length / QK_K) * 84);
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(16);
  const w = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  const sw = new Float32Array(16);
  const Ls = new Uint8Array(16);
  const Lm = new Uint8Array(16);
  const m = new Float32Array(1);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const qw = blockWeights(weights, b);
    const o = b * 84;
    if (qw === null) {
      let maxScale = 0;
      let maxMin = 0;
      for (let j = 0; j < 16; j++) {
        for (let l = 0; l < 16; l++) w[l] = Math.abs(x[16 * j + l] ?? 0);
        scales[j] = makeQkx2Quants(16, 3, x, 16 * j, w, L, Laux, m, fr(-0.5), F01, 15, true);
        mins[j] = m[0] ?? 0;
        if ((scales[j] ?? 0) > maxScale) maxScale = scales[j] ?? 0;
        if ((mins[j] ?? 0) > maxMin) maxMin = mins[j] ?? 0;
      }
      if (maxScale > 0) {
        const iscale = fr(15 / maxScale);
        for (let j = 0; j < 16; j++) out[o + j] = nearestInt(fr(iscale * (scales[j] ?? 0))) & 0xff;
      }
      if (maxMin > 0) {
        const iscale = fr(15 / maxMin);
        for (let j = 0; j < 16; j++) out[o + j] = ((out[o + j] ?? 0) | (nearestInt(fr(iscale * (mins[j] ?? 0))) << 4)) & 0xff;
      }
      putU16(out, o + 80, maxScale > 0 ? f32ToF16Bits(fr(maxScale / 15)) : 0);
      putU16(out, o + 82, maxMin > 0 ? f32ToF16Bits(fr(maxMin / 15)) : 0);
    } else {
      const sigma2 = fr(sumSquares(x) / QK_K);
      for (let j = 0; j < 16; j++) {
        sw[j] = imatrixWeights(x, qw, 16 * j, 16, sigma2, w);
        scales[j] = makeQkx2Quants(16, 3, x, 16 * j, w, L, Laux, m, fr(-0.9), fr(0.05), 36, false);
        mins[j] = m[0] ?? 0;
      }
      const dm = makeQpQuants(16, 15, scales, Ls, sw);
      const mm = makeQpQuants(16, 15, mins, Lm, sw);
      putU16(out, o + 80, f32ToF16Bits(dm));
      putU16(out, o + 82, f32ToF16Bits(mm));
      for (let j = 0; j < 16; j++) out[o + j] = (Ls[j] ?? 0) | ((Lm[j] ?? 0) << 4);
    }
    const dAll = f16BitsToF32((out[o + 80] ?? 0) | ((out[o + 81] ?? 0) << 8));
    const mAll = f16BitsToF32((out[o + 82] ?? 0) | ((out[o + 83] ?? 0) << 8));
    for (let j = 0; j < 16; j++) {
      const sc = out[o + j] ?? 0;
      const d = fr(dAll * (sc & 0xf));
      if (d === 0) continue;
      const dm = fr(mAll * (sc >>> 4));
      for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(0, Math.min(3, nearestInt(fr(fr((x[16 * j + i] ?? 0) + dm) / d))));
    }
    pack2Bit(L, out, o + 16);
  }
  return out;
}

// ---- q3_K ------------------------------------------------------------------------------------------------------

/** Stores the 6-bit scale l (already + 32) of sub-block j in q3_K's scales[12] at `sc`. */
function packQ3Scale(out: Uint8Array, sc: number, j: number, l: number): void {
  if (j < 8) out[sc + j] = l & 0xf;
  else out[sc + j - 8] = (out[sc + j - 8] ?? 0) | ((l & 0xf) << 4);
  out[sc + 8 + (j % 4)] = (out[sc + 8 + (j % 4)] ?? 0) | ((l >> 4) << (2 * (j >> 2)));
}

/** quantize_row_q3_K_ref: 16 sub-blocks of 16, make_q3_quants(nmax 4), 6-bit signed scales, the 3rd bit in hmask.
 *  With importance weights, quantize_row_q3_K_impl: make_qx_quants(nmax 4) weighted by qw·√(σ² + x²) (σ² = 2·mean x²),
 *  the scales by make_qx_quants(nmax 32) weighted by each sub-block's weight sum. */
export function quantizeQ3_K(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkRow('q3_k', src.length, weights);
  const out = new Uint8Array((src.length / QK_K) * 110);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  const w = new Float32Array(16);
  const sw = new Float32Array(16);
  const Ls = new Int8Array(16);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const qw = blockWeights(weights, b);
    const o = b * 110;
    const sc = o + 96; // scales[12]
    if (qw === null) {
      let maxScale = 0;
      let amax = 0;
      for (let j = 0; j < 16; j++) {
        scales[j] = makeQ3Quants(16, 4, x, 16 * j, L);
        const s = Math.abs(scales[j] ?? 0);
        if (s > amax) {
          amax = s;
          maxScale = scales[j] ?? 0;
        }
      }
      if (maxScale !== 0) {
        const iscale = fr(-32 / maxScale);
        for (let j = 0; j < 16; j++) {
          const l = (nearestInt(fr(iscale * (scales[j] ?? 0))) << 24) >> 24; // C stores it in an int8_t first
          packQ3Scale(out, sc, j, Math.max(-32, Math.min(31, l)) + 32);
        }
        putU16(out, o + 108, f32ToF16Bits(fr(1 / iscale)));
      }
    } else {
      const sigma2 = fr(fr(2 * sumSquares(x)) / QK_K);
      for (let j = 0; j < 16; j++) {
        sw[j] = imatrixWeights(x, qw, 16 * j, 16, sigma2, w);
        scales[j] = makeQxQuants(16, 4, x, 16 * j, L, w);
      }
      const dBlock = makeQxQuants(16, 32, scales, 0, Ls, sw);
      for (let j = 0; j < 16; j++) packQ3Scale(out, sc, j, Ls[j] ?? 0);
      putU16(out, o + 108, f32ToF16Bits(dBlock));
    }
    const dAll = f16BitsToF32((out[o + 108] ?? 0) | ((out[o + 109] ?? 0) << 8));
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? (out[sc + j] ?? 0) & 0xf : (out[sc + j - 8] ?? 0) >>> 4;
      const s = (low | ((((out[sc + 8 + (j % 4)] ?? 0) >>> (2 * (j >> 2))) & 3) << 4)) - 32;
      const d = fr(dAll * s);
      if (d === 0) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-4, Math.min(3, nearestInt(fr((x[16 * j + i] ?? 0) / d)))) + 4;
    }
    // hmask: the high bit of values 0..31 in bit 0 of bytes 0..31, of values 32..63 in bit 1, …
    for (let j = 0, m = 0, hm = 1; j < QK_K; j++) {
      if ((L[j] ?? 0) > 3) {
        out[o + m] = (out[o + m] ?? 0) | hm;
        L[j] = (L[j] ?? 0) - 4;
      }
      if (++m === 32) {
        m = 0;
        hm <<= 1;
      }
    }
    pack2Bit(L, out, o + 32);
  }
  return out;
}

// ---- q4_K, q5_K ------------------------------------------------------------------------------------------------

/** The shared body of q4_K and q5_K for super-block x (importance weights qw, or null): 8 sub-blocks of 32 fitted by
 *  make_qkx2_quants (weights av_x + |x|; with qw, make_qkx3_quants weighted by qw·√(σ² + x²)), six-bit scales and
 *  mins against f16 d and dmin (rounded against the largest; with qw, by make_qp_quants), then each value requantized
 *  to 0…nmax. Levels in L; scales packed at o + 4. */
function fitQ45K(
  x: Float32Array, qw: Float32Array | null, nmax: number, rmin: number, nstep: number, L: Uint8Array, out: Uint8Array, o: number,
): void {
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const w = new Float32Array(32);
  const sw = new Float32Array(8);
  const Laux = new Uint8Array(32);
  const Ls = new Uint8Array(8);
  const Lm = new Uint8Array(8);
  const m = new Float32Array(1);
  let dh: number;
  let mh: number;
  if (qw === null) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr((x[32 * j + l] ?? 0) * (x[32 * j + l] ?? 0)));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[32 * j + l] ?? 0));
      scales[j] = makeQkx2Quants(32, nmax, x, 32 * j, w, L, Laux, m, rmin, F01, nstep, false);
      mins[j] = m[0] ?? 0;
      if ((scales[j] ?? 0) > maxScale) maxScale = scales[j] ?? 0;
      if ((mins[j] ?? 0) > maxMin) maxMin = mins[j] ?? 0;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      Ls[j] = Math.min(63, nearestInt(fr(invScale * (scales[j] ?? 0))) & 0xff);
      Lm[j] = Math.min(63, nearestInt(fr(invMin * (mins[j] ?? 0))) & 0xff);
    }
    dh = f32ToF16Bits(fr(maxScale / 63));
    mh = f32ToF16Bits(fr(maxMin / 63));
  } else {
    const sigma2 = fr(fr(2 * sumSquares(x)) / QK_K);
    for (let j = 0; j < 8; j++) {
      sw[j] = imatrixWeights(x, qw, 32 * j, 32, sigma2, w);
      scales[j] = makeQkx2Quants(32, nmax, x, 32 * j, w, L, Laux, m, fr(-0.9), fr(0.05), 36, false);
      mins[j] = m[0] ?? 0;
    }
    dh = f32ToF16Bits(makeQpQuants(8, 63, scales, Ls, sw));
    mh = f32ToF16Bits(makeQpQuants(8, 63, mins, Lm, sw));
    if (nmax === 31) {
      for (let j = 0; j < 8; j++) { // quantize_row_q5_K_impl clamps them (q4_K's does not)
        Ls[j] = Math.min(63, Ls[j] ?? 0);
        Lm[j] = Math.min(63, Lm[j] ?? 0);
      }
    }
  }
  const sc = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Ls[j] ?? 0;
    const lm = Lm[j] ?? 0;
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] = (out[sc + j - 4] ?? 0) | ((ls >> 4) << 6);
      out[sc + j] = (out[sc + j] ?? 0) | ((lm >> 4) << 6);
    }
  }
  putU16(out, o, dh);
  putU16(out, o + 2, mh);
  const dAll = f16BitsToF32(dh);
  const mAll = f16BitsToF32(mh);
  for (let j = 0; j < 8; j++) {
    const [s, mq] = scaleMinK4(j, out, sc);
    const d = fr(dAll * s);
    if (d === 0) continue;
    const dm = fr(mAll * mq);
    for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(fr(fr((x[32 * j + i] ?? 0) + dm) / d))));
  }
}

/** quantize_row_q4_K_ref: levels 0…15, make_qkx2_quants(rmin −1, 20 steps); nibbles per 64 values, low then high.
 *  With importance weights, quantize_row_q4_K_impl (see fitQ45K). */
export function quantizeQ4_K(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkRow('q4_k', src.length, weights);
  const out = new Uint8Array((src.length / QK_K) * 144);
  const L = new Uint8Array(QK_K);
  for (let b = 0; b < src.length / QK_K; b++) {
    const o = b * 144;
    fitQ45K(src.subarray(b * QK_K, (b + 1) * QK_K), blockWeights(weights, b), 15, fr(-1), 20, L, out, o);
    for (let j = 0, q = o + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = (L[j + l] ?? 0) | ((L[j + l + 32] ?? 0) << 4);
    }
  }
  return out;
}

/** quantize_row_q5_K_ref: levels 0…31, make_qkx2_quants(rmin −0.5, 15 steps); the 5th bit in qh (bits 2i, 2i+1 for
 *  the i-th 64 values). With importance weights, quantize_row_q5_K_impl (see fitQ45K). */
export function quantizeQ5_K(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkRow('q5_k', src.length, weights);
  const out = new Uint8Array((src.length / QK_K) * 176);
  const L = new Uint8Array(QK_K);
  for (let b = 0; b < src.length / QK_K; b++) {
    const o = b * 176;
    fitQ45K(src.subarray(b * QK_K, (b + 1) * QK_K), blockWeights(weights, b), 31, fr(-0.5), 15, L, out, o);
    const qh = o + 16;
    for (let n = 0, ql = o + 48, m1 = 1, m2 = 2; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[n + j] ?? 0;
        let l2 = L[n + j + 32] ?? 0;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j] = (out[qh + j] ?? 0) | m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j] = (out[qh + j] ?? 0) | m2;
        }
        out[ql + j] = l1 | (l2 << 4);
      }
    }
  }
  return out;
}

// ---- q6_K ------------------------------------------------------------------------------------------------------

/** quantize_row_q6_K_ref: 16 sub-blocks of 16, make_qx_quants(nmax 32), int8 scales against f16 d = −max/128.
 *  With importance weights, quantize_row_q6_K_impl: the same, make_qx_quants weighted by the imatrix values alone. */
export function quantizeQ6_K(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkRow('q6_k', src.length, weights);
  const out = new Uint8Array((src.length / QK_K) * 210);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const qw = blockWeights(weights, b);
    const o = b * 210;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, x, 16 * ib, L, qw, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbs) {
        maxAbs = Math.abs(s);
        maxScale = s;
      }
    }
    if (maxAbs < GROUP_MAX_EPS) continue; // an all-zero block: every byte 0, d = +0
    const iscale = fr(-128 / maxScale);
    const dh = f32ToF16Bits(fr(1 / iscale));
    putU16(out, o + 208, dh);
    const dAll = f16BitsToF32(dh);
    for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * (scales[ib] ?? 0)))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * (((out[o + 192 + j] ?? 0) << 24) >> 24));
      if (d === 0) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(fr((x[16 * j + i] ?? 0) / d)))) + 32;
    }
    for (let j = 0, ql = o, qh = o + 128; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (let l = 0; l < 32; l++) {
        const q = (k: number): number => L[j + l + k] ?? 0;
        out[ql + l] = (q(0) & 0xf) | ((q(64) & 0xf) << 4);
        out[ql + l + 32] = (q(32) & 0xf) | ((q(96) & 0xf) << 4);
        out[qh + l] = (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
      }
    }
  }
  return out;
}
