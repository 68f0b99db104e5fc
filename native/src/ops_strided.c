// Strided loops: binary broadcasting, strided gather (copyStrided) and sumTo. Dimensions are first coalesced
// (size-1 dims dropped, mergeable neighbours merged), then the innermost dim runs as a contiguous fast path
// (stride 0 or 1 on both inputs) and outer rows are split over threads.
#include <stdlib.h>
#include <string.h>
#include "ops.h"

// Coalesces `rank` dims of `shape` with `k` stride arrays in place (out is contiguous, so it always merges).
// Returns the new rank (≥ 1).
static int coalesce(long *shape, long **strides, int k, int rank) {
  int r = 0;
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 1) continue;
    if (r > 0) {
      int ok = 1;
      for (int s = 0; s < k; s++) ok &= strides[s][r - 1] == strides[s][d] * shape[d];
      if (ok) {
        shape[r - 1] *= shape[d];
        for (int s = 0; s < k; s++) strides[s][r - 1] = strides[s][d];
        continue;
      }
    }
    shape[r] = shape[d];
    for (int s = 0; s < k; s++) strides[s][r] = strides[s][d];
    r++;
  }
  if (r == 0) {
    shape[0] = 1;
    for (int s = 0; s < k; s++) strides[s][0] = 0;
    r = 1;
  }
  return r;
}

// Offset of outer row `row` (row-major index over dims 0..rank-2) along one stride array.
static long row_offset(long row, const long *shape, const long *stride, int rank) {
  long off = 0;
  for (int d = rank - 2; d >= 0; d--) {
    off += (row % shape[d]) * stride[d];
    row /= shape[d];
  }
  return off;
}

typedef struct {
  const float *a, *b;
  float *out;
  long shape[OP_MAX_RANK], as[OP_MAX_RANK], bs[OP_MAX_RANK];
  int rank, op;
} bin_ctx;

static void binary_rows(void *ctx, long lo, long hi) {
  bin_ctx *c = ctx;
  int r = c->rank;
  long inner = c->shape[r - 1], sa = c->as[r - 1], sb = c->bs[r - 1];
  const kernels_t *kt = kernels_current();
  for (long row = lo; row < hi; row++) {
    const float *a = c->a + row_offset(row, c->shape, c->as, r), *b = c->b + row_offset(row, c->shape, c->bs, r);
    float *o = c->out + row * inner;
    if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
      kt->binary_inner((binary_op)c->op, a, sa, b, sb, o, inner);
    } else {
      for (long i = 0; i < inner; i++) kt->binary_inner((binary_op)c->op, a + i * sa, 0, b + i * sb, 0, o + i, 1);
    }
  }
}

typedef void (*range_fn)(void *ctx, long lo, long hi);
typedef struct { range_fn fn; void *ctx; long rows; } rows_job;
static void rows_task(void *ctx, int t, int parts) {
  rows_job *j = ctx;
  long lo, hi;
  pool_range(j->rows, t, parts, &lo, &hi);
  if (lo < hi) j->fn(j->ctx, lo, hi);
}
static void run_rows(long rows, long inner, range_fn fn, void *ctx) {
  long threads = pool_threads(), by_size = rows * inner / 32768;
  if (threads > by_size) threads = by_size;
  if (threads > rows) threads = rows;
  if (threads < 1) threads = 1;
  rows_job j = {fn, ctx, rows};
  pool_run(rows_task, &j, (int)threads);
}

// out[shape] = a ∘ b, a and b addressed by strides (0 on broadcast dims)
void op_binary(binary_op op, const float *a, const long *as, const float *b, const long *bs, float *out,
               const long *shape, int rank) {
  bin_ctx c = {.a = a, .b = b, .out = out, .op = op};
  memcpy(c.shape, shape, sizeof(long) * rank);
  memcpy(c.as, as, sizeof(long) * rank);
  memcpy(c.bs, bs, sizeof(long) * rank);
  long *st[2] = {c.as, c.bs};
  c.rank = coalesce(c.shape, st, 2, rank);
  long inner = c.shape[c.rank - 1], rows = 1;
  for (int d = 0; d < c.rank - 1; d++) rows *= c.shape[d];
  run_rows(rows, inner, binary_rows, &c);
}

typedef struct { const float *x; float *out; long shape[OP_MAX_RANK], st[OP_MAX_RANK]; int rank; } copy_ctx;
static void copy_rows(void *ctx, long lo, long hi) {
  copy_ctx *c = ctx;
  int r = c->rank;
  long inner = c->shape[r - 1], s = c->st[r - 1];
  for (long row = lo; row < hi; row++) {
    const float *x = c->x + row_offset(row, c->shape, c->st, r);
    float *o = c->out + row * inner;
    if (s == 1) memcpy(o, x, sizeof(float) * inner);
    else for (long i = 0; i < inner; i++) o[i] = x[i * s];
  }
}
// out[i…] = x[offset + Σ idx_d · strides[d]]
void op_copy_strided(const float *x, long offset, const long *shape, const long *strides, int rank, float *out) {
  copy_ctx c = {.x = x + offset, .out = out};
  memcpy(c.shape, shape, sizeof(long) * rank);
  memcpy(c.st, strides, sizeof(long) * rank);
  long *st[1] = {c.st};
  c.rank = coalesce(c.shape, st, 1, rank);
  long inner = c.shape[c.rank - 1], rows = 1;
  for (int d = 0; d < c.rank - 1; d++) rows *= c.shape[d];
  run_rows(rows, inner, copy_rows, &c);
}

// out[outShape] = Σ x[inShape] over dims where outShape is 1. Walks x in order accumulating in double (one
// thread: deterministic, and sums are exact enough for gradients). Returns -1 on allocation failure.
int op_sum_to(const float *x, const long *in_shape, float *out, const long *out_shape, int rank) {
  long shape[OP_MAX_RANK], xs[OP_MAX_RANK], os[OP_MAX_RANK];
  long xstride = 1, ostride = 1, on = 1;
  for (int d = rank - 1; d >= 0; d--) {
    shape[d] = in_shape[d];
    xs[d] = xstride;
    os[d] = out_shape[d] == 1 && in_shape[d] != 1 ? 0 : ostride;
    xstride *= in_shape[d];
    ostride *= out_shape[d];
  }
  on = ostride;
  double *acc = calloc(on > 0 ? on : 1, sizeof(double));
  if (!acc) return -1;
  long *st[2] = {xs, os};
  int r = coalesce(shape, st, 2, rank);
  long inner = shape[r - 1], so = os[r - 1], rows = 1;
  for (int d = 0; d < r - 1; d++) rows *= shape[d];
  if (xstride > 0) {
    for (long row = 0; row < rows; row++) {
      const float *xr = x + row * inner;
      double *a = acc + row_offset(row, shape, os, r);
      if (so == 0) {
        double s = 0.0;
        for (long i = 0; i < inner; i++) s += xr[i];
        a[0] += s;
      } else {
        for (long i = 0; i < inner; i++) a[i * so] += xr[i];
      }
    }
  }
  for (long i = 0; i < on; i++) out[i] = (float)acc[i];
  free(acc);
  return 0;
}
