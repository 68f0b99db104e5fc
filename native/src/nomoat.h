// Shared declarations of the native addon: the kernel table chosen by CPU features, the thread pool, GEMM.
//
// Letters in shape comments: B batch, T time, H query heads, G key/value heads, D head dim, C channels,
// V vocabulary, N rows, M/N/K matmul dims.
#ifndef NOMOAT_H
#define NOMOAT_H

#include <stddef.h>
#include <stdint.h>

// ---- CPU features and SIMD levels (cpu.c) ---------------------------------------------------------------
typedef enum { SIMD_SCALAR = 0, SIMD_NEON = 1, SIMD_AVX2 = 2, SIMD_AVX512 = 3 } simd_level;
simd_level cpu_best_level(void);          // best level this CPU (and OS register saving) supports
const char *simd_level_name(simd_level l);
int simd_level_parse(const char *s, simd_level *out); // 0 on success

// ---- unary op codes (order matches UnaryOp in backend.ts, mapped in addon_ops.c) --------------------------
typedef enum { UN_NEG, UN_EXP, UN_LOG, UN_SQRT, UN_SILU, UN_RELU, UN_GELU } unary_op;
typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } binary_op;

// Attention shapes, as in AttentionParams (backend.ts).
typedef struct {
  int B, Tq, Tk, H, G, D;
  float scale;
  int qOffset;
  int causal;
} attn_params;

// Attention is tiled over query blocks of ATT_QB rows and key tiles of ATT_KB keys (never a Tq×Tk buffer).
#define ATT_QB 32
#define ATT_KB 64
#define ATT_DMAX 512

// ---- the kernel table: one per SIMD level -----------------------------------------------------------------
// Row kernels work on a contiguous chunk; the drivers in ops.c split work over threads and call these.
typedef struct {
  const char *name;
  // GEMM micro-kernel: C[MR, NR] (+)= Apanel[K, MR]ᵀ-packed · Bpanel[K, NR]-packed; ldc in elements.
  int mr, nr, kc, mc, nc;
  void (*gemm_micro)(long K, const float *A, const float *B, float *C, long ldc, int accumulate);
  // optional (NULL: the packed path): C[rows, n] (+)= A[rows, K] (row-major, pitch lda) · Bp[K, 16] (packed, zero
  // beyond n <= 16), A read in place: a 16-wide product has too little reuse to pay for packing A (LoRA's h·Aᵀ).
  void (*gemm_narrow)(long K, long rows, const float *A, long lda, const float *Bp, float *C, long ldc, int n,
                      int accumulate);
  // optional: D[r, j] = Σ_k X[k * ldx + r] · Bp[k * 16 + j] (r < rows, j < n <= 16), C[r * rs + j * cs] (+)= D[r, j]:
  // the same over an operand stored transposed (LoRA's gᵀ·t with N = 16, and uᵀ·h with M = 16 as Cᵀ).
  void (*gemm_narrow_t)(long K, long rows, const float *X, long ldx, const float *Bp, float *C, long rs, long cs, int n,
                        int accumulate);

  void (*fill)(float *out, long n, float v);
  void (*affine)(const float *x, float *out, long n, float alpha, float beta);
  void (*axpy)(float alpha, const float *x, float *y, long n);
  float (*dot)(const float *a, const float *b, long n);
  void (*unary_forward)(unary_op op, const float *x, float *out, long n);
  void (*unary_backward)(unary_op op, const float *x, const float *dout, float *dx, long n);
  // out[n] = a[i*sa] ∘ b[i*sb] with sa, sb ∈ {0, 1}
  void (*binary_inner)(binary_op op, const float *a, long sa, const float *b, long sb, float *out, long n);
  void (*swiglu_forward)(const float *gate, const float *up, float *out, long n);
  void (*swiglu_backward)(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n);
  void (*rmsnorm_forward)(const float *x, const float *w, float *out, float *rstd, long N, long C, float eps);
  void (*rmsnorm_backward)(const float *dout, const float *x, const float *w, const float *rstd, float *dx,
                           float *dw_partial, long N, long C);
  void (*softmax_forward)(const float *x, float *out, long N, long C);
  void (*softmax_backward)(const float *y, const float *dout, float *dx, long N, long C);
  void (*ce_forward)(const float *logits, const int32_t *targets, float *losses, float *lse, long N, long V, int ignore);
  void (*ce_backward)(const float *logits, const int32_t *targets, const float *lse, const float *dloss, float *dlogits,
                      long N, long V, int ignore);
  void (*kl_forward)(const float *s, const float *t, float *losses, long N, long V, float temp);
  void (*kl_backward)(const float *s, const float *t, const float *dloss, float *ds, long N, long V, float temp);
  void (*adamw)(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps, float wd,
                float bc1, float bc2);
  double (*sum_squares)(const float *x, long n);
  // out[m · ldo] = Σ_k x[m · ldx + k] · dequant(row)[k] for m < M ≤ QDOT_MAX_M, one weight row in ggml q8_0 (q4 = 0)
  // or q4_0 (q4 = 1) blocks of 32, K a multiple of 32; dequantized exactly as quant.c does
  void (*quant_dot)(int q4, const uint8_t *row, long K, const float *x, long ldx, int M, float *out, long ldo);
  // dst[n] = float(src[n]) for f16 (bf16 = 0) or bf16 (bf16 = 1) bits: exact, with the CPU's own conversion
  // (F16C / AVX-512 vcvtph2ps, a 16-bit shift for bf16, NEON fcvtl)
  void (*half_to_f32)(int bf16, const uint16_t *src, float *dst, long n);
  // out[m · ldo] = Σ_k x[m · ldx + k] · float(row[k]) for m < M ≤ QDOT_MAX_M: one f16/bf16 weight row against M
  // float rows, converted in registers (decode: the row is read once for all M)
  void (*half_dot)(int bf16, const uint16_t *row, long K, const float *x, long ldx, int M, float *out, long ldo);
  void (*attn_forward_block)(const float *q, const float *k, const float *v, float *out, float *lse,
                             const attn_params *p, int b, int h0, int h1, int q0, int q1, float *scratch);
  void (*attn_backward_dq_block)(const float *q, const float *k, const float *v, const float *lse, const float *delta,
                                 const float *dout, float *dq, const attn_params *p, int b, int h0, int h1, int q0,
                                 int q1, float *scratch);
  void (*attn_backward_dkv_block)(const float *q, const float *k, const float *v, const float *lse, const float *delta,
                                  const float *dout, float *dk, float *dv, const attn_params *p, int b, int g, int k0,
                                  int k1, float *scratch);
} kernels_t;

extern const kernels_t kernels_scalar;
#if defined(__x86_64__)
extern const kernels_t kernels_avx2;
extern const kernels_t kernels_avx512;
#endif
#if defined(__aarch64__)
extern const kernels_t kernels_neon;
#endif

// Scratch floats each attention block needs (see kernels_rows.h).
#define ATT_SCRATCH_FLOATS (2 * ATT_KB + 4 * ATT_DMAX * ATT_KB + ATT_QB * ATT_DMAX + 2 * ATT_QB)

const kernels_t *kernels_current(void);
simd_level kernels_level(void);
int kernels_set_level(simd_level l); // 0 on success, -1 if the CPU lacks it

// ---- thread pool (pool.c) -----------------------------------------------------------------------------
// pool_run calls fn(ctx, t, nthreads) once for each t in [0, nthreads); the caller runs t = 0.
typedef void (*pool_fn)(void *ctx, int t, int nthreads);
void pool_set_threads(int n);
int pool_threads(void);
void pool_run(pool_fn fn, void *ctx, int nthreads);
// Static partition of [0, n) into `parts`: the half-open range of part t.
static inline void pool_range(long n, int t, int parts, long *lo, long *hi) {
  *lo = n * t / parts;
  *hi = n * (t + 1) / parts;
}

// Per-thread scratch kept across calls (slots: 0 GEMM A panels, 1 GEMM B panels, 2 attention, 3 quant panels,
// 4 rope table, 5 attention delta), grown on demand. Big per-call mallocs would be fresh mmaps: page faults and
// TLB flushes on every kernel call. NULL when out of memory.
enum { SCRATCH_GEMM_A, SCRATCH_GEMM_B, SCRATCH_ATTN, SCRATCH_QUANT, SCRATCH_DELTA, SCRATCH_SLOTS };
void *thread_scratch(int slot, size_t bytes);

// ---- GEMM (gemm.c) ------------------------------------------------------------------------------------
typedef enum { GEMM_B_F32 = 0, GEMM_B_F16, GEMM_B_BF16 } gemm_btype;
typedef struct {
  long batch, M, N, K;
  int transA, transB, accumulate;
  long strideA, strideB, strideC;
  long lda, ldb, ldc; // row pitches of the stored A, B, C; 0 = dense (K or M for A, N or K for B, N for C)
  // element type of B (a frozen weight may stay f16/bf16: its panels are converted as they are packed); strides
  // and pitches of B count elements whatever the type. A half B always takes the packed path.
  gemm_btype btype;
  // each row of C computed as a one-row product computes it (batch invariance): every row of op(B) dotted with
  // every row of op(A), never the packed micro-kernel, whose k order differs from the dot kernels'
  int rowwise;
} gemm_params;
void gemm(const float *A, const void *B, float *C, const gemm_params *p);
// Single-threaded, one batch item (for callers already running on a pool thread).
void gemm_serial(const float *A, const void *B, float *C, const gemm_params *p);

// ---- quantized weights (quant.c) -----------------------------------------------------------------------
#define QDOT_MAX_M 4
float quant_f16_to_f32(uint16_t h);

// f16 bits → float, exactly (NaN payloads kept), with no branch on the value so that loops of it vectorize at any
// level: F. Giesen's half_to_float, where a subnormal is renormalized by one float subtraction (exact).
static inline float half_f16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } o, magic = {.u = 113u << 23};
  const uint32_t shifted_exp = 0x7c00u << 13;
  o.u = (uint32_t)(h & 0x7fff) << 13;
  uint32_t exp = shifted_exp & o.u;
  o.u += (uint32_t)(127 - 15) << 23;
  if (exp == shifted_exp) o.u += (uint32_t)(128 - 16) << 23; // inf / NaN
  else if (exp == 0) { // zero / subnormal
    o.u += 1u << 23;
    o.f -= magic.f;
  }
  o.u |= (uint32_t)(h & 0x8000) << 16;
  return o.f;
}
// bf16 bits are the high half of the float's
static inline float half_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } o = {.u = (uint32_t)h << 16};
  return o.f;
}

// ---- aligned memory (addon.c) -------------------------------------------------------------------------
void *nm_aligned_alloc(size_t bytes);

// ---- peak FLOP/s and copy bandwidth probes (peak.c) ---------------------------------------------------
double peak_gflops(int threads, double seconds);
double copy_gbps(int threads, long bytes, int reps);

#endif
