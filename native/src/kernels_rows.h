// Row kernels written once in plain C, the readable reference (llm.c style: x_forward / x_backward pairs with
// shape comments). kernels_generic.c compiles them for baseline x86-64/any CPU; kernels_avx2.c, kernels_avx512.c
// and kernels_neon.c include this file again under `#pragma GCC target(...)`, so the compiler vectorizes the same
// loops for each level (`#pragma omp simd` marks the reductions; -fopenmp-simd, no OpenMP runtime).
// The includer defines KR_TABLE (the kernels_t name), KR_NAME, KR_MR/NR/KC/MC/NC and gemm_micro_impl first (and
// may define KR_GEMM_NARROW and KR_GEMM_NARROW_T, kernels for products with N or M <= 16), and
// may define KR_HALF_TO_F32 and KR_HALF_DOT, f16/bf16 conversion and decode kernels with the CPU's own conversion,
// and may name a header of hand-written attention kernels in KR_ATTN_HEADER that defines KR_ATTN_FORWARD,
// KR_ATTN_DQ and KR_ATTN_DKV (the generic kr_attn_* kernels stay their reference and fallback).
// Every function here is static: each level gets its own copy. No threads here: ops.c splits rows over threads.
#include <math.h>
#include <string.h>

// exp for float lanes (Cephes polynomial, ~1 ulp), written so the compiler vectorizes it; inputs are clamped to
// the normal range, so exp(-large) is ~1e-38 rather than 0 (harmless in sums and probabilities).
static inline float kr_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round(x / ln 2)
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  union { float f; int32_t i; } u;
  u.i = ((int32_t)n + 127) << 23;
  return y * u.f;
}

static inline float kr_sigmoid(float x) { return 1.0f / (1.0f + kr_exp(-x)); }

// gelu, tanh form (GPT-2): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), tanh(u) = 1 − 2 / (exp(2u) + 1)
#define KR_GELU_K 0.7978845608028654f
static inline float kr_gelu(float x) {
  float u = KR_GELU_K * (x + 0.044715f * x * x * x);
  float th = 1.0f - 2.0f / (kr_exp(2.0f * u) + 1.0f);
  return 0.5f * x * (1.0f + th);
}
static inline float kr_gelu_grad(float x) {
  float u = KR_GELU_K * (x + 0.044715f * x * x * x);
  float th = 1.0f - 2.0f / (kr_exp(2.0f * u) + 1.0f);
  float du = KR_GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
  return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

// ---- elementwise ------------------------------------------------------------------------------------------
static void kr_fill(float *out, long n, float v) {
  for (long i = 0; i < n; i++) out[i] = v;
}
static void kr_affine(const float *x, float *out, long n, float alpha, float beta) {
  for (long i = 0; i < n; i++) out[i] = alpha * x[i] + beta;
}
static void kr_axpy(float alpha, const float *x, float *y, long n) {
  for (long i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void kr_unary_forward(unary_op op, const float *x, float *out, long n) {
  switch (op) {
    case UN_NEG: for (long i = 0; i < n; i++) out[i] = -x[i]; break;
    case UN_EXP: for (long i = 0; i < n; i++) out[i] = kr_exp(x[i]); break;
    case UN_LOG: for (long i = 0; i < n; i++) out[i] = logf(x[i]); break;
    case UN_SQRT: for (long i = 0; i < n; i++) out[i] = sqrtf(x[i]); break;
    case UN_SILU: for (long i = 0; i < n; i++) out[i] = x[i] * kr_sigmoid(x[i]); break;
    case UN_RELU: for (long i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    case UN_GELU: for (long i = 0; i < n; i++) out[i] = kr_gelu(x[i]); break;
  }
}

// dx = dout * op'(x), x the forward input
static void kr_unary_backward(unary_op op, const float *x, const float *dout, float *dx, long n) {
  switch (op) {
    case UN_NEG: for (long i = 0; i < n; i++) dx[i] = -dout[i]; break;
    case UN_EXP: for (long i = 0; i < n; i++) dx[i] = dout[i] * kr_exp(x[i]); break;
    case UN_LOG: for (long i = 0; i < n; i++) dx[i] = dout[i] / x[i]; break;
    case UN_SQRT: for (long i = 0; i < n; i++) dx[i] = dout[i] * 0.5f / sqrtf(x[i]); break;
    case UN_SILU:
      for (long i = 0; i < n; i++) {
        float s = kr_sigmoid(x[i]);
        dx[i] = dout[i] * (s * (1.0f + x[i] * (1.0f - s)));
      }
      break;
    case UN_RELU: for (long i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dout[i] : 0.0f; break;
    case UN_GELU: for (long i = 0; i < n; i++) dx[i] = dout[i] * kr_gelu_grad(x[i]); break;
  }
}

#define KR_BIN_LOOP(EXPR)                                                                \
  if (sa == 1 && sb == 1) { for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = EXPR; } } \
  else if (sa == 1) { float y = b[0]; for (long i = 0; i < n; i++) { float x = a[i]; out[i] = EXPR; } } \
  else if (sb == 1) { float x = a[0]; for (long i = 0; i < n; i++) { float y = b[i]; out[i] = EXPR; } } \
  else { float x = a[0], y = b[0]; for (long i = 0; i < n; i++) out[i] = EXPR; }

// out[n] = a[i*sa] ∘ b[i*sb], sa, sb ∈ {0, 1}
static void kr_binary_inner(binary_op op, const float *a, long sa, const float *b, long sb, float *out, long n) {
  switch (op) {
    case BIN_ADD: KR_BIN_LOOP(x + y) break;
    case BIN_SUB: KR_BIN_LOOP(x - y) break;
    case BIN_MUL: KR_BIN_LOOP(x * y) break;
    case BIN_DIV: KR_BIN_LOOP(x / y) break;
  }
}

// out[n] = silu(gate) * up
static void kr_swiglu_forward(const float *gate, const float *up, float *out, long n) {
  for (long i = 0; i < n; i++) out[i] = gate[i] * kr_sigmoid(gate[i]) * up[i];
}
// inverts out = g·σ(g)·u: dup = dout·silu(g), dgate = dout·u·σ(g)(1 + g(1 − σ(g)))
static void kr_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n) {
  for (long i = 0; i < n; i++) {
    float g = gate[i], s = kr_sigmoid(g);
    dup[i] = dout[i] * g * s;
    dgate[i] = dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
  }
}

// ---- reductions over rows -----------------------------------------------------------------------------
static inline float kr_row_max(const float *x, long n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (long i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}
static inline float kr_row_dot(const float *a, const float *b, long n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
// log Σ exp(x[i] * k) for one row
static inline float kr_row_lse(const float *x, long n, float k) {
  float m = kr_row_max(x, n) * k; // k > 0
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; i++) s += kr_exp(x[i] * k - m);
  return m + logf(s);
}

// x[N, C] → out[N, C] = x · rstd · w, rstd[N] = 1 / sqrt(mean(x²) + eps)
static void kr_rmsnorm_forward(const float *x, const float *w, float *out, float *rstd, long N, long C, float eps) {
  for (long n = 0; n < N; n++) {
    const float *xr = x + n * C;
    float *o = out + n * C;
    float r = 1.0f / sqrtf(kr_row_dot(xr, xr, C) / (float)C + eps);
    for (long c = 0; c < C; c++) o[c] = xr[c] * r * w[c];
    rstd[n] = r;
  }
}
// inverts out = x·r·w with r = (mean(x²)+eps)^(-1/2): dx = r·w·g − r³/C · x · Σ g·w·x; dw_partial += g·x·r.
// The two terms of dx cancel when C is small (C = 1: dx ∝ eps), so dx is formed in double.
static void kr_rmsnorm_backward(const float *dout, const float *x, const float *w, const float *rstd, float *dx,
                                float *dw_partial, long N, long C) {
  for (long n = 0; n < N; n++) {
    const float *g = dout + n * C, *xr = x + n * C;
    float *d = dx + n * C;
    double r = rstd[n], s = 0.0;
#pragma omp simd reduction(+ : s)
    for (long c = 0; c < C; c++) s += (double)g[c] * (double)w[c] * (double)xr[c];
    double k = r * r * r / (double)C * s;
    float rf = rstd[n];
    for (long c = 0; c < C; c++) {
      d[c] = (float)(r * (double)w[c] * (double)g[c] - k * (double)xr[c]);
      dw_partial[c] += g[c] * xr[c] * rf;
    }
  }
}

// x[N, C] → out[N, C] = softmax over C
static void kr_softmax_forward(const float *x, float *out, long N, long C) {
  for (long n = 0; n < N; n++) {
    const float *xr = x + n * C;
    float *o = out + n * C;
    float m = kr_row_max(xr, C), s = 0.0f;
    for (long c = 0; c < C; c++) o[c] = kr_exp(xr[c] - m);
#pragma omp simd reduction(+ : s)
    for (long c = 0; c < C; c++) s += o[c];
    float inv = 1.0f / s;
    for (long c = 0; c < C; c++) o[c] *= inv;
  }
}
// inverts y = softmax(x): dx = y · (dout − Σ dout·y)
static void kr_softmax_backward(const float *y, const float *dout, float *dx, long N, long C) {
  for (long n = 0; n < N; n++) {
    const float *yr = y + n * C, *g = dout + n * C;
    float *d = dx + n * C;
    float s = kr_row_dot(yr, g, C);
    for (long c = 0; c < C; c++) d[c] = yr[c] * (g[c] - s);
  }
}

// logits[N, V], targets[N] → losses[N] = lse − logits[target] (0 when ignored), lse[N]
static void kr_ce_forward(const float *logits, const int32_t *targets, float *losses, float *lse, long N, long V,
                          int ignore) {
  for (long n = 0; n < N; n++) {
    const float *x = logits + n * V;
    float l = kr_row_lse(x, V, 1.0f);
    lse[n] = l;
    losses[n] = targets[n] == ignore ? 0.0f : l - x[targets[n]];
  }
}
// inverts loss = lse − x[t]: dlogits = (exp(x − lse) − onehot(t)) · dloss; zero rows where ignored
static void kr_ce_backward(const float *logits, const int32_t *targets, const float *lse, const float *dloss,
                           float *dlogits, long N, long V, int ignore) {
  for (long n = 0; n < N; n++) {
    const float *x = logits + n * V;
    float *d = dlogits + n * V;
    if (targets[n] == ignore) {
      for (long i = 0; i < V; i++) d[i] = 0.0f;
      continue;
    }
    float l = lse[n], g = dloss[n];
    for (long i = 0; i < V; i++) d[i] = kr_exp(x[i] - l) * g;
    d[targets[n]] -= g;
  }
}

// student, teacher [N, V] → losses[N] = T² Σ p_t (log p_t − log p_s), p = softmax(logits / T)
static void kr_kl_forward(const float *s, const float *t, float *losses, long N, long V, float temp) {
  float k = 1.0f / temp;
  for (long n = 0; n < N; n++) {
    const float *a = s + n * V, *b = t + n * V;
    float la = kr_row_lse(a, V, k), lb = kr_row_lse(b, V, k), acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (long i = 0; i < V; i++) {
      float lpt = b[i] * k - lb, lps = a[i] * k - la;
      acc += kr_exp(lpt) * (lpt - lps);
    }
    losses[n] = temp * temp * acc;
  }
}
// inverts the above: dstudent = T · (p_s − p_t) · dloss
static void kr_kl_backward(const float *s, const float *t, const float *dloss, float *ds, long N, long V, float temp) {
  float k = 1.0f / temp;
  for (long n = 0; n < N; n++) {
    const float *a = s + n * V, *b = t + n * V;
    float *d = ds + n * V;
    float la = kr_row_lse(a, V, k), lb = kr_row_lse(b, V, k), g = temp * dloss[n];
    for (long i = 0; i < V; i++) d[i] = (kr_exp(a[i] * k - la) - kr_exp(b[i] * k - lb)) * g;
  }
}

// AdamW, PyTorch order: p ← p(1 − lr·wd); m, v updated; p ← p − lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps)
static void kr_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps,
                     float wd, float bc1, float bc2) {
  float decay = 1.0f - lr * wd, step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
  for (long i = 0; i < n; i++) {
    float mi = b1 * m[i] + (1.0f - b1) * g[i];
    float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step * mi / (sqrtf(vi) * rbc2 + eps);
  }
}

// ---- quantized weight rows (decode) --------------------------------------------------------------------------
// out[m · ldo] = x_m · dequant(row) for M ≤ QDOT_MAX_M rows of x: each block of 32 is dequantized once (ggml's
// rounding: q8_0 d·q, q4_0 (q − 8)·d, low nibbles first) and used for every row; per-lane sums, reduced at the end.
static void kr_quant_dot(int q4, const uint8_t *row, long K, const float *x, long ldx, int M, float *out, long ldo) {
  float acc[QDOT_MAX_M][32];
  for (int m = 0; m < QDOT_MAX_M; m++)
    for (int j = 0; j < 32; j++) acc[m][j] = 0.0f;
  long bb = q4 ? 18 : 34;
  for (long kb = 0; kb < K / 32; kb++) {
    const uint8_t *b = row + kb * bb;
    float d = quant_f16_to_f32((uint16_t)(b[0] | (b[1] << 8))), y[32];
    if (!q4) { // converted in the product loop: a y[] written at one vector width and read at another stalls
      const int8_t *qs = (const int8_t *)(b + 2);
      for (int m = 0; m < M; m++) {
        const float *xm = x + m * ldx + kb * 32;
        for (int j = 0; j < 32; j++) acc[m][j] += (d * (float)qs[j]) * xm[j];
      }
      continue;
    }
    for (int j = 0; j < 16; j++) {
      y[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
      y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
    for (int m = 0; m < M; m++) {
      const float *xm = x + m * ldx + kb * 32;
      for (int j = 0; j < 32; j++) acc[m][j] += y[j] * xm[j];
    }
  }
  for (int m = 0; m < M; m++) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < 32; j++) s += acc[m][j];
    out[m * ldo] = s;
  }
}

// ---- f16 / bf16 weight rows ----------------------------------------------------------------------------------
// Generic versions: the conversion is branch-free (nomoat.h), so these loops vectorize at any level; levels with a
// conversion instruction define KR_HALF_TO_F32 / KR_HALF_DOT with their own (x86: F16C, AVX-512; arm64: fcvtl).
static void kr_half_to_f32(int bf16, const uint16_t *src, float *dst, long n) {
  if (bf16)
#pragma omp simd
    for (long i = 0; i < n; i++) dst[i] = half_bf16_to_f32(src[i]);
  else
#pragma omp simd
    for (long i = 0; i < n; i++) dst[i] = half_f16_to_f32(src[i]);
}

// out[m · ldo] = x_m · float(row) for M ≤ QDOT_MAX_M: 16 values of the row converted at a time, used for every row
// of x; per-lane sums, reduced at the end
static void kr_half_dot(int bf16, const uint16_t *row, long K, const float *x, long ldx, int M, float *out, long ldo) {
  float acc[QDOT_MAX_M][16], y[16];
  for (int m = 0; m < QDOT_MAX_M; m++)
    for (int j = 0; j < 16; j++) acc[m][j] = 0.0f;
  for (long k0 = 0; k0 < K; k0 += 16) {
    int n = K - k0 < 16 ? (int)(K - k0) : 16;
    kr_half_to_f32(bf16, row + k0, y, n);
    for (int j = n; j < 16; j++) y[j] = 0.0f;
    for (int m = 0; m < M; m++) {
      const float *xm = x + m * ldx + k0;
      for (int j = 0; j < n; j++) acc[m][j] += y[j] * xm[j];
    }
  }
  for (int m = 0; m < M; m++) {
    float s = 0.0f;
    for (int j = 0; j < 16; j++) s += acc[m][j];
    out[m * ldo] = s;
  }
}
#ifndef KR_HALF_TO_F32
#define KR_HALF_TO_F32 kr_half_to_f32
#endif
#ifndef KR_HALF_DOT
#define KR_HALF_DOT kr_half_dot
#endif

static double kr_sum_squares(const float *x, long n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

#include "kernels_attention.h"
#ifdef KR_ATTN_HEADER
#include KR_ATTN_HEADER
#else
#define KR_ATTN_FORWARD kr_attn_forward_block
#define KR_ATTN_DQ kr_attn_backward_dq_block
#define KR_ATTN_DKV kr_attn_backward_dkv_block
#endif

#ifndef KR_GEMM_NARROW // levels without a narrow kernel keep the packed path for N <= 16
#define KR_GEMM_NARROW NULL
#endif
#ifndef KR_GEMM_NARROW_T
#define KR_GEMM_NARROW_T NULL
#endif

const kernels_t KR_TABLE = {
    .name = KR_NAME,
    .mr = KR_MR, .nr = KR_NR, .kc = KR_KC, .mc = KR_MC, .nc = KR_NC,
    .gemm_micro = gemm_micro_impl,
    .gemm_narrow = KR_GEMM_NARROW,
    .gemm_narrow_t = KR_GEMM_NARROW_T,
    .fill = kr_fill,
    .affine = kr_affine,
    .axpy = kr_axpy,
    .dot = kr_row_dot,
    .unary_forward = kr_unary_forward,
    .unary_backward = kr_unary_backward,
    .binary_inner = kr_binary_inner,
    .swiglu_forward = kr_swiglu_forward,
    .swiglu_backward = kr_swiglu_backward,
    .rmsnorm_forward = kr_rmsnorm_forward,
    .rmsnorm_backward = kr_rmsnorm_backward,
    .softmax_forward = kr_softmax_forward,
    .softmax_backward = kr_softmax_backward,
    .ce_forward = kr_ce_forward,
    .ce_backward = kr_ce_backward,
    .kl_forward = kr_kl_forward,
    .kl_backward = kr_kl_backward,
    .adamw = kr_adamw,
    .sum_squares = kr_sum_squares,
    .quant_dot = kr_quant_dot,
    .half_to_f32 = KR_HALF_TO_F32,
    .half_dot = KR_HALF_DOT,
    .attn_forward_block = KR_ATTN_FORWARD,
    .attn_backward_dq_block = KR_ATTN_DQ,
    .attn_backward_dkv_block = KR_ATTN_DKV,
};
