// ggml's 256-value super-blocks (q2_K, q3_K, q4_K, q5_K, q6_K, iq4_xs): decoders. Layouts in legacy.ts's header.
// Arithmetic is float32 in C, so every step below is rounded with Math.fround to get the same bits.

import { checkLen, u16At } from './block.js';
import { f16BitsToF32 } from './half.js';
import { KVALUES_IQ4NL } from './legacy.js';

// ---- q4_K ------------------------------------------------------------------------------------------------------

/** get_scale_min_k4: the j-th 6-bit (scale, min) pair packed in 12 bytes at `o`. */
export function scaleMinK4(j: number, b: Uint8Array, o: number): [number, number] {
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

// ---- iq4_xs --------------------------------------------------------------------------------------------------------

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
