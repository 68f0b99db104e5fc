// NEON level (arm64): an 8×8 register-blocked GEMM micro-kernel (16 q-register accumulators), and the row
// kernels of kernels_rows.h compiled for AArch64 (Advanced SIMD is always present there).
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nomoat.h"

#define KR_MR 8
#define KR_NR 8

// C[8, 8] (+)= Σ_k A[k, 0..8) ⊗ B[k, 0..8)
static void gemm_micro_impl(long K, const float *A, const float *B, float *C, long ldc, int accumulate) {
  float32x4_t c[KR_MR][2];
  for (int i = 0; i < KR_MR; i++) c[i][0] = c[i][1] = vdupq_n_f32(0.0f);
  for (long k = 0; k < K; k++) {
    float32x4_t b0 = vld1q_f32(B + k * KR_NR), b1 = vld1q_f32(B + k * KR_NR + 4);
    float32x4_t a0 = vld1q_f32(A + k * KR_MR), a1 = vld1q_f32(A + k * KR_MR + 4);
    c[0][0] = vfmaq_laneq_f32(c[0][0], b0, a0, 0); c[0][1] = vfmaq_laneq_f32(c[0][1], b1, a0, 0);
    c[1][0] = vfmaq_laneq_f32(c[1][0], b0, a0, 1); c[1][1] = vfmaq_laneq_f32(c[1][1], b1, a0, 1);
    c[2][0] = vfmaq_laneq_f32(c[2][0], b0, a0, 2); c[2][1] = vfmaq_laneq_f32(c[2][1], b1, a0, 2);
    c[3][0] = vfmaq_laneq_f32(c[3][0], b0, a0, 3); c[3][1] = vfmaq_laneq_f32(c[3][1], b1, a0, 3);
    c[4][0] = vfmaq_laneq_f32(c[4][0], b0, a1, 0); c[4][1] = vfmaq_laneq_f32(c[4][1], b1, a1, 0);
    c[5][0] = vfmaq_laneq_f32(c[5][0], b0, a1, 1); c[5][1] = vfmaq_laneq_f32(c[5][1], b1, a1, 1);
    c[6][0] = vfmaq_laneq_f32(c[6][0], b0, a1, 2); c[6][1] = vfmaq_laneq_f32(c[6][1], b1, a1, 2);
    c[7][0] = vfmaq_laneq_f32(c[7][0], b0, a1, 3); c[7][1] = vfmaq_laneq_f32(c[7][1], b1, a1, 3);
  }
  for (int i = 0; i < KR_MR; i++) {
    float *r = C + i * ldc;
    if (accumulate) {
      c[i][0] = vaddq_f32(c[i][0], vld1q_f32(r));
      c[i][1] = vaddq_f32(c[i][1], vld1q_f32(r + 4));
    }
    vst1q_f32(r, c[i][0]);
    vst1q_f32(r + 4, c[i][1]);
  }
}

// ---- f16 / bf16 weights: 4 values per fcvtl (f16) or widening shift (bf16) ----------------------------------
static inline __attribute__((always_inline)) float32x4_t half4(int bf16, const uint16_t *p) {
  uint16x4_t h = vld1_u16(p);
  return bf16 ? vreinterpretq_f32_u32(vshll_n_u16(h, 16)) : vcvt_f32_f16(vreinterpret_f16_u16(h));
}
static inline float half1(int bf16, uint16_t h) { return bf16 ? half_bf16_to_f32(h) : half_f16_to_f32(h); }

static inline __attribute__((always_inline)) void half_to_f32_body(int bf16, const uint16_t *src, float *dst, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    vst1q_f32(dst + i, half4(bf16, src + i));
    vst1q_f32(dst + i + 4, half4(bf16, src + i + 4));
  }
  for (; i < n; i++) dst[i] = half1(bf16, src[i]);
}

// out[m · ldo] = x_m · float(row), M rows (a constant after inlining): 8 values of the row per step, converted once
// and multiplied into every row's two accumulators; the last K % 8 in scalar.
static inline __attribute__((always_inline)) void half_dot_body(int bf16, int M, const uint16_t *row, long K,
                                                                const float *x, long ldx, float *out, long ldo) {
  float32x4_t acc[QDOT_MAX_M][2];
  for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = vdupq_n_f32(0.0f);
  long k = 0;
  for (; k + 8 <= K; k += 8) {
    float32x4_t w0 = half4(bf16, row + k), w1 = half4(bf16, row + k + 4);
    for (int m = 0; m < M; m++) {
      acc[m][0] = vfmaq_f32(acc[m][0], w0, vld1q_f32(x + m * ldx + k));
      acc[m][1] = vfmaq_f32(acc[m][1], w1, vld1q_f32(x + m * ldx + k + 4));
    }
  }
  for (int m = 0; m < M; m++) {
    float s = vaddvq_f32(vaddq_f32(acc[m][0], acc[m][1]));
    for (long kk = k; kk < K; kk++) s += half1(bf16, row[kk]) * x[m * ldx + kk];
    out[m * ldo] = s;
  }
}
#include "kernels_half.h"

#define KR_TABLE kernels_neon
#define KR_NAME "neon"
#define KR_KC 256
#define KR_MC 64
#define KR_NC 1024
#include "kernels_rows.h"
#endif
