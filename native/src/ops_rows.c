// Threaded drivers for the row-wise model ops: embedding, RMSNorm, softmax, cross-entropy, KL. Rows are split
// statically over threads; the only cross-row reduction (RMSNorm's dw) uses per-thread partials summed in order.
#include <stdlib.h>
#include <string.h>
#include "ops.h"

typedef struct {
  const float *a, *b, *c, *d;
  const int32_t *ids;
  float *o1, *o2;
  long N, C;
  float f;
  int ignore;
  float *partials; // [threads, C]
} row_ctx;

// ---- embedding ----------------------------------------------------------------------------------------------
static void emb_f_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  for (long n = lo; n < hi; n++) memcpy(r->o1 + n * r->C, r->a + (long)r->ids[n] * r->C, sizeof(float) * r->C);
}
// out[N, C] = table[ids[n], C]
void op_embedding_forward(const float *table, const int32_t *ids, float *out, long N, long C) {
  row_ctx r = {.a = table, .ids = ids, .o1 = out, .N = N, .C = C};
  long threads = pool_threads();
  if (N * C < 65536) threads = 1;
  pool_run(emb_f_r, &r, (int)threads);
}

// Each thread owns a column range of dtable and walks every row in order, so duplicates accumulate in order.
static void emb_b_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->C, t, parts, &lo, &hi);
  if (lo >= hi) return;
  for (long n = 0; n < r->N; n++)
    kernels_current()->axpy(1.0f, r->a + n * r->C + lo, r->o1 + (long)r->ids[n] * r->C + lo, hi - lo);
}
// dtable[ids[n], :] += dout[n, :]
void op_embedding_backward(const float *dout, const int32_t *ids, float *dtable, long N, long C) {
  row_ctx r = {.a = dout, .ids = ids, .o1 = dtable, .N = N, .C = C};
  long threads = pool_threads();
  if (N * C < 65536 || C < 64) threads = 1;
  pool_run(emb_b_r, &r, (int)threads);
}

// ---- row-split helper ------------------------------------------------------------------------------------
static int row_threads(long N, long C) {
  long threads = pool_threads(), by_size = N * C / 16384;
  if (threads > by_size) threads = by_size;
  if (threads > N) threads = N;
  return threads < 1 ? 1 : (int)threads;
}

static void rms_f_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi)
    kernels_current()->rmsnorm_forward(r->a + lo * r->C, r->b, r->o1 + lo * r->C, r->o2 + lo, hi - lo, r->C, r->f);
}
void op_rmsnorm_forward(const float *x, const float *w, float *out, float *rstd, long N, long C, float eps) {
  row_ctx r = {.a = x, .b = w, .o1 = out, .o2 = rstd, .N = N, .C = C, .f = eps};
  pool_run(rms_f_r, &r, row_threads(N, C));
}

static void rms_b_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  float *dw = r->partials + (long)t * r->C;
  memset(dw, 0, sizeof(float) * r->C);
  if (lo < hi)
    kernels_current()->rmsnorm_backward(r->a + lo * r->C, r->b + lo * r->C, r->c, r->d + lo, r->o1 + lo * r->C, dw,
                                        hi - lo, r->C);
}
// returns -1 when the partials cannot be allocated
int op_rmsnorm_backward(const float *dout, const float *x, const float *w, const float *rstd, float *dx, float *dw,
                        long N, long C) {
  int threads = row_threads(N, C);
  float *partials = nm_aligned_alloc(sizeof(float) * C * threads);
  if (!partials) return -1;
  row_ctx r = {.a = dout, .b = x, .c = w, .d = rstd, .o1 = dx, .N = N, .C = C, .partials = partials};
  pool_run(rms_b_r, &r, threads);
  for (int t = 0; t < threads; t++) kernels_current()->axpy(1.0f, partials + (long)t * C, dw, C);
  free(partials);
  return 0;
}

static void sm_f_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi) kernels_current()->softmax_forward(r->a + lo * r->C, r->o1 + lo * r->C, hi - lo, r->C);
}
void op_softmax_forward(const float *x, float *out, long N, long C) {
  row_ctx r = {.a = x, .o1 = out, .N = N, .C = C};
  pool_run(sm_f_r, &r, row_threads(N, C));
}
static void sm_b_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi)
    kernels_current()->softmax_backward(r->a + lo * r->C, r->b + lo * r->C, r->o1 + lo * r->C, hi - lo, r->C);
}
void op_softmax_backward(const float *y, const float *dout, float *dx, long N, long C) {
  row_ctx r = {.a = y, .b = dout, .o1 = dx, .N = N, .C = C};
  pool_run(sm_b_r, &r, row_threads(N, C));
}

static void ce_f_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi)
    kernels_current()->ce_forward(r->a + lo * r->C, r->ids + lo, r->o1 + lo, r->o2 + lo, hi - lo, r->C, r->ignore);
}
long op_ce_forward(const float *logits, const int32_t *targets, float *losses, float *lse, long N, long V, int ignore) {
  row_ctx r = {.a = logits, .ids = targets, .o1 = losses, .o2 = lse, .N = N, .C = V, .ignore = ignore};
  pool_run(ce_f_r, &r, row_threads(N, V));
  long counted = 0;
  for (long n = 0; n < N; n++) counted += targets[n] != ignore;
  return counted;
}
static void ce_b_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi)
    kernels_current()->ce_backward(r->a + lo * r->C, r->ids + lo, r->b + lo, r->c + lo, r->o1 + lo * r->C, hi - lo,
                                   r->C, r->ignore);
}
void op_ce_backward(const float *logits, const int32_t *targets, const float *lse, const float *dloss, float *dlogits,
                    long N, long V, int ignore) {
  row_ctx r = {.a = logits, .ids = targets, .b = lse, .c = dloss, .o1 = dlogits, .N = N, .C = V, .ignore = ignore};
  pool_run(ce_b_r, &r, row_threads(N, V));
}

static void kl_f_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi) kernels_current()->kl_forward(r->a + lo * r->C, r->b + lo * r->C, r->o1 + lo, hi - lo, r->C, r->f);
}
void op_kl_forward(const float *s, const float *t, float *losses, long N, long V, float temp) {
  row_ctx r = {.a = s, .b = t, .o1 = losses, .N = N, .C = V, .f = temp};
  pool_run(kl_f_r, &r, row_threads(N, V));
}
static void kl_b_r(void *ctx, int t, int parts) {
  row_ctx *r = ctx;
  long lo, hi;
  pool_range(r->N, t, parts, &lo, &hi);
  if (lo < hi)
    kernels_current()->kl_backward(r->a + lo * r->C, r->b + lo * r->C, r->c + lo, r->o1 + lo * r->C, hi - lo, r->C,
                                   r->f);
}
void op_kl_backward(const float *s, const float *t, const float *dloss, float *ds, long N, long V, float temp) {
  row_ctx r = {.a = s, .b = t, .c = dloss, .o1 = ds, .N = N, .C = V, .f = temp};
  pool_run(kl_b_r, &r, row_threads(N, V));
}

// ---- low-rank deltas of a server's rows ------------------------------------------------------------------------
// out[rows[i], :] += (k · x[rows[i], :] · Aᵀ) · Bᵀ (A [r, K], B [N, r]): one adapter's delta on the rows that use it
// (S-LoRA's grouping). Each row alone, in per-row dots, so its bits never depend on which rows share the call.
#define LR_MAX_R 1024
typedef struct {
  const float *x, *A, *B;
  const int32_t *rows;
  float *out;
  long G, K, N, r;
  float k;
} lr_ctx;

static void lr_rows_r(void *ctx, int t, int parts) {
  const lr_ctx *c = ctx;
  const kernels_t *kt = kernels_current();
  float h[LR_MAX_R];
  long lo, hi;
  pool_range(c->G, t, parts, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    const float *xr = c->x + (long)c->rows[i] * c->K;
    float *o = c->out + (long)c->rows[i] * c->N;
    for (long j = 0; j < c->r; j++) h[j] = kt->dot(xr, c->A + j * c->K, c->K) * c->k;
    for (long n = 0; n < c->N; n++) o[n] += kt->dot(h, c->B + n * c->r, c->r);
  }
}

int op_lowrank_rows(const float *x, const int32_t *rows, long G, const float *A, const float *B, float *out, long K, long N, long r,
                    float k) {
  if (r > LR_MAX_R) return -1;
  lr_ctx c = {x, A, B, rows, out, G, K, N, r, k};
  long threads = pool_threads();
  if ((double)G * r * (K + N) < 65536) threads = 1; // rows are independent: any split gives the same bits
  if (threads > G) threads = G;
  if (G > 0) pool_run(lr_rows_r, &c, (int)(threads < 1 ? 1 : threads));
  return 0;
}
