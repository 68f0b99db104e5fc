// ggml's reference K-quant writers (quantize_row_q{2,3,4,5,6}_K_ref in ggml-quants.c), which is what llama-quantize
// runs when it has no importance matrix: per sub-block a scale (and min) searched by make_qx_quants /
// make_q3_quants / make_qkx2_quants, the sub-block scales quantized against one f16 super-block scale, then every
// value requantized against its stored scale. Layouts in legacy.ts's header.
//
// Bit-exactness: the C computes in float32 (SSE, no FMA, no reassociation), one rounding per operation in source
// order, so every product, quotient and running sum below goes through fr() in the same order as the C.

import { nearestInt, putU16 } from './block.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';
import { scaleMinK4 } from './kquants.js';

const fr = Math.fround;
const QK_K = 256;
const GROUP_MAX_EPS = fr(1e-15);
const F01 = fr(0.1);

function checkRow(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n % QK_K !== 0) throw new Error(`${what}: ${n} values is not a multiple of the block size ${QK_K}`);
}

// ---- the scale searches ------------------------------------------------------------------------------------------

/** make_qx_quants with rmse_type 1 and no importance weights (w = x²): symmetric levels −nmax…nmax−1 for x[o..o+n),
 *  stored + nmax in L[o..]; the scale among 19 trial inverse scales with the best weighted fit. Returns the scale. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, o: number, L: Int8Array | Uint8Array): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i] ?? 0);
    if (ax > amax) {
      amax = ax;
      max = x[o + i] ?? 0;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      if (store) L[o + i] = l + nmax;
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(fr(-nmax / max), true);
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(F01 * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      fit(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants with do_rmse: levels −nmax…nmax−1 (stored + nmax), then up to 5 passes moving single values to the
 *  level that improves the x²-weighted fit. Returns the scale. */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, o: number, L: Int8Array): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i] ?? 0);
    if (ax > amax) {
      amax = ax;
      max = x[o + i] ?? 0;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[o + i] ?? 0;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[o + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const li = L[o + i] ?? 0;
      const w = fr(xi * xi);
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const nl = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(fr(xi * sl2) / slx))));
        if (nl !== li) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[o + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[o + i] = (L[o + i] ?? 0) + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** make_qkx2_quants: asymmetric levels 0…nmax with x ≈ scale·l − min, min ≤ 0 clipped; nstep+1 trial inverse
 *  scales, each refit by weighted least squares for (scale, min), the best by weighted |error| (useMad) or error².
 *  Levels in L[o..], −min in out[0]; returns the scale. */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, o: number, weights: Float32Array, L: Uint8Array, Laux: Uint8Array,
  out: Float32Array, rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  let min = x[o] ?? 0;
  let max = min;
  let sumW = weights[0] ?? 0;
  let sumX = fr(sumW * min);
  for (let i = 1; i < n; i++) {
    const xi = x[o + i] ?? 0;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i] ?? 0;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    out[0] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  const err = (d: number): number => (useMad ? Math.abs(d) : fr(d * d));
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[o + i] ?? 0;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[o + i] = l;
    bestError = fr(bestError + fr((weights[i] ?? 0) * err(fr(fr(fr(scale * l) + min) - xi))));
  }
  if (nstep < 1) {
    out[0] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min)); // min as updated by the best fit so far
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const wl = fr((weights[i] ?? 0) * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const d = fr(fr(fr(thisScale * (Laux[i] ?? 0)) + thisMin) - (x[o + i] ?? 0));
        curError = fr(curError + fr((weights[i] ?? 0) * err(d)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[o + i] = Laux[i] ?? 0;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out[0] = -min;
  return scale;
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

/** quantize_row_q2_K_ref: 16 sub-blocks of 16, make_qkx2_quants(nmax 3, |x| weights, mad), 4-bit scales and mins. */
export function quantizeQ2_K(src: Float32Array): Uint8Array {
  checkRow('q2_k', src.length);
  const out = new Uint8Array((src.length / QK_K) * 84);
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(16);
  const w = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  const m = new Float32Array(1);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const o = b * 84;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) w[l] = Math.abs(x[16 * j + l] ?? 0);
      scales[j] = makeQkx2Quants(16, 3, x, 16 * j, w, L, Laux, m, fr(-0.5), F01, 15, true);
      mins[j] = m[0] ?? 0;
      if ((scales[j] ?? 0) > maxScale) maxScale = scales[j] ?? 0;
      if ((mins[j] ?? 0) > maxMin) maxMin = mins[j] ?? 0;
    }
    const dh = maxScale > 0 ? f32ToF16Bits(fr(maxScale / 15)) : 0;
    const mh = maxMin > 0 ? f32ToF16Bits(fr(maxMin / 15)) : 0;
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = nearestInt(fr(iscale * (scales[j] ?? 0))) & 0xff;
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) out[o + j] = ((out[o + j] ?? 0) | (nearestInt(fr(iscale * (mins[j] ?? 0))) << 4)) & 0xff;
    }
    putU16(out, o + 80, dh);
    putU16(out, o + 82, mh);
    const dAll = f16BitsToF32(dh);
    const mAll = f16BitsToF32(mh);
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

/** quantize_row_q3_K_ref: 16 sub-blocks of 16, make_q3_quants(nmax 4), 6-bit signed scales, the 3rd bit in hmask. */
export function quantizeQ3_K(src: Float32Array): Uint8Array {
  checkRow('q3_k', src.length);
  const out = new Uint8Array((src.length / QK_K) * 110);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const o = b * 110;
    const sc = o + 96; // scales[12]
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
        let l = (nearestInt(fr(iscale * (scales[j] ?? 0))) << 24) >> 24; // C stores it in an int8_t first
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) out[sc + j] = l & 0xf;
        else out[sc + j - 8] = (out[sc + j - 8] ?? 0) | ((l & 0xf) << 4);
        out[sc + 8 + (j % 4)] = (out[sc + 8 + (j % 4)] ?? 0) | ((l >> 4) << (2 * (j >> 2)));
      }
      putU16(out, o + 108, f32ToF16Bits(fr(1 / iscale)));
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

/** The shared body of q4_K and q5_K: 8 sub-blocks of 32 fitted by make_qkx2_quants with weights av_x + |x|, six-bit
 *  scales and mins against f16 d and dmin, then each value requantized to 0…nmax. Levels in L; scales packed at `sc`. */
function fitQ45K(
  x: Float32Array, nmax: number, rmin: number, nstep: number, L: Uint8Array, out: Uint8Array, o: number,
): void {
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const w = new Float32Array(32);
  const Laux = new Uint8Array(32);
  const m = new Float32Array(1);
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
  const sc = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * (scales[j] ?? 0))) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * (mins[j] ?? 0))) & 0xff);
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] = (out[sc + j - 4] ?? 0) | ((ls >> 4) << 6);
      out[sc + j] = (out[sc + j] ?? 0) | ((lm >> 4) << 6);
    }
  }
  const dh = f32ToF16Bits(fr(maxScale / 63));
  const mh = f32ToF16Bits(fr(maxMin / 63));
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

/** quantize_row_q4_K_ref: levels 0…15, make_qkx2_quants(rmin −1, 20 steps); nibbles per 64 values, low then high. */
export function quantizeQ4_K(src: Float32Array): Uint8Array {
  checkRow('q4_k', src.length);
  const out = new Uint8Array((src.length / QK_K) * 144);
  const L = new Uint8Array(QK_K);
  for (let b = 0; b < src.length / QK_K; b++) {
    const o = b * 144;
    fitQ45K(src.subarray(b * QK_K, (b + 1) * QK_K), 15, fr(-1), 20, L, out, o);
    for (let j = 0, q = o + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = (L[j + l] ?? 0) | ((L[j + l + 32] ?? 0) << 4);
    }
  }
  return out;
}

/** quantize_row_q5_K_ref: levels 0…31, make_qkx2_quants(rmin −0.5, 15 steps); the 5th bit in qh (bits 2i, 2i+1 for
 *  the i-th 64 values). */
export function quantizeQ5_K(src: Float32Array): Uint8Array {
  checkRow('q5_k', src.length);
  const out = new Uint8Array((src.length / QK_K) * 176);
  const L = new Uint8Array(QK_K);
  for (let b = 0; b < src.length / QK_K; b++) {
    const o = b * 176;
    fitQ45K(src.subarray(b * QK_K, (b + 1) * QK_K), 31, fr(-0.5), 15, L, out, o);
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

/** quantize_row_q6_K_ref: 16 sub-blocks of 16, make_qx_quants(nmax 32), int8 scales against f16 d = −max/128. */
export function quantizeQ6_K(src: Float32Array): Uint8Array {
  checkRow('q6_k', src.length);
  const out = new Uint8Array((src.length / QK_K) * 210);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < src.length / QK_K; b++) {
    const x = src.subarray(b * QK_K, (b + 1) * QK_K);
    const o = b * 210;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, x, 16 * ib, L);
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
