// Products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_k/q6_k; layouts in src/formats/quant.ts):
// a thread dequantizes a panel of weight rows into float scratch, then runs the packed GEMM on it. The weight is
// never dequantized whole. Dequantization rounds exactly like ggml's reference C (float32 steps, no FMA).
// f16/bf16 weights (every Hugging Face checkpoint) convert exactly with the CPU's own instructions, so they skip the
// scratch: decode-shaped products dot each weight row converted in registers (kernels_t.half_dot), the others are
// GEMMs whose B panels are converted as they are packed (gemm.c), at the speed of an f32 weight. With inference, a
// bf16 product first rounds x to bf16 as llama.cpp does (its vec_dot_type for bf16; PyTorch's bf16 matmuls take
// bf16 inputs too): the products are then exact in float, and the results follow both peers' (f16 keeps float x:
// llama.cpp's f16 rounding of x is 8× finer and within the parity tolerance without it).
// Decode-shaped products (M ≤ QINT8_MAX_M) with q8_0/q4_0 weights go the llama.cpp way instead: x is quantized to
// q8 blocks once and each weight block is dotted with it in integers (kernels_quant.h), QDOT_MAX_M rows at a time;
// with inference (no gradient recorded) every M does, as in llama.cpp's prefill. The other 32-value block types take
// the same path (llama.cpp's vec_dot_q5_0_q8_0, _q4_1_q8_1, _q5_1_q8_1, _iq4_nl_q8_0): each weight row is repacked
// exactly into q8_0 blocks (q5_0: q − 16; iq4_nl: the table's int8 levels; q4_1/q5_1: q, same f16 d) and dotted
// by the q8_0 kernels of every SIMD level; q4_1/q5_1's offsets add Σ_b m_b · s_m,b, s_m,b = d_x · Σ_j q_m,b,j (what
// ggml's q8_1 blocks carry).
// K-quant weights (q2_K … q6_K) take the int8 path under the same conditions, as llama.cpp's vec_dot_q*_K_q8_K:
// x is quantized to q8_K superblocks (256 values) and each thread unpacks KQ_MAX_R weight rows at a time into L1
// (kernels_kquant.h), dotted with QDOT_MAX_M rows of x per call, so each loaded x block serves KQ_MAX_R weight rows
// and each unpacked weight block QDOT_MAX_M rows of x. The backward product (dx = dy·W) keeps the float path.
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant_unpack.h"
#include "kernels_quant.h"
#include "ops.h"

#define QPANEL 64 // least weight rows per panel for out = x·Wᵀ; QPANEL_T for dx = dy·W
#define QPANEL_T 256
// The float path of out = x·Wᵀ (a training forward) packs x once per weight panel, so panels hold up to this many
// dequantized values (4 MB, one panel per thread for a block linear of the 135M shape) rather than QPANEL rows: with
// 64-row panels a 49,152-row LM head packed x 768 times (at M = 512, 576 × 1536 q4_K on 1 thread took 7.8 ms of CPU
// against f32's 5.7; 5.2 against 5.2 with these panels)
#define QPANEL_FLOATS (1024 * 1024)
#define QSMALL_M QDOT_MAX_M // up to this many rows of x, out = x·Wᵀ skips the GEMM (see quant_small_m_task)
// Up to this many rows, q8_0/q4_0 products take the int8 path (batched decode of up to 8 sequences); the kernels
// hold QDOT_MAX_M rows of accumulators, so the task walks the rows in chunks while the weight row stays in L1.
#define QINT8_MAX_M (2 * QDOT_MAX_M)
// Past that (with inference), the rows go in tiles of this many: a tile of int8 x (QINT8_TILE_M · K bytes) stays in L2
// while the thread's weight rows stream past it once per tile.
#define QINT8_TILE_M 64
// The tiled path (dot_tile) takes tiles of up to this many bytes of prepared x (72 a pair of blocks), so that a
// weight row is prepared once per tile: a 512-token prompt is one tile up to 5632-wide rows. Preparing the rows
// again for every 64 rows of x cost more than the products (M = 512, 1 thread: 5632 × 2048 q8_0 at 146 GFLOP/s
// with 64-row tiles, 198 with 512 KB, 206 with 1 MB, 220 with 4 MB; the x tile then streams from L3)
#define QTILE_BYTES (4096 * 1024)
// Up to this many rows, f16/bf16 products dot each weight row (in chunks of QDOT_MAX_M rows of x, the row in L1);
// measured on the 135M shapes (1 thread, AVX-512), 16-32 µs a row against the GEMM's 37-47 µs up to M = 16 (the GEMM
// packs the whole weight for a few rows), even at M = 24-32, and the GEMM ahead past that (18 µs at M = 64)
#define QHALF_MAX_M (4 * QDOT_MAX_M)

float quant_f16_to_f32(uint16_t h) { return half_f16_to_f32(h); }
static inline uint16_t u16_at(const uint8_t *b) { return (uint16_t)(b[0] | (b[1] << 8)); }

// names (as the TS dtype), values per block and bytes per block, in quant_type order
static const struct { const char *name; long size, bytes; } quant_info[Q_COUNT] = {
    [Q_F16] = {"f16", 1, 2},         [Q_BF16] = {"bf16", 1, 2},       [Q_Q8_0] = {"q8_0", 32, 34},
    [Q_Q4_0] = {"q4_0", 32, 18},     [Q_Q4_K] = {"q4_k", 256, 144},   [Q_Q6_K] = {"q6_k", 256, 210},
    [Q_Q4_1] = {"q4_1", 32, 20},     [Q_Q5_0] = {"q5_0", 32, 22},     [Q_Q5_1] = {"q5_1", 32, 24},
    [Q_Q2_K] = {"q2_k", 256, 84},    [Q_Q3_K] = {"q3_k", 256, 110},   [Q_Q5_K] = {"q5_k", 256, 176},
    [Q_IQ4_NL] = {"iq4_nl", 32, 18}, [Q_IQ4_XS] = {"iq4_xs", 256, 136},
};

int quant_parse(const char *s, quant_type *q) {
  for (int i = 0; i < Q_COUNT; i++)
    if (!strcmp(s, quant_info[i].name)) { *q = (quant_type)i; return 0; }
  return -1;
}
long quant_block_size(quant_type q) { return quant_info[q].size; }
long quant_block_bytes(quant_type q) { return quant_info[q].bytes; }

// get_scale_min_k4 (q4_K, q5_K): the j-th 6-bit (scale, min) pair of 12 packed bytes
static inline void scale_min_k4(int j, const uint8_t *sc, int *s, int *m) {
  if (j < 4) { *s = sc[j] & 63; *m = sc[j + 4] & 63; }
  else { *s = (sc[j + 4] & 0x0f) | ((sc[j - 4] >> 6) << 4); *m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
}

// q5_0 / q5_1: the 32 five-bit values (0..31) of a block, qh bit j the 5th bit of value j
static inline void five_bit(const uint8_t *qh4, const uint8_t *qs, int *q) {
  uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
  for (int j = 0; j < 16; j++) {
    q[j] = (qs[j] & 0x0f) | (((qh >> j) << 4) & 0x10);
    q[j + 16] = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
  }
}

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// out[k1 − k0] = dequant(row)[k0..k1), k0 and k1 multiples of the block size (k1 may be the row end)
static void dequant_range(const uint8_t *row, quant_type q, long k0, long k1, float *out) {
  if (q == Q_F16 || q == Q_BF16) {
    kernels_current()->half_to_f32(q == Q_BF16, (const uint16_t *)row + k0, out, k1 - k0);
    return;
  }
  // q5_0 (most tensors of a 576/896-wide Q4_K_M file) and q6_K through the SIMD level's exact unpackers, then the
  // same float steps as below: 0.67 → 0.14 and 0.87 → 0.24 ns a value (AVX-512, 1 thread), which brings a training
  // product over them (forward and backward, M = 512) within a few % of its f32 time
  if (q == Q_Q5_0) { // q8_0 blocks of q − 16, then d · int8
    const quant_kernels_t *qk = quant_kernels_current();
    uint8_t blk[34 * 16];
    for (long kb = k0 / QK; kb * QK < k1; kb += 16) {
      long n = (k1 - kb * QK + QK - 1) / QK < 16 ? (k1 - kb * QK + QK - 1) / QK : 16;
      qk->repack_q5_0(row + kb * 22, n, blk);
      for (long b = 0; b < n; b++) {
        float d = quant_f16(blk + 34 * b), *y = out + (kb + b) * QK - k0;
        const int8_t *w = (const int8_t *)(blk + 34 * b + 2);
        for (int j = 0; j < QK; j++) y[j] = (float)w[j] * d;
      }
    }
    return;
  }
  if (q == Q_Q6_K) { // kq_block (u = q + 32, int16 scales), then (d · s) · (u − 32)
    const quant_kernels_t *qk = quant_kernels_current();
    kq_block kb __attribute__((aligned(64)));
    for (long sb = k0 / QK_K; sb * QK_K < k1; sb++) {
      qk->kunpack(Q_Q6_K, row + sb * 210, 1, &kb);
      float *y = out + sb * QK_K - k0;
      for (int g = 0; g < 8; g++)
        for (int i = 0; i < 16; i++) {
          float ds = kb.d * (float)kb.s[g][i];
          y[32 * g + 2 * i] = ds * (float)((int)kb.u[32 * g + 2 * i] - 32);
          y[32 * g + 2 * i + 1] = ds * (float)((int)kb.u[32 * g + 2 * i + 1] - 32);
        }
    }
    return;
  }
  long bs = quant_block_size(q), bb = quant_block_bytes(q);
  for (long kb = k0 / bs; kb * bs < k1; kb++) {
    const uint8_t *b = row + kb * bb;
    float *y = out + (kb * bs - k0);
    switch (q) {
      case Q_F16:
      case Q_BF16:
      case Q_COUNT: break; // above
      case Q_Q8_0: {
        float d = quant_f16_to_f32(u16_at(b));
        for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
        break;
      }
      case Q_Q4_0: {
        float d = quant_f16_to_f32(u16_at(b));
        for (int j = 0; j < 16; j++) {
          y[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
          y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case Q_Q4_K: {
        float d = quant_f16_to_f32(u16_at(b)), dmin = quant_f16_to_f32(u16_at(b + 2));
        const uint8_t *sc = b + 4, *qs = b + 16;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
          int s[2], m[2];
          for (int t = 0; t < 2; t++) scale_min_k4(is + t, sc, &s[t], &m[t]);
          float d1 = d * (float)s[0], m1 = dmin * (float)m[0], d2 = d * (float)s[1], m2 = dmin * (float)m[1];
          for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)(qs[l] & 0x0f) - m1;
          for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)(qs[l] >> 4) - m2;
          qs += 32;
        }
        break;
      }
      case Q_Q5_K: { // q4_K with a 5th bit: qh bits 2i, 2i + 1 for the i-th 64 values
        float d = quant_f16_to_f32(u16_at(b)), dmin = quant_f16_to_f32(u16_at(b + 2));
        const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
        for (int j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, u1 <<= 2, u2 <<= 2) {
          int s[2], m[2];
          for (int t = 0; t < 2; t++) scale_min_k4(is + t, sc, &s[t], &m[t]);
          float d1 = d * (float)s[0], m1 = dmin * (float)m[0], d2 = d * (float)s[1], m2 = dmin * (float)m[1];
          for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)((qs[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
          for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)((qs[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
          qs += 32;
        }
        break;
      }
      case Q_Q2_K: { // scales[16], qs[64], d, dmin; per 16 values x = (d·sc)·q − dmin·m
        float d = quant_f16_to_f32(u16_at(b + 80)), dmin = quant_f16_to_f32(u16_at(b + 82));
        const uint8_t *q = b + 16;
        int is = 0;
        for (int n = 0; n < 256; n += 128, q += 32)
          for (int shift = 0; shift < 8; shift += 2)
            for (int h = 0; h < 2; h++) {
              int sc = b[is++];
              float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
              for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[16 * h + l] >> shift) & 3) - ml;
            }
        break;
      }
      case Q_Q3_K: { // hmask[32], qs[64], scales[12], d; q = 2 bits − (hmask bit clear ? 4 : 0)
        float d = quant_f16_to_f32(u16_at(b + 108));
        const uint8_t *hm = b, *q = b + 32, *sb = b + 96;
        int sc[16];
        for (int j = 0; j < 16; j++) {
          int low = j < 8 ? sb[j] & 0x0f : sb[j - 8] >> 4;
          sc[j] = (low | (((sb[8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
        }
        int is = 0, m = 1;
        for (int n = 0; n < 256; n += 128, q += 32)
          for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int h = 0; h < 2; h++) {
              float dl = d * (float)sc[is++];
              for (int l = 0; l < 16; l++)
                *y++ = dl * (float)(((q[16 * h + l] >> shift) & 3) - (hm[16 * h + l] & m ? 0 : 4));
            }
        break;
      }
      case Q_Q4_1: {
        float d = quant_f16_to_f32(u16_at(b)), m = quant_f16_to_f32(u16_at(b + 2));
        for (int j = 0; j < 16; j++) {
          y[j] = (float)(b[4 + j] & 0x0f) * d + m;
          y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
        break;
      }
      case Q_Q5_0: {
        float d = quant_f16_to_f32(u16_at(b));
        int q[32];
        five_bit(b + 2, b + 6, q);
        for (int j = 0; j < 32; j++) y[j] = (float)(q[j] - 16) * d;
        break;
      }
      case Q_Q5_1: {
        float d = quant_f16_to_f32(u16_at(b)), m = quant_f16_to_f32(u16_at(b + 2));
        int q[32];
        five_bit(b + 4, b + 8, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d + m;
        break;
      }
      case Q_IQ4_NL: {
        float d = quant_f16_to_f32(u16_at(b));
        for (int j = 0; j < 16; j++) {
          y[j] = d * (float)kvalues_iq4nl[b[2 + j] & 0x0f];
          y[j + 16] = d * (float)kvalues_iq4nl[b[2 + j] >> 4];
        }
        break;
      }
      case Q_IQ4_XS: { // d, scales_h, scales_l[4], qs[128]; per 32 values dl = d·(ls − 32)
        float d = quant_f16_to_f32(u16_at(b));
        int sh = u16_at(b + 2);
        for (int ib = 0; ib < 8; ib++) {
          int ls = ((b[4 + ib / 2] >> 4 * (ib % 2)) & 0x0f) | (((sh >> 2 * ib) & 3) << 4);
          float dl = d * (float)(ls - 32);
          const uint8_t *qs = b + 8 + 16 * ib;
          for (int j = 0; j < 16; j++) {
            y[32 * ib + j] = dl * (float)kvalues_iq4nl[qs[j] & 0x0f];
            y[32 * ib + j + 16] = dl * (float)kvalues_iq4nl[qs[j] >> 4];
          }
        }
        break;
      }
      case Q_Q6_K: {
        float d = quant_f16_to_f32(u16_at(b + 208));
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int half = 0; half < 2; half++) {
          for (int l = 0; l < 32; l++) {
            int is = l >> 4, h = qh[l];
            int q1 = ((ql[l] & 0xf) | (((h >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is + 0] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
          }
          y += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
        break;
      }
    }
  }
}

typedef struct {
  const float *x;
  const uint8_t *w;
  float *out;
  long M, N, K, row_bytes;
  quant_type q;
  int failed;
  const int8_t *xq; // the int8 path: x quantized, [M, K] values and [M, K / QK] scales
  const float *xd;
  const float *xs;  // q4_1/q5_1: [M, K / QK] block sums d_x · Σ_j q_j, else NULL
  const quant_kernels_t *qk;
  kq_x xk; // the K-quant int8 path: x as q8_K
  long panel; // quant_task: weight rows per panel (quant_panel_rows)
  const uint8_t *xu; // the tiled int8 path (dot_tile): x + 128, [M, npairs · 64], and its block scales, [M, npairs · 2]
  const float *xl;
} quant_ctx;

// Weight rows per panel of quant_task: up to QPANEL_FLOATS values, at least QPANEL rows, and no more than an even
// share of N per thread (so that every thread gets a panel), a multiple of 16 (the GEMM's column tiles)
static long quant_panel_rows(long N, long K, long threads) {
  long rows = QPANEL_FLOATS / K, share = (N + threads - 1) / threads;
  if (rows > share) rows = share;
  rows = (rows + 15) / 16 * 16;
  return rows < QPANEL ? QPANEL : rows;
}

// out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ; thread t takes a range of weight-row panels
static void quant_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long panels = (c->N + c->panel - 1) / c->panel, lo, hi;
  pool_range(panels, t, parts, &lo, &hi);
  if (lo >= hi) return;
  float *wp = thread_scratch(SCRATCH_QUANT, sizeof(float) * c->panel * c->K);
  if (!wp) { c->failed = 1; return; }
  for (long pnl = lo; pnl < hi; pnl++) {
    long n0 = pnl * c->panel, nb = c->N - n0 < c->panel ? c->N - n0 : c->panel;
    for (long r = 0; r < nb; r++) dequant_range(c->w + (n0 + r) * c->row_bytes, c->q, 0, c->K, wp + r * c->K);
    gemm_params p = {.batch = 1, .M = c->M, .N = nb, .K = c->K, .transB = 1, .lda = c->K, .ldb = c->K, .ldc = c->N};
    gemm_serial(c->x, wp, c->out + n0, &p);
  }
}

// Few rows of x (decode): each weight row is dequantized into L1 and dotted with every row of x at once; packing
// a panel for the GEMM would cost more than the product.
static void quant_small_m_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long lo, hi;
  pool_range(c->N, t, parts, &lo, &hi);
  if (lo >= hi) return;
  float *wr = thread_scratch(SCRATCH_QUANT, sizeof(float) * c->K);
  if (!wr) { c->failed = 1; return; }
  const kernels_t *kt = kernels_current();
  int fused = c->q == Q_Q8_0 || c->q == Q_Q4_0;
  for (long n = lo; n < hi; n++) {
    if (fused) {
      kt->quant_dot(c->q == Q_Q4_0, c->w + n * c->row_bytes, c->K, c->x, c->K, (int)c->M, c->out + n, c->N);
      continue;
    }
    dequant_range(c->w + n * c->row_bytes, c->q, 0, c->K, wr);
    for (long m = 0; m < c->M; m++) c->out[m * c->N + n] = kt->dot(c->x + m * c->K, wr, c->K);
  }
}

// y[n] = x[n] rounded to the nearest bf16, ties to even, NaN kept quiet (ggml_compute_fp32_to_bf16), as a float
static void round_bf16(const float *x, float *y, long n) {
  const uint32_t *xu = (const uint32_t *)x;
  uint32_t *yu = (uint32_t *)y;
#pragma omp simd
  for (long i = 0; i < n; i++) {
    uint32_t u = xu[i];
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    yu[i] = (u & 0x7fffffffu) > 0x7f800000u ? ((u | 0x00400000u) & 0xffff0000u) : r;
  }
}

// f16/bf16, few rows of x: each weight row converted in registers and dotted with every row of x
static void half_small_m_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long lo, hi;
  pool_range(c->N, t, parts, &lo, &hi);
  const kernels_t *kt = kernels_current();
  int bf16 = c->q == Q_BF16;
  for (long n = lo; n < hi; n++) {
    const uint16_t *row = (const uint16_t *)(c->w + n * c->row_bytes);
    for (long m0 = 0; m0 < c->M; m0 += QDOT_MAX_M) {
      int rows = c->M - m0 < QDOT_MAX_M ? (int)(c->M - m0) : QDOT_MAX_M;
      kt->half_dot(bf16, row, c->K, c->x + m0 * c->K, c->K, rows, c->out + m0 * c->N + n, c->N);
    }
  }
}

static int quant_threads(long M, long N, long K, long units) {
  long threads = pool_threads();
  if ((double)M * N * K < 65536) threads = 1;
  if (threads > units) threads = units;
  return threads < 1 ? 1 : (int)threads;
}

// Types the int8 path takes: q8_0/q4_0 in the kernels' own formats, the others repacked row by row (q5_0 by the
// SIMD table's repack_q5_0, the rest by repack_q8_0)
static int int8_path(quant_type q) {
  return q == Q_Q8_0 || q == Q_Q4_0 || q == Q_Q5_0 || q == Q_Q4_1 || q == Q_Q5_1 || q == Q_IQ4_NL;
}
static int has_min(quant_type q) { return q == Q_Q4_1 || q == Q_Q5_1; }

// One weight row of nb blocks as q8_0 blocks (f16 d copied, 32 int8), exactly: the value of block b is then
// d · dst_b,j (+ mins[b] for q4_1/q5_1, f32 of the block's f16 m)
static void repack_q8_0(const uint8_t *row, quant_type q, long nb, uint8_t *dst, float *mins) {
  long bb = quant_block_bytes(q);
  for (long b = 0; b < nb; b++) {
    const uint8_t *s = row + b * bb;
    uint8_t *d = dst + b * 34;
    int8_t *w = (int8_t *)(d + 2);
    int v[32];
    d[0] = s[0];
    d[1] = s[1];
    switch (q) {
      case Q_Q5_1:
        five_bit(s + 4, s + 8, v);
        for (int j = 0; j < 32; j++) w[j] = (int8_t)v[j];
        mins[b] = quant_f16_to_f32(u16_at(s + 2));
        break;
      case Q_Q4_1:
        for (int j = 0; j < 16; j++) {
          w[j] = (int8_t)(s[4 + j] & 0x0f);
          w[j + 16] = (int8_t)(s[4 + j] >> 4);
        }
        mins[b] = quant_f16_to_f32(u16_at(s + 2));
        break;
      case Q_IQ4_NL:
        for (int j = 0; j < 16; j++) {
          w[j] = kvalues_iq4nl[s[2 + j] & 0x0f];
          w[j + 16] = kvalues_iq4nl[s[2 + j] >> 4];
        }
        break;
      default: break; // q8_0/q4_0 are dotted as stored, q5_0 repacked by the kernel table (repack_q5_0)
    }
  }
}

// q4_1/q5_1: what one weight row's block offsets add to its product with one row of x, Σ_b m_b · s_b (s_b = d_x ·
// Σ_j q_b,j, ggml's q8_1 sums), in block order
static float offsets_dot(const float *mins, const float *xs, long nb) {
  float corr = 0.0f;
  for (long b = 0; b < nb; b++) corr += mins[b] * xs[b];
  return corr;
}

// One weight row of nb blocks (q8_0 layout, or q4_0 as stored when q4) as dot_tile's pairs (kernels_quant.h)
static void tile_prep_row(const uint8_t *row, int q4, long nb, qtile_pair *dst) {
  long bb = q4 ? 18 : 34;
  for (long p = 0; p < (nb + 1) / 2; p++) {
    qtile_pair *d = dst + p;
    for (int h = 0; h < 2; h++) {
      long b = 2 * p + h;
      int8_t *w = d->w + 32 * h;
      float scale = 0.0f;
      if (b < nb) {
        const uint8_t *blk = row + b * bb;
        scale = quant_f16(blk);
        if (q4) {
          for (int j = 0; j < 16; j++) {
            w[j] = (int8_t)((blk[2 + j] & 0x0f) - 8);
            w[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
          }
        } else {
          memcpy(w, blk + 2, 32);
        }
      } else {
        memset(w, 0, 32);
      }
      for (int l = 0; l < 8; l++) d->wl[8 * h + l] = scale;
    }
    for (int l = 0; l < 16; l++)
      d->nc[l] = -128 * (d->w[4 * l] + d->w[4 * l + 1] + d->w[4 * l + 2] + d->w[4 * l + 3]);
  }
}

// dot_tile's x for a range of rows: x + 128 as unsigned bytes (128 past an odd block count) and the pairs of block
// scales (0 for the missing block)
static void tile_prep_x_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long lo, hi, nb = c->K / QK, npairs = (nb + 1) / 2;
  pool_range(c->M, t, parts, &lo, &hi);
  uint8_t *xu = (uint8_t *)c->xu;
  float *xl = (float *)c->xl;
  for (long m = lo; m < hi; m++) {
    for (long k = 0; k < npairs * 64; k++) xu[m * npairs * 64 + k] = (uint8_t)(k < c->K ? c->xq[m * c->K + k] + 128 : 128);
    for (long b = 0; b < 2 * npairs; b++) xl[m * npairs * 2 + b] = b < nb ? c->xd[m * nb + b] : 0.0f;
  }
}

// The int8 path with dot_tile (prefill on VNNI): per tile of x, QTILE_RN weight rows at a time are prepared once
// (repacked to q8_0 first where the type needs it) and dotted with the tile's rows QDOT_MAX_M at a time
static void quant_tile_task(quant_ctx *c, long lo, long hi) {
  long nb = c->K / QK, npairs = (nb + 1) / 2;
  int q4 = c->q == Q_Q4_0, native = c->q == Q_Q8_0 || q4;
  // QTILE_RN prepared rows, then (types not dotted as stored) one repacked row and the rows' block offsets
  qtile_pair *wp = thread_scratch(SCRATCH_GEMM_B, sizeof(qtile_pair) * QTILE_RN * npairs +
                                                      sizeof(float) * QTILE_RN * nb + 34 * (size_t)nb);
  if (!wp) { c->failed = 1; return; }
  float *mins = (float *)(wp + QTILE_RN * npairs);
  uint8_t *rp = (uint8_t *)(mins + QTILE_RN * nb);
  // tiles of x as large as QTILE_BYTES allows (each weight row is prepared once per tile), at least QINT8_TILE_M rows
  long tile = QTILE_BYTES / (npairs * 72) / QDOT_MAX_M * QDOT_MAX_M;
  if (tile < QINT8_TILE_M) tile = QINT8_TILE_M;
  for (long mt = 0; mt < c->M; mt += tile) {
    long me = c->M - mt < tile ? c->M : mt + tile;
    for (long n0 = lo; n0 < hi; n0 += QTILE_RN) {
      int R = hi - n0 < QTILE_RN ? (int)(hi - n0) : QTILE_RN;
      for (int r = 0; r < R; r++) {
        const uint8_t *row = c->w + (n0 + r) * c->row_bytes;
        if (c->q == Q_Q5_0) c->qk->repack_q5_0(row, nb, rp);
        else if (!native) repack_q8_0(row, c->q, nb, rp, mins + r * nb);
        tile_prep_row(native ? row : rp, q4, nb, wp + r * npairs);
      }
      for (long m0 = mt; m0 < me; m0 += QDOT_MAX_M) {
        int rows = me - m0 < QDOT_MAX_M ? (int)(me - m0) : QDOT_MAX_M;
        float *out = c->out + m0 * c->N + n0;
        c->qk->dot_tile(wp, npairs, npairs, R, c->xu + m0 * npairs * 64, c->xl + m0 * npairs * 2, rows, out, c->N);
        if (!c->xs) continue;
        for (int i = 0; i < rows; i++)
          for (int r = 0; r < R; r++) out[i * c->N + r] += offsets_dot(mins + r * nb, c->xs + (m0 + i) * nb, nb);
      }
    }
  }
}

// The int8 path: out[m, n] = Σ_b d_w · d_x · (w_b · q_m,b) (+ Σ_b m_b · s_m,b) for a range of weight rows n; each
// output is one thread's, whatever the thread count.
static void quant_int8_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long lo, hi, nb = c->K / QK;
  pool_range(c->N, t, parts, &lo, &hi);
  if (lo >= hi) return;
  if (c->xu) { quant_tile_task(c, lo, hi); return; }
  int native = c->q == Q_Q8_0 || c->q == Q_Q4_0;
  uint8_t *rp = NULL; // the repacked row and its block offsets (the GEMM slot: this task runs no GEMM, and the
  float *mins = NULL; // quant slot holds x)
  if (!native) {
    mins = thread_scratch(SCRATCH_GEMM_B, sizeof(float) * nb + 34 * (size_t)nb);
    if (!mins) { c->failed = 1; return; }
    rp = (uint8_t *)(mins + nb);
  }
  for (long mt = 0; mt < c->M; mt += QINT8_TILE_M) {
    long me = c->M - mt < QINT8_TILE_M ? c->M : mt + QINT8_TILE_M;
    for (long n = lo; n < hi; n++) {
      const uint8_t *row = c->w + n * c->row_bytes;
      // q5_0: dotted as stored for a few rows of x (decode); a tile of many rows repacks the row once instead of
      // spreading its bits again for every QDOT_MAX_M of them (M = 512 on 1536×576, 1 thread: 9.5 → 7.8 ms; q8_0 8.0)
      int fused = c->q == Q_Q5_0 && c->qk->dot_q5_0 != NULL && me - mt <= QDOT_MAX_M;
      if (c->q == Q_Q5_0 && !fused) c->qk->repack_q5_0(row, nb, rp);
      else if (!native && !fused) repack_q8_0(row, c->q, nb, rp, mins);
      for (long m0 = mt; m0 < me; m0 += QDOT_MAX_M) {
        int rows = me - m0 < QDOT_MAX_M ? (int)(me - m0) : QDOT_MAX_M;
        if (fused) {
          c->qk->dot_q5_0(row, nb, c->xq + m0 * c->K, c->K, c->xd + m0 * nb, nb, rows, c->out + m0 * c->N + n, c->N);
          continue;
        }
        c->qk->dot(c->q == Q_Q4_0, native ? row : rp, nb, c->xq + m0 * c->K, c->K, c->xd + m0 * nb, nb, rows,
                   c->out + m0 * c->N + n, c->N);
        if (!c->xs) continue;
        for (int r = 0; r < rows; r++) c->out[(m0 + r) * c->N + n] += offsets_dot(mins, c->xs + (m0 + r) * nb, nb);
      }
    }
  }
}

// Quantizes x[M, K] to q8 blocks in the caller's quant scratch (the int8 task keeps its repacked rows in another
// slot) and runs the int8 path. 1 when done, 0 when some x is not finite (the float path then keeps inf/NaN
// semantics), −1 when out of memory.
static int quant_int8(quant_ctx *c) {
  const quant_kernels_t *qk = quant_kernels_current();
  long nb = c->K / QK;
  // prefill takes dot_tile where there is one: from QINT8_TILE_M rows of x, preparing the weight rows costs less than
  // it saves (q8_0 1536 × 576, 2 threads: 0.19 vs 0.07 ms at M = 9, 0.26 vs 0.22 at 32, 0.41 vs 0.44 at 64, 0.67 vs
  // 0.91 at 128), so batched decode of a few dozen sequences keeps the row-at-a-time dot
  int tiled = qk->dot_tile != NULL && c->M >= QINT8_TILE_M;
  long npairs = (nb + 1) / 2, tile_x = tiled ? c->M * npairs * (64 + 2 * sizeof(float)) : 0; // xu and xl
  float *xd = thread_scratch(SCRATCH_QUANT, sizeof(float) * 2 * c->M * nb + (size_t)(c->M * c->K) + (size_t)tile_x);
  if (!xd) return -1;
  float *xs = xd + c->M * nb;
  int8_t *xq = (int8_t *)(xs + c->M * nb);
  for (long m = 0; m < c->M; m++)
    if (qk->quantize_row_q8(c->x + m * c->K, c->K, xq + m * c->K, xd + m * nb) != 0) return 0;
  c->xq = xq;
  c->xd = xd;
  c->xu = NULL;
  c->xl = NULL;
  if (tiled) {
    c->xl = (float *)(xq + c->M * c->K);
    c->xu = (uint8_t *)(c->xl + c->M * npairs * 2);
    pool_run(tile_prep_x_task, c, quant_threads(c->M, c->N, c->K, c->M));
  }
  if (has_min(c->q))
    for (long i = 0; i < c->M * nb; i++) {
      int32_t sum = 0;
      for (int j = 0; j < QK; j++) sum += xq[i * QK + j];
      xs[i] = xd[i] * (float)sum;
    }
  c->xs = has_min(c->q) ? xs : NULL;
  c->qk = qk;
  pool_run(quant_int8_task, c, quant_threads(c->M, c->N, c->K, c->N));
  return c->failed ? -1 : 1;
}

static int kint8_path(quant_type q) {
  return q == Q_Q2_K || q == Q_Q3_K || q == Q_Q4_K || q == Q_Q5_K || q == Q_Q6_K;
}

// The K-quant int8 path for a range of weight rows: KQ_MAX_R rows unpacked (once per tile of x), then dotted with
// the tile's rows QDOT_MAX_M at a time. Each output is one thread's, whatever the thread count.
static void quant_kint8_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long lo, hi, nsb = c->K / QK_K;
  pool_range(c->N, t, parts, &lo, &hi);
  if (lo >= hi) return;
  kq_block *wb = thread_scratch(SCRATCH_GEMM_B, sizeof(kq_block) * KQ_MAX_R * nsb); // GEMM slot: no GEMM here
  if (!wb) { c->failed = 1; return; }
  int folded = kq_folded(c->q);
  for (long mt = 0; mt < c->M; mt += QINT8_TILE_M) {
    long me = c->M - mt < QINT8_TILE_M ? c->M : mt + QINT8_TILE_M;
    int raw = c->qk->kdot_raw != NULL && (c->q == Q_Q4_K || c->q == Q_Q6_K) && me - mt <= KQ_RAW_MAX_M;
    for (long n0 = lo; n0 < hi; n0 += KQ_MAX_R) {
      int R = hi - n0 < KQ_MAX_R ? (int)(hi - n0) : KQ_MAX_R;
      if (raw) {
        kq_x xs = {c->xk.qs + mt * c->K, c->xk.d + mt * nsb, c->xk.bsum + mt * (c->K / 16), c->K};
        c->qk->kdot_raw(c->q, c->w + n0 * c->row_bytes, c->row_bytes, nsb, R, &xs, (int)(me - mt), c->out + mt * c->N + n0, c->N);
        continue;
      }
      if (me - mt <= QDOT_MAX_M) // decode: the rows KQ_RAW_AHEAD on, on their way while these unpack (kq_prefetch)
        kq_prefetch(c->w + n0 * c->row_bytes + KQ_RAW_AHEAD, (long)R * c->row_bytes);
      for (int r = 0; r < R; r++) c->qk->kunpack(c->q, c->w + (n0 + r) * c->row_bytes, nsb, wb + r * nsb);
      for (long m0 = mt; m0 < me; m0 += QDOT_MAX_M) {
        int rows = me - m0 < QDOT_MAX_M ? (int)(me - m0) : QDOT_MAX_M;
        kq_x xs = {c->xk.qs + m0 * c->K, c->xk.d + m0 * nsb, c->xk.bsum + m0 * (c->K / 16), c->K};
        c->qk->kdot(folded, wb, nsb, R, &xs, rows, c->out + m0 * c->N + n0, c->N);
      }
    }
  }
}

// Quantizes x[M, K] to q8_K in the caller's quant scratch and runs the K-quant int8 path; returns as quant_int8.
static int quant_kint8(quant_ctx *c) {
  long nsb = c->K / QK_K;
  float *xd = thread_scratch(SCRATCH_QUANT, sizeof(float) * c->M * nsb + sizeof(int16_t) * (size_t)(c->M * c->K / 16) +
                                                (size_t)(c->M * c->K));
  if (!xd) return -1;
  int16_t *bsum = (int16_t *)(xd + c->M * nsb);
  int8_t *xq = (int8_t *)(bsum + c->M * c->K / 16);
  for (long m = 0; m < c->M; m++)
    if (quant_quantize_row_q8k(c->x + m * c->K, c->K, xq + m * c->K, xd + m * nsb, bsum + m * (c->K / 16)) != 0)
      return 0;
  c->xk = (kq_x){xq, xd, bsum, c->K};
  c->qk = quant_kernels_current();
  pool_run(quant_kint8_task, c, quant_threads(c->M, c->N, c->K, c->N));
  return c->failed ? -1 : 1;
}

// dx[M, K] = dy[M, N] · dequant(w)[N, K]; thread t takes a block-aligned range of K columns of dx
static void quant_t_task(void *ctx, int t, int parts) {
  quant_ctx *c = ctx;
  long bs = quant_block_size(c->q) < 16 ? 16 : quant_block_size(c->q), lo, hi;
  pool_range((c->K + bs - 1) / bs, t, parts, &lo, &hi);
  long k0 = lo * bs, k1 = hi * bs < c->K ? hi * bs : c->K;
  if (k0 >= k1) return;
  float *wp = thread_scratch(SCRATCH_QUANT, sizeof(float) * QPANEL_T * (k1 - k0));
  if (!wp) { c->failed = 1; return; }
  for (long n0 = 0; n0 < c->N; n0 += QPANEL_T) {
    long nb = c->N - n0 < QPANEL_T ? c->N - n0 : QPANEL_T;
    for (long r = 0; r < nb; r++) dequant_range(c->w + (n0 + r) * c->row_bytes, c->q, k0, k1, wp + r * (k1 - k0));
    gemm_params p = {.batch = 1, .M = c->M, .N = k1 - k0, .K = nb, .accumulate = n0 > 0,
                     .lda = c->N, .ldb = k1 - k0, .ldc = c->K};
    gemm_serial(c->x + n0, wp, c->out + k0, &p);
  }
}

int op_matmul_quant(const float *x, const uint8_t *w, quant_type q, float *out, long M, long N, long K, int inference) {
  if (M == 0 || N == 0) return 0;
  if (K == 0) { memset(out, 0, sizeof(float) * M * N); return 0; }
  quant_ctx c = {x, w, out, M, N, K, K / quant_block_size(q) * quant_block_bytes(q), q, 0, NULL, NULL, NULL, NULL, {0}, 0, NULL, NULL};
  if (q == Q_F16 || q == Q_BF16) {
    if (q == Q_BF16 && inference) {
      float *xr = thread_scratch(SCRATCH_QUANT, sizeof(float) * M * K);
      if (!xr) return -1;
      round_bf16(x, xr, M * K);
      c.x = x = xr;
    }
    if (M <= QHALF_MAX_M) {
      pool_run(half_small_m_task, &c, quant_threads(M, N, K, N));
    } else {
      gemm_params p = {.batch = 1, .M = M, .N = N, .K = K, .transB = 1, .btype = q == Q_F16 ? GEMM_B_F16 : GEMM_B_BF16};
      gemm(x, w, out, &p);
    }
    return 0;
  }
  if ((M <= QINT8_MAX_M || inference) && (int8_path(q) || kint8_path(q))) {
    int rc = int8_path(q) ? quant_int8(&c) : quant_kint8(&c);
    if (rc != 0) return rc < 0 ? -1 : 0;
  }
  if (M <= QSMALL_M) {
    pool_run(quant_small_m_task, &c, quant_threads(M, N, K, N));
  } else {
    c.panel = quant_panel_rows(N, K, quant_threads(M, N, K, N));
    pool_run(quant_task, &c, quant_threads(M, N, K, (N + c.panel - 1) / c.panel));
  }
  return c.failed ? -1 : 0;
}

int op_matmul_quant_t(const float *dy, const uint8_t *w, quant_type q, float *dx, long M, long N, long K) {
  if (M == 0 || K == 0) return 0;
  if (N == 0) { memset(dx, 0, sizeof(float) * M * K); return 0; }
  if (q == Q_F16 || q == Q_BF16) { // dx[M, K] = dy[M, N] · W[N, K], W's panels converted as they are packed
    gemm_params p = {.batch = 1, .M = M, .N = K, .K = N, .btype = q == Q_F16 ? GEMM_B_F16 : GEMM_B_BF16};
    gemm(dy, w, dx, &p);
    return 0;
  }
  quant_ctx c = {dy, w, dx, M, N, K, K / quant_block_size(q) * quant_block_bytes(q), q, 0, NULL, NULL, NULL, NULL, {0}, 0, NULL, NULL};
  long bs = quant_block_size(q) < 16 ? 16 : quant_block_size(q);
  pool_run(quant_t_task, &c, quant_threads(M, N, K, (K + bs - 1) / bs));
  return c.failed ? -1 : 0;
}

void op_gather_quant(const uint8_t *w, quant_type q, const int32_t *ids, float *out, long N, long C) {
  long row_bytes = C / quant_block_size(q) * quant_block_bytes(q);
  for (long n = 0; n < N; n++) dequant_range(w + ids[n] * row_bytes, q, 0, C, out + n * C);
}
