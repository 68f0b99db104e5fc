// AVX2 + FMA level (x86-64): a 6×16 register-blocked GEMM micro-kernel, and the row kernels of kernels_rows.h
// compiled for AVX2. Only this file is built with the target; the rest of the addon stays baseline x86-64.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nomoat.h"

#if defined(__clang__) // clang has no `#pragma GCC target`; this applies the same target to every function below
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
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
