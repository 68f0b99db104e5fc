// Cross-checks the NEON int8 k-quant kernels (kernels_kquant.h) against the scalar ones under qemu-aarch64
// (scripts/check-neon.sh): random superblocks of every k-quant type, unpacked and dotted with random q8_K rows, must
// give the same bits (the float order is fixed), for every R ≤ KQ_MAX_R and M ≤ QDOT_MAX_M; q4_K and q6_K rows dotted
// as stored (kdot_raw) too, for M ≤ KQ_RAW_MAX_M.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_quant.h"
float quant_f16_to_f32(uint16_t h) { return half_f16_to_f32(h); }
simd_level kernels_level(void) { return SIMD_NEON; }
static const long bytes_of[Q_COUNT] = {[Q_Q2_K] = 84, [Q_Q3_K] = 110, [Q_Q4_K] = 144, [Q_Q5_K] = 176, [Q_Q6_K] = 210};
long quant_block_bytes(quant_type q) { return bytes_of[q]; }
static uint32_t s = 12345;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
  enum { NSB = 3, K = NSB * QK_K };
  const quant_type types[] = {Q_Q2_K, Q_Q3_K, Q_Q4_K, Q_Q5_K, Q_Q6_K};
  const long scale_at[5][2] = {{80, 82}, {108, -1}, {0, 2}, {0, 2}, {208, -1}};
  quant_kernels_current(); // builds the f16 table
  static kq_block wa[KQ_MAX_R * NSB] __attribute__((aligned(64))), wb[KQ_MAX_R * NSB] __attribute__((aligned(64)));
  long bad = 0;
  for (int t = 0; t < 5; t++) {
    uint8_t row[KQ_MAX_R][NSB * 210];
    for (int r = 0; r < KQ_MAX_R; r++) {
      for (long i = 0; i < NSB * bytes_of[types[t]]; i++) row[r][i] = (uint8_t)rnd();
      for (int b = 0; b < NSB; b++)
        for (int j = 0; j < 2; j++)
          if (scale_at[t][j] >= 0) { uint8_t *p = row[r] + b * bytes_of[types[t]] + scale_at[t][j]; p[0] = (uint8_t)rnd(); p[1] = (uint8_t)(0x10 + rnd() % 0x10); }
      quant_kernels_neon.kunpack(types[t], row[r], NSB, wa + r * NSB);
      quant_kernels_scalar.kunpack(types[t], row[r], NSB, wb + r * NSB);
    }
    if (memcmp(wa, wb, sizeof wa)) { bad++; printf("type %d: unpacked blocks differ\n", t); }
    float x[QDOT_MAX_M * K], d[QDOT_MAX_M * NSB];
    int8_t qs[QDOT_MAX_M * K];
    int16_t bsum[QDOT_MAX_M * K / 16];
    for (long i = 0; i < QDOT_MAX_M * K; i++) x[i] = ((int)(rnd() % 2001) - 1000) / 1000.0f;
    for (int m = 0; m < QDOT_MAX_M; m++) quant_quantize_row_q8k(x + m * K, K, qs + m * K, d + m * NSB, bsum + m * K / 16);
    kq_x xk = {qs, d, bsum, K};
    for (int R = 1; R <= KQ_MAX_R; R++)
      for (int M = 1; M <= QDOT_MAX_M; M++) {
        float o1[QDOT_MAX_M * KQ_MAX_R], o2[QDOT_MAX_M * KQ_MAX_R];
        int folded = types[t] == Q_Q3_K || types[t] == Q_Q6_K;
        quant_kernels_neon.kdot(folded, wa, NSB, R, &xk, M, o1, KQ_MAX_R);
        quant_kernels_scalar.kdot(folded, wb, NSB, R, &xk, M, o2, KQ_MAX_R);
        for (int m = 0; m < M; m++)
          for (int r = 0; r < R; r++)
            if (memcmp(&o1[m * KQ_MAX_R + r], &o2[m * KQ_MAX_R + r], 4)) {
              if (++bad < 8) printf("type %d R=%d M=%d (%d, %d): neon %.9g scalar %.9g\n", t, R, M, m, r, o1[m * KQ_MAX_R + r], o2[m * KQ_MAX_R + r]);
            }
        // q4_K / q6_K decode: the rows dotted as stored (kdot_raw) give the unpacked path's bits
        if ((types[t] == Q_Q4_K || types[t] == Q_Q6_K) && M <= KQ_RAW_MAX_M) {
          float o3[QDOT_MAX_M * KQ_MAX_R];
          quant_kernels_neon.kdot_raw(types[t], row[0], sizeof row[0], NSB, R, &xk, M, o3, KQ_MAX_R);
          for (int m = 0; m < M; m++)
            for (int r = 0; r < R; r++)
              if (memcmp(&o3[m * KQ_MAX_R + r], &o2[m * KQ_MAX_R + r], 4)) {
                if (++bad < 8) printf("type %d raw R=%d M=%d (%d, %d): neon %.9g scalar %.9g\n", t, R, M, m, r, o3[m * KQ_MAX_R + r], o2[m * KQ_MAX_R + r]);
              }
        }
      }
  }
  printf("neon vs scalar k-quant mismatches: %ld\n", bad);
  return bad != 0;
}
