// Decode-shaped products with q8_0 / q4_0 weights in integers, as llama.cpp does: each activation row is quantized
// once to q8 blocks (32 int8 values and one float scale), then every weight block is dotted with it in int8 → int32
// and the block sums are added in float, scaled by d_w · d_x. One table per SIMD level (kernels_quant_*.c), chosen
// with the level of the main kernel table (kernels_level(), so NOMOAT_SIMD caps it too).
//
// Activation blocks (the same math as quantizeRowQ8 in src/engine/reference/quant.ts, bit for bit):
//   amax = max_j |x_j|,  d = amax / 127,  id = amax ≠ 0 ? 127 / amax : 0,  q_j = round-half-even(x_j · id)
// all in float32 without FMA (llama.cpp's AVX quantize_row_q8_0, with the scale kept in float32, not f16).
// Weight blocks are ggml's: q8_0 = f16 d + 32 int8; q4_0 = f16 d + 16 bytes, value j is (nibble − 8), the low
// nibbles holding j < 16. The k-quants (q2_K … q6_K) have their own activation blocks (q8_K) and unpacked weight
// form: kernels_kquant.h; each table carries their unpacker and dot too.
#ifndef NOMOAT_KERNELS_QUANT_H
#define NOMOAT_KERNELS_QUANT_H
#include <stdint.h>
#include "kernels_kquant.h"
#include "nomoat.h"
#include "ops.h"

#define QK 32 // values per block, weights and activations alike
#define QTILE_RN 4 // weight rows a dot_tile call takes

// Two blocks of one weight row as the tiled product (dot_tile) takes them: the 64 values as int8, −128 · Σ of the 4
// values of each int32 lane (vpdpbusd multiplies unsigned x + 128 by signed w, so the lane's sum starts there), and
// each block's f16 scale as float over its 8 lanes (zeros for the missing block of an odd count). 192 bytes.
typedef struct {
  int8_t w[64];
  int32_t nc[16];
  float wl[16];
} qtile_pair;
_Static_assert(sizeof(qtile_pair) == 192, "qtile_pair: three 64-byte vectors");

typedef struct {
  const char *name;
  // qs[K], d[K / QK] ← x[K] (K a multiple of QK). Returns 0 when every x is finite, −1 otherwise (qs, d are then
  // unspecified: the caller takes the float path, which keeps inf/NaN semantics).
  int (*quantize_row_q8)(const float *x, long K, int8_t *qs, float *d);
  // out[m · ldo] = Σ_b (d_w,b · d_x,m,b) · Σ_j w_b,j · q_m,b,j for m < M ≤ QDOT_MAX_M: one weight row of nb blocks
  // (q4 = 0: q8_0, q4 = 1: q4_0) against M quantized rows (row m at xq + m · ldq, its scales at xd + m · ldd).
  // The integer sums are exact; only the float accumulation over blocks rounds.
  void (*dot)(int q4, const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd, int M,
              float *out, long ldo);
  // K-quants (kernels_kquant.h): out[nsb] ← one weight row of type q (q2_K … q6_K) unpacked
  void (*kunpack)(quant_type q, const uint8_t *row, long nsb, kq_block *out);
  // out[m · ldo + r] = the product of unpacked weight row r (its nsb blocks at w + r · nsb) and q8_K row m of x, for
  // r < R ≤ KQ_MAX_R, m < M ≤ QDOT_MAX_M, in the float order of kernels_kquant.h (folded: q6_K/q3_K offsets)
  void (*kdot)(int folded, const kq_block *w, long nsb, int R, const kq_x *x, int M, float *out, long ldo);
  // dst[nb · 34] ← one q5_0 weight row of nb blocks as q8_0 blocks (f16 d copied, value j = q_j − 16, exact), which
  // `dot` then takes: Q4_K_M files hold most tensors of 576/896-wide models in q5_0, so this runs for every row of
  // every decode step and must not be scalar (one block: 22 bytes in, 34 out)
  void (*repack_q5_0)(const uint8_t *row, long nb, uint8_t *dst);
  // optional (NULL: repack_q5_0, then dot): `dot` of a q5_0 row, its fifth bits spread in registers
  void (*dot_q5_0)(const uint8_t *row, long nb, const int8_t *xq, long ldq, const float *xd, long ldd, int M, float *out,
                   long ldo);
  // optional (NULL: kunpack, then kdot): kdot of R q4_K or q6_K rows as stored (row r at w + r · row_bytes) for
  // M ≤ KQ_RAW_MAX_M rows of x, the same bits as kunpack + kdot. Decode streams every weight once per token, so the
  // unpacked copy (4× the bytes, written and read back) cost more than the dot itself
  void (*kdot_raw)(quant_type q, const uint8_t *w, long row_bytes, long nsb, int R, const kq_x *x, int M, float *out,
                   long ldo);
  // optional (NULL: `dot` per weight row; set only where vpdpbusd exists, maddubs would saturate on x + 128):
  // out[m · ldo + r] for r < RN ≤ QTILE_RN prepared weight rows (row r at w + r · wstride, npairs pairs) and m < M ≤
  // QDOT_MAX_M rows of x prepared once per product (row m: npairs · 64 bytes x + 128 at xu + m · npairs · 64, pair
  // p's two block scales at xl + (m · npairs + p) · 2). The float steps are `dot`'s, so the bits are too: per pair,
  // acc += (d_w · d_x) · float(Σ w · x) in 16 lanes, then the lanes' sum.
  void (*dot_tile)(const qtile_pair *w, long wstride, long npairs, int RN, const uint8_t *xu, const float *xl, int M,
                   float *out, long ldo);
} quant_kernels_t;

void quant_repack_q5_0_scalar(const uint8_t *row, long nb, uint8_t *dst);
#if defined(__x86_64__)
void quant_repack_q5_0_avx2(const uint8_t *row, long nb, uint8_t *dst);
#endif

extern const quant_kernels_t quant_kernels_scalar;
#if defined(__x86_64__)
extern const quant_kernels_t quant_kernels_avx2;
extern const quant_kernels_t quant_kernels_avx512;
extern const quant_kernels_t quant_kernels_avx512_vnni;
#endif
#if defined(__aarch64__)
extern const quant_kernels_t quant_kernels_neon;
#endif

// The table for the current SIMD level (kernels_level()); at AVX-512, the VNNI variant where the CPU has it and
// VNNI is allowed (integer sums are exact, so both variants give identical results).
const quant_kernels_t *quant_kernels_current(void);

// Whether the AVX-512 level may take the VNNI dot where the CPU has it: allowed unless NOMOAT_NO_VNNI=1 was set
// when first asked; quant_set_vnni(0) turns it off at run time (tests use it to cover the AVX-512BW dot on a VNNI
// CPU, as NOMOAT_SIMD covers the lower levels).
void quant_set_vnni(int allowed);
int quant_vnni_allowed(void);

// f16 bits → float through a table of all 65,536 values (built once by quant_kernels_current; the scales of one
// model cover a few cache lines of it). Exactly quant_f16_to_f32.
extern float quant_f16_table[65536];
static inline float quant_f16(const uint8_t *b) { return quant_f16_table[(uint16_t)(b[0] | (b[1] << 8))]; }

#endif
