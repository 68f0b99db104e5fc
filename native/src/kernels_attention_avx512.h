// Register-blocked AVX-512 attention kernels, included by kernels_avx512.c after kernels_rows.h (whose generic
// kr_attn_* kernels stay the reference and the fallback for head dims that are not a multiple of 8).
//
// Forward and dq keep a block's ≤ 32 query rows in the 16 lanes of two zmm registers: Qt[D, 32] is packed once
// per block, and a score tile St[j, r] = Σ_d K[j, d] · Qt[d, r] broadcasts K straight from its natural layout,
// so no key tile is ever transposed. The online softmax is then vertical (max, exp and sums per lane = per row),
// and the P·V product accumulates Ot[d, r] += V[j, d] · Pt[j, r], V again broadcast in place.
// dk/dv keep a key block's 64 keys in four zmm registers instead: Kt, Vt[D, 64] are packed once per task and
// every query row that sees the block is broadcast against them; dKt, dVt[D, 64] accumulate over the rows.
#define AV_ROWS 32 // rows per forward/dq block (ATT_QB): two zmm
#define AV_KJ 8    // keys per score micro-tile: 8 × 2 zmm accumulators
#define AV_RG 16   // query rows per dk/dv row group
#define KR_ATTN_FORWARD av_attn_forward_block
#define KR_ATTN_DQ av_attn_backward_dq_block
#define KR_ATTN_DKV av_attn_backward_dkv_block

_Static_assert(ATT_QB == AV_ROWS, "the AVX-512 attention kernels hold ATT_QB rows in two zmm");

// kr_exp, lane-wise (same clamp and polynomial)
static inline __m512 av_exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

// Row r of a forward/dq block: its query index and the address of its D values in x[B, T, H, D].
static inline const float *av_row(const float *x, const attn_params *p, int b, int h0, int q0, int nh, int r) {
  return x + (((long)b * p->Tq + q0 + r / nh) * p->H + h0 + r % nh) * p->D;
}

// Xt[d, r] = x_r[d] · k for r < nr, 0 for the padding rows up to AV_ROWS.
static void av_pack_rows_t(const float *x, float *Xt, const attn_params *p, int b, int h0, int q0, int nh, int nr,
                           float k) {
  int D = p->D;
  for (int r = 0; r < AV_ROWS; r++) {
    if (r >= nr) {
      for (int d = 0; d < D; d++) Xt[d * AV_ROWS + r] = 0.0f;
      continue;
    }
    const float *xr = av_row(x, p, b, h0, q0, nh, r);
    for (int d = 0; d < D; d++) Xt[d * AV_ROWS + r] = xr[d] * k;
  }
}

// St[j, 0..32) = Σ_d src[j0 + j, g, d] · Xt[d, 0..32) for j < kb (keys past kb read a zero row and are not stored).
static void av_scores_t(const float *src, const float *Xt, float *St, const attn_params *p, int b, int g, int j0,
                        int kb, const float *zero) {
  int D = p->D;
  for (int jc = 0; jc < kb; jc += AV_KJ) {
    const float *kp[AV_KJ];
    for (int u = 0; u < AV_KJ; u++)
      kp[u] = jc + u < kb ? src + (((long)b * p->Tk + j0 + jc + u) * p->G + g) * D : zero;
    __m512 acc[AV_KJ][2];
    for (int u = 0; u < AV_KJ; u++) acc[u][0] = acc[u][1] = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
      __m512 x0 = _mm512_loadu_ps(Xt + d * AV_ROWS), x1 = _mm512_loadu_ps(Xt + d * AV_ROWS + 16);
      for (int u = 0; u < AV_KJ; u++) {
        __m512 kv = _mm512_set1_ps(kp[u][d]);
        acc[u][0] = _mm512_fmadd_ps(kv, x0, acc[u][0]);
        acc[u][1] = _mm512_fmadd_ps(kv, x1, acc[u][1]);
      }
    }
    int n = kb - jc < AV_KJ ? kb - jc : AV_KJ;
    for (int u = 0; u < n; u++) {
      _mm512_storeu_ps(St + (jc + u) * AV_ROWS, acc[u][0]);
      _mm512_storeu_ps(St + (jc + u) * AV_ROWS + 16, acc[u][1]);
    }
  }
}

// At[d, 0..32) = At[d, 0..32) · corr + Σ_{j<kb} src[j0 + j, g, d] · Pt[j, 0..32), summed in j order.
static void av_pv_t(float *At, const float *Pt, const float *src, const attn_params *p, int b, int g, int j0, int kb,
                    __m512 c0, __m512 c1) {
  int D = p->D;
  long stride = (long)p->G * D;
  const float *base = src + (((long)b * p->Tk + j0) * p->G + g) * D;
  for (int dc = 0; dc < D; dc += 8) {
    __m512 acc[8][2];
    for (int u = 0; u < 8; u++) {
      acc[u][0] = _mm512_mul_ps(_mm512_loadu_ps(At + (dc + u) * AV_ROWS), c0);
      acc[u][1] = _mm512_mul_ps(_mm512_loadu_ps(At + (dc + u) * AV_ROWS + 16), c1);
    }
    for (int j = 0; j < kb; j++) {
      __m512 p0 = _mm512_loadu_ps(Pt + j * AV_ROWS), p1 = _mm512_loadu_ps(Pt + j * AV_ROWS + 16);
      const float *vr = base + j * stride + dc;
      for (int u = 0; u < 8; u++) {
        __m512 vv = _mm512_set1_ps(vr[u]);
        acc[u][0] = _mm512_fmadd_ps(vv, p0, acc[u][0]);
        acc[u][1] = _mm512_fmadd_ps(vv, p1, acc[u][1]);
      }
    }
    for (int u = 0; u < 8; u++) {
      _mm512_storeu_ps(At + (dc + u) * AV_ROWS, acc[u][0]);
      _mm512_storeu_ps(At + (dc + u) * AV_ROWS + 16, acc[u][1]);
    }
  }
}

// Keys visible to each row of a block (0 for padding rows), as two int vectors, and their maximum.
static int av_limits(const attn_params *p, int q0, int nh, int nr, __m512i *l0, __m512i *l1) {
  int32_t lim[AV_ROWS];
  int kmax = 0;
  for (int r = 0; r < AV_ROWS; r++) {
    lim[r] = r < nr ? kr_attn_nkeys(p, q0 + r / nh) : 0;
    kmax = lim[r] > kmax ? lim[r] : kmax;
  }
  *l0 = _mm512_loadu_si512(lim);
  *l1 = _mm512_loadu_si512(lim + 16);
  return kmax;
}

// r[j] = Σ lanes of v[j] for 16 vectors (pairwise within 128-bit lanes, then across lanes): 15 adds' worth of
// shuffles instead of 16 separate horizontal sums.
static inline __attribute__((always_inline)) __m512 av_hsum16(const __m512 *v) {
  __m512 u[8], w[4];
  for (int i = 0; i < 8; i++)
    u[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; i++) // lane L of w[i]: the lane-L sums of v[4i .. 4i+3]
    w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 x01 = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 x23 = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(w[2], w[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)));
}

#define AV_DEC_ROWS 6 // decode blocks up to this many rows: scores by dot products, P·V with rows in registers

// S[0..kb) = Σ_d qs[d] · k_j[d] for the keys of one tile, 16 dot products per av_hsum16 (NC = D / 16).
static inline __attribute__((always_inline)) void av_dec_scores(const float *qs, const float *kbase, long stride,
                                                                int kb, float *S, const int NC) {
  for (int jc = 0; jc < kb; jc += 16) {
    __m512 part[16];
    for (int u = 0; u < 16; u++) {
      int j = jc + u < kb ? jc + u : kb - 1; // past the tile: a repeat, masked by the caller
      const float *kr = kbase + j * stride;
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qs), _mm512_loadu_ps(kr));
      for (int c = 1; c < NC; c++) a = _mm512_fmadd_ps(_mm512_loadu_ps(qs + 16 * c), _mm512_loadu_ps(kr + 16 * c), a);
      part[u] = a;
    }
    _mm512_storeu_ps(S + jc, av_hsum16(part));
  }
}

// O[r, 0..16·CN) += Σ_{j<kb} S[r, j] · v_j[0..16·CN) for R rows held in registers, each value row loaded once.
static inline __attribute__((always_inline)) void av_dec_pv(float *O, int D, const float *S, const float *vbase,
                                                            long stride, int kb, const int R, const int CN) {
  __m512 acc[AV_DEC_ROWS][4];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < CN; c++) acc[r][c] = _mm512_loadu_ps(O + r * D + 16 * c);
  for (int j = 0; j < kb; j++) {
    const float *vr = vbase + j * stride;
    __m512 vv[4];
    for (int c = 0; c < CN; c++) vv[c] = _mm512_loadu_ps(vr + 16 * c);
    for (int r = 0; r < R; r++) {
      __m512 pj = _mm512_set1_ps(S[r * ATT_KB + j]);
      for (int c = 0; c < CN; c++) acc[r][c] = _mm512_fmadd_ps(pj, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < CN; c++) _mm512_storeu_ps(O + r * D + 16 * c, acc[r][c]);
}

// Few rows (decode: one query against the KV cache, the heads of one group): keys sit in lanes for the softmax,
// scores are dot products summed 16 at a time by av_hsum16, and P·V holds every row's output chunk in registers
// while each value row is loaded once. D a multiple of 16.
static void av_attn_decode_block(const float *q, const float *k, const float *v, float *out, float *lse,
                                 const attn_params *p, int b, int h0, int q0, int nh, int nr, float *scratch) {
  int D = p->D, g = h0 / (p->H / p->G), nc = D / 16;
  long stride = (long)p->G * D;
  float *Qs = scratch;                         // [nr, D] scaled queries
  float *O = Qs + AV_DEC_ROWS * D;             // [nr, D] unnormalized output
  float *S = O + AV_DEC_ROWS * D;              // [nr, KB] scores, then probabilities
  float mrow[AV_DEC_ROWS], lrow[AV_DEC_ROWS];
  int lim[AV_DEC_ROWS], kmax = 0;
  for (int r = 0; r < nr; r++) {
    const float *qr = av_row(q, p, b, h0, q0, nh, r);
    for (int d = 0; d < D; d++) Qs[r * D + d] = qr[d] * p->scale, O[r * D + d] = 0.0f;
    mrow[r] = -INFINITY;
    lrow[r] = 0.0f;
    lim[r] = kr_attn_nkeys(p, q0 + r / nh);
    kmax = lim[r] > kmax ? lim[r] : kmax;
  }
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int j0 = 0; j0 < kmax; j0 += ATT_KB) {
    int kb = kmax - j0 < ATT_KB ? kmax - j0 : ATT_KB;
    const float *kbase = k + (((long)b * p->Tk + j0) * p->G + g) * D;
    for (int r = 0; r < nr; r++) {
      switch (nc) { // constant chunk counts keep the 16 partial sums in registers
        case 4: av_dec_scores(Qs + r * D, kbase, stride, kb, S + r * ATT_KB, 4); break;
        case 2: av_dec_scores(Qs + r * D, kbase, stride, kb, S + r * ATT_KB, 2); break;
        default: av_dec_scores(Qs + r * D, kbase, stride, kb, S + r * ATT_KB, nc); break;
      }
      int valid = lim[r] - j0 < kb ? lim[r] - j0 : kb;
      float *sr = S + r * ATT_KB;
      if (valid <= 0) { // nothing visible in this tile: no probabilities, no correction
        for (int j = 0; j < ATT_KB; j++) sr[j] = 0.0f;
        continue;
      }
      __m512 mx = _mm512_set1_ps(-INFINITY);
      for (int jc = 0; jc < kb; jc += 16) {
        __mmask16 m = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lane, _mm512_set1_epi32(jc)), _mm512_set1_epi32(valid));
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_loadu_ps(sr + jc));
      }
      float mnew = _mm512_reduce_max_ps(mx);
      mnew = mnew > mrow[r] ? mnew : mrow[r];
      float corr = mrow[r] == -INFINITY ? 0.0f : kr_exp(mrow[r] - mnew);
      __m512 sum = _mm512_setzero_ps(), mv = _mm512_set1_ps(mnew);
      for (int jc = 0; jc < ATT_KB; jc += 16) {
        __mmask16 m = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lane, _mm512_set1_epi32(jc)), _mm512_set1_epi32(valid));
        __m512 e = _mm512_maskz_mov_ps(m, av_exp(_mm512_sub_ps(_mm512_loadu_ps(sr + jc), mv)));
        _mm512_storeu_ps(sr + jc, e);
        sum = _mm512_add_ps(sum, e);
      }
      lrow[r] = lrow[r] * corr + _mm512_reduce_add_ps(sum);
      mrow[r] = mnew;
      for (int d = 0; d < D; d++) O[r * D + d] *= corr;
    }
    const float *vbase = v + (((long)b * p->Tk + j0) * p->G + g) * D;
    for (int c0 = 0; c0 < nc; c0 += 4) { // 64 columns (4 zmm) of every row at a time
      int cn = nc - c0 < 4 ? nc - c0 : 4;
      float *Oc = O + 16 * c0;
      const float *vc = vbase + 16 * c0;
#define AV_PV_CASE(R)                                                              \
  case R:                                                                          \
    if (cn == 4) av_dec_pv(Oc, D, S, vc, stride, kb, R, 4);                        \
    else if (cn == 3) av_dec_pv(Oc, D, S, vc, stride, kb, R, 3);                   \
    else if (cn == 2) av_dec_pv(Oc, D, S, vc, stride, kb, R, 2);                   \
    else av_dec_pv(Oc, D, S, vc, stride, kb, R, 1);                                \
    break;
      switch (nr) { AV_PV_CASE(1) AV_PV_CASE(2) AV_PV_CASE(3) AV_PV_CASE(4) AV_PV_CASE(5) AV_PV_CASE(6) }
#undef AV_PV_CASE
    }
  }
  for (int r = 0; r < nr; r++) {
    int i = q0 + r / nh, h = h0 + r % nh;
    float *dst = out + (((long)b * p->Tq + i) * p->H + h) * D;
    float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
    for (int d = 0; d < D; d++) dst[d] = O[r * D + d] * inv;
    lse[((long)b * p->H + h) * p->Tq + i] = lrow[r] > 0.0f ? mrow[r] + logf(lrow[r]) : -INFINITY;
  }
}

// out/lse for heads h0..h1-1 × queries q0..q1-1 of batch b (as kr_attn_forward_block).
static void av_attn_forward_block(const float *q, const float *k, const float *v, float *out, float *lse,
                                  const attn_params *p, int b, int h0, int h1, int q0, int q1, float *scratch) {
  kr_attn_block blk = kr_attn_block_of(p, h0, h1, q0, q1);
  int D = p->D, g = blk.g, nr = blk.nrows, nh = blk.nh;
  if (D % 16 == 0 && nr <= AV_DEC_ROWS) { // few rows (decode): 32 row lanes would sit idle
    av_attn_decode_block(q, k, v, out, lse, p, b, h0, q0, nh, nr, scratch);
    return;
  }
  if (D % 8 || nr > AV_ROWS || nr < ATT_DIRECT_ROWS) {
    kr_attn_forward_block(q, k, v, out, lse, p, b, h0, h1, q0, q1, scratch);
    return;
  }
  float *Qt = scratch;             // [D, 32] scaled queries
  float *Ot = Qt + D * AV_ROWS;    // [D, 32] unnormalized output
  float *Pt = Ot + D * AV_ROWS;    // [KB, 32] scores, then probabilities
  float *zero = Pt + ATT_KB * AV_ROWS; // [D]
  for (int d = 0; d < D; d++) zero[d] = 0.0f;
  for (int i = 0; i < D * AV_ROWS; i++) Ot[i] = 0.0f;
  av_pack_rows_t(q, Qt, p, b, h0, q0, nh, nr, p->scale);
  __m512i lim0, lim1;
  int kmax = av_limits(p, q0, nh, nr, &lim0, &lim1);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 m0 = ninf, m1 = ninf, l0 = _mm512_setzero_ps(), l1 = _mm512_setzero_ps();
  for (int j0 = 0; j0 < kmax; j0 += ATT_KB) {
    int kb = kmax - j0 < ATT_KB ? kmax - j0 : ATT_KB;
    av_scores_t(k, Qt, Pt, p, b, g, j0, kb, zero);
    __m512 t0 = ninf, t1 = ninf;
    for (int j = 0; j < kb; j++) {
      __m512i jv = _mm512_set1_epi32(j0 + j);
      __mmask16 v0 = _mm512_cmplt_epi32_mask(jv, lim0), v1 = _mm512_cmplt_epi32_mask(jv, lim1);
      t0 = _mm512_mask_max_ps(t0, v0, t0, _mm512_loadu_ps(Pt + j * AV_ROWS));
      t1 = _mm512_mask_max_ps(t1, v1, t1, _mm512_loadu_ps(Pt + j * AV_ROWS + 16));
    }
    __m512 n0 = _mm512_max_ps(m0, t0), n1 = _mm512_max_ps(m1, t1);
    // rows that have seen no key yet keep -inf: exponents are taken against 0 there, and masked to 0
    __m512 r0 = _mm512_mask_mov_ps(n0, _mm512_cmp_ps_mask(n0, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    __m512 r1 = _mm512_mask_mov_ps(n1, _mm512_cmp_ps_mask(n1, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    __m512 c0 = av_exp(_mm512_sub_ps(m0, r0)), c1 = av_exp(_mm512_sub_ps(m1, r1));
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (int j = 0; j < kb; j++) {
      __m512i jv = _mm512_set1_epi32(j0 + j);
      __mmask16 v0 = _mm512_cmplt_epi32_mask(jv, lim0), v1 = _mm512_cmplt_epi32_mask(jv, lim1);
      __m512 e0 = _mm512_maskz_mov_ps(v0, av_exp(_mm512_sub_ps(_mm512_loadu_ps(Pt + j * AV_ROWS), r0)));
      __m512 e1 = _mm512_maskz_mov_ps(v1, av_exp(_mm512_sub_ps(_mm512_loadu_ps(Pt + j * AV_ROWS + 16), r1)));
      _mm512_storeu_ps(Pt + j * AV_ROWS, e0);
      _mm512_storeu_ps(Pt + j * AV_ROWS + 16, e1);
      s0 = _mm512_add_ps(s0, e0);
      s1 = _mm512_add_ps(s1, e1);
    }
    l0 = _mm512_fmadd_ps(l0, c0, s0);
    l1 = _mm512_fmadd_ps(l1, c1, s1);
    m0 = n0;
    m1 = n1;
    av_pv_t(Ot, Pt, v, p, b, g, j0, kb, c0, c1);
  }
  float mrow[AV_ROWS], lrow[AV_ROWS];
  _mm512_storeu_ps(mrow, m0);
  _mm512_storeu_ps(mrow + 16, m1);
  _mm512_storeu_ps(lrow, l0);
  _mm512_storeu_ps(lrow + 16, l1);
  for (int r = 0; r < nr; r++) {
    int i = q0 + r / nh, h = h0 + r % nh;
    float *dst = out + (((long)b * p->Tq + i) * p->H + h) * D;
    float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
    for (int d = 0; d < D; d++) dst[d] = Ot[d * AV_ROWS + r] * inv;
    lse[((long)b * p->H + h) * p->Tq + i] = lrow[r] > 0.0f ? mrow[r] + logf(lrow[r]) : -INFINITY;
  }
}

// dq for heads h0..h1-1 × queries q0..q1-1 (as kr_attn_backward_dq_block): dq_r = scale · Σ_j p_rj (dp_rj − δ_r) k_j.
static void av_attn_backward_dq_block(const float *q, const float *k, const float *v, const float *lse,
                                      const float *delta, const float *dout, float *dq, const attn_params *p, int b,
                                      int h0, int h1, int q0, int q1, float *scratch) {
  kr_attn_block blk = kr_attn_block_of(p, h0, h1, q0, q1);
  int D = p->D, g = blk.g, nr = blk.nrows, nh = blk.nh;
  if (D % 8 || nr > AV_ROWS) {
    kr_attn_backward_dq_block(q, k, v, lse, delta, dout, dq, p, b, h0, h1, q0, q1, scratch);
    return;
  }
  float *Qt = scratch, *Gt = Qt + D * AV_ROWS, *Dqt = Gt + D * AV_ROWS; // [D, 32] each
  float *St = Dqt + D * AV_ROWS, *DPt = St + ATT_KB * AV_ROWS;         // [KB, 32] each
  float *zero = DPt + ATT_KB * AV_ROWS;                                 // [D]
  for (int d = 0; d < D; d++) zero[d] = 0.0f;
  for (int i = 0; i < D * AV_ROWS; i++) Dqt[i] = 0.0f;
  av_pack_rows_t(q, Qt, p, b, h0, q0, nh, nr, p->scale);
  av_pack_rows_t(dout, Gt, p, b, h0, q0, nh, nr, 1.0f);
  float lrow[AV_ROWS], drow[AV_ROWS];
  for (int r = 0; r < AV_ROWS; r++) {
    long stat = ((long)b * p->H + h0 + r % nh) * p->Tq + q0 + r / nh;
    lrow[r] = r < nr ? lse[stat] : 0.0f;
    drow[r] = r < nr ? delta[stat] : 0.0f;
  }
  __m512 L0 = _mm512_loadu_ps(lrow), L1 = _mm512_loadu_ps(lrow + 16);
  __m512 E0 = _mm512_loadu_ps(drow), E1 = _mm512_loadu_ps(drow + 16), sc = _mm512_set1_ps(p->scale);
  __m512i lim0, lim1;
  int kmax = av_limits(p, q0, nh, nr, &lim0, &lim1);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int j0 = 0; j0 < kmax; j0 += ATT_KB) {
    int kb = kmax - j0 < ATT_KB ? kmax - j0 : ATT_KB;
    av_scores_t(k, Qt, St, p, b, g, j0, kb, zero);
    av_scores_t(v, Gt, DPt, p, b, g, j0, kb, zero);
    for (int j = 0; j < kb; j++) {
      __m512i jv = _mm512_set1_epi32(j0 + j);
      __mmask16 v0 = _mm512_cmplt_epi32_mask(jv, lim0), v1 = _mm512_cmplt_epi32_mask(jv, lim1);
      float *s = St + j * AV_ROWS, *dp = DPt + j * AV_ROWS;
      __m512 p0 = av_exp(_mm512_sub_ps(_mm512_loadu_ps(s), L0)), p1 = av_exp(_mm512_sub_ps(_mm512_loadu_ps(s + 16), L1));
      p0 = _mm512_mul_ps(_mm512_mul_ps(p0, _mm512_sub_ps(_mm512_loadu_ps(dp), E0)), sc);
      p1 = _mm512_mul_ps(_mm512_mul_ps(p1, _mm512_sub_ps(_mm512_loadu_ps(dp + 16), E1)), sc);
      _mm512_storeu_ps(s, _mm512_maskz_mov_ps(v0, p0));
      _mm512_storeu_ps(s + 16, _mm512_maskz_mov_ps(v1, p1));
    }
    av_pv_t(Dqt, St, k, p, b, g, j0, kb, one, one);
  }
  for (int r = 0; r < nr; r++) {
    float *dst = dq + (((long)b * p->Tq + q0 + r / nh) * p->H + h0 + r % nh) * D;
    for (int d = 0; d < D; d++) dst[d] = Dqt[d * AV_ROWS + r];
  }
}

// At[d, 0..64) += Σ_{r<AV_RG} x_r[d] · W[r, 0..64), four d at a time (16 accumulators).
static void av_rows_update(float *At, const float *W, const float *const *x, int D) {
  for (int dc = 0; dc < D; dc += 4) {
    __m512 acc[4][4];
    for (int u = 0; u < 4; u++)
      for (int c = 0; c < 4; c++) acc[u][c] = _mm512_loadu_ps(At + (dc + u) * ATT_KB + 16 * c);
    for (int r = 0; r < AV_RG; r++) {
      __m512 w0 = _mm512_loadu_ps(W + r * ATT_KB), w1 = _mm512_loadu_ps(W + r * ATT_KB + 16);
      __m512 w2 = _mm512_loadu_ps(W + r * ATT_KB + 32), w3 = _mm512_loadu_ps(W + r * ATT_KB + 48);
      for (int u = 0; u < 4; u++) {
        __m512 xv = _mm512_set1_ps(x[r][dc + u]);
        acc[u][0] = _mm512_fmadd_ps(xv, w0, acc[u][0]);
        acc[u][1] = _mm512_fmadd_ps(xv, w1, acc[u][1]);
        acc[u][2] = _mm512_fmadd_ps(xv, w2, acc[u][2]);
        acc[u][3] = _mm512_fmadd_ps(xv, w3, acc[u][3]);
      }
    }
    for (int u = 0; u < 4; u++)
      for (int c = 0; c < 4; c++) _mm512_storeu_ps(At + (dc + u) * ATT_KB + 16 * c, acc[u][c]);
  }
}

// S[r, 0..64) = Σ_d x_r[d] · Xt[d, 0..64) for four rows (16 accumulators).
static inline void av_scores_rows(const float *const *x, const float *Xt, float *S, int D) {
  __m512 acc[4][4];
  for (int u = 0; u < 4; u++)
    for (int c = 0; c < 4; c++) acc[u][c] = _mm512_setzero_ps();
  for (int d = 0; d < D; d++) {
    __m512 k0 = _mm512_loadu_ps(Xt + d * ATT_KB), k1 = _mm512_loadu_ps(Xt + d * ATT_KB + 16);
    __m512 k2 = _mm512_loadu_ps(Xt + d * ATT_KB + 32), k3 = _mm512_loadu_ps(Xt + d * ATT_KB + 48);
    for (int u = 0; u < 4; u++) {
      __m512 xv = _mm512_set1_ps(x[u][d]);
      acc[u][0] = _mm512_fmadd_ps(xv, k0, acc[u][0]);
      acc[u][1] = _mm512_fmadd_ps(xv, k1, acc[u][1]);
      acc[u][2] = _mm512_fmadd_ps(xv, k2, acc[u][2]);
      acc[u][3] = _mm512_fmadd_ps(xv, k3, acc[u][3]);
    }
  }
  for (int u = 0; u < 4; u++)
    for (int c = 0; c < 4; c++) _mm512_storeu_ps(S + u * ATT_KB + 16 * c, acc[u][c]);
}

// dk, dv for keys k0..k1-1 (≤ ATT_KB) of (b, kv head g), as kr_attn_backward_dkv_block.
static void av_attn_backward_dkv_block(const float *q, const float *k, const float *v, const float *lse,
                                       const float *delta, const float *dout, float *dk, float *dv,
                                       const attn_params *p, int b, int g, int k0, int k1, float *scratch) {
  int D = p->D, rep = p->H / p->G, kb = k1 - k0;
  if (D % 8) {
    kr_attn_backward_dkv_block(q, k, v, lse, delta, dout, dk, dv, p, b, g, k0, k1, scratch);
    return;
  }
  float *Kt = scratch, *Vt = Kt + D * ATT_KB, *dKt = Vt + D * ATT_KB, *dVt = dKt + D * ATT_KB; // [D, KB]
  float *P = dVt + D * ATT_KB, *dS = P + AV_RG * ATT_KB;                                     // [RG, KB]
  float *zero = dS + AV_RG * ATT_KB;                                                         // [D]
  for (int d = 0; d < D; d++) zero[d] = 0.0f;
  for (int i = 0; i < D * ATT_KB; i++) dKt[i] = dVt[i] = 0.0f;
  kr_attn_pack_t(k, Kt, p, b, g, k0, kb);
  kr_attn_pack_t(v, Vt, p, b, g, k0, kb);
  int i0 = p->causal ? k0 - p->qOffset : 0; // first query that sees key k0
  if (i0 < 0) i0 = 0;
  const __m512 sc = _mm512_set1_ps(p->scale);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int h = g * rep; h < (g + 1) * rep; h++) {
    for (int ig = i0; ig < p->Tq; ig += AV_RG) {
      const float *qr[AV_RG], *gr[AV_RG];
      for (int r = 0; r < AV_RG; r++) {
        int i = ig + r;
        long row = ((long)b * p->Tq + i) * p->H + h;
        qr[r] = i < p->Tq ? q + row * D : zero;
        gr[r] = i < p->Tq ? dout + row * D : zero;
      }
      for (int r0 = 0; r0 < AV_RG; r0 += 4) {
        av_scores_rows(qr + r0, Kt, P + r0 * ATT_KB, D);
        av_scores_rows(gr + r0, Vt, dS + r0 * ATT_KB, D);
      }
      for (int r = 0; r < AV_RG; r++) {
        int i = ig + r, valid = i < p->Tq ? kr_attn_nkeys(p, i) - k0 : 0;
        if (valid > kb) valid = kb;
        long stat = ((long)b * p->H + h) * p->Tq + i;
        __m512 L = _mm512_set1_ps(i < p->Tq ? lse[stat] : 0.0f), E = _mm512_set1_ps(i < p->Tq ? delta[stat] : 0.0f);
        for (int c = 0; c < 4; c++) {
          __mmask16 m = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lane, _mm512_set1_epi32(16 * c)),
                                                _mm512_set1_epi32(valid));
          float *pr = P + r * ATT_KB + 16 * c, *dr = dS + r * ATT_KB + 16 * c;
          __m512 pv = _mm512_maskz_mov_ps(m, av_exp(_mm512_fmsub_ps(_mm512_loadu_ps(pr), sc, L)));
          _mm512_storeu_ps(pr, pv);
          _mm512_storeu_ps(dr, _mm512_mul_ps(_mm512_mul_ps(pv, _mm512_sub_ps(_mm512_loadu_ps(dr), E)), sc));
        }
      }
      av_rows_update(dVt, P, gr, D);
      av_rows_update(dKt, dS, qr, D);
    }
  }
  for (int jj = 0; jj < kb; jj++) {
    long off = (((long)b * p->Tk + k0 + jj) * p->G + g) * D;
    for (int d = 0; d < D; d++) {
      dk[off + d] = dKt[d * ATT_KB + jj];
      dv[off + d] = dVt[d * ATT_KB + jj];
    }
  }
}
