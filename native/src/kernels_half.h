// The entry points of a level's f16/bf16 kernels, shared by kernels_avx2.c, kernels_avx512.c and kernels_neon.c.
// The includer first defines, always inline, half_to_f32_body(bf16, src, dst, n) and half_dot_body(bf16, M, row, K,
// x, ldx, out, ldo) with its own conversion instructions; here they are called with bf16 and M as constants, so each
// (dtype, M) gets its own straight-line loop, and named for kernels_rows.h's table (KR_HALF_TO_F32, KR_HALF_DOT).
#ifndef NOMOAT_KERNELS_HALF_H
#define NOMOAT_KERNELS_HALF_H

static void kr_half_to_f32_simd(int bf16, const uint16_t *src, float *dst, long n) {
  if (bf16) half_to_f32_body(1, src, dst, n);
  else half_to_f32_body(0, src, dst, n);
}

#define KR_HALF_DOT_CASES(BF)                                      \
  switch (M) {                                                     \
    case 1: half_dot_body(BF, 1, row, K, x, ldx, out, ldo); break; \
    case 2: half_dot_body(BF, 2, row, K, x, ldx, out, ldo); break; \
    case 3: half_dot_body(BF, 3, row, K, x, ldx, out, ldo); break; \
    default: half_dot_body(BF, 4, row, K, x, ldx, out, ldo); break; \
  }
// M ≤ QDOT_MAX_M = 4 rows of x
static void kr_half_dot_simd(int bf16, const uint16_t *row, long K, const float *x, long ldx, int M, float *out,
                             long ldo) {
  if (bf16) KR_HALF_DOT_CASES(1)
  else KR_HALF_DOT_CASES(0)
}
#undef KR_HALF_DOT_CASES

#define KR_HALF_TO_F32 kr_half_to_f32_simd
#define KR_HALF_DOT kr_half_dot_simd
#endif
