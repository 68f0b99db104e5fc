// ggml's writers for the 32-value blocks llama-quantize falls back to when a row does not split into 256-value
// super-blocks (q5_0 for q4_K, q5_1 for q5_K, q8_0 for q6_K; q4_1 and iq4_nl for other mixes): quantize_row_q4_1_ref,
// _q5_0_ref, _q5_1_ref and quantize_iq4_nl without an importance matrix. Layouts in legacy.ts's header.
// float32 arithmetic as in the C, one Math.fround per operation (see kquants-write.ts).

import { checkLen, putU16 } from './block.js';
import { f32ToF16Bits } from './half.js';
import { KVALUES_IQ4NL } from './legacy.js';

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
function pack5Bit(q: Int32Array, out: Uint8Array, h: number, qs: number): void {
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

/** quantize_row_q4_1_ref: d = (max − min)/15, m = min, q = min(15, (int8)((x − min)/d + 0.5)). */
export function quantizeQ4_1(src: Float32Array): Uint8Array {
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

/** quantize_row_q5_0_ref: d = (value with largest |x|)/−16, q = min(31, (int8)(x/d + 16.5)). */
export function quantizeQ5_0(src: Float32Array): Uint8Array {
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

/** quantize_row_q5_1_ref: d = (max − min)/31, m = min, q = (uint8)((x − min)/d + 0.5). */
export function quantizeQ5_1(src: Float32Array): Uint8Array {
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

/** quantize_iq4_nl without importance weights (quantize_row_iq4_nl_impl, one 32-value block, ntry 7): the scale
 *  −max/−127 and 15 trial scales (itry − 127)/max refit by x²-weighted least squares, the best one kept. */
export function quantizeIQ4_NL(src: Float32Array): Uint8Array {
  checkLen('iq4_nl', src.length, 32, 0, 0);
  const out = new Uint8Array((src.length / 32) * 18);
  const L = new Uint8Array(32);
  const w = new Float32Array(32);
  const v0 = KVALUES_IQ4NL[0] ?? 0;
  for (let b = 0; b < src.length / 32; b++) {
    const x = src.subarray(b * 32, (b + 1) * 32);
    for (let j = 0; j < 32; j++) w[j] = fr((x[j] ?? 0) * (x[j] ?? 0));
    const max = signedAbsMax(x, 0);
    let d = 0;
    if (Math.abs(max) >= fr(1e-15)) {
      const fit = (id: number): [number, number] => {
        let sumqx = 0;
        let sumq2 = 0;
        for (let j = 0; j < 32; j++) {
          const q = KVALUES_IQ4NL[bestIndex(fr(id * (x[j] ?? 0)))] ?? 0;
          const wq = fr((w[j] ?? 0) * q);
          sumqx = fr(sumqx + fr(wq * (x[j] ?? 0)));
          sumq2 = fr(sumq2 + fr(wq * q));
        }
        return [sumqx, sumq2];
      };
      let [sumqx, sumq2] = fit(fr(1 / fr(-max / v0)));
      d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
      let best = fr(d * sumqx);
      for (let itry = -7; itry <= 7; itry++) {
        [sumqx, sumq2] = fit(fr((itry + v0) / max));
        if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
          d = fr(sumqx / sumq2);
          best = fr(d * sumqx);
        }
      }
    }
    const o = b * 18;
    putU16(out, o, f32ToF16Bits(d));
    const id = d !== 0 ? fr(1 / d) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndex(fr(id * (x[j] ?? 0)));
    for (let j = 0; j < 16; j++) out[o + 2 + j] = (L[j] ?? 0) | ((L[j + 16] ?? 0) << 4);
  }
  return out;
}
