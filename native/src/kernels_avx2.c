// AVX2 + FMA (+ F16C, which every AVX2 CPU has; cpu.c requires it) level (x86-64): a 6×16 register-blocked GEMM micro-kernel, and the row kernels of kernels_rows.h
// compiled for AVX2. Only this file is built with the target; the rest of the addon stays baseline x86-64.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nomoat.h"

#if defined(__clang__) // clang has no `#pragma GCC target`; this applies the same target to every function below
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define KR_MR 6
#define KR_NR 16

// C[6, 16] (+)= Σ_k A[k, 0..6) ⊗ B[k, 0..16): 12 ymm accumulators, B row in two registers, A broadcast.
static void gemm_micro_impl(long K, const float *A, const float *B, float *C, long ldc, int accumulate) {
  __m256 c[KR_MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < KR_MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
  for (long k = 0; k < K; k++) {
    __m256 b0 = _mm256_load_ps(B + k * KR_NR), b1 = _mm256_load_ps(B + k * KR_NR + 8);
#pragma GCC unroll 6
    for (int i = 0; i < KR_MR; i++) {
      __m256 a = _mm256_broadcast_ss(A + k * KR_MR + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < KR_MR; i++) {
    float *r = C + i * ldc;
    if (accumulate) {
      c[i][0] = _mm256_add_ps(c[i][0], _mm256_loadu_ps(r));
      c[i][1] = _mm256_add_ps(c[i][1], _mm256_loadu_ps(r + 8));
    }
    _mm256_storeu_ps(r, c[i][0]);
    _mm256_storeu_ps(r + 8, c[i][1]);
  }
}

// Narrow product, no packing of A: C[rows, n] (+)= A[rows, K] (row-major, pitch lda) · Bp[K, 16] (packed, zero
// beyond n ≤ 16). Two ymm accumulators per row, NARROW_R rows at a time, each A element broadcast straight from its
// row; every C element is summed over k = 0..K-1 in order, so the row blocking never changes a bit.
#define NARROW_R 6
static inline void gemm_narrow_rows(long K, int R, const float *A, long lda, const float *Bp, float *C, long ldc, int n,
                                    int accumulate) {
  __m256 c[NARROW_R][2];
#pragma GCC unroll 6
  for (int i = 0; i < NARROW_R; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
  for (long k = 0; k < K; k++) {
    __m256 b0 = _mm256_load_ps(Bp + k * 16), b1 = _mm256_load_ps(Bp + k * 16 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < NARROW_R; i++)
      if (i < R) {
        __m256 a = _mm256_broadcast_ss(A + i * lda + k);
        c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
        c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
      }
  }
  for (int i = 0; i < R; i++) {
    float t[16], *r = C + i * ldc;
    _mm256_storeu_ps(t, c[i][0]);
    _mm256_storeu_ps(t + 8, c[i][1]);
    for (int j = 0; j < n; j++) r[j] = accumulate ? r[j] + t[j] : t[j];
  }
}

static void gemm_narrow_impl(long K, long rows, const float *A, long lda, const float *Bp, float *C, long ldc, int n,
                             int accumulate) {
  long m = 0;
  for (; m + NARROW_R <= rows; m += NARROW_R) // R is a constant here: the `i < R` tests fold away
    gemm_narrow_rows(K, NARROW_R, A + m * lda, lda, Bp, C + m * ldc, ldc, n, accumulate);
  for (; m < rows; m++) gemm_narrow_rows(K, 1, A + m * lda, lda, Bp, C + m * ldc, ldc, n, accumulate);
}
#define KR_GEMM_NARROW gemm_narrow_impl

// ---- f16 / bf16 weights: 8 values per vcvtph2ps (F16C) or zero-extend + shift (bf16) ---------------------------
static inline __attribute__((always_inline)) __m256 half8(int bf16, const uint16_t *p) {
  __m128i h = _mm_loadu_si128((const __m128i *)p);
  return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}
static inline float half1(int bf16, uint16_t h) { return bf16 ? half_bf16_to_f32(h) : half_f16_to_f32(h); }

static inline __attribute__((always_inline)) void half_to_f32_body(int bf16, const uint16_t *src, float *dst, long n) {
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, half8(bf16, src + i));
    _mm256_storeu_ps(dst + i + 8, half8(bf16, src + i + 8));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, half8(bf16, src + i));
  for (; i < n; i++) dst[i] = half1(bf16, src[i]);
}

// out[m · ldo] = x_m · float(row), M rows (a constant after inlining): 16 values of the row per step, converted
// once in registers and multiplied into every row's two accumulators; the last K % 8 in scalar.
static inline __attribute__((always_inline)) void half_dot_body(int bf16, int M, const uint16_t *row, long K,
                                                                const float *x, long ldx, float *out, long ldo) {
  __m256 acc[QDOT_MAX_M][2];
  for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  long k = 0;
  for (; k + 16 <= K; k += 16) {
    __m256 w0 = half8(bf16, row + k), w1 = half8(bf16, row + k + 8);
    for (int m = 0; m < M; m++) {
      acc[m][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * ldx + k), acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + m * ldx + k + 8), acc[m][1]);
    }
  }
  if (k + 8 <= K) {
    __m256 w = half8(bf16, row + k);
    for (int m = 0; m < M; m++) acc[m][0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + m * ldx + k), acc[m][0]);
    k += 8;
  }
  for (int m = 0; m < M; m++) {
    __m256 a = _mm256_add_ps(acc[m][0], acc[m][1]);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float s = _mm_cvtss_f32(h);
    for (long kk = k; kk < K; kk++) s += half1(bf16, row[kk]) * x[m * ldx + kk];
    out[m * ldo] = s;
  }
}
#include "kernels_half.h"

#define KR_TABLE kernels_avx2
#define KR_NAME "avx2"
#define KR_KC 256
#define KR_MC 96
#define KR_NC 2048
#include "kernels_rows.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
