// The generic C path: readable reference and fallback for any CPU. Row kernels come from kernels_rows.h; the GEMM
// micro-kernel here is the plain triple loop over one packed MR×NR tile.
#include <stdint.h>
#include "nomoat.h"

#define KR_MR 4
#define KR_NR 8

// C[MR, NR] (+)= Σ_k A[k, 0..MR) ⊗ B[k, 0..NR)   (A, B packed: A[k * MR + i], B[k * NR + j])
static void gemm_micro_impl(long K, const float *A, const float *B, float *C, long ldc, int accumulate) {
  float acc[KR_MR][KR_NR] = {{0}};
  for (long k = 0; k < K; k++)
    for (int i = 0; i < KR_MR; i++)
      for (int j = 0; j < KR_NR; j++) acc[i][j] += A[k * KR_MR + i] * B[k * KR_NR + j];
  for (int i = 0; i < KR_MR; i++)
    for (int j = 0; j < KR_NR; j++) C[i * ldc + j] = accumulate ? C[i * ldc + j] + acc[i][j] : acc[i][j];
}

#define KR_TABLE kernels_scalar
#define KR_NAME "scalar"
#define KR_KC 256
#define KR_MC 64
#define KR_NC 1024
#include "kernels_rows.h"
