// Threaded drivers: each splits its work statically over the pool (rows, element ranges or columns) and calls the
// current level's row kernels. Small problems run on the calling thread: dispatch costs more than it saves.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

#define MIN_ELEMS_PER_THREAD 32768

typedef void (*range_fn)(void *ctx, long lo, long hi);
typedef struct { range_fn fn; void *ctx; long n; long align; } par_job;

static void par_task(void *ctx, int t, int parts) {
  par_job *j = ctx;
  long blocks = (j->n + j->align - 1) / j->align, lo, hi;
  pool_range(blocks, t, parts, &lo, &hi);
  lo *= j->align;
  hi *= j->align;
  if (hi > j->n) hi = j->n;
  if (lo < hi) j->fn(j->ctx, lo, hi);
}

// Runs fn over [0, n) split into per-thread ranges (multiples of `align`); `cost` is the work per index in elements.
static void par_for(long n, long cost, long align, range_fn fn, void *ctx) {
  long threads = pool_threads();
  long by_size = (n * cost) / MIN_ELEMS_PER_THREAD;
  if (threads > by_size) threads = by_size;
  if (threads > n) threads = n;
  if (threads < 1) threads = 1;
  par_job j = {fn, ctx, n, align};
  pool_run(par_task, &j, (int)threads);
}

static int par_threads(long n, long cost) {
  long threads = pool_threads(), by_size = (n * cost) / MIN_ELEMS_PER_THREAD;
  if (threads > by_size) threads = by_size;
  if (threads > n) threads = n;
  return threads < 1 ? 1 : (int)threads;
}

// ---- elementwise ------------------------------------------------------------------------------------------
typedef struct {
  const float *x, *y, *z;
  float *o1, *o2, *o3;
  float a, b;
  int op;
} ew_ctx;

static void fill_r(void *c, long lo, long hi) { ew_ctx *e = c; kernels_current()->fill(e->o1 + lo, hi - lo, e->a); }
void op_fill(float *out, long n, float v) { ew_ctx e = {.o1 = out, .a = v}; par_for(n, 1, 16, fill_r, &e); }

static void affine_r(void *c, long lo, long hi) {
  ew_ctx *e = c;
  kernels_current()->affine(e->x + lo, e->o1 + lo, hi - lo, e->a, e->b);
}
void op_affine(const float *x, float *out, long n, float alpha, float beta) {
  ew_ctx e = {.x = x, .o1 = out, .a = alpha, .b = beta};
  par_for(n, 1, 16, affine_r, &e);
}

static void axpy_r(void *c, long lo, long hi) { ew_ctx *e = c; kernels_current()->axpy(e->a, e->x + lo, e->o1 + lo, hi - lo); }
void op_axpy(float alpha, const float *x, float *y, long n) {
  ew_ctx e = {.x = x, .o1 = y, .a = alpha};
  par_for(n, 1, 16, axpy_r, &e);
}

static void unary_r(void *c, long lo, long hi) {
  ew_ctx *e = c;
  kernels_current()->unary_forward((unary_op)e->op, e->x + lo, e->o1 + lo, hi - lo);
}
void op_unary(unary_op op, const float *x, float *out, long n) {
  ew_ctx e = {.x = x, .o1 = out, .op = op};
  par_for(n, 4, 16, unary_r, &e);
}

static void unary_b_r(void *c, long lo, long hi) {
  ew_ctx *e = c;
  kernels_current()->unary_backward((unary_op)e->op, e->x + lo, e->y + lo, e->o1 + lo, hi - lo);
}
void op_unary_backward(unary_op op, const float *x, const float *dout, float *dx, long n) {
  ew_ctx e = {.x = x, .y = dout, .o1 = dx, .op = op};
  par_for(n, 4, 16, unary_b_r, &e);
}

static void swiglu_f_r(void *c, long lo, long hi) {
  ew_ctx *e = c;
  kernels_current()->swiglu_forward(e->x + lo, e->y + lo, e->o1 + lo, hi - lo);
}
void op_swiglu_forward(const float *gate, const float *up, float *out, long n) {
  ew_ctx e = {.x = gate, .y = up, .o1 = out};
  par_for(n, 4, 16, swiglu_f_r, &e);
}
static void swiglu_b_r(void *c, long lo, long hi) {
  ew_ctx *e = c;
  kernels_current()->swiglu_backward(e->x + lo, e->y + lo, e->z + lo, e->o1 + lo, e->o2 + lo, hi - lo);
}
void op_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n) {
  ew_ctx e = {.x = gate, .y = up, .z = dout, .o1 = dgate, .o2 = dup};
  par_for(n, 4, 16, swiglu_b_r, &e);
}

// ---- dropout: the counter hash of src/engine/rng.ts (lowbias32) ----------------------------------------------
static inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
uint32_t op_hash_index(uint32_t seed, uint32_t index) { return hash32(index + hash32(seed)); }

typedef struct { const float *x; float *out, *mask; uint32_t hseed, threshold; float scale; } dropout_ctx;
static void dropout_r(void *c, long lo, long hi) {
  dropout_ctx *d = c;
  for (long i = lo; i < hi; i++) {
    float m = hash32((uint32_t)i + d->hseed) >= d->threshold ? d->scale : 0.0f;
    d->mask[i] = m;
    d->out[i] = d->x[i] * m;
  }
}
void op_dropout(const float *x, float *out, float *mask, long n, double p, uint32_t seed) {
  double t = floor(p * 4294967296.0);
  if (t > 4294967295.0) t = 4294967295.0;
  if (t < 0.0) t = 0.0;
  dropout_ctx d = {x, out, mask, hash32(seed), (uint32_t)t, (float)(1.0 / (1.0 - p))};
  par_for(n, 2, 16, dropout_r, &d);
}

// ---- optimizer and norms ------------------------------------------------------------------------------------
typedef struct { float *p, *m, *v; const float *g; float lr, b1, b2, eps, wd, bc1, bc2; } adamw_ctx;
static void adamw_r(void *c, long lo, long hi) {
  adamw_ctx *a = c;
  kernels_current()->adamw(a->p + lo, a->g + lo, a->m + lo, a->v + lo, hi - lo, a->lr, a->b1, a->b2, a->eps, a->wd,
                           a->bc1, a->bc2);
}
void op_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double b1, double b2, double eps,
              double wd, double step) {
  adamw_ctx a = {p, m, v, g, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
                 (float)(1.0 - pow(b1, step)), (float)(1.0 - pow(b2, step))};
  par_for(n, 4, 16, adamw_r, &a);
}

// Σ x² in double over fixed 64Ki-element chunks summed in order: the result does not depend on the thread count.
#define SUMSQ_CHUNK 65536
typedef struct { const float *x; long n; double *parts; } sumsq_ctx;
static void sumsq_r(void *c, long lo, long hi) {
  sumsq_ctx *s = c;
  for (long ch = lo; ch < hi; ch++) {
    long a = ch * SUMSQ_CHUNK, b = a + SUMSQ_CHUNK < s->n ? a + SUMSQ_CHUNK : s->n;
    s->parts[ch] = kernels_current()->sum_squares(s->x + a, b - a);
  }
}
double op_sum_squares(const float *x, long n) {
  long chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
  if (chunks <= 1) return n > 0 ? kernels_current()->sum_squares(x, n) : 0.0;
  double *parts = malloc(sizeof(double) * chunks);
  if (!parts) return kernels_current()->sum_squares(x, n);
  sumsq_ctx s = {x, n, parts};
  par_for(chunks, SUMSQ_CHUNK, 1, sumsq_r, &s);
  double total = 0.0;
  for (long i = 0; i < chunks; i++) total += parts[i];
  free(parts);
  return total;
}
