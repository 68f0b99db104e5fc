// ggml's writers for the 32-value blocks llama-quantize falls back to when a row does not split into 256-value
// super-blocks (q5_0 for q4_K, q5_1 for q5_K, q8_0 for q6_K; q4_1 and iq4_nl for other mixes): quantize_row_q4_1_ref,
// _q5_0_ref, _q5_1_ref and quantize_iq4_nl without an importance matrix; with one (`weights`: one importance weight
// per column of a row), quantize_row_q4_0/q4_1/q5_0/q5_1_impl and quantize_iq4_nl / quantize_iq4_xs with quant_weights.
// Layouts in legacy.ts's header. float32 arithmetic as in the C, one Math.fround per operation (see kquants-write.ts).

import { checkLen, checkWeights, nearestInt, putU16 } from './block.js';
import { f32ToF16Bits } from './half.js';
import { KVALUES_IQ4NL } from './legacy.js';
import { GROUP_MAX_EPS, makeQkx2Quants, makeQxQuants } from './scale-search.js';

const fr = Math.fround;

/** The block's min and max (from ±FLT_MAX, as the C starts). */
function minMax(x: Float32Array, o: number): [number, number] {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j] ?? 0;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** The value with the largest |x| (the first one on ties). */
function signedAbsMax(x: Float32Array, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j] ?? 0;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** Stores 5-bit levels q[0..32) as q5_0/q5_1's qh (u32 LE at `h`: bit j = 5th bit of value j) and nibbles at `qs`. */
function pack5Bit(q: Int32Array | Int8Array | Uint8Array, out: Uint8Array, h: number, qs: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const a = q[j] ?? 0;
    const b = q[j + 16] ?? 0;
    out[qs + j] = (a & 0x0f) | ((b & 0x0f) << 4);
    qh |= ((a & 0x10) >>> 4) << j;
    qh |= ((b & 0x10) >>> 4) << (j + 16);
  }
  out[h] = qh & 0xff;
  out[h + 1] = (qh >>> 8) & 0xff;
  out[h + 2] = (qh >>> 16) & 0xff;
  out[h + 3] = (qh >>> 24) & 0xff;
}

/** quantize_row_q4_1_ref: d = (max − min)/15, m = min, q = min(15, (int8)((x − min)/d + 0.5)); with importance
 *  weights, quantize_row_q4_1_impl. */
export function quantizeQ4_1(src: Float32Array, weights?: Float32Array): Uint8Array {
  if (weights !== undefined) return quantizeQx_1Weighted('q4_1', src, weights);
  checkLen('q4_1', src.length, 32, 0, 0);
  const out = new Uint8Array((src.length / 32) * 20);
  for (let b = 0; b < src.length / 32; b++) {
    const [min, max] = minMax(src, b * 32);
    const d = fr(fr(max - min) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * 20;
    putU16(out, o, f32ToF16Bits(d));
    putU16(out, o + 2, f32ToF16Bits(min));
    const q = (v: number): number => Math.min(15, Math.trunc(fr(fr(fr(v - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) out[o + 4 + j] = q(src[b * 32 + j] ?? 0) | (q(src[b * 32 + 16 + j] ?? 0) << 4);
  }
  return out;
}

/** quantize_row_q5_0_ref: d = (value with largest |x|)/−16, q = min(31, (int8)(x/d + 16.5)); with importance
 *  weights, quantize_row_q5_0_impl. */
export function quantizeQ5_0(src: Float32Array, weights?: Float32Array): Uint8Array {
  if (weights !== undefined) return quantizeQ5_0Weighted(src, weights);
  checkLen('q5_0', src.length, 32, 0, 0);
  const out = new Uint8Array((src.length / 32) * 22);
  const q = new Int32Array(32);
  for (let b = 0; b < src.length / 32; b++) {
    const d = fr(signedAbsMax(src, b * 32) / -16);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * 22;
    putU16(out, o, f32ToF16Bits(d));
    for (let j = 0; j < 32; j++) q[j] = Math.min(31, Math.trunc(fr(fr((src[b * 32 + j] ?? 0) * id) + 16.5)));
    pack5Bit(q, out, o + 2, o + 6);
  }
  return out;
}

/** quantize_row_q5_1_ref: d = (max − min)/31, m = min, q = (uint8)((x − min)/d + 0.5); with importance weights,
 *  quantize_row_q5_1_impl. */
export function quantizeQ5_1(src: Float32Array, weights?: Float32Array): Uint8Array {
  if (weights !== undefined) return quantizeQx_1Weighted('q5_1', src, weights);
  checkLen('q5_1', src.length, 32, 0, 0);
  const out = new Uint8Array((src.length / 32) * 24);
  const q = new Int32Array(32);
  for (let b = 0; b < src.length / 32; b++) {
    const [min, max] = minMax(src, b * 32);
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * 24;
    putU16(out, o, f32ToF16Bits(d));
    putU16(out, o + 2, f32ToF16Bits(min));
    for (let j = 0; j < 32; j++) q[j] = Math.trunc(fr(fr(fr((src[b * 32 + j] ?? 0) - min) * id) + 0.5)) & 0xff;
    pack5Bit(q, out, o + 4, o + 8);
  }
  return out;
}

// ---- with importance weights ---------------------------------------------------------------------------------

/**
 * The _impl writers of the 32-value types with importance weights: per row σ² = Σx²/cols, per block the weights
 * qw·√(σ² + x²) and a weighted search for the block's scale (make_qx_quants for q4_0 / q5_0, make_qkx3_quants for
 * q4_1 / q5_1, rmin −0.9, 36 steps); the levels of the search are stored, not requantized against the f16 scale.
 */
function quantizeLegacyWeighted(
  what: string, src: Float32Array, weights: Float32Array, blockBytes: number,
  write: (xb: Float32Array, w: Float32Array, out: Uint8Array, o: number) => void,
): Uint8Array {
  checkLen(what, src.length, 32, 0, 0);
  const rows = checkWeights(what, src.length, weights, 32);
  const cols = weights.length;
  const out = new Uint8Array((src.length / 32) * blockBytes);
  const w = new Float32Array(32);
  for (let r = 0; r < rows; r++) {
    let sumX2 = 0;
    for (let j = 0; j < cols; j++) sumX2 = fr(sumX2 + fr((src[r * cols + j] ?? 0) * (src[r * cols + j] ?? 0)));
    const sigma2 = fr(sumX2 / cols);
    for (let ib = 0; ib < cols / 32; ib++) {
      const xb = src.subarray(r * cols + 32 * ib, r * cols + 32 * ib + 32);
      for (let j = 0; j < 32; j++) {
        const xj = xb[j] ?? 0;
        w[j] = fr((weights[32 * ib + j] ?? 0) * fr(Math.sqrt(fr(sigma2 + fr(xj * xj)))));
      }
      write(xb, w, out, ((r * cols) / 32 + ib) * blockBytes);
    }
  }
  return out;
}

/** quantize_row_q4_0_impl: make_qx_quants(nmax 8) weighted; nibbles as quantize_row_q4_0_ref stores them. */
export function quantizeQ4_0Weighted(src: Float32Array, weights: Float32Array): Uint8Array {
  const L = new Int8Array(32);
  return quantizeLegacyWeighted('q4_0', src, weights, 18, (xb, w, out, o) => {
    putU16(out, o, f32ToF16Bits(makeQxQuants(32, 8, xb, 0, L, w)));
    for (let j = 0; j < 16; j++) out[o + 2 + j] = (L[j] ?? 0) | ((L[j + 16] ?? 0) << 4);
  });
}

/** quantize_row_q5_0_impl: make_qx_quants(nmax 16) weighted. */
function quantizeQ5_0Weighted(src: Float32Array, weights: Float32Array): Uint8Array {
  const L = new Int8Array(32);
  return quantizeLegacyWeighted('q5_0', src, weights, 22, (xb, w, out, o) => {
    putU16(out, o, f32ToF16Bits(makeQxQuants(32, 16, xb, 0, L, w)));
    pack5Bit(L, out, o + 2, o + 6);
  });
}

/** quantize_row_q4_1_impl / q5_1_impl: make_qkx3_quants(levels 0…nmax) weighted; d and m = −(the fitted −min). */
function quantizeQx_1Weighted(what: 'q4_1' | 'q5_1', src: Float32Array, weights: Float32Array): Uint8Array {
  const L = new Uint8Array(32);
  const Laux = new Uint8Array(32);
  const m = new Float32Array(1);
  const nmax = what === 'q4_1' ? 15 : 31;
  return quantizeLegacyWeighted(what, src, weights, what === 'q4_1' ? 20 : 24, (xb, w, out, o) => {
    const d = makeQkx2Quants(32, nmax, xb, 0, w, L, Laux, m, fr(-0.9), fr(0.05), 36, false);
    putU16(out, o, f32ToF16Bits(d));
    putU16(out, o + 2, f32ToF16Bits(-(m[0] ?? 0)));
    if (what === 'q4_1') for (let j = 0; j < 16; j++) out[o + 4 + j] = (L[j] ?? 0) | ((L[j + 16] ?? 0) << 4);
    else pack5Bit(L, out, o + 4, o + 8);
  });
}

// ---- iq4_nl ----------------------------------------------------------------------------------------------------

/** best_index_int8 over the 16 iq4_nl levels: the nearest level to x (the upper one on ties). */
function bestIndex(x: number): number {
  const v = KVALUES_IQ4NL;
  if (x <= (v[0] ?? 0)) return 0;
  if (x >= (v[15] ?? 0)) return 15;
  let ml = 0;
  let mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < (v[mav] ?? 0)) mu = mav;
    else ml = mav;
  }
  return fr(x - (v[mu - 1] ?? 0)) < fr((v[mu] ?? 0) - x) ? mu - 1 : mu;
}

/**
 * quantize_row_iq4_nl_impl with ntry 7 for one super-block of `sbs` values (32: iq4_nl, 256: iq4_xs) at x[0..sbs),
 * importance weights qw[0..sbs) or null: per 32 values the weights qw·√(σ² + x²) (σ² = 2·mean x² of the super-block;
 * x² without qw), the scale −max/−127 and 15 trial scales (itry − 127)/max refit by weighted least squares, the best
 * one kept; iq4_xs then stores each block's scale as 6 bits against d = −max/32 and requantizes against it.
 * Layout at o: f16 d, then for iq4_xs u16 scales_h and u8 scales_l[4]; then the nibbles.
 */
function iq4Impl(sbs: number, x: Float32Array, qw: Float32Array | null, out: Uint8Array, o: number, L: Uint8Array, scales: Float32Array): void {
  const v = KVALUES_IQ4NL;
  const v0 = v[0] ?? 0;
  const w = new Float32Array(32);
  let sigma2 = 0;
  for (let j = 0; j < sbs; j++) sigma2 = fr(sigma2 + fr((x[j] ?? 0) * (x[j] ?? 0)));
  sigma2 = fr(sigma2 * fr(2 / sbs));
  let maxScale = 0;
  let amaxScale = 0;
  for (let ib = 0; ib < sbs / 32; ib++) {
    const xb = x.subarray(32 * ib, 32 * ib + 32);
    for (let j = 0; j < 32; j++) {
      const xj = xb[j] ?? 0;
      w[j] = qw === null ? fr(xj * xj) : fr((qw[32 * ib + j] ?? 0) * fr(Math.sqrt(fr(sigma2 + fr(xj * xj)))));
    }
    const max = signedAbsMax(xb, 0);
    if (Math.abs(max) < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    const fit = (id: number): [number, number] => {
      let sumqx = 0;
      let sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const q = v[bestIndex(fr(id * (xb[j] ?? 0)))] ?? 0;
        const wq = fr((w[j] ?? 0) * q);
        sumqx = fr(sumqx + fr(wq * (xb[j] ?? 0)));
        sumq2 = fr(sumq2 + fr(wq * q));
      }
      return [sumqx, sumq2];
    };
    let [sumqx, sumq2] = fit(fr(1 / fr(-max / v0)));
    let d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
    let best = fr(d * sumqx);
    for (let itry = -7; itry <= 7; itry++) {
      [sumqx, sumq2] = fit(fr((itry + v0) / max));
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
    scales[ib] = d;
    if (Math.abs(d) > amaxScale) {
      amaxScale = Math.abs(d);
      maxScale = d;
    }
  }
  let qs = o + 2;
  if (sbs > 32) {
    const d = fr(-maxScale / 32);
    putU16(out, o, f32ToF16Bits(d));
    const id = d !== 0 ? fr(1 / d) : 0;
    let scalesH = 0;
    for (let ib = 0; ib < sbs / 32; ib++) {
      const l = Math.max(-32, Math.min(31, nearestInt(fr(id * (scales[ib] ?? 0)))));
      const dl = fr(d * l);
      const idl = dl !== 0 ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fr(idl * (x[32 * ib + j] ?? 0)));
      const lu = l + 32;
      const sl = o + 4 + (ib >> 1);
      out[sl] = ib % 2 === 0 ? lu & 0xf : (out[sl] ?? 0) | ((lu & 0xf) << 4);
      scalesH |= (lu >> 4) << (2 * (ib % 8));
    }
    putU16(out, o + 2, scalesH);
    qs = o + 8;
  } else {
    const s = scales[0] ?? 0;
    putU16(out, o, f32ToF16Bits(s));
    const id = s !== 0 ? fr(1 / s) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndex(fr(id * (x[j] ?? 0)));
  }
  for (let i = 0; i < sbs / 32; i++) {
    for (let j = 0; j < 16; j++) out[qs + 16 * i + j] = (L[32 * i + j] ?? 0) | ((L[32 * i + 16 + j] ?? 0) << 4);
  }
}

/** quantize_iq4_nl (ntry 7; what llama-quantize runs, not quantize_row_iq4_nl_ref) for every 32-value block, with
 *  the block's importance weights when given (see iq4Impl). */
export function quantizeIQ4_NL(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkLen('iq4_nl', src.length, 32, 0, 0);
  if (weights !== undefined) checkWeights('iq4_nl', src.length, weights, 32);
  const out = new Uint8Array((src.length / 32) * 18);
  const L = new Uint8Array(32);
  const scales = new Float32Array(1);
  for (let b = 0; b < src.length / 32; b++) {
    const wo = weights === undefined ? 0 : (b % (weights.length / 32)) * 32;
    iq4Impl(32, src.subarray(b * 32, b * 32 + 32), weights?.subarray(wo, wo + 32) ?? null, out, b * 18, L, scales);
  }
  return out;
}

/** quantize_iq4_xs: iq4Impl on each 256-value super-block, with its importance weights when given. */
export function quantizeIQ4_XS(src: Float32Array, weights?: Float32Array): Uint8Array {
  checkLen('iq4_xs', src.length, 256, 0, 0);
  if (weights !== undefined) checkWeights('iq4_xs', src.length, weights, 256);
  const out = new Uint8Array((src.length / 256) * 136);
  const L = new Uint8Array(256);
  const scales = new Float32Array(8);
  for (let b = 0; b < src.length / 256; b++) {
    const wo = weights === undefined ? 0 : (b % (weights.length / 256)) * 256;
    iq4Impl(256, src.subarray(b * 256, b * 256 + 256), weights?.subarray(wo, wo + 256) ?? null, out, b * 136, L, scales);
  }
  return out;
}
