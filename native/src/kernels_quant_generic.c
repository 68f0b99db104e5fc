// Integer q8_0 / q4_0 decode products, generic C: the readable reference of kernels_quant.h's math and the
// fallback for any CPU; also the f16 table and the choice of the table for the current SIMD level.
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

const quant_kernels_t quant_kernels_scalar = {"scalar", quantize_row_q8_scalar, dot_scalar};

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
