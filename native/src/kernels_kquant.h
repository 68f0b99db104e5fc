// K-quant (q2_K … q6_K) products in integers, as llama.cpp's ggml_vec_dot_q*_K_q8_K: each activation row is
// quantized once to q8_K blocks (256 values: a float d, 256 int8, 16 int16 sums of 16), each weight superblock is
// unpacked into one common form (kq_block: unsigned values, int16 scales per 16 values, int16 offsets per 16) and
// dotted with it in int8 → int32. The kernels (kdot in each quant_kernels_t) see only kq_block, so one dot per SIMD
// level serves all five types; the types differ only in their unpackers (kernels_kquant_unpack.h).
//
// Activation blocks (llama.cpp's quantize_row_q8_K_ref, which its x86 build uses; float32 steps, no FMA):
//   max = the x_j of largest |x_j| (the first one),  iscale = −127 / max,  q_j = min(127, round-half-even(iscale · x_j)),
//   d = 1 / iscale,  bsum_i = Σ_{j<16} q_16i+j;  a block of zeros has d = 0 and q = 0.
// Weight superblocks, each type as the unpacked values u_k ≥ 0, scales s_j and offsets o_j of its 16-value sub-block j:
//   value_k = d · s_j · u_k − dmin · o_j        (q4_K, q5_K, q2_K: "min" types, s and o 4 or 6 bits)
//   value_k = d · s_j · (u_k − c)               (q6_K: c = 32; q3_K: c = 4; o_j = c · s_j, "folded" into the integers)
// so that, with isum = Σ_k s_j(k) · u_k · q_k and osum = Σ_j o_j · bsum_j, both exact in int32,
//   Σ_k value_k · d_x · q_k = (d · d_x) · isum − (dmin · d_x) · osum   (min)   or   (d · d_x) · (isum − osum)   (folded).
//
// The float steps follow one fixed order on every SIMD level, so every level (and the TS reference, matmulQuantK in
// src/engine/reference/quant.ts) gives the same bits: the integers are kept in 8 lanes, lane l holding the values k
// with k mod 32 in [4l, 4l + 4) (what AVX2's maddubs + madd give; wider or narrower registers add or split lanes,
// exactly), the offsets too (lane l: o_2l · bsum_2l + o_2l+1 · bsum_2l+1). Per superblock and lane, in float32:
//   folded: acc_l += (d · d_x) · float(isum_l − osum_l)
//   min:    acc_l += (d · d_x) · float(isum_l);  acc_l −= (dmin · d_x) · float(osum_l)
// and the result is ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7)).
// Bounds: u ≤ 63 and |q| ≤ 127 keep maddubs' int16 pairs exact (≤ 16,002); |s| ≤ 128 keeps every int32 exact.
#ifndef NOMOAT_KERNELS_KQUANT_H
#define NOMOAT_KERNELS_KQUANT_H
#include <stdint.h>

#define QK_K 256    // values per superblock, weights and activations alike
#define KQ_MAX_R 4  // weight rows one kdot call takes (the rows it reuses each loaded x for)
#ifndef KQ_RAW_AHEAD
#define KQ_RAW_AHEAD 16384
#endif
#define KQ_RAW_MAX_M 2 // rows of x a kdot_raw call takes (decode: past that, unpacking once per tile costs less)

// Decode streams every weight once per token and is bound by memory latency: the hardware prefetchers alone kept
// too few lines in flight (q6_K 32000 × 2048, 1 thread: 13 → 32 GB/s with these). kq_raw_ahead: the distance, whole
// groups of rows of group bytes at least KQ_RAW_AHEAD on; kq_prefetch: the bytes [p, p + n) toward L1.
static inline long kq_raw_ahead(long group) { return group * ((KQ_RAW_AHEAD + group - 1) / group); }
static inline void kq_prefetch(const uint8_t *p, long n) {
  for (long at = 0; at < n; at += 64) __builtin_prefetch(p + at);
}

// One weight superblock unpacked (576 bytes, a multiple of 64 so arrays of them stay aligned)
typedef struct {
  uint8_t u[QK_K];      // the values, 0..63, in the block's value order
  int16_t s[8][16];     // s[g][i]: the scale of value 32g + 2i, 32g + 2i + 1 (sub-block 2g for i < 8, else 2g + 1)
  int16_t o[16];        // o[j]: the offset of sub-block j (min types: the min; folded: c · s_j)
  float d, dmin;        // the superblock's f16 scales as float (dmin = 0 for folded types)
  uint8_t pad[24];
} kq_block;
_Static_assert(sizeof(kq_block) % 64 == 0, "kq_block arrays must keep u and s 64-byte aligned (aligned SIMD loads)");

// The activation side: M rows of K values as q8_K, row m's int8 at qs + m · K, its superblock scales at
// d + m · (K / QK_K) and its 16-value sums at bsum + m · (K / 16).
typedef struct {
  const int8_t *qs;
  const float *d;
  const int16_t *bsum;
  long K;
} kq_x;

// A level's kdot_raw (kernels_quant.h) over its always-inline body(q6, w, row_bytes, nsb, RB, x, M, out, ldo), two
// weight rows a call (RB and M constant in each call, so the body's accumulators stay in registers)
#define KQ_RAW_CALL(body, Q6, RB)                                                                        \
  (M == 1 ? body(Q6, w + r * row_bytes, row_bytes, nsb, RB, x, 1, out + r, ldo)                             \
          : body(Q6, w + r * row_bytes, row_bytes, nsb, RB, x, 2, out + r, ldo))
#define KQ_RAW_DISPATCH2(fn, body)                                                                       \
  static void fn(quant_type q, const uint8_t *w, long row_bytes, long nsb, int R, const kq_x *x, int M, \
                 float *out, long ldo) {                                                                \
    for (int r = 0; r < R;) {                                                                           \
      int rb = R - r >= 2 ? 2 : 1;                                                                      \
      if (q == Q_Q6_K) rb == 2 ? KQ_RAW_CALL(body, 1, 2) : KQ_RAW_CALL(body, 1, 1);                     \
      else rb == 2 ? KQ_RAW_CALL(body, 0, 2) : KQ_RAW_CALL(body, 0, 1);                                 \
      r += rb;                                                                                          \
    }                                                                                                   \
  }

// qs[K], d[K / QK_K], bsum[K / 16] ← x[K] (K a multiple of QK_K), as described above. 0 when done; −1 when some x is
// not finite or a block's max is so small (|max| < 127 / FLT_MAX) that −127 / max overflows (the caller then takes
// the float path).
int quant_quantize_row_q8k(const float *x, long K, int8_t *qs, float *d, int16_t *bsum);

#endif
