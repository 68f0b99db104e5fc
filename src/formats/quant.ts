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

import type { DType } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';

import { bytesFromF32, f32FromBytes } from './source.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → IEEE binary16 bits, round to nearest even (as ggml's GGML_FP32_TO_FP16 / F16C). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00); // NaN (quiet) or ±inf
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → ±inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry may correctly reach inf
  return sign | half;
}

let f16Table: Float32Array | null = null;

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant !== 0 ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
}

/** IEEE binary16 bits → number (exact). */
export function f16BitsToF32(h: number): number {
  f16Table ??= buildF16Table();
  return f16Table[h & 0xffff] ?? 0;
}

/** f32 → bfloat16 bits, round to nearest even; NaN stays a quiet NaN (ggml_compute_fp32_to_bf16). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0] ?? 0;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff;
  return ((bits + (0x7fff + ((bits >>> 16) & 1))) >>> 16) & 0xffff;
}

/** bfloat16 bits → number (exact: the top half of an f32). */
export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0] ?? 0;
}

function u16At(b: Uint8Array, i: number): number {
  return (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
}

function checkLen(what: string, n: number, blockSize: number, bytes: number, have: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new Error(`${what}: ${n} values is not a multiple of the block size ${blockSize}`);
  }
  if (have < bytes) throw new Error(`${what}: need ${bytes} bytes for ${n} values, got ${have}`);
}

// ---- f16 / bf16 rows -------------------------------------------------------------------------------------------

/** Float32Array → little-endian f16 bytes (2 per value). */
export function encodeF16(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 2);
  for (let i = 0; i < src.length; i++) {
    const h = f32ToF16Bits(src[i] ?? 0);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** little-endian f16 bytes → Float32Array of n values. */
export function decodeF16(bytes: Uint8Array, n = bytes.length >>> 1): Float32Array {
  checkLen('f16', n, 1, n * 2, bytes.length);
  f16Table ??= buildF16Table();
  const t = f16Table;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = t[u16At(bytes, 2 * i)] ?? 0;
  return out;
}

/** Float32Array → little-endian bf16 bytes. */
export function encodeBf16(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 2);
  for (let i = 0; i < src.length; i++) {
    const h = f32ToBf16Bits(src[i] ?? 0);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** little-endian bf16 bytes → Float32Array of n values. */
export function decodeBf16(bytes: Uint8Array, n = bytes.length >>> 1): Float32Array {
  checkLen('bf16', n, 1, n * 2, bytes.length);
  const out = new Float32Array(n);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) o32[i] = u16At(bytes, 2 * i) << 16;
  return out;
}

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

// ---- q4_K ------------------------------------------------------------------------------------------------------

/** get_scale_min_k4: the j-th 6-bit (scale, min) pair packed in 12 bytes at `o`. */
function scaleMinK4(j: number, b: Uint8Array, o: number): [number, number] {
  const q = (i: number): number => b[o + i] ?? 0;
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0x0f) | ((q(j - 4) >>> 6) << 4), (q(j + 4) >>> 4) | ((q(j) >>> 6) << 4)];
}

/** dequantize_row_q4_K: per 32 values x = d·sc·q − dmin·m. */
export function dequantizeQ4_K(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q4_K', n, 256, (n / 256) * 144, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 144;
    const d = f16BitsToF32(u16At(bytes, o));
    const dmin = f16BitsToF32(u16At(bytes, o + 2));
    let q = o + 16;
    let y = b * 256;
    for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
      const [sc1, m1q] = scaleMinK4(is, bytes, o + 4);
      const [sc2, m2q] = scaleMinK4(is + 1, bytes, o + 4);
      const d1 = fr(d * sc1);
      const m1 = fr(dmin * m1q);
      const d2 = fr(d * sc2);
      const m2 = fr(dmin * m2q);
      for (let l = 0; l < 32; l++) out[y++] = fr(d1 * ((bytes[q + l] ?? 0) & 0x0f)) - m1;
      for (let l = 0; l < 32; l++) out[y++] = fr(d2 * ((bytes[q + l] ?? 0) >>> 4)) - m2;
      q += 32;
    }
  }
  return out;
}

// ---- q6_K ------------------------------------------------------------------------------------------------------

/** dequantize_row_q6_K: 6-bit q = (4 low bits from ql | 2 high bits from qh) − 32; x = d·scale·q. */
export function dequantizeQ6_K(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q6_K', n, 256, (n / 256) * 210, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  const at = (i: number): number => bytes[i] ?? 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 210;
    const d = f16BitsToF32(u16At(bytes, o + 208));
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    let y = b * 256;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const s = (k: number): number => (at(sc + is + k) << 24) >> 24; // int8 scale
        const h = at(qh + l);
        const q1 = ((at(ql + l) & 0xf) | (((h >> 0) & 3) << 4)) - 32;
        const q2 = ((at(ql + l + 32) & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((at(ql + l) >>> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((at(ql + l + 32) >>> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = fr(d * s(0)) * q1;
        out[y + l + 32] = fr(d * s(2)) * q2;
        out[y + l + 64] = fr(d * s(4)) * q3;
        out[y + l + 96] = fr(d * s(6)) * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
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

// ---- q2_K, q3_K, q5_K ------------------------------------------------------------------------------------------

/** dequantize_row_q2_K: per 16 values x = (d·sc)·q − dmin·m, q the 2-bit field at `shift` of 32-byte groups. */
export function dequantizeQ2_K(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q2_K', n, 256, (n / 256) * 84, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  const at = (i: number): number => bytes[i] ?? 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 84;
    const d = f16BitsToF32(u16At(bytes, o + 80));
    const dmin = f16BitsToF32(u16At(bytes, o + 82));
    let y = b * 256;
    let is = 0;
    for (let q = o + 16; q < o + 80; q += 32) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = at(o + is++);
          const dl = fr(d * (sc & 0x0f));
          const ml = fr(dmin * (sc >>> 4));
          for (let l = 0; l < 16; l++) out[y++] = fr(dl * ((at(q + 16 * half + l) >>> shift) & 3)) - ml;
        }
      }
    }
  }
  return out;
}

/** The 16 six-bit scales of a q3_K block (12 bytes at `o`), as signed values (− 32 applied). */
function scalesQ3_K(bytes: Uint8Array, o: number, s: Int32Array): void {
  const at = (i: number): number => bytes[o + i] ?? 0;
  for (let j = 0; j < 16; j++) {
    const low = j < 8 ? at(j) & 0x0f : at(j - 8) >>> 4; // aux[0..1] low nibbles, aux[2..3] high nibbles of bytes 0..7
    const high = (at(8 + (j & 3)) >>> (2 * (j >> 2))) & 3; // bytes 8..11, two bits per scale
    s[j] = (low | (high << 4)) - 32;
  }
}

/** dequantize_row_q3_K: 3-bit q = 2 bits from qs − (hmask bit clear ? 4 : 0), x = (d·scale)·q per 16 values. */
export function dequantizeQ3_K(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q3_K', n, 256, (n / 256) * 110, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  const at = (i: number): number => bytes[i] ?? 0;
  const s = new Int32Array(16);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 110;
    const d = f16BitsToF32(u16At(bytes, o + 108));
    scalesQ3_K(bytes, o + 96, s);
    let y = b * 256;
    let is = 0;
    let m = 1;
    for (let q = o + 32; q < o + 96; q += 32) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = fr(d * (s[is++] ?? 0));
          for (let l = 0; l < 16; l++) {
            const i = 16 * half + l;
            out[y++] = dl * (((at(q + i) >>> shift) & 3) - (at(o + i) & m ? 0 : 4));
          }
        }
        m <<= 1;
      }
    }
  }
  return out;
}

/** dequantize_row_q5_K: as q4_K with a 5th bit from qh (bits 2i, 2i+1 for the i-th 64 values). */
export function dequantizeQ5_K(bytes: Uint8Array, n: number): Float32Array {
  checkLen('q5_K', n, 256, (n / 256) * 176, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  const at = (i: number): number => bytes[i] ?? 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 176;
    const d = f16BitsToF32(u16At(bytes, o));
    const dmin = f16BitsToF32(u16At(bytes, o + 2));
    let ql = o + 48;
    let y = b * 256;
    for (let j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, u1 <<= 2, u2 <<= 2) {
      const [sc1, m1q] = scaleMinK4(is, bytes, o + 4);
      const [sc2, m2q] = scaleMinK4(is + 1, bytes, o + 4);
      const d1 = fr(d * sc1);
      const m1 = fr(dmin * m1q);
      const d2 = fr(d * sc2);
      const m2 = fr(dmin * m2q);
      for (let l = 0; l < 32; l++) out[y++] = fr(d1 * ((at(ql + l) & 0x0f) + (at(o + 16 + l) & u1 ? 16 : 0))) - m1;
      for (let l = 0; l < 32; l++) out[y++] = fr(d2 * ((at(ql + l) >>> 4) + (at(o + 16 + l) & u2 ? 16 : 0))) - m2;
      ql += 32;
    }
  }
  return out;
}

// ---- iq4_nl, iq4_xs --------------------------------------------------------------------------------------------

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

/** dequantize_row_iq4_xs: per 32 values dl = d·(ls − 32), x = dl·kv[nibble]. */
export function dequantizeIQ4_XS(bytes: Uint8Array, n: number): Float32Array {
  checkLen('iq4_xs', n, 256, (n / 256) * 136, bytes.length);
  const out = new Float32Array(n);
  const fr = Math.fround;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 136;
    const d = f16BitsToF32(u16At(bytes, o));
    const sh = u16At(bytes, o + 2);
    for (let ib = 0; ib < 8; ib++) {
      const ls = (((bytes[o + 4 + (ib >> 1)] ?? 0) >>> (4 * (ib & 1))) & 0x0f) | (((sh >>> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const qs = o + 8 + 16 * ib;
      const y = b * 256 + 32 * ib;
      for (let j = 0; j < 16; j++) {
        const q = bytes[qs + j] ?? 0;
        out[y + j] = dl * (KVALUES_IQ4NL[q & 0x0f] ?? 0);
        out[y + 16 + j] = dl * (KVALUES_IQ4NL[q >>> 4] ?? 0);
      }
    }
  }
  return out;
}

// ---- by dtype --------------------------------------------------------------------------------------------------

/** Dtypes this project can write (q4_k/q6_k quantization needs ggml's search-based quantizer: not done). */
export type WritableDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export function isWritableDType(d: DType): d is WritableDType {
  return d === 'f32' || d === 'f16' || d === 'bf16' || d === 'q8_0' || d === 'q4_0';
}

/** Encodes f32 values into `dtype` bytes. */
export function quantize(dtype: WritableDType, src: Float32Array): Uint8Array {
  switch (dtype) {
    case 'f32':
      return bytesFromF32(src);
    case 'f16':
      return encodeF16(src);
    case 'bf16':
      return encodeBf16(src);
    case 'q8_0':
      return quantizeQ8_0(src);
    case 'q4_0':
      return quantizeQ4_0(src);
  }
}

/** Decodes n values of `dtype` from bytes (which must hold at least dtypeBytes(dtype, n)). */
export function dequantize(dtype: DType, bytes: Uint8Array, n: number): Float32Array {
  switch (dtype) {
    case 'f32':
      checkLen('f32', n, 1, n * 4, bytes.length);
      return f32FromBytes(bytes.subarray(0, n * 4));
    case 'f16':
      return decodeF16(bytes, n);
    case 'bf16':
      return decodeBf16(bytes, n);
    case 'q8_0':
      return dequantizeQ8_0(bytes, n);
    case 'q4_0':
      return dequantizeQ4_0(bytes, n);
    case 'q4_1':
      return dequantizeQ4_1(bytes, n);
    case 'q5_0':
      return dequantizeQ5_0(bytes, n);
    case 'q5_1':
      return dequantizeQ5_1(bytes, n);
    case 'q2_k':
      return dequantizeQ2_K(bytes, n);
    case 'q3_k':
      return dequantizeQ3_K(bytes, n);
    case 'q4_k':
      return dequantizeQ4_K(bytes, n);
    case 'q5_k':
      return dequantizeQ5_K(bytes, n);
    case 'q6_k':
      return dequantizeQ6_K(bytes, n);
    case 'iq4_nl':
      return dequantizeIQ4_NL(bytes, n);
    case 'iq4_xs':
      return dequantizeIQ4_XS(bytes, n);
  }
}

/** f32 values of any tensor: a copy of f32 data, or byte dtypes (f16, bf16, ggml blocks) decoded. */
export function tensorValues(t: Tensor): Float32Array {
  return t.dtype === 'f32' ? t.toArray() : dequantize(t.dtype, t.bytes, t.size);
}
