// A persistent pthread pool with low-latency dispatch: workers spin briefly on a generation counter, then sleep
// on a condition variable. The calling thread runs part 0 itself. Work splitting is static (see pool_range), so
// the same inputs and thread count give bit-identical results.
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>
#include "nomoat.h"

#define POOL_MAX 64
#define SPIN_ITERS 20000

#if defined(__x86_64__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER; // one dispatch at a time (e.g. two worker_threads)
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
// One generation counter per worker, bumped only for the workers a job uses: a worker never reads the job of a
// dispatch it is not part of.
typedef struct { _Alignas(64) atomic_uint gen; } worker_slot;
static worker_slot slots[POOL_MAX];
static atomic_int done_count;
static pool_fn job_fn;
static void *job_ctx;
static int job_n;
static int started = 0;            // worker threads created (indices 1..started)
static int configured = 0;         // threads used by kernels (0 = not yet set: default to core count)
static _Thread_local int in_pool_task = 0;

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg;
  atomic_uint *generation = &slots[id].gen;
  unsigned seen = 0; // slots start at 0 and are bumped only after this thread exists
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load_explicit(generation, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
      cpu_relax();
      spins++;
    }
    if (g == seen) {
      pthread_mutex_lock(&mu);
      while ((g = atomic_load_explicit(generation, memory_order_acquire)) == seen) pthread_cond_wait(&cv, &mu);
      pthread_mutex_unlock(&mu);
    }
    seen = g;
    in_pool_task = 1;
    job_fn(job_ctx, id, job_n);
    in_pool_task = 0;
    atomic_fetch_add_explicit(&done_count, 1, memory_order_acq_rel);
  }
  return NULL;
}

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > POOL_MAX) n = POOL_MAX;
  return (int)n;
}

void pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > POOL_MAX) n = POOL_MAX;
  configured = n;
}

int pool_threads(void) {
  if (!configured) configured = default_threads();
  return configured;
}

static void ensure_workers(int n) {
  while (started < n - 1) {
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, worker_main, (void *)(intptr_t)(started + 1)) != 0) {
      pthread_attr_destroy(&attr);
      break;
    }
    pthread_attr_destroy(&attr);
    started++;
  }
}

void pool_run(pool_fn fn, void *ctx, int n) {
  if (n > POOL_MAX) n = POOL_MAX;
  if (n > 1 && !in_pool_task) ensure_workers(n);
  if (n <= 1 || in_pool_task || started < n - 1 || pthread_mutex_trylock(&run_mu) != 0) {
    // Serial fallback (also for nested calls): the same parts, run in order, so results do not change.
    for (int t = 0; t < n; t++) fn(ctx, t, n);
    return;
  }
  job_fn = fn;
  job_ctx = ctx;
  job_n = n;
  atomic_store_explicit(&done_count, 0, memory_order_relaxed);
  pthread_mutex_lock(&mu);
  for (int i = 1; i < n; i++) atomic_fetch_add_explicit(&slots[i].gen, 1, memory_order_acq_rel);
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  in_pool_task = 1;
  fn(ctx, 0, n);
  in_pool_task = 0;
  while (atomic_load_explicit(&done_count, memory_order_acquire) < n - 1) cpu_relax();
  pthread_mutex_unlock(&run_mu);
}

static _Thread_local void *scratch_ptr[SCRATCH_SLOTS];
static _Thread_local size_t scratch_cap[SCRATCH_SLOTS];

void *thread_scratch(int slot, size_t bytes) {
  if (scratch_cap[slot] < bytes) {
    free(scratch_ptr[slot]);
    scratch_ptr[slot] = nm_aligned_alloc(bytes);
    scratch_cap[slot] = scratch_ptr[slot] ? bytes : 0;
  }
  return scratch_ptr[slot];
}
