// The AVX-512 integer dot of kernels_quant.h, included twice by kernels_quant_avx512.c: once with maddubs + madd
// (AVX-512BW) and once with VNNI's vpdpbusd. The includer defines QKA_DOT(name) (the function's name) and
// QKA_DPBUSD(aw, sx) (int32 lanes: sums of 4 products |w| · (x with w's sign)). Two blocks per zmm register.
// The k-quant dot below it takes QKA_DPWSSD(acc, p, s) the same way (vpdpwssd with VNNI).

// out[m · ldo] for the M rows (M and the block format fmt constant after inlining, so the accumulators stay in
// registers); fmt: 0 q8_0, 1 q4_0, 2 q5_0 (its fifth bits spread in registers, no repacked row)
static inline __attribute__((always_inline)) void QKA_DOT(body)(int fmt, const uint8_t *row, long nb,
                                                                const int8_t *xq, long ldq, const float *xd,
                                                                long ldd, int M, float *out, long ldo) {
  __m512 acc[QDOT_MAX_M];
  for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
  const __m512i lane_block = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const long bb = fmt == 1 ? 18 : fmt == 2 ? 22 : 34;
  long b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t *b0 = row + b * bb, *b1 = b0 + bb;
    __m512i w = fmt == 1 ? weights2_q4(b0, b1) : fmt == 2 ? weights2_q5(b0, b1) : weights2_q8(b0, b1);
    __m512i aw = _mm512_abs_epi8(w); // −128 → 0x80, read as unsigned 128
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m128 dw = _mm_setr_ps(quant_f16(b0), quant_f16(b1), 0.0f, 0.0f);
    for (int m = 0; m < M; m++) {
      __m512i x = _mm512_loadu_si512((const void *)(xq + m * ldq + b * QK));
      __m512i p = QKA_DPBUSD(aw, _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x));
      __m128 dd = _mm_mul_ps(dw, _mm_castpd_ps(_mm_load_sd((const double *)(xd + m * ldd + b))));
      acc[m] = _mm512_fmadd_ps(_mm512_permutexvar_ps(lane_block, _mm512_castps128_ps512(dd)), _mm512_cvtepi32_ps(p),
                               acc[m]);
    }
  }
  if (b < nb) { // the last odd block in the low half; the high half is zero
    const uint8_t *b0 = row + b * bb;
    __m256i w1 = fmt == 1 ? weights_q4(b0) : fmt == 2 ? weights_q5(b0) : weights_q8(b0);
    __m512i w = _mm512_inserti64x4(_mm512_setzero_si512(), w1, 0);
    __m512i aw = _mm512_abs_epi8(w);
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m128 dw = _mm_set_ss(quant_f16(b0));
    for (int m = 0; m < M; m++) {
      __m512i x = _mm512_maskz_loadu_epi8(0xffffffffull, (const void *)(xq + m * ldq + b * QK));
      __m512i p = QKA_DPBUSD(aw, _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x));
      __m128 dd = _mm_mul_ps(dw, _mm_load_ss(xd + m * ldd + b));
      acc[m] = _mm512_fmadd_ps(_mm512_permutexvar_ps(lane_block, _mm512_castps128_ps512(dd)), _mm512_cvtepi32_ps(p),
                               acc[m]);
    }
  }
  for (int m = 0; m < M; m++) out[m * ldo] = _mm512_reduce_add_ps(acc[m]);
}

static void QKA_DOT(dot)(int q4, const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd,
                         int M, float *out, long ldo) {
#define QKA_CASE(Q4, MM) QKA_DOT(body)(Q4, row, nb, xq, ldq, xd, ldd, MM, out, ldo)
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

// The same for a q5_0 row (kernels_quant.h's optional dot_q5_0)
static void QKA_DOT(dot_q5_0)(const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd, int M,
                              float *out, long ldo) {
#define QKA_CASE(MM) QKA_DOT(body)(2, row, nb, xq, ldq, xd, ldd, MM, out, ldo)
  switch (M) {
    case 1: QKA_CASE(1); break;
    case 2: QKA_CASE(2); break;
    case 3: QKA_CASE(3); break;
    default: QKA_CASE(4); break;
  }
#undef QKA_CASE
}

// ---- K-quants (kernels_kquant.h): two groups of 32 values per zmm; QKA_DPWSSD(acc, p, s) adds the int16 pairs of
// p · s to acc's int32 lanes (madd + add, or VNNI's vpdpwssd). The lanes of the two groups are added at the end of
// each superblock (exact), then the float steps are AVX2's.

// RB weight rows × M rows of x (both constant after inlining, so the int32 accumulators stay in registers)
static inline __attribute__((always_inline)) void QKA_DOT(kbody)(int folded, const kq_block *w, long nsb, int RB,
                                                                 const kq_x *x, int M, float *out, long ldo) {
  __m256 facc[KQ_MAX_R][QDOT_MAX_M];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m] = _mm256_setzero_ps();
  for (long i = 0; i < nsb; i++) {
    __m512i iacc[KQ_MAX_R][QDOT_MAX_M];
    for (int r = 0; r < RB; r++)
      for (int m = 0; m < M; m++) iacc[r][m] = _mm512_setzero_si512();
    for (int h = 0; h < 4; h++) {
      __m512i xg[QDOT_MAX_M];
      for (int m = 0; m < M; m++) xg[m] = _mm512_loadu_si512((const void *)(x->qs + m * x->K + i * QK_K + 64 * h));
      for (int r = 0; r < RB; r++) {
        const kq_block *b = w + r * nsb + i;
        __m512i u = _mm512_load_si512((const void *)(b->u + 64 * h));
        __m512i sc = _mm512_load_si512((const void *)b->s[2 * h]);
        for (int m = 0; m < M; m++) iacc[r][m] = QKA_DPWSSD(iacc[r][m], _mm512_maddubs_epi16(u, xg[m]), sc);
      }
    }
    for (int m = 0; m < M; m++) {
      __m256i bs = _mm256_loadu_si256((const __m256i *)(x->bsum + m * (x->K / 16) + 16 * i));
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++) {
        const kq_block *b = w + r * nsb + i;
        __m256i osum = _mm256_madd_epi16(bs, _mm256_load_si256((const __m256i *)b->o));
        __m256i isum = _mm256_add_epi32(_mm512_castsi512_si256(iacc[r][m]), _mm512_extracti64x4_epi64(iacc[r][m], 1));
        facc[r][m] = kq_acc_x86(folded, facc[r][m], isum, osum, b->d, b->dmin, dx);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = kq_hsum8(facc[r][m]);
}

static void QKA_DOT(kdot)(int folded, const kq_block *w, long nsb, int R, const kq_x *x, int M, float *out, long ldo) {
#define KQ_CASE(F, RB, MM) QKA_DOT(kbody)(F, w + r * nsb, nsb, RB, x, MM, out + r, ldo)
#define KQ_MS(F, RB)                          \
  switch (M) {                                \
    case 1: KQ_CASE(F, RB, 1); break;         \
    case 2: KQ_CASE(F, RB, 2); break;         \
    case 3: KQ_CASE(F, RB, 3); break;         \
    default: KQ_CASE(F, RB, 4); break;        \
  }
  for (int r = 0; r < R;) {
    int rb = R - r >= 4 ? 4 : R - r >= 2 ? 2 : 1;
    if (folded) {
      if (rb == 4) KQ_MS(1, 4) else if (rb == 2) KQ_MS(1, 2) else KQ_MS(1, 1)
    } else {
      if (rb == 4) KQ_MS(0, 4) else if (rb == 2) KQ_MS(0, 2) else KQ_MS(0, 1)
    }
    r += rb;
  }
#undef KQ_MS
#undef KQ_CASE
}

// ---- q4_K and q6_K rows dotted as stored (kernels_quant.h's kdot_raw): each 64-value group's unsigned values and
// int16 scales are built in registers from the block's bytes, so decode skips the unpacked copy (576 bytes written
// and read back per 144- or 210-byte superblock). The integers are the kq_block's, the float steps kbody's: same bits.

// q4_K group h of a superblock: u = the low nibbles of qs[32h..32h+32) then their high nibbles (one broadcast load,
// word shifts 0 | 4); sc = s8[2h] in words 0..15, s8[2h + 1] in words 16..31 (vpermw of the 8 scales)
// q6_K group h: ql[64(h/2)..+64)'s low (h even) or high (h odd) nibbles under bits 4(h % 2) + {0, 2} (halves) of
// qh[32(h/2)..+32) broadcast; sc = scales[4h + word / 8]
static inline __attribute__((always_inline)) void QKA_DOT(rawbody)(int q6, const uint8_t *w, long row_bytes, long nsb,
                                                                   int RB, const kq_x *x, int M, float *out, long ldo) {
  const long bb = q6 ? 210 : 144;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x03);
  const __m512i half4 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1); // words 16..31: 4
  const __m512i qh_shift[2] = {_mm512_srli_epi16(half4, 1), _mm512_add_epi16(_mm512_srli_epi16(half4, 1), _mm512_set1_epi16(4))};
  __m512i pick[4]; // the scale of word p (values 64h + 2p, + 1): q4_K s8[2h + p / 16], q6_K scales[4h + p / 8]
  for (int h = 0; h < 4; h++) {
    __m256i lo = _mm256_set1_epi16((short)(q6 ? 4 * h : 2 * h)), hi = _mm256_set1_epi16((short)(q6 ? 4 * h + 2 : 2 * h + 1));
    if (q6) {
      __m256i step = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
      lo = _mm256_add_epi16(lo, step);
      hi = _mm256_add_epi16(hi, step);
    }
    pick[h] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  const long ahead = kq_raw_ahead(RB * row_bytes);
  __m256 facc[KQ_MAX_R][KQ_RAW_MAX_M];
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) facc[r][m] = _mm256_setzero_ps();
  for (long i = 0; i < nsb; i++) {
    __m512i iacc[KQ_MAX_R][KQ_RAW_MAX_M];
    __m512i s16[KQ_MAX_R];
    __m256i o16[KQ_MAX_R];
    float d[KQ_MAX_R], dmin[KQ_MAX_R];
    for (int r = 0; r < RB; r++) {
      const uint8_t *b = w + r * row_bytes + i * bb;
      kq_prefetch(b + ahead, bb);
      if (q6) {
        __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
        s16[r] = _mm512_castsi256_si512(s);
        o16[r] = _mm256_slli_epi16(s, 5);
        d[r] = KQ_F16(b + 208);
      } else {
        __m128i sm = kq_scale_min_x86(b + 4); // bytes: s8[0..8), m8[0..8)
        s16[r] = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sm));
        o16[r] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
        d[r] = KQ_F16(b);
        dmin[r] = KQ_F16(b + 2);
      }
      for (int m = 0; m < M; m++) iacc[r][m] = _mm512_setzero_si512();
    }
    for (int h = 0; h < 4; h++) {
      __m512i xg[KQ_RAW_MAX_M];
      for (int m = 0; m < M; m++) xg[m] = _mm512_loadu_si512((const void *)(x->qs + m * x->K + i * QK_K + 64 * h));
      for (int r = 0; r < RB; r++) {
        const uint8_t *b = w + r * row_bytes + i * bb;
        __m512i u;
        if (q6) {
          __m512i ql = _mm512_loadu_si512((const void *)(b + 64 * (h >> 1)));
          if (h & 1) ql = _mm512_srli_epi16(ql, 4);
          __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * (h >> 1))));
          qh = _mm512_srlv_epi16(qh, qh_shift[h & 1]);
          u = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m2), 4));
        } else {
          __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h)));
          u = _mm512_and_si512(_mm512_srlv_epi16(q, half4), m4);
        }
        __m512i sc = _mm512_permutexvar_epi16(pick[h], s16[r]);
        for (int m = 0; m < M; m++) iacc[r][m] = QKA_DPWSSD(iacc[r][m], _mm512_maddubs_epi16(u, xg[m]), sc);
      }
    }
    for (int m = 0; m < M; m++) {
      __m256i bs = _mm256_loadu_si256((const __m256i *)(x->bsum + m * (x->K / 16) + 16 * i));
      float dx = x->d[m * nsb + i];
      for (int r = 0; r < RB; r++) {
        __m256i osum = _mm256_madd_epi16(bs, o16[r]);
        __m256i isum = _mm256_add_epi32(_mm512_castsi512_si256(iacc[r][m]), _mm512_extracti64x4_epi64(iacc[r][m], 1));
        facc[r][m] = kq_acc_x86(q6, facc[r][m], isum, osum, d[r], q6 ? 0.0f : dmin[r], dx);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int m = 0; m < M; m++) out[m * ldo + r] = kq_hsum8(facc[r][m]);
}

static void QKA_DOT(kdot_raw)(quant_type q, const uint8_t *w, long row_bytes, long nsb, int R, const kq_x *x, int M,
                              float *out, long ldo) {
#define KR_CASE(Q6, RB, MM) QKA_DOT(rawbody)(Q6, w + r * row_bytes, row_bytes, nsb, RB, x, MM, out + r, ldo)
#define KR_MS(Q6, RB)                          \
  if (M == 1) KR_CASE(Q6, RB, 1); else KR_CASE(Q6, RB, 2);
  int q6 = q == Q_Q6_K;
  for (int r = 0; r < R;) {
    int rb = R - r >= 4 ? 4 : R - r >= 2 ? 2 : 1;
    if (q6) {
      if (rb == 4) { KR_MS(1, 4) } else if (rb == 2) { KR_MS(1, 2) } else { KR_MS(1, 1) }
    } else {
      if (rb == 4) { KR_MS(0, 4) } else if (rb == 2) { KR_MS(0, 2) } else { KR_MS(0, 1) }
    }
    r += rb;
  }
#undef KR_MS
#undef KR_CASE
}
