// CPU feature detection (cpuid/xgetbv on x86-64, NEON on arm64) and the choice of kernel table.
// NOMOAT_SIMD=scalar|avx2|avx512|neon forces a lower level than the best one (tests use it to cover every path).
// NOMOAT_NO_VNNI=1 keeps the AVX-512 level off the VNNI int8 dot (kernels_quant.h: quant_set_vnni).
#include <stdlib.h>
#include <string.h>
#include "nomoat.h"

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

simd_level cpu_best_level(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SIMD_SCALAR;
  int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return SIMD_SCALAR;
  unsigned long long xcr0 = xgetbv0();
  int ymm_saved = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  int zmm_saved = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!ymm_saved) return SIMD_SCALAR;
  if (__get_cpuid_max(0, NULL) < 7) return SIMD_SCALAR;
  __cpuid_count(7, 0, a, b, c, d);
  int avx2 = (b >> 5) & 1;
  int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  // F16C (f16 weights) came with Ivy Bridge and Piledriver, before AVX2: every AVX2 CPU has it
  if (zmm_saved && avx512f && avx512dq && avx512bw && avx512vl && fma && avx2 && f16c) return SIMD_AVX512;
  if (avx2 && fma && f16c) return SIMD_AVX2;
  return SIMD_SCALAR;
}
#elif defined(__aarch64__)
simd_level cpu_best_level(void) { return SIMD_NEON; } // NEON (Advanced SIMD) is mandatory on AArch64
#else
simd_level cpu_best_level(void) { return SIMD_SCALAR; }
#endif

const char *simd_level_name(simd_level l) {
  switch (l) {
    case SIMD_AVX512: return "avx512";
    case SIMD_AVX2: return "avx2";
    case SIMD_NEON: return "neon";
    default: return "scalar";
  }
}

int simd_level_parse(const char *s, simd_level *out) {
  static const simd_level all[] = {SIMD_SCALAR, SIMD_NEON, SIMD_AVX2, SIMD_AVX512};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, simd_level_name(all[i])) == 0) { *out = all[i]; return 0; }
  return -1;
}

static const kernels_t *table_for(simd_level l) {
  switch (l) {
#if defined(__x86_64__)
    case SIMD_AVX512: return &kernels_avx512;
    case SIMD_AVX2: return &kernels_avx2;
#endif
#if defined(__aarch64__)
    case SIMD_NEON: return &kernels_neon;
#endif
    default: return &kernels_scalar;
  }
}

static const kernels_t *current = NULL;
static simd_level current_level = SIMD_SCALAR;

// A level is available when it is scalar or exactly this CPU's family at or below its best level.
static int level_available(simd_level l) {
  simd_level best = cpu_best_level();
  if (l == SIMD_SCALAR) return 1;
  if (l == SIMD_NEON) return best == SIMD_NEON;
  if (best == SIMD_NEON) return 0;
  return l <= best;
}

int kernels_set_level(simd_level l) {
  if (!level_available(l)) return -1;
  current_level = l;
  current = table_for(l);
  return 0;
}

static void init_once(void) {
  simd_level l = cpu_best_level();
  const char *env = getenv("NOMOAT_SIMD");
  simd_level forced;
  if (env && *env && simd_level_parse(env, &forced) == 0 && level_available(forced)) l = forced;
  kernels_set_level(l);
}

const kernels_t *kernels_current(void) {
  if (!current) init_once();
  return current;
}

simd_level kernels_level(void) {
  if (!current) init_once();
  return current_level;
}
