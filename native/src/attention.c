// Drivers for RoPE and the streaming attention kernels: work is split over (batch, head, query block) for the
// forward and dq, and over (batch, kv head, key block) for dk/dv, so no two threads write the same output and
// no atomics are needed. Per-thread scratch holds one query block and one key tile, never a Tq×Tk matrix.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

// ---- RoPE ---------------------------------------------------------------------------------------------------
typedef struct {
  const float *x;
  float *out;
  const float *cs; // cs[T, D/2, 2] = (cos, sin) of positions[t] · invFreq[i], negated sin when inverse
  long B, T, H, D;
  int halves;
} rope_ctx;

static void rope_rows(void *ctx, int t, int parts) {
  rope_ctx *r = ctx;
  long rows = r->B * r->T * r->H, lo, hi, half = r->D / 2;
  pool_range(rows, t, parts, &lo, &hi);
  for (long row = lo; row < hi; row++) {
    long tt = (row / r->H) % r->T;
    const float *x = r->x + row * r->D, *cs = r->cs + tt * r->D;
    float *o = r->out + row * r->D;
    for (long i = 0; i < half; i++) {
      long i0 = r->halves ? i : 2 * i, i1 = r->halves ? i + half : 2 * i + 1;
      float c = cs[2 * i], s = cs[2 * i + 1], x0 = x[i0], x1 = x[i1];
      o[i0] = x0 * c - x1 * s;
      o[i1] = x0 * s + x1 * c;
    }
  }
}

// The (cos, sin) table of the last positions and frequencies, per calling thread and direction, with the inputs it
// was made from. A training step rotates q and k of every layer with the same positions, forward and backward:
// recomputing T · D/2 sin and cos in double on every call took 40 ms of a 1.45 s LoRA step (120 calls, seq 512).
typedef struct {
  float *cs;     // [T, D/2, 2], then the positions [T] and the frequencies [D/2] it was made from
  long T, D;
  size_t cap;    // bytes at cs
} rope_table;
static _Thread_local rope_table rope_cache[2]; // [inverse]

static const float *rope_table_for(const int32_t *positions, const float *inv_freq, long T, long D, int inverse) {
  rope_table *c = &rope_cache[inverse != 0];
  long half = D / 2;
  size_t table = sizeof(float) * (size_t)(T * D), keys = sizeof(int32_t) * (size_t)T + sizeof(float) * (size_t)half;
  if (c->cs && c->T == T && c->D == D) {
    const char *k = (const char *)c->cs + table;
    if (!memcmp(k, positions, sizeof(int32_t) * (size_t)T) && !memcmp(k + sizeof(int32_t) * T, inv_freq, sizeof(float) * (size_t)half))
      return c->cs;
  }
  if (c->cap < table + keys) {
    free(c->cs);
    c->cs = nm_aligned_alloc(table + keys + 64); // never 0 bytes
    c->cap = c->cs ? table + keys + 64 : 0;
    if (!c->cs) return NULL;
  }
  float *cs = c->cs;
  for (long t = 0; t < T; t++)
    for (long i = 0; i < half; i++) {
      double a = (double)positions[t] * (double)inv_freq[i];
      cs[t * D + 2 * i] = (float)cos(a);
      cs[t * D + 2 * i + 1] = (float)(inverse ? -sin(a) : sin(a));
    }
  char *k = (char *)cs + table;
  memcpy(k, positions, sizeof(int32_t) * (size_t)T);
  memcpy(k + sizeof(int32_t) * T, inv_freq, sizeof(float) * (size_t)half);
  c->T = T;
  c->D = D;
  return cs;
}

// x[B, T, H, D] → out: pairs rotated by positions[t] · invFreq[i] (−angle when inverse). Returns -1 on OOM.
int op_rope(const float *x, float *out, long B, long T, long H, long D, const int32_t *positions, const float *inv_freq,
            int halves, int inverse) {
  const float *cs = rope_table_for(positions, inv_freq, T, D, inverse);
  if (!cs) return -1;
  rope_ctx r = {x, out, cs, B, T, H, D, halves};
  long rows = B * T * H, threads = pool_threads();
  if (rows * D < 32768) threads = 1;
  pool_run(rope_rows, &r, (int)threads);
  return 0;
}

// ---- attention ----------------------------------------------------------------------------------------------
typedef struct {
  const float *q, *k, *v, *out, *lse, *dout, *delta;
  float *o, *l, *dq, *dk, *dv;
  const attn_params *p;
  long tasks;
  int failed;
} attn_ctx;

// Query-side blocks: heads per block (a whole group when it fits in ATT_QB rows) × queries per block.
typedef struct { long hpb, qpb, hblocks, qblocks, tasks; } attn_grid;
static attn_grid attn_grid_of(const attn_params *p) {
  attn_grid g;
  long rep = p->H / p->G;
  g.hpb = rep <= ATT_QB ? rep : ATT_QB;
  while (rep % g.hpb) g.hpb--; // blocks must not straddle groups
  g.qpb = ATT_QB / g.hpb;
  g.hblocks = p->H / g.hpb;
  g.qblocks = (p->Tq + g.qpb - 1) / g.qpb;
  g.tasks = (long)p->B * g.hblocks * g.qblocks;
  return g;
}

// Task i goes to thread 0, 1, …, p−1, p−1, …, 1, 0, 0, 1, … (snake order). Causal task costs grow (forward, dq: with
// the query block) or shrink (dk/dv: with the key block) steadily along the task index, so contiguous ranges would
// leave one thread with most of the work; dealt in a snake every thread gets a near-equal share. Each task writes
// its own outputs, so results do not depend on which thread runs it.
static inline int attn_owner(long i, int parts) {
  long r = i % (2L * parts);
  return (int)(r < parts ? r : 2L * parts - 1 - r);
}

static float *attn_scratch(attn_ctx *c) {
  float *s = thread_scratch(SCRATCH_ATTN, sizeof(float) * ATT_SCRATCH_FLOATS);
  if (!s) c->failed = 1;
  return s;
}

static void attn_fwd_task(void *ctx, int t, int parts) {
  attn_ctx *c = ctx;
  const attn_params *p = c->p;
  attn_grid gr = attn_grid_of(p);
  if (t >= c->tasks) return;
  float *scratch = attn_scratch(c);
  if (!scratch) return;
  for (long task = 0; task < c->tasks; task++) {
    if (attn_owner(task, parts) != t) continue;
    int qb = (int)(task % gr.qblocks), hb = (int)(task / gr.qblocks % gr.hblocks);
    int b = (int)(task / gr.qblocks / gr.hblocks);
    int h0 = (int)(hb * gr.hpb), h1 = (int)(h0 + gr.hpb);
    int q0 = (int)(qb * gr.qpb), q1 = q0 + gr.qpb < p->Tq ? (int)(q0 + gr.qpb) : p->Tq;
    kernels_current()->attn_forward_block(c->q, c->k, c->v, c->o, c->l, p, b, h0, h1, q0, q1, scratch);
  }
}

static int attn_threads(const attn_params *p, long tasks) {
  long threads = pool_threads();
  double work = (double)p->B * p->H * p->Tq * (double)p->Tk * p->D;
  if (work < 65536) threads = 1;
  if (threads > tasks) threads = tasks;
  return threads < 1 ? 1 : (int)threads;
}

// Returns -1 when scratch memory cannot be allocated.
int op_attention_forward(const float *q, const float *k, const float *v, float *out, float *lse, const attn_params *p) {
  attn_ctx c = {.q = q, .k = k, .v = v, .o = out, .l = lse, .p = p, .tasks = attn_grid_of(p).tasks};
  if (c.tasks == 0) return 0;
  pool_run(attn_fwd_task, &c, attn_threads(p, c.tasks));
  return c.failed ? -1 : 0;
}

static void attn_dq_task(void *ctx, int t, int parts) {
  attn_ctx *c = ctx;
  const attn_params *p = c->p;
  attn_grid gr = attn_grid_of(p);
  if (t >= c->tasks) return;
  float *scratch = attn_scratch(c);
  if (!scratch) return;
  for (long task = 0; task < c->tasks; task++) {
    if (attn_owner(task, parts) != t) continue;
    int qb = (int)(task % gr.qblocks), hb = (int)(task / gr.qblocks % gr.hblocks);
    int b = (int)(task / gr.qblocks / gr.hblocks);
    int h0 = (int)(hb * gr.hpb), h1 = (int)(h0 + gr.hpb);
    int q0 = (int)(qb * gr.qpb), q1 = q0 + gr.qpb < p->Tq ? (int)(q0 + gr.qpb) : p->Tq;
    kernels_current()->attn_backward_dq_block(c->q, c->k, c->v, c->lse, c->delta, c->dout, c->dq, p, b, h0, h1, q0,
                                              q1, scratch);
  }
}

static void attn_dkv_task(void *ctx, int t, int parts) {
  attn_ctx *c = ctx;
  const attn_params *p = c->p;
  long nkb = (p->Tk + ATT_KB - 1) / ATT_KB;
  if (t >= c->tasks) return;
  float *scratch = attn_scratch(c);
  if (!scratch) return;
  for (long task = 0; task < c->tasks; task++) {
    if (attn_owner(task, parts) != t) continue;
    int kb = (int)(task % nkb), g = (int)(task / nkb % p->G), b = (int)(task / nkb / p->G);
    int k0 = kb * ATT_KB, k1 = k0 + ATT_KB < p->Tk ? k0 + ATT_KB : p->Tk;
    kernels_current()->attn_backward_dkv_block(c->q, c->k, c->v, c->lse, c->delta, c->dout, c->dk, c->dv, p, b, g,
                                               k0, k1, scratch);
  }
}

// delta[B, H, Tq] = rowsum(dout · out), then dq over query blocks, then dk/dv over key blocks.
int op_attention_backward(const float *q, const float *k, const float *v, const float *out, const float *lse,
                          const float *dout, float *dq, float *dk, float *dv, const attn_params *p) {
  long rows = (long)p->B * p->H * p->Tq;
  float *delta = thread_scratch(SCRATCH_DELTA, sizeof(float) * (rows > 0 ? rows : 1));
  if (!delta) return -1;
  for (long b = 0; b < p->B; b++)
    for (long t = 0; t < p->Tq; t++)
      for (long h = 0; h < p->H; h++) {
        long row = (b * p->Tq + t) * p->H + h;
        // summed in order over d, exactly as the kernels form dout·v: with one visible key, dp − delta is 0
        const float *g = dout + row * p->D, *o = out + row * p->D;
        float s = 0.0f;
        for (long d = 0; d < p->D; d++) s += g[d] * o[d];
        delta[(b * p->H + h) * p->Tq + t] = s;
      }
  long nkb = (p->Tk + ATT_KB - 1) / ATT_KB;
  attn_ctx c = {.q = q, .k = k, .v = v, .out = out, .lse = lse, .dout = dout, .delta = delta, .dq = dq, .dk = dk,
                .dv = dv, .p = p};
  c.tasks = attn_grid_of(p).tasks;
  if (c.tasks > 0) pool_run(attn_dq_task, &c, attn_threads(p, c.tasks));
  c.tasks = (long)p->B * p->G * nkb;
  if (c.tasks > 0) pool_run(attn_dkv_task, &c, attn_threads(p, c.tasks));
  return c.failed ? -1 : 0;
}
