// Half-precision conversions and ggml's block quantization formats, bit-exact with ggml's reference C code.
//
// Layout facts (ggml/src/ggml-common.h, ggml/src/ggml-quants.c in llama.cpp), all little-endian:
//   q8_0 block (32 values, 34 bytes): f16 d, int8 qs[32];                      x = d * qs[j]
//   q4_0 block (32 values, 18 bytes): f16 d, u8 qs[16]; qs[j] low nibble is x[j], high nibble is x[j+16];
//                                     x = d * (nibble - 8)
//   q4_K super-block (256 values, 144 bytes): f16 d, f16 dmin, u8 scales[12] (8 six-bit scale/min pairs),
//                                     u8 qs[128]; per 64 values: low nibbles then high nibbles of 32 bytes
//   q6_K super-block (256 values, 210 bytes): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
//                                     int8 scales[16], f16 d
//   q4_1 block (32 values, 20 bytes): f16 d, f16 m, u8 qs[16] (nibbles as q4_0);  x = d * nibble + m
//   q5_0 block (32 values, 22 bytes): f16 d, u8 qh[4] (bit j: 5th bit of value j), u8 qs[16];  x = d * (q - 16)
//   q5_1 block (32 values, 24 bytes): f16 d, f16 m, u8 qh[4], u8 qs[16];  x = d * q + m
//   q2_K super-block (256 values, 84 bytes): u8 scales[16] (4-bit scale | 4-bit min), u8 qs[64] (2-bit), f16 d,
//                                     f16 dmin; per 16 values x = d·sc·q − dmin·m
//   q3_K super-block (256 values, 110 bytes): u8 hmask[32] (3rd bit, set = no −4), u8 qs[64] (2 low bits),
//                                     u8 scales[12] (16 six-bit scales, −32), f16 d
//   q5_K super-block (256 values, 176 bytes): f16 d, f16 dmin, u8 scales[12] (as q4_K), u8 qh[32], u8 qs[128]
//   iq4_nl block (32 values, 18 bytes): f16 d, u8 qs[16]; x = d * KVALUES_IQ4NL[nibble]
//   iq4_xs super-block (256 values, 136 bytes): f16 d, u16 scales_h, u8 scales_l[4], u8 qs[128]; per 32 values
//                                     a 6-bit scale ls, x = d·(ls − 32)·KVALUES_IQ4NL[nibble]
// Arithmetic is float32 in C, so every step below is rounded with Math.fround to get the same bits.
// This file: the 32-value blocks (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl).

import { checkLen, u16At } from './block.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';

// ---- q8_0 ------------------------------------------------------------------------------------------------------

/** quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (half away from zero). */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  const n = src.length;
  checkLen('q8_0', n, 32, 0, 0);
  const out = new Uint8Array((n / 32) * 34);
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[b * 32 + j] ?? 0));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = f32ToF16Bits(d);
    const o = b * 34;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < 32; j++) {
      const x0 = Math.fround((src[b * 32 + j] ?? 0) * id);
      const q = x0 < 0 ? -Math.round(-x0) : Math.round(x0);
      out[o + 2 + j] = (Number.isNaN(q) ? 0 : q) & 0xff;
    }
  }
  return out;
}

/** dequantize_row_q8_0: x = d * q. */
export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q8_0', n, 32, (n / 32) * 34, bytes.length);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 34;
    const d = f16BitsToF32(u16At(bytes, o));
    for (let j = 0; j < 32; j++) {
      const q = ((bytes[o + 2 + j] ?? 0) << 24) >> 24; // int8
      out[b * 32 + j] = d * q;
    }
  }
  return out;
}

// ---- q4_0 ------------------------------------------------------------------------------------------------------

/** quantize_row_q4_0_ref: d = (value with largest |x|) / −8, q = min(15, (int8)(x/d + 8.5)). */
export function quantizeQ4_0(src: Float32Array): Uint8Array {
  const n = src.length;
  checkLen('q4_0', n, 32, 0, 0);
  const out = new Uint8Array((n / 32) * 18);
  const quant = (x: number, id: number): number => {
    const v = Math.trunc(Math.fround(Math.fround(x * id) + 8.5)); // C's (int8_t) truncates toward zero
    return Number.isNaN(v) ? 8 : Math.max(0, Math.min(15, v)); // NaN input is UB in C; we store 0.0
  };
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[b * 32 + j] ?? 0;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = f32ToF16Bits(d);
    const o = b * 18;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      const lo = quant(src[b * 32 + j] ?? 0, id);
      const hi = quant(src[b * 32 + 16 + j] ?? 0, id);
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** dequantize_row_q4_0: x[j] = (lo − 8)·d, x[j+16] = (hi − 8)·d. */
export function dequantizeQ4_0(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q4_0', n, 32, (n / 32) * 18, bytes.length);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 18;
    const d = f16BitsToF32(u16At(bytes, o));
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j] ?? 0;
      out[b * 32 + j] = ((q & 0x0f) - 8) * d;
      out[b * 32 + 16 + j] = ((q >>> 4) - 8) * d;
    }
  }
  return out;
}
// ---- q4_1, q5_0, q5_1 -----------------------------------------------------------------------------------------

/** dequantize_row_q4_1: x[j] = lo·d + m, x[j+16] = hi·d + m. */
export function dequantizeQ4_1(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q4_1', n, 32, (n / 32) * 20, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  for (let b = 0; b < n / 32; b++) {
    const o = b * 20;
    const d = f16BitsToF32(u16At(bytes, o));
    const m = f16BitsToF32(u16At(bytes, o + 2));
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 4 + j] ?? 0;
      out[b * 32 + j] = fr((q & 0x0f) * d) + m;
      out[b * 32 + 16 + j] = fr((q >>> 4) * d) + m;
    }
  }
  return out;
}

/** The 5-bit values of a q5_0/q5_1 block: qh (u32 LE at `h`) bit j is the 5th bit of value j, nibbles at `qs`. */
function fiveBit(bytes: Uint8Array, h: number, qs: number, q: Int32Array): void {
  const qh = ((bytes[h] ?? 0) | ((bytes[h + 1] ?? 0) << 8) | ((bytes[h + 2] ?? 0) << 16) | ((bytes[h + 3] ?? 0) << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const x = bytes[qs + j] ?? 0;
    q[j] = (x & 0x0f) | (((qh >>> j) << 4) & 0x10);
    q[j + 16] = (x >>> 4) | ((qh >>> (j + 12)) & 0x10);
  }
}

/** dequantize_row_q5_0: x = (q − 16)·d. */
export function dequantizeQ5_0(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q5_0', n, 32, (n / 32) * 22, bytes.length);
  const out = new Float32Array(n);
  const q = new Int32Array(32);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 22;
    const d = f16BitsToF32(u16At(bytes, o));
    fiveBit(bytes, o + 2, o + 6, q);
    for (let j = 0; j < 32; j++) out[b * 32 + j] = ((q[j] ?? 0) - 16) * d;
  }
  return out;
}

/** dequantize_row_q5_1: x = q·d + m. */
export function dequantizeQ5_1(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q5_1', n, 32, (n / 32) * 24, bytes.length);
  const out = new Float32Array(n);
  const q = new Int32Array(32);
  const fr = Math.fround;
  for (let b = 0; b < n / 32; b++) {
    const o = b * 24;
    const d = f16BitsToF32(u16At(bytes, o));
    const m = f16BitsToF32(u16At(bytes, o + 2));
    fiveBit(bytes, o + 4, o + 8, q);
    for (let j = 0; j < 32; j++) out[b * 32 + j] = fr((q[j] ?? 0) * d) + m;
  }
  return out;
}
// ---- iq4_nl --------------------------------------------------------------------------------------------------------

/** ggml's kvalues_iq4nl: the 16 non-uniform levels of iq4_nl / iq4_xs. */
export const KVALUES_IQ4NL: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** dequantize_row_iq4_nl: x[j] = d·kv[lo], x[j+16] = d·kv[hi]. */
export function dequantizeIQ4_NL(bytes: Uint8Array, n: number): Float32Array {
  checkLen('iq4_nl', n, 32, (n / 32) * 18, bytes.length);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 18;
    const d = f16BitsToF32(u16At(bytes, o));
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j] ?? 0;
      out[b * 32 + j] = d * (KVALUES_IQ4NL[q & 0x0f] ?? 0);
      out[b * 32 + 16 + j] = d * (KVALUES_IQ4NL[q >>> 4] ?? 0);
    }
  }
  return out;
}

