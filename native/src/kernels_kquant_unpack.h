// The K-quant unpackers (kernels_kquant.h): one ggml superblock → one kq_block. Plain C written for the
// vectorizer: every kernels_quant_*.c includes it, so each SIMD level compiles it with its own target (the value
// loops become a few shifts and masks per 32 bytes there). Layouts (ggml's block_q*_K, bytes from the block start):
//   q2_K (84):  scales[16] (low nibble s, high nibble o) @0, qs[64] @16, d @80, dmin @82
//   q3_K (110): hmask[32] @0, qs[64] @32, scales[12] (16 6-bit, −32) @96, d @108
//   q4_K (144): d @0, dmin @2, scales[12] (8 6-bit s and o per 32 values) @4, qs[128] @16
//   q5_K (176): d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
//   q6_K (210): ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
#ifndef NOMOAT_KERNELS_KQUANT_UNPACK_H
#define NOMOAT_KERNELS_KQUANT_UNPACK_H
#include <string.h>
#include "kernels_kquant.h"
#include "kernels_quant.h"
#include "ops.h"

// Hooks an includer may define before including this file, each with the plain C below as the default:
//   KQ_F16(p): the f16 at p as float, exactly (default: the table of kernels_quant.h)
//   KQ_SCALES(o, sc, oc, shift): o->s[g][i] = sc[2g + i / 8] and o->o[j] = oc[j] · 2^shift, from 16 int8 per sub-block
//   KQ_SCALES32(o, s8, m8): the same from 8 scales and mins per 32 values (q4_K, q5_K): o->s[g][i] = s8[g], o->o[j] = m8[j / 2]
#ifndef KQ_F16
#define KQ_F16(p) quant_f16(p)
#endif
#ifndef KQ_SCALES
#define KQ_SCALES(o, sc, oc, shift) kq_scales(o, sc, oc, shift)
static inline void kq_scales(kq_block *o, const int8_t *sc, const int8_t *oc, int shift) {
  for (int g = 0; g < 8; g++)
    for (int i = 0; i < 16; i++) o->s[g][i] = sc[2 * g + (i >> 3)];
  for (int j = 0; j < 16; j++) o->o[j] = (int16_t)(oc[j] * (1 << shift));
}
#endif
#ifndef KQ_SCALES32
#define KQ_SCALES32(o, s8, m8) kq_scales32(o, s8, m8)
static inline void kq_scales32(kq_block *o, const uint8_t *s8, const uint8_t *m8) {
  for (int g = 0; g < 8; g++)
    for (int i = 0; i < 16; i++) o->s[g][i] = s8[g];
  for (int j = 0; j < 16; j++) o->o[j] = m8[j >> 1];
}
#endif

// q4_K / q5_K: the 8 6-bit (scale, min) pairs of 12 packed bytes (get_scale_min_k4: pair j < 4 is the low 6 bits of
// bytes j and j + 4; pair j ≥ 4 the nibbles of byte j + 4 under the top 2 bits of bytes j − 4 and j), four at a time
// in 32-bit words (little-endian)
static inline void kq_scale_min_k4x8(const uint8_t *p, uint8_t *s8, uint8_t *m8) {
  uint32_t w[3], out[4];
  memcpy(w, p, 12);
  const uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  out[0] = w[0] & low6;
  out[1] = (w[2] & low4) | (((w[0] >> 6) & low2) << 4);
  out[2] = w[1] & low6;
  out[3] = ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4);
  memcpy(s8, out, 8);
  memcpy(m8, out + 2, 8);
}

// q4_K / q5_K (q5 = 1: the 5th bit of value 64i + l is qh[l] bit 2i, of 64i + 32 + l bit 2i + 1)
static inline void kq_unpack_q45(const uint8_t *restrict b, int q5, kq_block *restrict o) {
  const uint8_t *qs = b + (q5 ? 48 : 16), *qh = b + 16;
  for (int i = 0; i < 4; i++) {
    uint8_t *u = o->u + 64 * i;
    const uint8_t *q = qs + 32 * i;
    if (q5) {
      for (int l = 0; l < 32; l++) {
        u[l] = (uint8_t)((q[l] & 0x0f) | (((qh[l] >> (2 * i)) & 1) << 4));
        u[l + 32] = (uint8_t)((q[l] >> 4) | (((qh[l] >> (2 * i + 1)) & 1) << 4));
      }
    } else {
      for (int l = 0; l < 32; l++) {
        u[l] = q[l] & 0x0f;
        u[l + 32] = q[l] >> 4;
      }
    }
  }
  uint8_t s8[8], m8[8];
  kq_scale_min_k4x8(b + 4, s8, m8);
  KQ_SCALES32(o, s8, m8);
  o->d = KQ_F16(b);
  o->dmin = KQ_F16(b + 2);
}

// q6_K: value 128h + 32k + l (k < 4, l < 32) is ql's nibble k >> 1 of byte 64h + 32(k & 1) + l with bits 2k, 2k + 1 of
// qh[32h + l] above it; sub-block j's scale is scales[j]; value = d · s · (u − 32)
static inline void kq_unpack_q6(const uint8_t *restrict b, kq_block *restrict o) {
  for (int h = 0; h < 2; h++) {
    const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
    uint8_t *u = o->u + 128 * h;
    for (int l = 0; l < 32; l++) {
      u[l] = (uint8_t)((ql[l] & 0x0f) | ((qh[l] & 3) << 4));
      u[l + 32] = (uint8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4));
      u[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      u[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
  const int8_t *sc = (const int8_t *)(b + 192);
  KQ_SCALES(o, sc, sc, 5); // o = 32 · s
  o->d = KQ_F16(b + 208);
  o->dmin = 0.0f;
}

// q2_K / q3_K: sub-block j = 8n + 2p + h (n < 2 halves of 128, p < 4 bit pairs, h < 2) holds the 2-bit field p of
// qs[32n + 16h + l]; q3_K adds 4 where hmask[16h + l] has bit 4n + p (value = d · s · (u − 4))
static inline void kq_unpack_q23(const uint8_t *restrict b, int q3, kq_block *restrict o) {
  int8_t sc[16], oc[16];
  const uint8_t *qs = b + (q3 ? 32 : 16), *hm = b;
  if (q3) { // 16 6-bit scales: the low nibbles in bytes 0-7 (j < 8: low, else high nibble of j − 8), the top 2 bits
            // of j in byte 8 + j % 4 at bit 2 · (j / 4)
    uint32_t w[3], out[4];
    memcpy(w, b + 96, 12);
    const uint32_t low4 = 0x0f0f0f0f, low2 = 0x03030303;
    out[0] = (w[0] & low4) | ((w[2] & low2) << 4);
    out[1] = (w[1] & low4) | (((w[2] >> 2) & low2) << 4);
    out[2] = ((w[0] >> 4) & low4) | (((w[2] >> 4) & low2) << 4);
    out[3] = ((w[1] >> 4) & low4) | (((w[2] >> 6) & low2) << 4);
    uint8_t raw[16];
    memcpy(raw, out, 16);
    for (int j = 0; j < 16; j++) sc[j] = (int8_t)(raw[j] - 32);
    KQ_SCALES(o, sc, sc, 2); // o = 4 · s
  } else {
    for (int j = 0; j < 16; j++) {
      sc[j] = (int8_t)(b[j] & 0x0f);
      oc[j] = (int8_t)(b[j] >> 4);
    }
    KQ_SCALES(o, sc, oc, 0);
  }
  for (int n = 0; n < 2; n++)
    for (int p = 0; p < 4; p++) {
      uint8_t *u = o->u + 128 * n + 32 * p;
      const uint8_t *q = qs + 32 * n;
      if (q3) {
        for (int l = 0; l < 32; l++)
          u[l] = (uint8_t)(((q[l] >> (2 * p)) & 3) | (((hm[l] >> (4 * n + p)) & 1) << 2));
      } else {
        for (int l = 0; l < 32; l++) u[l] = (uint8_t)((q[l] >> (2 * p)) & 3);
      }
    }
  o->d = KQ_F16(b + (q3 ? 108 : 80));
  o->dmin = q3 ? 0.0f : KQ_F16(b + 82);
}

// Whether a K-quant type's offsets are folded into the integers (q6_K, q3_K) rather than scaled by dmin
static inline int kq_folded(quant_type q) { return q == Q_Q6_K || q == Q_Q3_K; }

// out[nsb] ← the nsb superblocks of one weight row of type q (q2_K … q6_K)
static inline void kq_unpack_row(quant_type q, const uint8_t *row, long nsb, kq_block *out) {
  long bb = quant_block_bytes(q);
  for (long i = 0; i < nsb; i++) {
    const uint8_t *b = row + i * bb;
    switch (q) {
      case Q_Q4_K: kq_unpack_q45(b, 0, out + i); break;
      case Q_Q5_K: kq_unpack_q45(b, 1, out + i); break;
      case Q_Q6_K: kq_unpack_q6(b, out + i); break;
      case Q_Q2_K: kq_unpack_q23(b, 0, out + i); break;
      default: kq_unpack_q23(b, 1, out + i); break; // Q_Q3_K
    }
  }
}

#endif
