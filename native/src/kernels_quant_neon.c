// Integer q8_0 / q4_0 decode products for NEON (arm64; kernels_quant.h): int8 × int8 → int16 with vmull/vmlal
// (two products per int16 lane: |sum| ≤ 2 · 128 · 127 fits), pairwise-widened to int32, then scaled in float.
// Baseline Advanced SIMD only (no dotprod extension), so it runs on any AArch64 CPU.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "kernels_quant.h"

// the k-quant unpackers with the CPU's f16 conversion (exact) and the scales spread in registers
#define KQ_F16(p) vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16((uint16_t)((p)[0] | ((p)[1] << 8))))), 0)
#define KQ_SCALES(o, sc, oc, shift) kq_scales_neon(o, sc, oc, shift)
#define KQ_SCALES32(o, s8, m8) kq_scales32_neon(o, s8, m8)
static inline void kq_scales_neon(kq_block *o, const int8_t *sc, const int8_t *oc, int shift) {
  int8x16_t v = vld1q_s8(sc);
  for (int g = 0; g < 8; g++) { // bytes 2g (×8), 2g + 1 (×8), widened to int16
    int8x16_t p = vqtbl1q_s8(v, vcombine_u8(vdup_n_u8((uint8_t)(2 * g)), vdup_n_u8((uint8_t)(2 * g + 1))));
    vst1q_s16(o->s[g], vmovl_s8(vget_low_s8(p)));
    vst1q_s16(o->s[g] + 8, vmovl_s8(vget_high_s8(p)));
  }
  int8x16_t ov = vld1q_s8(oc);
  int16x8_t n = vdupq_n_s16((int16_t)shift);
  vst1q_s16(o->o, vshlq_s16(vmovl_s8(vget_low_s8(ov)), n));
  vst1q_s16(o->o + 8, vshlq_s16(vmovl_s8(vget_high_s8(ov)), n));
}
static inline void kq_scales32_neon(kq_block *o, const uint8_t *s8, const uint8_t *m8) {
  for (int g = 0; g < 8; g++) {
    int16x8_t v = vdupq_n_s16(s8[g]);
    vst1q_s16(o->s[g], v);
    vst1q_s16(o->s[g] + 8, v);
  }
  uint8x8_t m = vld1_u8(m8);
  vst1q_s16(o->o, vreinterpretq_s16_u16(vmovl_u8(vzip1_u8(m, m))));
  vst1q_s16(o->o + 8, vreinterpretq_s16_u16(vmovl_u8(vzip2_u8(m, m))));
}
#include "kernels_kquant_unpack.h"

static int quantize_row_q8_neon(const float *x, long K, int8_t *qs, float *d) {
  const float32x4_t big = vdupq_n_f32(3.40282347e38f);
  uint32x4_t ok = vdupq_n_u32(~0u);
  for (long b = 0; b < K / QK; b++) {
    float32x4_t v[8], amax = vdupq_n_f32(0.0f);
    for (int i = 0; i < 8; i++) {
      v[i] = vld1q_f32(x + b * QK + 4 * i);
      float32x4_t a = vabsq_f32(v[i]);
      ok = vandq_u32(ok, vcleq_f32(a, big)); // false for inf and NaN
      amax = vmaxq_f32(amax, a);
    }
    float am = vmaxvq_f32(amax);
    d[b] = am / 127.0f;
    float32x4_t id = vdupq_n_f32(am != 0.0f ? 127.0f / am : 0.0f);
    for (int i = 0; i < 8; i += 2) {
      int32x4_t q0 = vcvtnq_s32_f32(vmulq_f32(v[i], id)), q1 = vcvtnq_s32_f32(vmulq_f32(v[i + 1], id)); // to even
      vst1_s8(qs + b * QK + 4 * i, vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1))));
    }
  }
  return vminvq_u32(ok) ? 0 : -1;
}

// 4 int32 lanes of Σ_j w_j · x_j over one block (w0, w1: the block's 32 weights)
static inline int32x4_t block_dot(int8x16_t w0, int8x16_t w1, const int8_t *x) {
  int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
  int16x8_t p0 = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_high_s8(w0), vget_high_s8(x0));
  int16x8_t p1 = vmlal_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), vget_high_s8(w1), vget_high_s8(x1));
  return vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1));
}

// M and q4 are constants after inlining (see dot_neon), so the accumulators stay in registers
static inline __attribute__((always_inline)) void dot_body(int q4, const uint8_t *row, long nb, const int8_t *xq,
                                                           long ldq, const float *xd, long ldd, int M, float *out,
                                                           long ldo) {
  float32x4_t acc[QDOT_MAX_M];
  for (int m = 0; m < M; m++) acc[m] = vdupq_n_f32(0.0f);
  const long bb = q4 ? 18 : 34;
  for (long b = 0; b < nb; b++) {
    const uint8_t *blk = row + b * bb;
    int8x16_t w0, w1;
    if (q4) { // low nibbles → values 0..15, high → 16..31, minus 8
      uint8x16_t n = vld1q_u8(blk + 2);
      w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(n, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
      w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(n, 4)), vdupq_n_s8(8));
    } else {
      w0 = vld1q_s8((const int8_t *)(blk + 2));
      w1 = vld1q_s8((const int8_t *)(blk + 18));
    }
    float dw = quant_f16(blk);
    for (int m = 0; m < M; m++) {
      int32x4_t p = block_dot(w0, w1, xq + m * ldq + b * QK);
      acc[m] = vfmaq_n_f32(acc[m], vcvtq_f32_s32(p), dw * xd[m * ldd + b]);
    }
  }
  for (int m = 0; m < M; m++) out[m * ldo] = vaddvq_f32(acc[m]);
}

static void dot_neon(int q4, const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd,
                     int M, float *out, long ldo) {
#define QKA_CASE(Q4, MM) dot_body(Q4, row, nb, xq, ldq, xd, ldd, MM, out, ldo)
  switch (M * 2 + (q4 != 0)) { // M is 1..QDOT_MAX_M (4)
    case 2: QKA_CASE(0, 1); break;
    case 3: QKA_CASE(1, 1); break;
    case 4: QKA_CASE(0, 2); break;
    case 5: QKA_CASE(1, 2); break;
    case 6: QKA_CASE(0, 3); break;
    case 7: QKA_CASE(1, 3); break;
    case 8: QKA_CASE(0, 4); break;
    default: QKA_CASE(1, 4); break;
  }
#undef QKA_CASE
}

// ---- K-quants (kernels_kquant.h): the 8 lanes as two int32x4 (lanes 0-3: the first 16 values of each group of 32,
// lanes 4-7: the last 16) ----

static void kunpack_neon(quant_type q, const uint8_t *row, long nsb, kq_block *out) { kq_unpack_row(q, row, nsb, out); }

// 4 int32 lanes, lane t = Σ_{j<4} u[4t + j] · x[4t + j] over 16 values (u ≤ 63 read as int8)
static inline int32x4_t kq_dot16(int8x16_t a, int8x16_t b) {
  int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b)), p1 = vmull_s8(vget_high_s8(a), vget_high_s8(b));
  return vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1));
}

// acc (lanes 0-3, 4-7) += one superblock in kernels_kquant.h's float order (d, dmin: its scales; dx: x's)
static inline void kq_acc_neon(int folded, float32x4_t acc[2], const int32x4_t isum[2], const int32x4_t osum[2],
                               float d, float dmin, float dx) {
  float dd = d * dx, dm = dmin * dx;
  for (int h = 0; h < 2; h++) {
    if (folded) {
      acc[h] = vaddq_f32(acc[h], vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(isum[h], osum[h])), dd));
    } else {
      acc[h] = vaddq_f32(acc[h], vmulq_n_f32(vcvtq_f32_s32(isum[h]), dd));
      acc[h] = vsubq_f32(acc[h], vmulq_n_f32(vcvtq_f32_s32(osum[h]), dm));
    }
  }
}

// osum[h], lane t: o · bsum over sub-blocks 8h + 2t, 8h + 2t + 1 (bs: x's 16 sums, o: the 16 offsets)
static inline void kq_osum_neon(const int16_t *bs, const int16_t *o, int32x4_t osum[2]) {
  for (int h = 0; h < 2; h++) {
    int16x8_t bv = vld1q_s16(bs + 8 * h), ov = vld1q_s16(o + 8 * h);
    osum[h] = vpaddq_s32(vmull_s16(vget_low_s16(bv), vget_low_s16(ov)), vmull_high_s16(bv, ov));
  }
}

// the fixed-order sum of a superblock accumulator's 8 lanes: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
static inline float kq_hsum_neon(const float32x4_t acc[2]) {
  float32x4_t s = vaddq_f32(acc[0], acc[1]);
  return (vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 2)) + (vgetq_lane_f32(s, 1) + vgetq_lane_f32(s, 3));
}

// RB weight rows × M rows of x (both constant after inlining, so the int32 accumulators stay in registers), one
// half group of 16 values at a time
static inline __attribute__((always_inline)) void kdot_body(int folded, const kq_block *w, long nsb, int RB,
                                                            const kq_x *x, int M, float *out, long ldo) {
  float32x4_t facc[2][QDOT_MAX_M][2];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m][0] = facc[r][m][1] = vdupq_n_f32(0.0f);
  for (long i = 0; i < nsb; i++) {
    int32x4_t iacc[2][QDOT_MAX_M][2];
    for (int r = 0; r < RB; r++)
      for (int m = 0; m < M; m++) iacc[r][m][0] = iacc[r][m][1] = vdupq_n_s32(0);
    for (int g = 0; g < 8; g++)
      for (int h = 0; h < 2; h++) {
        int8x16_t xv[QDOT_MAX_M];
        for (int m = 0; m < M; m++) xv[m] = vld1q_s8(x->qs + m * x->K + i * QK_K + 32 * g + 16 * h);
        for (int r = 0; r < RB; r++) {
          const kq_block *b = w + r * nsb + i;
          int8x16_t u = vreinterpretq_s8_u8(vld1q_u8(b->u + 32 * g + 16 * h));
          int32_t sc = b->s[g][8 * h];
          for (int m = 0; m < M; m++) iacc[r][m][h] = vmlaq_n_s32(iacc[r][m][h], kq_dot16(u, xv[m]), sc);
        }
      }
    for (int m = 0; m < M; m++) {
      const int16_t *bs = x->bsum + m * (x->K / 16) + 16 * i;
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++) {
        const kq_block *b = w + r * nsb + i;
        int32x4_t osum[2];
        kq_osum_neon(bs, b->o, osum);
        kq_acc_neon(folded, facc[r][m], iacc[r][m], osum, b->d, b->dmin, dx);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = kq_hsum_neon(facc[r][m]);
}

static void kdot_neon(int folded, const kq_block *w, long nsb, int R, const kq_x *x, int M, float *out, long ldo) {
#define KQ_CASE(F, RB, MM) kdot_body(F, w + r * nsb, nsb, RB, x, MM, out + r, ldo)
#define KQ_MS(F, RB)                          \
  switch (M) {                                \
    case 1: KQ_CASE(F, RB, 1); break;         \
    case 2: KQ_CASE(F, RB, 2); break;         \
    case 3: KQ_CASE(F, RB, 3); break;         \
    default: KQ_CASE(F, RB, 4); break;        \
  }
  for (int r = 0; r < R;) {
    int rb = R - r >= 2 ? 2 : 1;
    if (folded) {
      if (rb == 2) KQ_MS(1, 2) else KQ_MS(1, 1)
    } else {
      if (rb == 2) KQ_MS(0, 2) else KQ_MS(0, 1)
    }
    r += rb;
  }
#undef KQ_MS
#undef KQ_CASE
}

// q4_K and q6_K rows dotted as stored (kernels_quant.h's kdot_raw; the AVX-512 kernel's comment says why), 16
// values at a time as kdot_body: value 32g + 16h + l is q4_K's nibble g % 2 of qs[32(g/2) + 16h + l] under s8[g];
// q6_K's nibble (g%4)/2 of ql[64(g/4) + 32(g%2) + 16h + l] under bits 2(g%4), +1 of qh[32(g/4) + 16h + l], scale
// scales[2g + h]
static inline __attribute__((always_inline)) void kraw_body(int q6, const uint8_t *w, long row_bytes, long nsb, int RB,
                                                            const kq_x *x, int M, float *out, long ldo) {
  const long bb = q6 ? 210 : 144;
  const long ahead = kq_raw_ahead(RB * row_bytes);
  const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(0x03);
  float32x4_t facc[2][KQ_RAW_MAX_M][2];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m][0] = facc[r][m][1] = vdupq_n_f32(0.0f);
  for (long i = 0; i < nsb; i++) {
    int32x4_t iacc[2][KQ_RAW_MAX_M][2];
    int16_t sc[2][16], o[2][16];
    float d[2], dmin[2];
    for (int r = 0; r < RB; r++) {
      const uint8_t *b = w + r * row_bytes + i * bb;
      kq_prefetch(b + ahead, bb);
      if (q6) {
        for (int j = 0; j < 16; j++) {
          sc[r][j] = (int8_t)b[192 + j];
          o[r][j] = (int16_t)(sc[r][j] * 32);
        }
        d[r] = KQ_F16(b + 208);
        dmin[r] = 0.0f;
      } else {
        uint8_t s8[8], m8[8];
        kq_scale_min_k4x8(b + 4, s8, m8);
        for (int j = 0; j < 16; j++) {
          sc[r][j] = s8[j >> 1]; // per 16 values: sub-block j of 16 has the scale of 32-value group j / 2
          o[r][j] = m8[j >> 1];
        }
        d[r] = KQ_F16(b);
        dmin[r] = KQ_F16(b + 2);
      }
      for (int m = 0; m < M; m++) iacc[r][m][0] = iacc[r][m][1] = vdupq_n_s32(0);
    }
    for (int g = 0; g < 8; g++)
      for (int h = 0; h < 2; h++) {
        int8x16_t xv[KQ_RAW_MAX_M];
        for (int m = 0; m < M; m++) xv[m] = vld1q_s8(x->qs + m * x->K + i * QK_K + 32 * g + 16 * h);
        for (int r = 0; r < RB; r++) {
          const uint8_t *b = w + r * row_bytes + i * bb;
          uint8x16_t u;
          if (q6) {
            int h6 = g >> 2, k = g & 3;
            uint8x16_t ql = vld1q_u8(b + 64 * h6 + 32 * (k & 1) + 16 * h);
            uint8x16_t qh = vld1q_u8(b + 128 + 32 * h6 + 16 * h);
            ql = (k >> 1) ? vshrq_n_u8(ql, 4) : vandq_u8(ql, m4);
            switch (k) { // shift counts must be constants
              case 0: break;
              case 1: qh = vshrq_n_u8(qh, 2); break;
              case 2: qh = vshrq_n_u8(qh, 4); break;
              default: qh = vshrq_n_u8(qh, 6); break;
            }
            u = vorrq_u8(ql, vshlq_n_u8(vandq_u8(qh, m2), 4));
          } else {
            uint8x16_t q = vld1q_u8(b + 16 + 32 * (g >> 1) + 16 * h);
            u = (g & 1) ? vshrq_n_u8(q, 4) : vandq_u8(q, m4);
          }
          int8x16_t us = vreinterpretq_s8_u8(u);
          int32_t s = sc[r][2 * g + h];
          for (int m = 0; m < M; m++) iacc[r][m][h] = vmlaq_n_s32(iacc[r][m][h], kq_dot16(us, xv[m]), s);
        }
      }
    for (int m = 0; m < M; m++) {
      const int16_t *bs = x->bsum + m * (x->K / 16) + 16 * i;
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++) {
        int32x4_t osum[2];
        kq_osum_neon(bs, o[r], osum);
        kq_acc_neon(q6, facc[r][m], iacc[r][m], osum, d[r], dmin[r], dx);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = kq_hsum_neon(facc[r][m]);
}

KQ_RAW_DISPATCH2(kdot_raw_neon, kraw_body)

// q5_0 repacking is the scalar one here (not vectorized for NEON yet)
const quant_kernels_t quant_kernels_neon = {"neon", quantize_row_q8_neon, dot_neon, kunpack_neon, kdot_neon,
                                            quant_repack_q5_0_scalar, NULL, kdot_raw_neon, NULL};
#endif
