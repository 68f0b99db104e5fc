// Streaming (flash-attention style) attention kernels, included by kernels_rows.h for every SIMD level.
// Layout: q[B, Tq, H, D], k/v[B, Tk, G, D], out[B, Tq, H, D], lse[B, H, Tq]; head h reads key/value head
// h / (H / G). Keys are processed in tiles of ATT_KB with an online softmax, so no Tq×Tk buffer ever exists.
// A key tile is packed transposed (Kt[D, KB]) so a score row is D vector axpys, not KB horizontal dot products.

#define ATT_DIRECT_ROWS 4

// Keys visible to query row i: 0..n-1 (causal: up to qOffset + i, clamped to Tk).
static inline int kr_attn_nkeys(const attn_params *p, int i) {
  if (!p->causal) return p->Tk;
  long n = (long)p->qOffset + i + 1;
  return n < 0 ? 0 : (n > p->Tk ? p->Tk : (int)n);
}

// Kt[d, jj] = src[b, j0 + jj, g, d] for jj < kb (zero padded to ATT_KB)
static void kr_attn_pack_t(const float *src, float *dst, const attn_params *p, int b, int g, int j0, int kb) {
  int D = p->D;
  for (int jj = 0; jj < kb; jj++) {
    const float *row = src + (((long)b * p->Tk + j0 + jj) * p->G + g) * D;
    for (int d = 0; d < D; d++) dst[d * ATT_KB + jj] = row[d];
  }
  for (int jj = kb; jj < ATT_KB; jj++)
    for (int d = 0; d < D; d++) dst[d * ATT_KB + jj] = 0.0f;
}

// s[jj] = k · Σ_d x[d] · Kt[d, jj] for jj < ATT_KB. The sums live in a fixed-size local array the compiler keeps
// in registers (accumulating in memory would chain every step through store-to-load forwarding).
static inline void kr_attn_row_scores(const float *x, const float *Kt, float *s, int D, float k) {
  float acc[ATT_KB];
  for (int jj = 0; jj < ATT_KB; jj++) acc[jj] = 0.0f;
  for (int d = 0; d < D; d++) {
    float xd = x[d] * k;
    const float *kt = Kt + d * ATT_KB;
    for (int jj = 0; jj < ATT_KB; jj++) acc[jj] += xd * kt[jj];
  }
  for (int jj = 0; jj < ATT_KB; jj++) s[jj] = acc[jj];
}

// o[0..D) += Σ_jj p[jj] · rows[jj * stride + 0..D), summed in jj order; chunks of 64 and 16 columns are held in
// registers across the keys for the same reason as above.
static inline void kr_attn_pv(float *o, const float *p, const float *rows, long stride, int n, int D) {
  int d0 = 0;
  for (; d0 + 64 <= D; d0 += 64) {
    float acc[64];
    for (int d = 0; d < 64; d++) acc[d] = o[d0 + d];
    for (int jj = 0; jj < n; jj++) {
      const float *r = rows + jj * stride + d0;
      float pj = p[jj];
      for (int d = 0; d < 64; d++) acc[d] += pj * r[d];
    }
    for (int d = 0; d < 64; d++) o[d0 + d] = acc[d];
  }
  for (; d0 + 16 <= D; d0 += 16) {
    float acc[16];
    for (int d = 0; d < 16; d++) acc[d] = o[d0 + d];
    for (int jj = 0; jj < n; jj++) {
      const float *r = rows + jj * stride + d0;
      float pj = p[jj];
      for (int d = 0; d < 16; d++) acc[d] += pj * r[d];
    }
    for (int d = 0; d < 16; d++) o[d0 + d] = acc[d];
  }
  for (; d0 < D; d0++) {
    float a = o[d0];
    for (int jj = 0; jj < n; jj++) a += p[jj] * rows[jj * stride + d0];
    o[d0] = a;
  }
}

// A block is heads h0..h1-1 (one kv group g) × queries q0..q1-1, at most ATT_QB rows: row r is query
// q0 + r / nh of head h0 + r % nh. The heads of a group share every packed key tile (decode: one tile serves all
// of a group's query heads, so K/V are read once per group).
typedef struct { int nrows, nh, g; } kr_attn_block;
static inline kr_attn_block kr_attn_block_of(const attn_params *p, int h0, int h1, int q0, int q1) {
  kr_attn_block k = {(q1 - q0) * (h1 - h0), h1 - h0, h0 / (p->H / p->G)};
  return k;
}
#define KR_ROW_Q(r) (q0 + (r) / blk.nh)
#define KR_ROW_H(r) (h0 + (r) % blk.nh)

// out/lse for heads h0..h1-1 × queries q0..q1-1 of batch b.
static void kr_attn_forward_block(const float *q, const float *k, const float *v, float *out, float *lse,
                                  const attn_params *p, int b, int h0, int h1, int q0, int q1, float *scratch) {
  kr_attn_block blk = kr_attn_block_of(p, h0, h1, q0, q1);
  int D = p->D, g = blk.g, nr = blk.nrows;
  float *s = scratch;                  // [KB] scores, then probabilities
  float *Kt = s + 2 * ATT_KB;          // [D, KB]
  float *O = Kt + ATT_DMAX * ATT_KB;   // [QB, D] unnormalized output
  float *mrow = O + ATT_QB * ATT_DMAX; // [QB] running max
  float *lrow = mrow + ATT_QB;         // [QB] running sum
  for (int r = 0; r < nr; r++) {
    mrow[r] = -INFINITY;
    lrow[r] = 0.0f;
    for (int d = 0; d < D; d++) O[r * D + d] = 0.0f;
  }
  int kmax = 0;
  for (int r = 0; r < nr; r++) { int n = kr_attn_nkeys(p, KR_ROW_Q(r)); kmax = n > kmax ? n : kmax; }
  // Few rows: direct dot products beat packing the key tile transposed.
  int direct = nr < ATT_DIRECT_ROWS;
  for (int j0 = 0; j0 < kmax; j0 += ATT_KB) {
    int kb = kmax - j0 < ATT_KB ? kmax - j0 : ATT_KB;
    if (!direct) kr_attn_pack_t(k, Kt, p, b, g, j0, kb);
    for (int r = 0; r < nr; r++) {
      int valid = kr_attn_nkeys(p, KR_ROW_Q(r)) - j0;
      if (valid <= 0) continue;
      if (valid > kb) valid = kb;
      const float *qr = q + (((long)b * p->Tq + KR_ROW_Q(r)) * p->H + KR_ROW_H(r)) * D;
      if (direct) {
        for (int jj = 0; jj < valid; jj++)
          s[jj] = kr_row_dot(qr, k + (((long)b * p->Tk + j0 + jj) * p->G + g) * D, D) * p->scale;
      } else {
        kr_attn_row_scores(qr, Kt, s, D, p->scale);
      }
      float mx = kr_row_max(s, valid);
      float mnew = mx > mrow[r] ? mx : mrow[r];
      float corr = mrow[r] == -INFINITY ? 0.0f : kr_exp(mrow[r] - mnew);
      float sum = 0.0f;
      for (int jj = 0; jj < valid; jj++) s[jj] = kr_exp(s[jj] - mnew);
#pragma omp simd reduction(+ : sum)
      for (int jj = 0; jj < valid; jj++) sum += s[jj];
      lrow[r] = lrow[r] * corr + sum;
      mrow[r] = mnew;
      float *o = O + r * D;
      for (int d = 0; d < D; d++) o[d] *= corr;
      kr_attn_pv(o, s, v + (((long)b * p->Tk + j0) * p->G + g) * D, (long)p->G * D, valid, D);
    }
  }
  for (int r = 0; r < nr; r++) {
    int i = KR_ROW_Q(r), h = KR_ROW_H(r);
    float *dst = out + (((long)b * p->Tq + i) * p->H + h) * D;
    float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
    for (int d = 0; d < D; d++) dst[d] = O[r * D + d] * inv;
    lse[((long)b * p->H + h) * p->Tq + i] = lrow[r] > 0.0f ? mrow[r] + logf(lrow[r]) : -INFINITY;
  }
}

// dq for heads h0..h1-1 × queries q0..q1-1: dq_i = scale · Σ_j p_ij (dp_ij − delta_i) k_j, p from lse,
// dp = dout_i·v_j, delta[B, H, Tq] = rowsum(dout · out).
static void kr_attn_backward_dq_block(const float *q, const float *k, const float *v, const float *lse,
                                      const float *delta, const float *dout, float *dq, const attn_params *p, int b,
                                      int h0, int h1, int q0, int q1, float *scratch) {
  kr_attn_block blk = kr_attn_block_of(p, h0, h1, q0, q1);
  int D = p->D, g = blk.g, nr = blk.nrows;
  float *s = scratch, *dp = s + ATT_KB;
  float *Kt = dp + ATT_KB, *Vt = Kt + ATT_DMAX * ATT_KB;
  float *acc = Vt + ATT_DMAX * ATT_KB; // [QB, D]
  for (int i = 0; i < nr * D; i++) acc[i] = 0.0f;
  int kmax = 0;
  for (int r = 0; r < nr; r++) { int n = kr_attn_nkeys(p, KR_ROW_Q(r)); kmax = n > kmax ? n : kmax; }
  for (int j0 = 0; j0 < kmax; j0 += ATT_KB) {
    int kb = kmax - j0 < ATT_KB ? kmax - j0 : ATT_KB;
    kr_attn_pack_t(k, Kt, p, b, g, j0, kb);
    kr_attn_pack_t(v, Vt, p, b, g, j0, kb);
    for (int r = 0; r < nr; r++) {
      int i = KR_ROW_Q(r), h = KR_ROW_H(r);
      int valid = kr_attn_nkeys(p, i) - j0;
      if (valid <= 0) continue;
      if (valid > kb) valid = kb;
      long row = ((long)b * p->Tq + i) * p->H + h;
      long stat = ((long)b * p->H + h) * p->Tq + i;
      kr_attn_row_scores(q + row * D, Kt, s, D, p->scale);
      kr_attn_row_scores(dout + row * D, Vt, dp, D, 1.0f);
      float l = lse[stat], dl = delta[stat];
      for (int jj = 0; jj < valid; jj++) s[jj] = kr_exp(s[jj] - l) * (dp[jj] - dl) * p->scale;
      kr_attn_pv(acc + r * D, s, k + (((long)b * p->Tk + j0) * p->G + g) * D, (long)p->G * D, valid, D);
    }
  }
  for (int r = 0; r < nr; r++)
    memcpy(dq + (((long)b * p->Tq + KR_ROW_Q(r)) * p->H + KR_ROW_H(r)) * D, acc + r * D, sizeof(float) * D);
}

// dk, dv for keys k0..k1-1 (≤ ATT_KB) of (b, kv head g), summed over the group's query heads and all queries that
// see them: dv_j = Σ p_ij dout_i, dk_j = scale · Σ p_ij (dp_ij − delta_i) q_i. Written, not accumulated.
static void kr_attn_backward_dkv_block(const float *q, const float *k, const float *v, const float *lse,
                                       const float *delta, const float *dout, float *dk, float *dv,
                                       const attn_params *p, int b, int g, int k0, int k1, float *scratch) {
  int D = p->D, rep = p->H / p->G, kb = k1 - k0;
  float *s = scratch, *dp = s + ATT_KB;
  float *Kt = dp + ATT_KB, *Vt = Kt + ATT_DMAX * ATT_KB;
  float *dka = Vt + ATT_DMAX * ATT_KB; // [KB, D]
  float *dva = dka + ATT_KB * ATT_DMAX; // [KB, D]
  for (int i = 0; i < kb * D; i++) dka[i] = dva[i] = 0.0f;
  kr_attn_pack_t(k, Kt, p, b, g, k0, kb);
  kr_attn_pack_t(v, Vt, p, b, g, k0, kb);
  // first query that sees key k0: causal needs qOffset + i ≥ k0
  int i0 = p->causal ? k0 - p->qOffset : 0;
  if (i0 < 0) i0 = 0;
  for (int h = g * rep; h < (g + 1) * rep; h++) {
    for (int i = i0; i < p->Tq; i++) {
      int valid = kr_attn_nkeys(p, i) - k0;
      if (valid <= 0) continue;
      if (valid > kb) valid = kb;
      long row = ((long)b * p->Tq + i) * p->H + h;
      long stat = ((long)b * p->H + h) * p->Tq + i;
      const float *qr = q + row * D, *gr = dout + row * D;
      kr_attn_row_scores(qr, Kt, s, D, p->scale);
      kr_attn_row_scores(gr, Vt, dp, D, 1.0f);
      float l = lse[stat], dl = delta[stat];
      for (int jj = 0; jj < valid; jj++) {
        float pj = kr_exp(s[jj] - l);
        s[jj] = pj;
        dp[jj] = pj * (dp[jj] - dl) * p->scale;
      }
      for (int jj = 0; jj < valid; jj++) {
        float pj = s[jj], ds = dp[jj];
        float *dvr = dva + jj * D, *dkr = dka + jj * D;
        for (int d = 0; d < D; d++) {
          dvr[d] += pj * gr[d];
          dkr[d] += ds * qr[d];
        }
      }
    }
  }
  for (int jj = 0; jj < kb; jj++) {
    long off = (((long)b * p->Tk + k0 + jj) * p->G + g) * D;
    memcpy(dk + off, dka + jj * D, sizeof(float) * D);
    memcpy(dv + off, dva + jj * D, sizeof(float) * D);
  }
}
