// Integer q8_0 / q4_0 decode products for AVX2 (kernels_quant.h): one block of 32 per ymm register. The int8 × int8
// dot uses llama.cpp's sign trick: maddubs needs one unsigned operand, so |w| · (x with w's sign), then madd pairs
// the int16 sums into 8 int32 lanes (exact: |w| ≤ 128, |x| ≤ 127), converted to float and scaled by d_w · d_x.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_quant.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
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

static int quantize_row_q8_avx2(const float *x, long K, int8_t *qs, float *d) {
  const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.40282347e38f);
  __m256 bad = _mm256_setzero_ps();
  for (long b = 0; b < K / QK; b++) {
    const float *xb = x + b * QK;
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      __m256 a = _mm256_andnot_ps(sign, v[i]);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ)); // inf or NaN
      amax = _mm256_max_ps(amax, a);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float am = _mm_cvtss_f32(m4);
    d[b] = am / 127.0f;
    __m256 id = _mm256_set1_ps(am != 0.0f ? 127.0f / am : 0.0f);
    __m256i q[4];
    for (int i = 0; i < 4; i++)
      q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // int32 → int16 → int8 packs work within 128-bit lanes; the permute puts the 32 values back in order
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(qs + b * QK), p);
  }
  return _mm256_movemask_ps(bad) ? -1 : 0;
}

// the 32 weights of one block as int8
static inline __m256i weights_q8(const uint8_t *blk) { return _mm256_loadu_si256((const __m256i *)(blk + 2)); }
static inline __m256i weights_q4(const uint8_t *blk) {
  __m128i b = _mm_loadu_si128((const __m128i *)(blk + 2));
  __m256i n = _mm256_set_m128i(_mm_srli_epi16(b, 4), b); // low nibbles → values 0..15, high → 16..31
  return _mm256_sub_epi8(_mm256_and_si256(n, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// M and q4 are constants after inlining (see dot_avx2), so the accumulators stay in registers
static inline __attribute__((always_inline)) void dot_body(int q4, const uint8_t *row, long nb, const int8_t *xq,
                                                           long ldq, const float *xd, long ldd, int M, float *out,
                                                           long ldo) {
  __m256 acc[QDOT_MAX_M];
  for (int m = 0; m < M; m++) acc[m] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  const long bb = q4 ? 18 : 34;
  for (long b = 0; b < nb; b++) {
    const uint8_t *blk = row + b * bb;
    __m256i w = q4 ? weights_q4(blk) : weights_q8(blk);
    __m256i aw = _mm256_sign_epi8(w, w); // |w| (−128 → 0x80, read as unsigned 128)
    float dw = quant_f16(blk);
    for (int m = 0; m < M; m++) {
      __m256i x = _mm256_loadu_si256((const __m256i *)(xq + m * ldq + b * QK));
      __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[m * ldd + b]), _mm256_cvtepi32_ps(p), acc[m]);
    }
  }
  for (int m = 0; m < M; m++) out[m * ldo] = hsum8(acc[m]);
}

static void dot_avx2(int q4, const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd,
                     int M, float *out, long ldo) {
#define QKA_CASE(Q4, MM) dot_body(Q4, row, nb, xq, ldq, xd, ldd, MM, out, ldo)
  switch (M * 2 + (q4 != 0)) { // M is 1..QDOT_MAX_M (4)
    case 2: QKA_CASE(0, 1); break;
    case 3: QKA_CASE(1, 1); break;
    case 4: QKA_CASE(0, 2); break;
    case 5: QKA_CASE(1, 2); break;
    case 6: QKA_CASE(0, 3); break;
    case 7: QKA_CASE(1, 3); break;
    case 8: QKA_CASE(0, 4); break;
    default: QKA_CASE(1, 4); break;
  }
#undef QKA_CASE
}

// ---- K-quants (kernels_kquant.h): one group of 32 values per ymm; u unsigned, so maddubs takes it as it is ----

static void kunpack_avx2(quant_type q, const uint8_t *row, long nsb, kq_block *out) { kq_unpack_row(q, row, nsb, out); }

// RB weight rows × M rows of x (both constant after inlining, so the int32 accumulators stay in registers)
static inline __attribute__((always_inline)) void kdot_body(int folded, const kq_block *w, long nsb, int RB,
                                                            const kq_x *x, int M, float *out, long ldo) {
  __m256 facc[2][QDOT_MAX_M];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m] = _mm256_setzero_ps();
  for (long i = 0; i < nsb; i++) {
    __m256i iacc[2][QDOT_MAX_M];
    for (int r = 0; r < RB; r++)
      for (int m = 0; m < M; m++) iacc[r][m] = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      __m256i xg[QDOT_MAX_M];
      for (int m = 0; m < M; m++) xg[m] = _mm256_loadu_si256((const __m256i *)(x->qs + m * x->K + i * QK_K + 32 * g));
      for (int r = 0; r < RB; r++) {
        const kq_block *b = w + r * nsb + i;
        __m256i u = _mm256_load_si256((const __m256i *)(b->u + 32 * g));
        __m256i sc = _mm256_load_si256((const __m256i *)b->s[g]);
        for (int m = 0; m < M; m++)
          iacc[r][m] = _mm256_add_epi32(iacc[r][m], _mm256_madd_epi16(_mm256_maddubs_epi16(u, xg[m]), sc));
      }
    }
    for (int m = 0; m < M; m++) {
      __m256i bs = _mm256_loadu_si256((const __m256i *)(x->bsum + m * (x->K / 16) + 16 * i));
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++) {
        const kq_block *b = w + r * nsb + i;
        __m256i osum = _mm256_madd_epi16(bs, _mm256_load_si256((const __m256i *)b->o));
        facc[r][m] = kq_acc_x86(folded, facc[r][m], iacc[r][m], osum, b->d, b->dmin, dx);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = hsum8(facc[r][m]);
}

static void kdot_avx2(int folded, const kq_block *w, long nsb, int R, const kq_x *x, int M, float *out, long ldo) {
#define KQ_CASE(F, RB, MM) kdot_body(F, w + r * nsb, nsb, RB, x, MM, out + r, ldo)
#define KQ_MS(F, RB)                          \
  switch (M) {                                \
    case 1: KQ_CASE(F, RB, 1); break;         \
    case 2: KQ_CASE(F, RB, 2); break;         \
    case 3: KQ_CASE(F, RB, 3); break;         \
    default: KQ_CASE(F, RB, 4); break;        \
  }
  for (int r = 0; r < R;) {
    int rb = R - r >= 2 ? 2 : 1;
    if (folded) {
      if (rb == 2) KQ_MS(1, 2) else KQ_MS(1, 1)
    } else {
      if (rb == 2) KQ_MS(0, 2) else KQ_MS(0, 1)
    }
    r += rb;
  }
#undef KQ_MS
#undef KQ_CASE
}

// q4_K and q6_K rows dotted as stored (kernels_quant.h's kdot_raw; the AVX-512 version's comment says why): group g
// of 32 values is q4_K's qs[32(g/2)..+32) low (g even) or high nibbles under scale s8[g]; q6_K's ql[64(g/4) +
// 32(g%2)..+32) low (g%4 < 2) or high nibbles under bits 2(g%4), +1 of qh[32(g/4)..+32), scales[2g] (words 0..7)
// and [2g + 1]
static inline __attribute__((always_inline)) void kraw_body(int q6, const uint8_t *w, long row_bytes, long nsb, int RB,
                                                            const kq_x *x, int M, float *out, long ldo) {
  const long bb = q6 ? 210 : 144;
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
  const long ahead = kq_raw_ahead(RB * row_bytes);
  __m256 facc[2][KQ_RAW_MAX_M];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m] = _mm256_setzero_ps();
  for (long i = 0; i < nsb; i++) {
    __m256i iacc[2][KQ_RAW_MAX_M], sv[2];
    __m256i o16[2];
    float d[2], dmin[2];
    for (int r = 0; r < RB; r++) {
      const uint8_t *b = w + r * row_bytes + i * bb;
      kq_prefetch(b + ahead, bb);
      if (q6) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + 192));
        sv[r] = _mm256_broadcastsi128_si256(v);
        o16[r] = _mm256_slli_epi16(_mm256_cvtepi8_epi16(v), 5);
        d[r] = KQ_F16(b + 208);
      } else {
        __m128i sm = kq_scale_min_x86(b + 4); // bytes: s8[0..8), m8[0..8)
        sv[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm)); // the 8 scales as words, in both lanes
        o16[r] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
        d[r] = KQ_F16(b);
        dmin[r] = KQ_F16(b + 2);
      }
      for (int m = 0; m < M; m++) iacc[r][m] = _mm256_setzero_si256();
    }
    for (int g = 0; g < 8; g++) {
      __m256i xg[KQ_RAW_MAX_M];
      for (int m = 0; m < M; m++) xg[m] = _mm256_loadu_si256((const __m256i *)(x->qs + m * x->K + i * QK_K + 32 * g));
      for (int r = 0; r < RB; r++) {
        const uint8_t *b = w + r * row_bytes + i * bb;
        __m256i u, sc;
        if (q6) {
          int h6 = g >> 2, k = g & 3;
          __m256i ql = _mm256_loadu_si256((const __m256i *)(b + 64 * h6 + 32 * (k & 1)));
          if (k >> 1) ql = _mm256_srli_epi16(ql, 4);
          __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h6));
          qh = _mm256_srli_epi16(qh, 2 * k);
          u = _mm256_or_si256(_mm256_and_si256(ql, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
          // bytes 2g (×8) then 2g + 1 (×8) of the 16 int8 scales, widened
          __m256i pick = _mm256_setr_epi8((char)(2 * g), 0, (char)(2 * g), 0, (char)(2 * g), 0, (char)(2 * g), 0, (char)(2 * g), 0,
                                          (char)(2 * g), 0, (char)(2 * g), 0, (char)(2 * g), 0, (char)(2 * g + 1), 0, (char)(2 * g + 1), 0,
                                          (char)(2 * g + 1), 0, (char)(2 * g + 1), 0, (char)(2 * g + 1), 0, (char)(2 * g + 1), 0,
                                          (char)(2 * g + 1), 0, (char)(2 * g + 1), 0);
          __m256i bytes = _mm256_shuffle_epi8(sv[r], pick); // scale byte in the low byte of each word
          sc = _mm256_srai_epi16(_mm256_slli_epi16(bytes, 8), 8); // sign-extended
        } else {
          __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (g >> 1)));
          u = _mm256_and_si256((g & 1) ? _mm256_srli_epi16(q, 4) : q, m4);
          sc = _mm256_shuffle_epi8(sv[r], _mm256_set1_epi16((short)(0x0100 + 0x0202 * g))); // word g everywhere
        }
        for (int m = 0; m < M; m++)
          iacc[r][m] = _mm256_add_epi32(iacc[r][m], _mm256_madd_epi16(_mm256_maddubs_epi16(u, xg[m]), sc));
      }
    }
    for (int m = 0; m < M; m++) {
      __m256i bs = _mm256_loadu_si256((const __m256i *)(x->bsum + m * (x->K / 16) + 16 * i));
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++)
        facc[r][m] = kq_acc_x86(q6, facc[r][m], iacc[r][m], _mm256_madd_epi16(bs, o16[r]), d[r], q6 ? 0.0f : dmin[r], dx);
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = hsum8(facc[r][m]);
}

KQ_RAW_DISPATCH2(kdot_raw_avx2, kraw_body)

// q5_0 → q8_0 blocks as llama.cpp's AVX2 vec_dot_q5_0_q8_0 forms them: the 32 nibbles (low ones first), and where
// bit j of qh is clear, 0xF0 or-ed into byte j, which as int8 is nibble − 16 (set: nibble + 16 − 16)
void quant_repack_q5_0_avx2(const uint8_t *row, long nb, uint8_t *dst) {
  const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0); // byte j ← qh byte j/8
  const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe); // every bit but bit j mod 8 of byte j
  const __m256i ones = _mm256_set1_epi8(-1), lo4 = _mm256_set1_epi8(0x0f), hi4 = _mm256_set1_epi8((char)0xf0);
  for (long b = 0; b < nb; b++) {
    const uint8_t *s = row + b * 22;
    uint8_t *d = dst + b * 34;
    uint32_t qh;
    memcpy(&qh, s + 2, 4);
    __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread), others), ones);
    __m128i t = _mm_loadu_si128((const __m128i *)(s + 6));
    __m256i q = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1), lo4);
    d[0] = s[0];
    d[1] = s[1];
    _mm256_storeu_si256((__m256i *)(d + 2), _mm256_or_si256(q, _mm256_andnot_si256(set, hi4)));
  }
}

const quant_kernels_t quant_kernels_avx2 = {"avx2", quantize_row_q8_avx2, dot_avx2, kunpack_avx2, kdot_avx2,
                                            quant_repack_q5_0_avx2, NULL, kdot_raw_avx2, NULL};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
