// The AVX-512 integer dot of kernels_quant.h, included twice by kernels_quant_avx512.c: once with maddubs + madd
// (AVX-512BW) and once with VNNI's vpdpbusd. The includer defines QKA_DOT(name) (the function's name) and
// QKA_DPBUSD(aw, sx) (int32 lanes: sums of 4 products |w| · (x with w's sign)). Two blocks per zmm register.

// out[m · ldo] for the M rows (M and q4 constant after inlining, so the accumulators stay in registers)
static inline __attribute__((always_inline)) void QKA_DOT(body)(int q4, const uint8_t *row, long nb,
                                                                const int8_t *xq, long ldq, const float *xd,
                                                                long ldd, int M, float *out, long ldo) {
  __m512 acc[QDOT_MAX_M];
  for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
  const __m512i lane_block = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const long bb = q4 ? 18 : 34;
  long b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t *b0 = row + b * bb, *b1 = b0 + bb;
    __m512i w = q4 ? weights2_q4(b0, b1) : weights2_q8(b0, b1);
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
    __m512i w = _mm512_inserti64x4(_mm512_setzero_si512(), q4 ? weights_q4(b0) : weights_q8(b0), 0);
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
