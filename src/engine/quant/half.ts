// f32 ↔ IEEE binary16 and bfloat16, bit-exact with ggml (GGML_FP32_TO_FP16 / F16C, ggml_compute_fp32_to_bf16).

import { checkLen, u16At } from './block.js';

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
