// Integer q8_0 / q4_0 decode products for AVX-512 (kernels_quant.h): two blocks of 32 per zmm register. The dot
// itself (kernels_quant_avx512.h) is built twice: maddubs + madd for any AVX-512BW CPU, vpdpbusd where the CPU has
// AVX-512 VNNI. Integer sums are exact, so both give identical results.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_quant.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

// the unpackers with the CPU's f16 conversion (exact) and the scales spread in registers
#define KQ_F16(p) _cvtsh_ss((unsigned short)((p)[0] | ((p)[1] << 8)))
#define KQ_SCALES(o, sc, oc, shift) kq_scales_x86(o, sc, oc, shift)
#define KQ_SCALES32(o, s8, m8) kq_scales32_x86(o, s8, m8)
static inline void kq_scales_x86(kq_block *o, const int8_t *sc, const int8_t *oc, int shift) {
  __m128i v = _mm_loadu_si128((const __m128i *)sc);
  for (int g = 0; g < 8; g++) { // bytes 2g (×8), 2g + 1 (×8), widened to int16
    __m128i pick = _mm_add_epi8(_mm_set1_epi8((char)(2 * g)), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    _mm256_store_si256((__m256i *)o->s[g], _mm256_cvtepi8_epi16(_mm_shuffle_epi8(v, pick)));
  }
  __m256i ov = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)oc));
  _mm256_store_si256((__m256i *)o->o, _mm256_sll_epi16(ov, _mm_cvtsi32_si128(shift)));
}
static inline void kq_scales32_x86(kq_block *o, const uint8_t *s8, const uint8_t *m8) {
  __m256i w = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)s8))); // 8 words, twice
  for (int g = 0; g < 8; g++) // word g in every lane
    _mm256_store_si256((__m256i *)o->s[g], _mm256_shuffle_epi8(w, _mm256_set1_epi16((short)(0x0100 + 0x0202 * g))));
  __m128i m = _mm_loadl_epi64((const __m128i *)m8);
  _mm256_store_si256((__m256i *)o->o, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)));
}
#include "kernels_kquant_unpack.h"
#include "kernels_kquant_x86.h"

static int quantize_row_q8_avx512(const float *x, long K, int8_t *qs, float *d) {
  const __m512 big = _mm512_set1_ps(3.40282347e38f);
  __mmask16 bad = 0;
  for (long b = 0; b < K / QK; b++) {
    __m512 v0 = _mm512_loadu_ps(x + b * QK), v1 = _mm512_loadu_ps(x + b * QK + 16);
    __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
    bad |= _mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ); // inf or NaN
    float am = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    d[b] = am / 127.0f;
    __m512 id = _mm512_set1_ps(am != 0.0f ? 127.0f / am : 0.0f);
    const int rne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    _mm_storeu_si128((__m128i *)(qs + b * QK), _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, id), rne)));
    _mm_storeu_si128((__m128i *)(qs + b * QK + 16),
                     _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, id), rne)));
  }
  return bad ? -1 : 0;
}

// the 32 weights of one block as int8 (q8_0: as stored; q4_0: low nibbles → values 0..15, high → 16..31, minus 8)
static inline __m256i weights_q8(const uint8_t *blk) { return _mm256_loadu_si256((const __m256i *)(blk + 2)); }
static inline __m256i weights_q4(const uint8_t *blk) {
  __m128i b = _mm_loadu_si128((const __m128i *)(blk + 2));
  __m256i n = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
  return _mm256_sub_epi8(_mm256_and_si256(n, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}
// two consecutive blocks: b0's 32 weights in the low half, b1's in the high half
static inline __m512i weights2_q8(const uint8_t *b0, const uint8_t *b1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(weights_q8(b0)), weights_q8(b1), 1);
}
static inline __m512i weights2_q4(const uint8_t *b0, const uint8_t *b1) {
  __m256i n = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + 2))),
                                      _mm_loadu_si128((const __m128i *)(b1 + 2)), 1);
  const __m256i lo4 = _mm256_set1_epi8(0x0f);
  __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(n, lo4)),
                                 _mm256_and_si256(_mm256_srli_epi16(n, 4), lo4), 1); // 128-bit lanes: b0 lo, b1 lo, b0 hi, b1 hi
  z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));                          // → b0 lo, b0 hi, b1 lo, b1 hi
  return _mm512_sub_epi8(z, _mm512_set1_epi8(8));
}
// q5_0: the 32 values as int8 (nibble − 16), as quant_repack_q5_0_avx2 makes them
static inline __m256i weights_q5(const uint8_t *blk) {
  const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  uint32_t qh;
  memcpy(&qh, blk + 2, 4);
  __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread),
                                                  _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi8(-1));
  __m128i t = _mm_loadu_si128((const __m128i *)(blk + 6));
  __m256i q = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1),
                               _mm256_set1_epi8(0x0f));
  return _mm256_or_si256(q, _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xf0)));
}
static inline __m512i weights2_q5(const uint8_t *b0, const uint8_t *b1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(weights_q5(b0)), weights_q5(b1), 1);
}

static void kunpack_avx512(quant_type q, const uint8_t *row, long nsb, kq_block *out) { kq_unpack_row(q, row, nsb, out); }

// K-quants: the fixed-order sum of a superblock accumulator's lanes (kernels_kquant.h)
static inline float kq_hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#define QKA_DOT(name) name##_avx512
#define QKA_DPBUSD(aw, sx) _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), _mm512_set1_epi16(1))
#define QKA_DPWSSD(acc, p, s) _mm512_add_epi32(acc, _mm512_madd_epi16(p, s))
#include "kernels_quant_avx512.h"
#undef QKA_DOT
#undef QKA_DPBUSD
#undef QKA_DPWSSD

#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#endif

#define QKA_DOT(name) name##_avx512_vnni
#define QKA_DPBUSD(aw, sx) _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx)
#define QKA_DPWSSD(acc, p, s) _mm512_dpwssd_epi32(acc, p, s)
#include "kernels_quant_avx512.h"
#undef QKA_DOT
#undef QKA_DPBUSD
#undef QKA_DPWSSD

// dot_tile (kernels_quant.h) with VNNI: RN prepared weight rows × M rows of x, 16 float accumulators at most, four
// operations per pair of blocks and pair of rows (the scale product, vpdpbusd from −128 · Σ w, the conversion, the FMA)
static inline __attribute__((always_inline)) void tile_body(const qtile_pair *w, long wstride, long npairs, int RN,
                                                            const uint8_t *xu, const float *xl, int M, float *out,
                                                            long ldo) {
  __m512 acc[QTILE_RN][QDOT_MAX_M];
  for (int r = 0; r < RN; r++)
    for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
  for (long p = 0; p < npairs; p++) {
    __m512i xv[QDOT_MAX_M];
    __m512 xs[QDOT_MAX_M];
    for (int m = 0; m < M; m++) {
      xv[m] = _mm512_loadu_si512((const void *)(xu + (m * npairs + p) * 64));
      xs[m] = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                    _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)(xl + (m * npairs + p) * 2)))));
    }
    for (int r = 0; r < RN; r++) {
      const qtile_pair *wp = w + r * wstride + p;
      __m512i wv = _mm512_load_si512((const void *)wp->w), nc = _mm512_load_si512((const void *)wp->nc);
      __m512 wl = _mm512_load_ps(wp->wl);
      for (int m = 0; m < M; m++)
        acc[r][m] = _mm512_fmadd_ps(_mm512_mul_ps(wl, xs[m]), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(nc, xv[m], wv)),
                                    acc[r][m]);
    }
  }
  for (int r = 0; r < RN; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = _mm512_reduce_add_ps(acc[r][m]);
}

static void dot_tile_avx512_vnni(const qtile_pair *w, long wstride, long npairs, int RN, const uint8_t *xu,
                                 const float *xl, int M, float *out, long ldo) {
#define QT_CASE(RB, MM) tile_body(w, wstride, npairs, RB, xu, xl, MM, out, ldo)
#define QT_MS(RB)                        \
  switch (M) {                           \
    case 1: QT_CASE(RB, 1); break;       \
    case 2: QT_CASE(RB, 2); break;       \
    case 3: QT_CASE(RB, 3); break;       \
    default: QT_CASE(RB, 4); break;      \
  }
  switch (RN) {
    case 1: QT_MS(1) break;
    case 2: QT_MS(2) break;
    case 3: QT_MS(3) break;
    default: QT_MS(4) break;
  }
#undef QT_MS
#undef QT_CASE
}

const quant_kernels_t quant_kernels_avx512 = {"avx512", quantize_row_q8_avx512, dot_avx512, kunpack_avx512,
                                              kdot_avx512, quant_repack_q5_0_avx2, dot_q5_0_avx512,
                                              kdot_raw_avx512, NULL};
const quant_kernels_t quant_kernels_avx512_vnni = {"avx512-vnni", quantize_row_q8_avx512, dot_avx512_vnni,
                                                   kunpack_avx512, kdot_avx512_vnni, quant_repack_q5_0_avx2,
                                                   dot_q5_0_avx512_vnni, kdot_raw_avx512_vnni, dot_tile_avx512_vnni};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
