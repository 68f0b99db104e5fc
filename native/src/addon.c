// The addon's entry point: native memory (alloc/free with detach, GC finalizer), SIMD level and thread settings,
// benchmark probes, and registration of the kernel bindings (addon_ops.c, addon_model.c).
#include <stdint.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include "addon_args.h"
#include "kernels_quant.h"

void register_ops(napi_env env, napi_value exports);
void register_model_ops(napi_env env, napi_value exports);

void *nm_aligned_alloc(size_t bytes) {
  void *p = NULL;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
  return p;
}

// ---- block cache ------------------------------------------------------------------------------------------
// Training and generation allocate the same sizes step after step. Freed blocks are kept per exact size (up to a
// total cap) and handed out again, already resident: no page faults, no heap fragmentation. Only the JS thread
// allocates and frees, so no lock is needed.
// Cap: live + cached bytes stay within max(live peak, live) + CACHE_SLACK. A training step frees its whole working
// set at the end and allocates it again in the next one, so a fixed 1 GB cache smaller than that working set turned
// each step's largest buffers into fresh mappings every step (page faults, zeroing by the kernel). Blocks are kept
// per exact size, so a step needs somewhat more than its live peak in blocks (its phases use different sizes):
// the slack covers that. At the live peak this bound is the old one (live + 1 GB); a miss that would go beyond it
// first gives cached blocks back to the system.
#define CACHE_BUCKETS 512
#define CACHE_SLACK ((double)(1 << 30)) // bytes that may be cached beyond the live peak
typedef struct cached_block {
  struct cached_block *next;
} cached_block;
static struct {
  size_t bytes;
  cached_block *head;
} cache_bucket[CACHE_BUCKETS];
static size_t cache_total = 0;
static double cache_hits = 0, cache_misses = 0, cache_dropped = 0; // block_get hits/misses, blocks given back
static double live_bytes = 0, live_peak = 0, gc_freed_bytes = 0; // bytes held through alloc now / at most ever

static size_t rounded_bytes(size_t bytes) { return bytes ? (bytes + 63) & ~(size_t)63 : 64; }

/** Bytes the cache may hold while `live` bytes are in use: the room below the live peak, plus the slack. */
static double cache_room(double live) { return (live_peak > live ? live_peak - live : 0) + CACHE_SLACK; }

/** Gives cached blocks back to the system until the cache holds at most `room` bytes. */
static void cache_trim(double room) {
  for (int i = 0; i < CACHE_BUCKETS && (double)cache_total > room; i++) {
    while (cache_bucket[i].head && (double)cache_total > room) {
      cached_block *b = cache_bucket[i].head;
      cache_bucket[i].head = b->next;
      cache_total -= cache_bucket[i].bytes;
      cache_dropped++;
      free(b);
    }
  }
}

static void *block_get(size_t bytes) {
  size_t rb = rounded_bytes(bytes);
  for (int i = 0; i < CACHE_BUCKETS; i++) {
    if (cache_bucket[i].bytes == rb && cache_bucket[i].head) {
      cached_block *b = cache_bucket[i].head;
      cache_bucket[i].head = b->next;
      cache_total -= rb;
      cache_hits++;
      return b;
    }
  }
  cache_misses++;
  cache_trim(cache_room(live_bytes + (double)rb)); // this block joins the live bytes
  return nm_aligned_alloc(bytes);
}

static void block_put(void *data, size_t bytes) {
  size_t rb = rounded_bytes(bytes);
  if ((double)(cache_total + rb) <= cache_room(live_bytes)) { // callers subtract the block from live_bytes first
    int slot = -1;
    for (int i = 0; i < CACHE_BUCKETS; i++) {
      if (cache_bucket[i].bytes == rb) { slot = i; break; }
      if (slot < 0 && cache_bucket[i].head == NULL) slot = i;
    }
    if (slot >= 0) {
      cached_block *b = data;
      cache_bucket[slot].bytes = rb;
      b->next = cache_bucket[slot].head;
      cache_bucket[slot].head = b;
      cache_total += rb;
      return;
    }
  }
  cache_dropped++;
  free(data);
}

// ---- memory -----------------------------------------------------------------------------------------------
// One slot per live allocation, in a table that recycles its entries. The ArrayBuffer (napi_wrap) and the
// external-buffer finalizer both carry the slot's index and generation packed into one pointer-sized value, so a
// finalizer that V8 runs late (after free() already recycled the slot) sees a stale generation and does nothing.
// free() releases the data at once; a buffer the GC reaches first is released by the finalizer (gcFreed).
// Node runs these finalizers from the event loop (SetImmediate), never inside a synchronous stretch of JS: a long
// loop that never yields holds ~200 bytes of Node's bookkeeping per buffer until it does. The trainer yields once
// per step; other long synchronous loops should too (see bench/memory.ts).
typedef struct {
  void *data;
  size_t bytes;
  uint32_t gen;
  int32_t next_free;
  int live;
  int hidden; // its bytes are kept out of V8's external-memory pressure (see hide_from_v8)
} alloc_slot;

// V8 counts every external ArrayBuffer's bytes and, each 64 MB or so above the level of its last GC, starts one
// (Heap::ReportExternalMemoryPressure, from inside napi_create_external_arraybuffer). A training step allocates its
// ~1 GB working set anew every step, all of it reachable until the step frees it, so those GCs found nothing and
// took 60-70 ms of a 1.4 s LoRA step (allocUninit at 34 µs a call). Up to HIDE_CAP bytes of live buffers are kept
// out of that count (an equal negative adjustment, given back when the buffer is freed or finalized); beyond it V8
// sees them as before, so buffers dropped without free() still bring a GC that finalizes them.
#define HIDE_CAP ((int64_t)1 << 30)
static int64_t hidden_bytes = 0;
static int hide_from_v8(napi_env env, size_t bytes) {
  if (hidden_bytes + (int64_t)bytes > HIDE_CAP) return 0;
  int64_t total;
  if (napi_adjust_external_memory(env, -(int64_t)bytes, &total) != napi_ok) return 0;
  hidden_bytes += (int64_t)bytes;
  return 1;
}
static void unhide(napi_env env, int hidden, size_t bytes) {
  if (!hidden) return;
  int64_t total;
  napi_adjust_external_memory(env, (int64_t)bytes, &total);
  hidden_bytes -= (int64_t)bytes;
}

static alloc_slot *slots = NULL;
static int32_t slot_count = 0, slot_cap = 0, slot_free_head = -1;

static void *slot_token(int32_t i) { return (void *)(uintptr_t)(((uint64_t)slots[i].gen << 32) | (uint32_t)i); }

/** The live slot a token names, or -1 (stale generation, recycled, or never ours). */
static int32_t slot_of(void *token) {
  uint64_t t = (uint64_t)(uintptr_t)token;
  int32_t i = (int32_t)(uint32_t)t;
  if (i < 0 || i >= slot_count || !slots[i].live || slots[i].gen != (uint32_t)(t >> 32)) return -1;
  return i;
}

static int32_t slot_new(void *data, size_t bytes) {
  int32_t i = slot_free_head;
  if (i >= 0) {
    slot_free_head = slots[i].next_free;
  } else {
    if (slot_count == slot_cap) {
      int32_t cap = slot_cap ? slot_cap * 2 : 1024;
      alloc_slot *grown = realloc(slots, sizeof *slots * (size_t)cap);
      if (!grown) return -1;
      slots = grown;
      slot_cap = cap;
    }
    i = slot_count++;
    slots[i].gen = 0;
  }
  slots[i].data = data;
  slots[i].bytes = bytes;
  slots[i].live = 1;
  slots[i].hidden = 0;
  return i;
}

static void slot_release(int32_t i) {
  slots[i].live = 0;
  slots[i].data = NULL;
  slots[i].gen++;
  slots[i].next_free = slot_free_head;
  slot_free_head = i;
}

static void finalize_buffer(napi_env env, void *data, void *hint) {
  (void)data;
  int32_t i = slot_of(hint);
  if (i < 0) return; // already released by free()
  live_bytes -= (double)slots[i].bytes;
  unhide(env, slots[i].hidden, slots[i].bytes);
  gc_freed_bytes += (double)slots[i].bytes;
  block_put(slots[i].data, slots[i].bytes);
  slot_release(i);
}

// One alloc()/allocUninit() call: a Float32Array over n floats of 64-byte-aligned native memory, zero-filled when
// `zero` (a recycled block holds whatever its last user wrote, so only kernels that write every element may skip it).
static napi_value alloc_common(napi_env env, napi_callback_info info, const char *fn, int zero) {
  args_t a;
  if (!a_init(env, info, &a, 1, fn)) return NULL;
  long n = a_int(&a, 0, "n", 0);
  if (!a.failed && n > (1L << 36)) a_throw(&a, 1, "%s = %.0f is too large", "n", n, 0);
  if (a.failed) return NULL;
  size_t bytes = (size_t)n * sizeof(float);
  void *data = block_get(bytes);
  int32_t slot = data ? slot_new(data, bytes) : -1;
  if (slot < 0) {
    free(data);
    napi_throw_error(env, NULL, "nomoat native alloc: out of memory");
    return NULL;
  }
  if (zero) memset(data, 0, bytes);
  void *token = slot_token(slot);
  napi_value ab, ta;
  if (napi_create_external_arraybuffer(env, data, bytes, finalize_buffer, token, &ab) != napi_ok) {
    slot_release(slot);
    free(data);
    napi_throw_error(env, NULL, "nomoat native alloc: cannot create an external ArrayBuffer");
    return NULL;
  }
  live_bytes += (double)bytes;
  if (live_bytes > live_peak) live_peak = live_bytes;
  slots[slot].hidden = hide_from_v8(env, bytes);
  napi_wrap(env, ab, token, NULL, NULL, NULL);
  napi_create_typedarray(env, napi_float32_array, (size_t)n, ab, 0, &ta);
  return ta;
}

// alloc(n) → zero-filled; allocUninit(n) → contents unspecified (outputs that a kernel overwrites in full)
static napi_value js_alloc(napi_env env, napi_callback_info info) { return alloc_common(env, info, "alloc", 1); }
static napi_value js_alloc_uninit(napi_env env, napi_callback_info info) { return alloc_common(env, info, "allocUninit", 0); }

// free(buf): releases the memory of a buffer from alloc() and detaches it, so stale views have length 0.
static napi_value js_free(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 1, "free")) return NULL;
  bool is = false;
  napi_value ab;
  napi_is_typedarray(env, a.argv[0], &is);
  if (!is || napi_get_typedarray_info(env, a.argv[0], NULL, NULL, NULL, &ab, NULL) != napi_ok) {
    napi_throw_type_error(env, NULL, "nomoat native free: expected a Float32Array from alloc()");
    return NULL;
  }
  bool detached = false;
  napi_is_detached_arraybuffer(env, ab, &detached);
  if (detached) {
    napi_throw_error(env, NULL, "nomoat native free: buffer was already freed");
    return NULL;
  }
  void *token = NULL;
  int32_t i = napi_unwrap(env, ab, &token) == napi_ok ? slot_of(token) : -1;
  if (i < 0) {
    napi_throw_type_error(env, NULL, "nomoat native free: buffer was not allocated by alloc()");
    return NULL;
  }
  void *data = slots[i].data;
  size_t bytes = slots[i].bytes;
  live_bytes -= (double)bytes;
  unhide(env, slots[i].hidden, bytes);
  slot_release(i); // a late finalizer for this buffer now sees a stale generation
  napi_remove_wrap(env, ab, NULL);
  napi_detach_arraybuffer(env, ab);
  block_put(data, bytes);
  return a_undefined(env);
}

static napi_value js_live_bytes(napi_env env, napi_callback_info info) { (void)info; return a_number(env, live_bytes); }
// blockCacheStats() → { hits, misses, dropped, cachedBytes }: how often alloc found a freed block of its size, had
// to ask the system, or free could not keep a block (cap or buckets full); for benches and cache tuning.
static napi_value js_block_cache_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "hits", a_number(env, cache_hits));
  napi_set_named_property(env, o, "misses", a_number(env, cache_misses));
  napi_set_named_property(env, o, "dropped", a_number(env, cache_dropped));
  napi_set_named_property(env, o, "cachedBytes", a_number(env, (double)cache_total));
  return o;
}
static napi_value js_gc_freed_bytes(napi_env env, napi_callback_info info) { (void)info; return a_number(env, gc_freed_bytes); }

// ---- settings -----------------------------------------------------------------------------------------------
static napi_value js_simd_level(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, simd_level_name(kernels_level()), NAPI_AUTO_LENGTH, &s);
  return s;
}
static napi_value js_best_simd_level(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, simd_level_name(cpu_best_level()), NAPI_AUTO_LENGTH, &s);
  return s;
}

// setSimd(level): 'scalar' | 'avx2' | 'avx512' | 'neon'; throws when this CPU lacks it
static napi_value js_set_simd(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 1, "setSimd")) return NULL;
  char s[16];
  a_str(&a, 0, "level", s, sizeof s);
  simd_level l;
  if (!a.failed && simd_level_parse(s, &l) != 0) a_throw(&a, 1, "%s must be scalar|neon|avx2|avx512", "level", 0, 0);
  if (!a.failed && kernels_set_level(l) != 0) a_throw(&a, 1, "%s: this CPU does not support it", "level", 0, 0);
  return a.failed ? NULL : a_undefined(env);
}

// setVnni(allowed): whether the AVX-512 level may take the VNNI int8 dot where the CPU has it (NOMOAT_NO_VNNI=1
// starts with it off)
static napi_value js_set_vnni(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 1, "setVnni")) return NULL;
  int allowed = a_bool(&a, 0, "allowed");
  if (a.failed) return NULL;
  quant_set_vnni(allowed);
  return a_undefined(env);
}
static napi_value js_vnni_allowed(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value b;
  napi_get_boolean(env, quant_vnni_allowed(), &b);
  return b;
}
// quantKernels() → the name of the int8 table the quantized products take now ('scalar', 'avx2', 'avx512',
// 'avx512-vnni', 'neon')
static napi_value js_quant_kernels(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, quant_kernels_current()->name, NAPI_AUTO_LENGTH, &s);
  return s;
}

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 1, "setThreads")) return NULL;
  long n = a_int(&a, 0, "n", 1);
  if (a.failed) return NULL;
  pool_set_threads((int)n);
  return a_undefined(env);
}
static napi_value js_get_threads(napi_env env, napi_callback_info info) { (void)info; return a_number(env, pool_threads()); }

// peakFlops(threads) → GFLOP/s of a register-only FMA loop at the current SIMD level
static napi_value js_peak_flops(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 1, "peakFlops")) return NULL;
  long t = a_int(&a, 0, "threads", 1);
  if (a.failed) return NULL;
  return a_number(env, peak_gflops((int)t, 0.5));
}

// copyBandwidth(threads, bytes) → GB/s (read + written) of memcpy over `bytes`
static napi_value js_copy_bandwidth(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 2, "copyBandwidth")) return NULL;
  long t = a_int(&a, 0, "threads", 1), bytes = a_int(&a, 1, "bytes", 4096);
  if (a.failed) return NULL;
  return a_number(env, copy_gbps((int)t, bytes & ~63L, 8));
}

// hashIndex(seed, index): the dropout hash, exposed so tests can compare it with src/engine/rng.ts
static napi_value js_hash_index(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 2, "hashIndex")) return NULL;
  long seed = a_int(&a, 0, "seed", 0), index = a_int(&a, 1, "index", 0);
  if (a.failed) return NULL;
  return a_number(env, op_hash_index((uint32_t)seed, (uint32_t)index));
}

#define REG(name, fn) { name, 0, fn, 0, 0, 0, napi_enumerable, 0 }

static napi_value init(napi_env env, napi_value exports) {
#ifdef __GLIBC__
  // Tensor buffers come and go every step. glibc's dynamic mmap threshold would move them onto the heap,
  // where the small records freed later (at GC) pin the holes and resident memory grows without bound
  // (measured: +1 MB per alloc/free of 1 MB). A fixed threshold keeps big buffers in their own mappings,
  // returned to the OS at free().
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif
  napi_property_descriptor d[] = {
      REG("alloc", js_alloc),           REG("allocUninit", js_alloc_uninit),
      REG("free", js_free),
      REG("liveBytes", js_live_bytes),  REG("gcFreedBytes", js_gc_freed_bytes),
      REG("blockCacheStats", js_block_cache_stats),
      REG("simdLevel", js_simd_level),  REG("bestSimdLevel", js_best_simd_level),
      REG("setSimd", js_set_simd),      REG("setThreads", js_set_threads),
      REG("setVnni", js_set_vnni),      REG("vnniAllowed", js_vnni_allowed),
      REG("quantKernels", js_quant_kernels),
      REG("getThreads", js_get_threads), REG("peakFlops", js_peak_flops),
      REG("copyBandwidth", js_copy_bandwidth), REG("hashIndex", js_hash_index),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  register_ops(env, exports);
  register_model_ops(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
