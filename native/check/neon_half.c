// Cross-checks the NEON f16/bf16 kernels against the scalar ones on an x86 machine (scripts/check-neon.sh builds it
// with aarch64-linux-gnu-gcc and runs it under qemu-aarch64). NaN compares as NaN: fcvtl quiets signalling NaNs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "nomoat.h"
float quant_f16_to_f32(uint16_t h) { return half_f16_to_f32(h); }
void *thread_scratch(int slot, size_t bytes) { (void)slot; static void *p[8]; static size_t n[8]; if (bytes > n[slot]) { free(p[slot]); p[slot] = malloc(bytes); n[slot] = bytes; } return p[slot]; }
static uint32_t s = 12345; static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
  long bad = 0;
  for (int bf = 0; bf < 2; bf++) {
    for (long n = 0; n < 70; n++) {
      uint16_t src[80]; float a[80], b[80];
      for (long i = 0; i < n; i++) src[i] = (uint16_t)rnd();
      kernels_neon.half_to_f32(bf, src, a, n); kernels_scalar.half_to_f32(bf, src, b, n);
      for (long i = 0; i < n; i++) if (memcmp(&a[i], &b[i], 4) && !(isnan(a[i]) && isnan(b[i]))) { bad++; if (bad < 8) { uint32_t ua, ub; memcpy(&ua,&a[i],4); memcpy(&ub,&b[i],4); printf("cvt bf=%d n=%ld i=%ld src=%04x neon=%08x scalar=%08x\n", bf, n, i, src[i], ua, ub); } }
    }
    for (int M = 1; M <= 4; M++) for (long K = 1; K < 70; K++) {
      uint16_t w[80]; float x[4 * 80], o1[4], o2[4];
      for (long i = 0; i < K; i++) { float v = ((int)(rnd() % 2001) - 1000) / 997.0f; uint32_t u; memcpy(&u, &v, 4); w[i] = bf ? (uint16_t)(u >> 16) : (uint16_t)0; }
      if (!bf) for (long i = 0; i < K; i++) w[i] = (uint16_t)(0x3000 + rnd() % 0x1000) | (rnd() & 0x8000);
      for (long i = 0; i < 4 * 80; i++) x[i] = ((int)(rnd() % 2001) - 1000) / 1000.0f;
      kernels_neon.half_dot(bf, w, K, x, 80, M, o1, 1); kernels_scalar.half_dot(bf, w, K, x, 80, M, o2, 1);
      for (int m = 0; m < M; m++) if (fabsf(o1[m] - o2[m]) > 1e-5f * (1 + fabsf(o2[m]))) { bad++; if (bad < 5) printf("bf=%d M=%d K=%ld m=%d %g %g\n", bf, M, K, m, o1[m], o2[m]); }
    }
  }
  printf("neon vs scalar mismatches: %ld\n", bad);
  return bad != 0;
}
