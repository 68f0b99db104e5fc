// Probes for the benchmarks: the FMA peak (a register-only loop, no memory traffic) and memory-copy bandwidth,
// both on the pool's threads, so kernel throughput can be reported as a fraction of what the machine can do.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nomoat.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Each returns the flops done: `iters` rounds of 16 independent FMA chains (enough to cover latency × ports).
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters) {
  __m512 acc[16], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  float sink = 0.0f;
  for (int i = 0; i < 16; i++) sink += _mm512_reduce_add_ps(acc[i]);
  __asm__ volatile("" : : "x"(sink));
  return (double)iters * 16 * 16 * 2;
}
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters) {
  __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  float buf[8], sink = 0.0f;
  for (int i = 0; i < 12; i++) {
    _mm256_storeu_ps(buf, acc[i]);
    sink += buf[0];
  }
  __asm__ volatile("" : : "x"(sink));
  return (double)iters * 12 * 8 * 2;
}
#endif

static double fma_loop_scalar(long iters) {
  float acc[16];
  for (int i = 0; i < 16; i++) acc[i] = (float)i;
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 16; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float sink = 0.0f;
  for (int i = 0; i < 16; i++) sink += acc[i];
  __asm__ volatile("" : : "g"(sink));
  return (double)iters * 16 * 2;
}

typedef struct { long iters; double flops[64]; } peak_ctx;
static void peak_task(void *ctx, int t, int parts) {
  (void)parts;
  peak_ctx *c = ctx;
  switch (kernels_level()) {
#if defined(__x86_64__)
    case SIMD_AVX512: c->flops[t] = fma_loop_avx512(c->iters); break;
    case SIMD_AVX2: c->flops[t] = fma_loop_avx2(c->iters); break;
#endif
    default: c->flops[t] = fma_loop_scalar(c->iters); break;
  }
}

// GFLOP/s of the current SIMD level's FMA on `threads` threads, best of a few runs of about `seconds` total.
double peak_gflops(int threads, double seconds) {
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  peak_ctx c = {.iters = 1000};
  double best = 0.0, t0, dt;
  for (;;) { // calibrate to ~seconds/5 per run
    t0 = now_s();
    pool_run(peak_task, &c, threads);
    dt = now_s() - t0;
    if (dt > seconds / 5 || c.iters > (1L << 40)) break;
    c.iters *= 4;
  }
  for (int rep = 0; rep < 5; rep++) {
    t0 = now_s();
    pool_run(peak_task, &c, threads);
    dt = now_s() - t0;
    double f = 0.0;
    for (int t = 0; t < threads; t++) f += c.flops[t];
    if (f / dt > best) best = f / dt;
  }
  return best * 1e-9;
}

typedef struct { char *dst; const char *src; long bytes; } copy_ctx;
static void copy_task(void *ctx, int t, int parts) {
  copy_ctx *c = ctx;
  long lo, hi;
  pool_range(c->bytes / 64, t, parts, &lo, &hi);
  memcpy(c->dst + lo * 64, c->src + lo * 64, (size_t)(hi - lo) * 64);
}

// Memory-copy bandwidth in GB/s, counting bytes read plus bytes written, best of `reps` copies of `bytes`.
double copy_gbps(int threads, long bytes, int reps) {
  char *a = nm_aligned_alloc(bytes), *b = nm_aligned_alloc(bytes);
  if (!a || !b) { free(a); free(b); return 0.0; }
  memset(a, 1, bytes);
  memset(b, 2, bytes);
  copy_ctx c = {b, a, bytes};
  double best = 0.0;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    pool_run(copy_task, &c, threads);
    double dt = now_s() - t0;
    if (2.0 * bytes / dt > best) best = 2.0 * bytes / dt;
  }
  free(a);
  free(b);
  return best * 1e-9;
}
