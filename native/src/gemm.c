// Packed, cache-blocked GEMM (BLIS/GotoBLAS loop nest): C[b] (+)= op(A[b]) · op(B[b]).
// op(A)[M, K] is A[m*K + k], or A[k*M + m] when transA; op(B)[K, N] is B[k*N + n], or B[n*K + k] when transB.
// Transposes are never materialized: panels are packed straight from the strided layout. Threads get disjoint
// rectangles of C (or whole batch items); every element of C is reduced over k in the same order whatever the
// split, so results do not depend on the thread count.
#include <stdlib.h>
#include <string.h>
#include "nomoat.h"

// dst = micro-panels of MR rows: for each, kc × MR with dst[k * MR + i] = op(A)[m0 + ir + i, k0 + k], zero padded
static void pack_a(const float *A, int transA, long lda, long m0, long mc, long k0, long kc, int MR, float *dst) {
  for (long ir = 0; ir < mc; ir += MR) {
    long mr = mc - ir < MR ? mc - ir : MR;
    float *d = dst + ir * kc;
    if (!transA) {
      for (long i = 0; i < mr; i++) {
        const float *src = A + (m0 + ir + i) * lda + k0;
        for (long k = 0; k < kc; k++) d[k * MR + i] = src[k];
      }
      for (long i = mr; i < MR; i++)
        for (long k = 0; k < kc; k++) d[k * MR + i] = 0.0f;
    } else {
      for (long k = 0; k < kc; k++) {
        const float *src = A + (k0 + k) * lda + m0 + ir;
        float *dk = d + k * MR;
        for (long i = 0; i < mr; i++) dk[i] = src[i];
        for (long i = mr; i < MR; i++) dk[i] = 0.0f;
      }
    }
  }
}

// dst = micro-panels of NR columns: for each, kc × NR with dst[k * NR + j] = op(B)[k0 + k, n0 + jr + j], zero padded
static void pack_b(const float *B, int transB, long ldb, long n0, long nc, long k0, long kc, int NR, float *dst) {
  for (long jr = 0; jr < nc; jr += NR) {
    long nr = nc - jr < NR ? nc - jr : NR;
    float *d = dst + jr * kc;
    if (!transB) {
      for (long k = 0; k < kc; k++) {
        const float *src = B + (k0 + k) * ldb + n0 + jr;
        float *dk = d + k * NR;
        for (long j = 0; j < nr; j++) dk[j] = src[j];
        for (long j = nr; j < NR; j++) dk[j] = 0.0f;
      }
    } else {
      for (long j = 0; j < nr; j++) {
        const float *src = B + (n0 + jr + j) * ldb + k0;
        for (long k = 0; k < kc; k++) d[k * NR + j] = src[k];
      }
      for (long j = nr; j < NR; j++)
        for (long k = 0; k < kc; k++) d[k * NR + j] = 0.0f;
    }
  }
}

// pack_b for an f16/bf16 B (a frozen weight as stored): the same panels, each stretch of B converted by the
// kernel table's SIMD conversion on the way (once per packed panel, reused by every row block of A).
#define PACK_HALF_CHUNK 256
static void pack_b_half(const kernels_t *kt, const uint16_t *B, int bf16, int transB, long ldb, long n0, long nc,
                        long k0, long kc, int NR, float *dst) {
  float row[PACK_HALF_CHUNK];
  for (long jr = 0; jr < nc; jr += NR) {
    long nr = nc - jr < NR ? nc - jr : NR;
    float *d = dst + jr * kc;
    if (!transB) {
      for (long k = 0; k < kc; k++) {
        float *dk = d + k * NR;
        kt->half_to_f32(bf16, B + (k0 + k) * ldb + n0 + jr, dk, nr);
        for (long j = nr; j < NR; j++) dk[j] = 0.0f;
      }
    } else {
      for (long j = 0; j < nr; j++) {
        const uint16_t *src = B + (n0 + jr + j) * ldb + k0;
        for (long c0 = 0; c0 < kc; c0 += PACK_HALF_CHUNK) {
          long cn = kc - c0 < PACK_HALF_CHUNK ? kc - c0 : PACK_HALF_CHUNK;
          kt->half_to_f32(bf16, src + c0, row, cn);
          for (long k = 0; k < cn; k++) d[(c0 + k) * NR + j] = row[k];
        }
      }
      for (long j = nr; j < NR; j++)
        for (long k = 0; k < kc; k++) d[k * NR + j] = 0.0f;
    }
  }
}

// C[m_lo..m_hi, n_lo..n_hi] of one batch item, single thread.
static void gemm_block(const kernels_t *kt, const float *A, const void *B, float *C, const gemm_params *p, long m_lo,
                       long m_hi, long n_lo, long n_hi) {
  const int MR = kt->mr, NR = kt->nr;
  const long KC = kt->kc, MC = kt->mc, NC = kt->nc;
  long K = p->K, ldc = p->ldc;
  float *pa = thread_scratch(SCRATCH_GEMM_A, sizeof(float) * MC * KC);
  float *pb = thread_scratch(SCRATCH_GEMM_B, sizeof(float) * (NC + NR) * KC);
  float tile[16 * 64] __attribute__((aligned(64))); // edge tiles: MR·NR ≤ 16·64
  if (!pa || !pb) abort();
  for (long jc = n_lo; jc < n_hi; jc += NC) {
    long nc = n_hi - jc < NC ? n_hi - jc : NC;
    for (long pc = 0; pc < K; pc += KC) {
      long kc = K - pc < KC ? K - pc : KC;
      int acc = p->accumulate || pc > 0;
      if (p->btype == GEMM_B_F32) pack_b(B, p->transB, p->ldb, jc, nc, pc, kc, NR, pb);
      else pack_b_half(kt, B, p->btype == GEMM_B_BF16, p->transB, p->ldb, jc, nc, pc, kc, NR, pb);
      for (long ic = m_lo; ic < m_hi; ic += MC) {
        long mc = m_hi - ic < MC ? m_hi - ic : MC;
        pack_a(A, p->transA, p->lda, ic, mc, pc, kc, MR, pa);
        for (long jr = 0; jr < nc; jr += NR) {
          long nr = nc - jr < NR ? nc - jr : NR;
          for (long ir = 0; ir < mc; ir += MR) {
            long mr = mc - ir < MR ? mc - ir : MR;
            float *c = C + (ic + ir) * ldc + jc + jr;
            if (mr == MR && nr == NR) {
              kt->gemm_micro(kc, pa + ir * kc, pb + jr * kc, c, ldc, acc);
            } else {
              kt->gemm_micro(kc, pa + ir * kc, pb + jr * kc, tile, NR, 0);
              for (long i = 0; i < mr; i++)
                for (long j = 0; j < nr; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
            }
          }
        }
      }
    }
  }
}

// Few rows (decode-style, M < MR): packing the big operand would cost more than the product, so use dots/axpys.
static void gemm_small_m(const kernels_t *kt, const float *A, const float *B, float *C, const gemm_params *p, long n_lo,
                         long n_hi) {
  long K = p->K, lda = p->lda, ldb = p->ldb;
  for (long m = 0; m < p->M; m++) {
    float *c = C + m * p->ldc;
    if (!p->accumulate)
      for (long n = n_lo; n < n_hi; n++) c[n] = 0.0f;
    if (p->transB && !p->transA) {
      continue; // below: every row of A against each row of B while that row is in L1
    } else if (!p->transB) {
      for (long k = 0; k < K; k++) {
        float a = p->transA ? A[k * lda + m] : A[m * lda + k];
        kt->axpy(a, B + k * ldb + n_lo, c + n_lo, n_hi - n_lo);
      }
    } else {
      for (long n = n_lo; n < n_hi; n++) {
        float s = 0.0f;
        for (long k = 0; k < K; k++) s += A[k * lda + m] * B[n * ldb + k];
        c[n] += s;
      }
    }
  }
  if (p->transB && !p->transA) // y = x·Wᵀ (decode): B is read once, not once per row of A
    for (long n = n_lo; n < n_hi; n++)
      for (long m = 0; m < p->M; m++) C[m * p->ldc + n] += kt->dot(A + m * lda, B + n * ldb, K);
}

// Narrow products (N <= 16, LoRA's h·Aᵀ and g·B with rank 16): each A element meets only 16 columns, so packing A
// would cost as much as the product, and a 32-wide micro-tile would be half padding. Only B is packed (K × 16), and
// the kernel reads the rows of A in place (A not transposed; a transposed A keeps the packed path, whose packing
// is a contiguous copy there, while turning it into rows costs as much as the product).
static void gemm_narrow_part(const kernels_t *kt, const float *A, const float *B, float *C, const gemm_params *p,
                             long m_lo, long m_hi) {
  long K = p->K, lda = p->lda, ldc = p->ldc;
  float *bp = thread_scratch(SCRATCH_GEMM_B, sizeof(float) * 16 * K);
  if (!bp) abort();
  pack_b(B, p->transB, p->ldb, 0, p->N, 0, K, 16, bp);
  kt->gemm_narrow(K, m_hi - m_lo, A + m_lo * lda, lda, bp, C + m_lo * ldc, ldc, (int)p->N, p->accumulate);
}

// Narrow products over an operand stored transposed, read along its contiguous dimension (16 rows of D per load):
// N <= 16 with A transposed (D = C, rows over m, X = A), or M <= 16 with B not transposed (D = Cᵀ, rows over n,
// X = B, and the 16-wide side op(A)ᵀ packed K × 16 by pack_a with MR = 16).
static void gemm_narrow_t_part(const kernels_t *kt, const float *A, const float *B, float *C, const gemm_params *p,
                               int over_n, long lo, long hi) {
  long K = p->K, ldc = p->ldc;
  float *bp = thread_scratch(SCRATCH_GEMM_B, sizeof(float) * 16 * K);
  if (!bp) abort();
  if (!over_n) {
    pack_b(B, p->transB, p->ldb, 0, p->N, 0, K, 16, bp);
    kt->gemm_narrow_t(K, hi - lo, A + lo, p->lda, bp, C + lo * ldc, ldc, 1, (int)p->N, p->accumulate);
  } else {
    pack_a(A, p->transA, p->lda, 0, p->M, 0, K, 16, bp);
    kt->gemm_narrow_t(K, hi - lo, B + lo, p->ldb, bp, C + lo, 1, ldc, (int)p->M, p->accumulate);
  }
}

typedef struct {
  const kernels_t *kt;
  const float *A;
  const void *B;
  float *C;
  const gemm_params *p;
  int split_batch; // threads take whole batch items; else each item is split over threads
} gemm_job;

static void gemm_item_part(const gemm_job *j, long b, int t, int parts) {
  const gemm_params *p = j->p;
  const float *A = j->A + b * p->strideA;
  const void *Bv = (const char *)j->B + b * p->strideB * (p->btype == GEMM_B_F32 ? 4 : 2);
  const float *B = Bv; // read as floats only when btype is f32
  float *C = j->C + b * p->strideC;
  long lo, hi;
  // a half B (f16/bf16 weight) takes the packed path only, where it is converted as it is packed: the paths below
  // read B in place as floats (decode-shaped half products are quant.c's half_dot, not GEMMs)
  int plain = p->btype == GEMM_B_F32;
  if (plain && (p->M < j->kt->mr || p->rowwise)) {
    // split N in multiples of 16 columns
    pool_range((p->N + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > p->N) hi = p->N;
    if (lo < hi) gemm_small_m(j->kt, A, B, C, p, lo, hi);
  } else if (plain && p->N <= 16 && !p->transA && j->kt->gemm_narrow) {
    // split M in multiples of 16 rows; every row is computed the same way whatever block it falls in
    pool_range((p->M + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > p->M) hi = p->M;
    if (lo < hi) gemm_narrow_part(j->kt, A, B, C, p, lo, hi);
  } else if (plain && j->kt->gemm_narrow_t && ((p->N <= 16 && p->transA) || (p->M <= 16 && !p->transB))) {
    // split the long side in multiples of 16
    int over_n = !(p->N <= 16 && p->transA);
    long len = over_n ? p->N : p->M;
    pool_range((len + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > len) hi = len;
    if (lo < hi) gemm_narrow_t_part(j->kt, A, B, C, p, over_n, lo, hi);
  } else if (p->M >= p->N || parts == 1) {
    long blocks = (p->M + j->kt->mr - 1) / j->kt->mr;
    pool_range(blocks, t, parts, &lo, &hi);
    lo *= j->kt->mr; hi *= j->kt->mr;
    if (hi > p->M) hi = p->M;
    if (lo < hi) gemm_block(j->kt, A, Bv, C, p, lo, hi, 0, p->N);
  } else {
    long blocks = (p->N + j->kt->nr - 1) / j->kt->nr;
    pool_range(blocks, t, parts, &lo, &hi);
    lo *= j->kt->nr; hi *= j->kt->nr;
    if (hi > p->N) hi = p->N;
    if (lo < hi) gemm_block(j->kt, A, Bv, C, p, 0, p->M, lo, hi);
  }
}

static void gemm_task(void *ctx, int t, int nthreads) {
  const gemm_job *j = ctx;
  if (j->split_batch) {
    long lo, hi;
    pool_range(j->p->batch, t, nthreads, &lo, &hi);
    for (long b = lo; b < hi; b++) gemm_item_part(j, b, 0, 1);
  } else {
    for (long b = 0; b < j->p->batch; b++) gemm_item_part(j, b, t, nthreads);
  }
}

static gemm_params with_pitches(const gemm_params *p) {
  gemm_params q = *p;
  if (!q.lda) q.lda = q.transA ? q.M : q.K;
  if (!q.ldb) q.ldb = q.transB ? q.K : q.N;
  if (!q.ldc) q.ldc = q.N;
  return q;
}

static int gemm_trivial(float *C, const gemm_params *p) {
  if (p->batch <= 0 || p->M <= 0 || p->N <= 0) return 1;
  if (p->K > 0) return 0;
  if (!p->accumulate)
    for (long b = 0; b < p->batch; b++)
      for (long m = 0; m < p->M; m++) memset(C + b * p->strideC + m * p->ldc, 0, sizeof(float) * p->N);
  return 1;
}

void gemm_serial(const float *A, const void *B, float *C, const gemm_params *p0) {
  gemm_params p = with_pitches(p0);
  if (gemm_trivial(C, &p)) return;
  gemm_job j = {kernels_current(), A, B, C, &p, 0};
  gemm_task(&j, 0, 1);
}

void gemm(const float *A, const void *B, float *C, const gemm_params *p0) {
  gemm_params q = with_pitches(p0);
  const gemm_params *p = &q;
  if (gemm_trivial(C, p)) return;
  gemm_job j = {kernels_current(), A, B, C, p, 0};
  double work = (double)p->batch * p->M * p->N * p->K;
  int threads = pool_threads();
  if (work < 1 << 17) threads = 1; // dispatch would cost more than it saves
  // a stride-0 C (every item writes one matrix) must stay in order on one thread
  j.split_batch = p->batch >= threads && p->strideC != 0;
  pool_run(gemm_task, &j, threads);
}
