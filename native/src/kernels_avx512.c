// AVX-512 level (F/BW/VL/DQ, x86-64): an MR×32 register-blocked GEMM micro-kernel (B row in two zmm registers,
// A broadcast from memory), and the row kernels of kernels_rows.h compiled for AVX-512.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nomoat.h"

#if defined(__clang__) // clang has no `#pragma GCC target`; this applies the same target to every function below
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#endif

#define KR_MR 12
#define KR_NR 32

// C[MR, 32] (+)= Σ_k A[k, 0..MR) ⊗ B[k, 0..32): 2·MR zmm accumulators. No software prefetch of A: the hardware
// streams the packed panel from L2, and a prefetch per k cost 2–5 % on Zen 5 (measured in the GEMM and alone).
static void gemm_micro_impl(long K, const float *A, const float *B, float *C, long ldc, int accumulate) {
  __m512 c[KR_MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < KR_MR; i++) {
    c[i][0] = c[i][1] = _mm512_setzero_ps();
    _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0); // C is read at the end when accumulating
    _mm_prefetch((const char *)(C + i * ldc + 16), _MM_HINT_T0);
  }
  for (long k = 0; k < K; k++) {
    __m512 b0 = _mm512_load_ps(B + k * KR_NR), b1 = _mm512_load_ps(B + k * KR_NR + 16);
#pragma GCC unroll 16
    for (int i = 0; i < KR_MR; i++) {
      __m512 a = _mm512_set1_ps(A[k * KR_MR + i]);
      c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < KR_MR; i++) {
    float *r = C + i * ldc;
    if (accumulate) {
      c[i][0] = _mm512_add_ps(c[i][0], _mm512_loadu_ps(r));
      c[i][1] = _mm512_add_ps(c[i][1], _mm512_loadu_ps(r + 16));
    }
    _mm512_storeu_ps(r, c[i][0]);
    _mm512_storeu_ps(r + 16, c[i][1]);
  }
}

// Narrow product, no packing of A: C[rows, n] (+)= A[rows, K] (row-major, pitch lda) · Bp[K, 16] (packed, zero
// beyond n ≤ 16). One zmm accumulator per row, NARROW_R rows at a time, each A element broadcast straight from its
// row; every C element is summed over k = 0..K-1 in order, so the row blocking never changes a bit.
#define NARROW_R 12
static inline void gemm_narrow_rows(long K, int R, const float *A, long lda, const float *Bp, float *C, long ldc,
                                    __mmask16 mask, int accumulate) {
  __m512 c[NARROW_R];
#pragma GCC unroll 12
  for (int i = 0; i < NARROW_R; i++) c[i] = _mm512_setzero_ps();
  for (long k = 0; k < K; k++) {
    __m512 b = _mm512_load_ps(Bp + k * 16);
#pragma GCC unroll 12
    for (int i = 0; i < NARROW_R; i++)
      if (i < R) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(A[i * lda + k]), b, c[i]);
  }
#pragma GCC unroll 12
  for (int i = 0; i < NARROW_R; i++) {
    if (i >= R) break;
    float *r = C + i * ldc;
    if (accumulate) c[i] = _mm512_add_ps(c[i], _mm512_maskz_loadu_ps(mask, r));
    _mm512_mask_storeu_ps(r, mask, c[i]);
  }
}

static void gemm_narrow_impl(long K, long rows, const float *A, long lda, const float *Bp, float *C, long ldc, int n,
                             int accumulate) {
  __mmask16 mask = (__mmask16)((1u << n) - 1u);
  long m = 0;
  for (; m + NARROW_R <= rows; m += NARROW_R) // R is a constant here: the `i < R` tests fold away
    gemm_narrow_rows(K, NARROW_R, A + m * lda, lda, Bp, C + m * ldc, ldc, mask, accumulate);
  for (; m < rows; m++) gemm_narrow_rows(K, 1, A + m * lda, lda, Bp, C + m * ldc, ldc, mask, accumulate);
}
#define KR_GEMM_NARROW gemm_narrow_impl

// Narrow product over a transposed operand: D[r, j] = Σ_k X[k * ldx + r] · Bp[k * 16 + j] for r < rows, j < n ≤ 16,
// and C[r * rs + j * cs] (+)= D[r, j]. 16 consecutive r are one contiguous zmm load of an X row, each times the 16
// broadcast Bp[k, j] into 16 accumulators (one per j); the 16×16 block is transposed once, at the end.
static void gemm_narrow_t_impl(long K, long rows, const float *X, long ldx, const float *Bp, float *C, long rs, long cs,
                               int n, int accumulate) {
  float t[16][16] __attribute__((aligned(64)));
  for (long r0 = 0; r0 < rows; r0 += 16) {
    int mr = rows - r0 < 16 ? (int)(rows - r0) : 16;
    __mmask16 mask = (__mmask16)((1u << mr) - 1u);
    __m512 c[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) c[j] = _mm512_setzero_ps();
    for (long k = 0; k < K; k++) {
      __m512 x = _mm512_maskz_loadu_ps(mask, X + k * ldx + r0);
#pragma GCC unroll 16
      for (int j = 0; j < 16; j++) c[j] = _mm512_fmadd_ps(x, _mm512_set1_ps(Bp[k * 16 + j]), c[j]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) _mm512_store_ps(t[j], c[j]);
    for (int j = 0; j < n; j++) {
      float *cj = C + r0 * rs + j * cs;
      for (int i = 0; i < mr; i++) cj[i * rs] = accumulate ? cj[i * rs] + t[j][i] : t[j][i];
    }
  }
}
#define KR_GEMM_NARROW_T gemm_narrow_t_impl

// ---- f16 / bf16 weights: 16 values per vcvtph2ps (f16) or zero-extend + shift (bf16) -------------------------
static inline __attribute__((always_inline)) __m512 half16(int bf16, __m256i h) {
  return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
static inline __attribute__((always_inline)) __m512 half16_load(int bf16, const uint16_t *p) {
  return half16(bf16, _mm256_loadu_si256((const __m256i *)p));
}

static inline __attribute__((always_inline)) void half_to_f32_body(int bf16, const uint16_t *src, float *dst, long n) {
  long i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(dst + i, half16_load(bf16, src + i));
    _mm512_storeu_ps(dst + i + 16, half16_load(bf16, src + i + 16));
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, half16(bf16, _mm256_maskz_loadu_epi16(m, src + i)));
  }
}

// out[m · ldo] = x_m · float(row), M rows (a constant after inlining): 32 values of the row per step, converted
// once in registers and multiplied into every row's two accumulators; a masked step for the last K % 32.
static inline __attribute__((always_inline)) void half_dot_body(int bf16, int M, const uint16_t *row, long K,
                                                                const float *x, long ldx, float *out, long ldo) {
  __m512 acc[QDOT_MAX_M][2];
  for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  long k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512 w0 = half16_load(bf16, row + k), w1 = half16_load(bf16, row + k + 16);
    for (int m = 0; m < M; m++) {
      acc[m][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + m * ldx + k), acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + m * ldx + k + 16), acc[m][1]);
    }
  }
  for (; k < K; k += 16) {
    __mmask16 msk = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1u);
    __m512 w = half16(bf16, _mm256_maskz_loadu_epi16(msk, row + k));
    for (int m = 0; m < M; m++) acc[m][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(msk, x + m * ldx + k), acc[m][0]);
  }
  for (int m = 0; m < M; m++) out[m * ldo] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1]));
}
#include "kernels_half.h"

#define KR_TABLE kernels_avx512
#define KR_NAME "avx512"
#define KR_KC 384 // tuned on Zen 5: B micro-panel streams from L1/L2, A block (MC×KC) stays in L2
#define KR_MC 96
#define KR_NC 2048
#define KR_ATTN_HEADER "kernels_attention_avx512.h"
#include "kernels_rows.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
