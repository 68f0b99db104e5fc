// Integer q8_0 / q4_0 decode products, generic C: the readable reference of kernels_quant.h's math and the
// fallback for any CPU; also the f16 table and the choice of the table for the current SIMD level.
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant_unpack.h"
#include "kernels_quant.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

float quant_f16_table[65536];

// round-half-even for |v| < 2²²: adding 1.5 · 2²³ leaves no fraction bits, so the FPU rounds (to nearest even)
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// qs[K], d[K / QK] ← x[K] (see kernels_quant.h); −1 on a non-finite x
static int quantize_row_q8_scalar(const float *x, long K, int8_t *qs, float *d) {
  for (long b = 0; b < K / QK; b++) {
    const float *xb = x + b * QK;
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
      float a = fabsf(xb[j]);
      if (!(a <= FLT_MAX)) return -1; // inf or NaN
      amax = a > amax ? a : amax;
    }
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = amax / 127.0f;
    for (int j = 0; j < QK; j++) qs[b * QK + j] = (int8_t)round_even(xb[j] * id);
  }
  return 0;
}

// out[m · ldo] = Σ_b (d_w · d_x) · Σ_j w_j · q_j, blocks in order (kernels_quant.h)
static void dot_scalar(int q4, const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd,
                       int M, float *out, long ldo) {
  float acc[QDOT_MAX_M] = {0};
  long bb = q4 ? 18 : 34;
  for (long b = 0; b < nb; b++) {
    const uint8_t *blk = row + b * bb;
    float dw = quant_f16(blk);
    int8_t w[QK];
    if (q4) {
      for (int j = 0; j < 16; j++) {
        w[j] = (int8_t)((blk[2 + j] & 0x0f) - 8);
        w[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
      }
    } else {
      memcpy(w, blk + 2, QK);
    }
    for (int m = 0; m < M; m++) {
      const int8_t *q = xq + m * ldq + b * QK;
      int32_t isum = 0;
      for (int j = 0; j < QK; j++) isum += w[j] * q[j];
      acc[m] += (dw * xd[m * ldd + b]) * (float)isum;
    }
  }
  for (int m = 0; m < M; m++) out[m * ldo] = acc[m];
}

// ---- K-quants (kernels_kquant.h) ----

int quant_quantize_row_q8k(const float *x, long K, int8_t *qs, float *d, int16_t *bsum) {
  for (long b = 0; b < K / QK_K; b++) {
    const float *xb = x + b * QK_K;
    int8_t *q = qs + b * QK_K;
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < QK_K; j++) {
      float a = fabsf(xb[j]);
      if (!(a <= FLT_MAX)) return -1; // inf or NaN
      if (a > amax) { amax = a; max = xb[j]; }
    }
    if (amax == 0.0f) {
      d[b] = 0.0f;
      memset(q, 0, QK_K);
      memset(bsum + b * 16, 0, 16 * sizeof(int16_t));
      continue;
    }
    float iscale = -127.0f / max;
    if (!(fabsf(iscale) <= FLT_MAX)) return -1; // max below 127 / FLT_MAX
    for (int j = 0; j < QK_K; j++) {
      float v = round_even(iscale * xb[j]);
      q[j] = (int8_t)(v < 127.0f ? v : 127.0f);
    }
    for (int i = 0; i < 16; i++) {
      int sum = 0;
      for (int j = 0; j < 16; j++) sum += q[16 * i + j];
      bsum[b * 16 + i] = (int16_t)sum;
    }
    d[b] = 1.0f / iscale;
  }
  return 0;
}

static void kunpack_scalar(quant_type q, const uint8_t *row, long nsb, kq_block *out) { kq_unpack_row(q, row, nsb, out); }

// The 8 lanes of kernels_kquant.h written out: lane l takes the values k with k mod 32 in [4l, 4l + 4)
static void kdot_scalar(int folded, const kq_block *w, long nsb, int R, const kq_x *x, int M, float *out, long ldo) {
  for (int r = 0; r < R; r++)
    for (int m = 0; m < M; m++) {
      const int8_t *qs = x->qs + m * x->K;
      const int16_t *bs = x->bsum + m * (x->K / 16);
      const float *xd = x->d + m * nsb;
      float acc[8] = {0};
      for (long i = 0; i < nsb; i++) {
        const kq_block *b = w + r * nsb + i;
        const int8_t *q = qs + i * QK_K;
        int32_t isum[8] = {0}, osum[8];
        for (int g = 0; g < 8; g++)
          for (int j = 0; j < 32; j++) isum[j >> 2] += b->s[g][j >> 1] * b->u[32 * g + j] * q[32 * g + j];
        for (int l = 0; l < 8; l++) osum[l] = b->o[2 * l] * bs[16 * i + 2 * l] + b->o[2 * l + 1] * bs[16 * i + 2 * l + 1];
        float dd = b->d * xd[i], dm = b->dmin * xd[i];
        for (int l = 0; l < 8; l++) {
          if (folded) {
            acc[l] = acc[l] + dd * (float)(isum[l] - osum[l]);
          } else {
            acc[l] = acc[l] + dd * (float)isum[l];
            acc[l] = acc[l] - dm * (float)osum[l];
          }
        }
      }
      out[m * ldo + r] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }
}

void quant_repack_q5_0_scalar(const uint8_t *row, long nb, uint8_t *dst) {
  for (long b = 0; b < nb; b++) {
    const uint8_t *s = row + b * 22, *qs = s + 6;
    uint8_t *d = dst + b * 34;
    int8_t *w = (int8_t *)(d + 2);
    uint32_t qh = (uint32_t)s[2] | (uint32_t)s[3] << 8 | (uint32_t)s[4] << 16 | (uint32_t)s[5] << 24;
    d[0] = s[0];
    d[1] = s[1];
    for (int j = 0; j < 16; j++) {
      w[j] = (int8_t)(((qs[j] & 0x0f) | (((qh >> j) << 4) & 0x10)) - 16);
      w[j + 16] = (int8_t)(((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16);
    }
  }
}

const quant_kernels_t quant_kernels_scalar = {"scalar", quantize_row_q8_scalar, dot_scalar, kunpack_scalar, kdot_scalar,
                                              quant_repack_q5_0_scalar, NULL, NULL, NULL};

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static void table_build(void) {
  for (uint32_t h = 0; h < 65536; h++) quant_f16_table[h] = quant_f16_to_f32((uint16_t)h);
}

#if defined(__x86_64__)
static int cpu_has_avx512_vnni(void) {
  unsigned int a, b, c, d;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  return (c >> 11) & 1;
}
#endif

static int vnni_allowed = -1; // -1: not yet read from NOMOAT_NO_VNNI (benign race: every thread reads the same)

void quant_set_vnni(int allowed) { vnni_allowed = allowed != 0; }

int quant_vnni_allowed(void) {
  if (vnni_allowed < 0) {
    const char *env = getenv("NOMOAT_NO_VNNI");
    vnni_allowed = !(env && strcmp(env, "1") == 0);
  }
  return vnni_allowed;
}

const quant_kernels_t *quant_kernels_current(void) {
  pthread_once(&table_once, table_build);
  switch (kernels_level()) {
#if defined(__x86_64__)
    case SIMD_AVX512: {
      static int vnni = -1; // benign race: every thread computes the same value
      if (vnni < 0) vnni = cpu_has_avx512_vnni();
      return vnni && quant_vnni_allowed() ? &quant_kernels_avx512_vnni : &quant_kernels_avx512;
    }
    case SIMD_AVX2: return &quant_kernels_avx2;
#endif
#if defined(__aarch64__)
    case SIMD_NEON: return &quant_kernels_neon;
#endif
    default: return &quant_kernels_scalar;
  }
}
