// Packed, cache-blocked GEMM (BLIS/GotoBLAS loop nest): C[b] (+)= op(A[b]) · op(B[b]).
// op(A)[M, K] is A[m*K + k], or A[k*M + m] when transA; op(B)[K, N] is B[k*N + n], or B[n*K + k] when transB.
// Transposes are never materialized: panels are packed straight from the strided layout. Threads get disjoint
// rectangles of C (or whole batch items); every element of C is reduced over k in the same order whatever the
// split, so results do not depend on the thread count.
#include <stdlib.h>
#include <string.h>
#include "nomoat.h"
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

// dst[k * R + i] = src[i * ld + k] for i < r, k < kc, and 0 for r <= i < R: one micro-panel cut across the rows of
// a row-major matrix (op(A) not transposed, or op(B) transposed). Full panels go 4 rows × 4 k at a time through an
// SSE register transpose (a scalar copy pays a load, a strided store and a loop step per element: 16 % of a
// 4096×576×576 product on Zen 5); ragged panels take the scalar loop.
static void pack_panel_t(const float *src, long ld, long r, long kc, int R, float *dst) {
  long k = 0;
#if defined(__SSE2__)
  if (r == R && R % 4 == 0)
    for (; k + 4 <= kc; k += 4)
      for (int i = 0; i < R; i += 4) {
        const float *s = src + i * ld + k;
        __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ld), r2 = _mm_loadu_ps(s + 2 * ld), r3 = _mm_loadu_ps(s + 3 * ld);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        float *d = dst + k * R + i;
        _mm_storeu_ps(d, r0);
        _mm_storeu_ps(d + R, r1);
        _mm_storeu_ps(d + 2 * R, r2);
        _mm_storeu_ps(d + 3 * R, r3);
      }
#endif
  for (long i = 0; i < r; i++)
    for (long kk = k; kk < kc; kk++) dst[kk * R + i] = src[i * ld + kk];
  for (long i = r; i < R; i++)
    for (long kk = 0; kk < kc; kk++) dst[kk * R + i] = 0.0f;
}

// dst = the micro-panels of R columns of a w-wide strip of a row-major matrix (op(A) transposed, or op(B) not
// transposed), each kc × R: dst[(j / R) * kc * R + k * R + j % R] = src[k * ld + j] for j < w, zero padded. Read
// a row of the strip at a time: the rows are ld apart, and walking a 48- or 128-byte column of panel after panel
// left the hardware prefetchers behind (a fifth of a 576×576×4096 dW product was spent waiting in these copies).
#define PACK_AHEAD 4 // rows of software prefetch distance in pack_strip_n
static void pack_strip_n(const float *src, long ld, long w, long kc, int R, float *dst) {
  for (long k = 0; k < kc; k++) {
    const float *s = src + k * ld;
    float *d = dst + k * R;
    if (k + PACK_AHEAD < kc) // rows come from L3 or memory; the jump of ld between them is left to software
      for (long j = 0; j < w; j += 16) __builtin_prefetch(s + PACK_AHEAD * ld + j);
    long j = 0;
    for (; j + R <= w; j += R, d += kc * R)
      for (int jj = 0; jj < R; jj++) d[jj] = s[j + jj];
    if (j < w) {
      for (long jj = 0; jj < w - j; jj++) d[jj] = s[j + jj];
      for (long jj = w - j; jj < R; jj++) d[jj] = 0.0f;
    }
  }
}

// dst = micro-panels of MR rows: for each, kc × MR with dst[k * MR + i] = op(A)[m0 + ir + i, k0 + k], zero padded
static void pack_a(const float *A, int transA, long lda, long m0, long mc, long k0, long kc, int MR, float *dst) {
  if (transA) {
    pack_strip_n(A + k0 * lda + m0, lda, mc, kc, MR, dst);
    return;
  }
  for (long ir = 0; ir < mc; ir += MR) {
    long mr = mc - ir < MR ? mc - ir : MR;
    pack_panel_t(A + (m0 + ir) * lda + k0, lda, mr, kc, MR, dst + ir * kc);
  }
}

// dst = micro-panels of NR columns: for each, kc × NR with dst[k * NR + j] = op(B)[k0 + k, n0 + jr + j], zero padded
static void pack_b(const float *B, int transB, long ldb, long n0, long nc, long k0, long kc, int NR, float *dst) {
  if (!transB) {
    pack_strip_n(B + k0 * ldb + n0, ldb, nc, kc, NR, dst);
    return;
  }
  for (long jr = 0; jr < nc; jr += NR) {
    long nr = nc - jr < NR ? nc - jr : NR;
    pack_panel_t(B + (n0 + jr) * ldb + k0, ldb, nr, kc, NR, dst + jr * kc);
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

// The cache blocking of the kernel table for a product of depth K (a function so that every loop of the nest
// reads it the same way). K is cut into the fewest passes of at most 1.5 KC, all of one length (a multiple of 16):
// each pass reloads and stores all of C, and a short last pass (K = 576 as 384 + 192) pays that for little work.
// On Zen 5 (KC 384): K = 576 in one pass 5–8 % faster, K = 1536..4096 in passes of ~512 1–5 % faster; the longer
// B micro-panels still stream well. The cut depends on K alone, so the order of every sum is the same at any
// thread count.
static void gemm_blocking(const kernels_t *kt, long K, long *KC, long *MC, long *NC) {
  long most = kt->kc + kt->kc / 2, passes = (K + most - 1) / most;
  *KC = passes <= 1 ? K : ((K + passes - 1) / passes + 15) / 16 * 16;
  *MC = kt->mc;
  *NC = kt->nc;
}

// The NR-wide micro-panels [q_lo, q_hi) of the kc × nc panel of op(B) at (pc, jc), packed into their places in pb.
static void pack_b_panels(const kernels_t *kt, const void *B, const gemm_params *p, long jc, long nc, long pc, long kc,
                          long q_lo, long q_hi, float *pb) {
  const int NR = kt->nr;
  long n0 = q_lo * NR, n1 = q_hi * NR < nc ? q_hi * NR : nc;
  if (n0 >= n1) return;
  if (p->btype == GEMM_B_F32) pack_b(B, p->transB, p->ldb, jc + n0, n1 - n0, pc, kc, NR, pb + n0 * kc);
  else pack_b_half(kt, B, p->btype == GEMM_B_BF16, p->transB, p->ldb, jc + n0, n1 - n0, pc, kc, NR, pb + n0 * kc);
}

// C[m_lo..m_hi, jc..jc+nc] (+)= op(A)[m_lo..m_hi, pc..pc+kc] · pb, pb the packed kc × nc panel of op(B): the ic, jr
// and ir loops of the nest (A packed MC rows at a time into this thread's scratch).
static void gemm_macro(const kernels_t *kt, const float *A, const gemm_params *p, const float *pb, float *C, long m_lo,
                       long m_hi, long jc, long nc, long pc, long kc, int acc) {
  const int MR = kt->mr, NR = kt->nr;
  long KC, MC, NC, ldc = p->ldc;
  gemm_blocking(kt, p->K, &KC, &MC, &NC);
  float *pa = thread_scratch(SCRATCH_GEMM_A, sizeof(float) * MC * KC);
  float tile[16 * 64] __attribute__((aligned(64))); // edge tiles: MR·NR ≤ 16·64
  if (!pa) abort();
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

// C[m_lo..m_hi, n_lo..n_hi] of one batch item, single thread.
static void gemm_block(const kernels_t *kt, const float *A, const void *B, float *C, const gemm_params *p, long m_lo,
                       long m_hi, long n_lo, long n_hi) {
  long KC, MC, NC, K = p->K;
  gemm_blocking(kt, p->K, &KC, &MC, &NC);
  float *pb = thread_scratch(SCRATCH_GEMM_B, sizeof(float) * (NC + kt->nr) * KC);
  if (!pb) abort();
  for (long jc = n_lo; jc < n_hi; jc += NC) {
    long nc = n_hi - jc < NC ? n_hi - jc : NC;
    for (long pc = 0; pc < K; pc += KC) {
      long kc = K - pc < KC ? K - pc : KC;
      pack_b_panels(kt, B, p, jc, nc, pc, kc, 0, (nc + kt->nr - 1) / kt->nr, pb);
      gemm_macro(kt, A, p, pb, C, m_lo, m_hi, jc, nc, pc, kc, p->accumulate || pc > 0);
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

// Whether gemm_item_part takes the packed (gemm_block) path: not the few-rows, row-wise or narrow products, whose
// kernels read B in place as floats (a half B always takes the packed path, converted as it is packed).
static int gemm_packed_path(const kernels_t *kt, const gemm_params *p) {
  if (p->btype != GEMM_B_F32) return 1;
  if (p->M < kt->mr || p->rowwise) return 0;
  if (p->N <= 16 && !p->transA && kt->gemm_narrow) return 0;
  if (kt->gemm_narrow_t && ((p->N <= 16 && p->transA) || (p->M <= 16 && !p->transB))) return 0;
  return 1;
}

static void gemm_item_part(const gemm_job *j, long b, int t, int parts) {
  const gemm_params *p = j->p;
  const kernels_t *kt = j->kt;
  const float *A = j->A + b * p->strideA;
  const void *Bv = (const char *)j->B + b * p->strideB * (p->btype == GEMM_B_F32 ? 4 : 2);
  const float *B = Bv; // read as floats only off the packed path, which a half B never leaves
  float *C = j->C + b * p->strideC;
  long lo, hi;
  if (gemm_packed_path(kt, p)) {
    // split the longer side; a part packs the whole of the other operand (sharing one packed op(B) between the
    // parts, behind barriers, measured slower on Zen 5 at 2 threads: the packed panels moved between the cores)
    int over_m = p->M >= p->N || parts == 1;
    long len = over_m ? p->M : p->N, step = over_m ? kt->mr : kt->nr;
    pool_range((len + step - 1) / step, t, parts, &lo, &hi);
    lo *= step; hi *= step;
    if (hi > len) hi = len;
    if (lo < hi && over_m) gemm_block(kt, A, Bv, C, p, lo, hi, 0, p->N);
    if (lo < hi && !over_m) gemm_block(kt, A, Bv, C, p, 0, p->M, lo, hi);
  } else if (p->M < kt->mr || p->rowwise) {
    // split N in multiples of 16 columns
    pool_range((p->N + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > p->N) hi = p->N;
    if (lo < hi) gemm_small_m(kt, A, B, C, p, lo, hi);
  } else if (p->N <= 16 && !p->transA && kt->gemm_narrow) {
    // split M in multiples of 16 rows; every row is computed the same way whatever block it falls in
    pool_range((p->M + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > p->M) hi = p->M;
    if (lo < hi) gemm_narrow_part(kt, A, B, C, p, lo, hi);
  } else {
    // narrow over a transposed operand (gemm_packed_path's last case): split the long side in multiples of 16
    int over_n = !(p->N <= 16 && p->transA);
    long len = over_n ? p->N : p->M;
    pool_range((len + 15) / 16, t, parts, &lo, &hi);
    lo *= 16; hi *= 16;
    if (hi > len) hi = len;
    if (lo < hi) gemm_narrow_t_part(kt, A, B, C, p, over_n, lo, hi);
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
  gemm_job j = {.kt = kernels_current(), .A = A, .B = B, .C = C, .p = &p};
  gemm_task(&j, 0, 1);
}

void gemm(const float *A, const void *B, float *C, const gemm_params *p0) {
  gemm_params q = with_pitches(p0);
  const gemm_params *p = &q;
  if (gemm_trivial(C, p)) return;
  gemm_job j = {.kt = kernels_current(), .A = A, .B = B, .C = C, .p = p};
  double work = (double)p->batch * p->M * p->N * p->K;
  int threads = pool_threads();
  if (work < 1 << 17) threads = 1; // dispatch would cost more than it saves
  // a stride-0 C (every item writes one matrix) must stay in order on one thread
  j.split_batch = p->batch >= threads && p->strideC != 0;
  pool_run(gemm_task, &j, threads);
}
