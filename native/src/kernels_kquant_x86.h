// K-quant pieces shared by the AVX2 and AVX-512 kernels (kernels_kquant.h's float order; both files include this
// inside their own target region, so each compiles it for its level).
#ifndef NOMOAT_KERNELS_KQUANT_X86_H
#define NOMOAT_KERNELS_KQUANT_X86_H
#include <immintrin.h>

// acc += one superblock's 8 lanes (isum, osum: int32) in kernels_kquant.h's float order; d, dmin the superblock's
// scales, dx the activation block's
static inline __m256 kq_acc_x86(int folded, __m256 acc, __m256i isum, __m256i osum, float d, float dmin, float dx) {
  __m256 dd = _mm256_set1_ps(d * dx);
  if (folded) return _mm256_add_ps(acc, _mm256_mul_ps(dd, _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, osum))));
  acc = _mm256_add_ps(acc, _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum)));
  return _mm256_sub_ps(acc, _mm256_mul_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(osum)));
}

// q4_K / q5_K: kq_scale_min_k4x8 of the 12 bytes at p in one register, bytes s8[0..8) then m8[0..8) (the scalar
// form's stores and 8-byte reloads stalled store forwarding on every block): dwords [w0, w2, w1, w2 >> 4] masked to
// 6 | 4 | 6 | 4 bits, the top 2 bits of w0, w1 moved into dwords 1 and 3. Reads 16 bytes (the block goes on).
static inline __m128i kq_scale_min_x86(const uint8_t *p) {
  __m128i v = _mm_loadu_si128((const __m128i *)p);
  __m128i xs = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
  __m128i lo = _mm_and_si128(xs, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                              _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, top);
}

#endif
