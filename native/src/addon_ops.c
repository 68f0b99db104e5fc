// N-API bindings for data movement, elementwise ops, reductions and matmul (argument order as in backend.ts,
// with MatmulParams flattened). Each binding validates types and extents, then calls a driver in ops*.c/gemm.c.
#include <math.h>
#include "addon_args.h"

#define REG(name, fn) { name, 0, fn, 0, 0, 0, napi_enumerable, 0 }

// span of a strided view: 1 + Σ (shape_d − 1)·stride_d, 0 when empty
static double strided_span(const long *shape, const long *strides, int rank) {
  double span = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 0) return 0;
    span += (double)(shape[d] - 1) * (double)strides[d];
  }
  return span;
}
static double numel(const long *shape, int rank) {
  double n = 1;
  for (int d = 0; d < rank; d++) n *= (double)shape[d];
  return n;
}

// copyStrided(x, offset, shape, strides, out)
static napi_value js_copy_strided(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 5, "copyStrided")) return NULL;
  long shape[OP_MAX_RANK], strides[OP_MAX_RANK];
  long offset = a_int(&a, 1, "offset", 0);
  int rank = a_dims(&a, 2, "shape", shape, 0);
  int srank = a_dims(&a, 3, "strides", strides, 0);
  if (!a.failed && rank != srank) a_throw(&a, 1, "%s: shape has rank %.0f but strides %.0f", "strides", rank, srank);
  double n = numel(shape, rank), span = strided_span(shape, strides, rank);
  float *x = a_f32(&a, 0, "x", n > 0 ? offset + span : 0);
  float *out = a_f32(&a, 4, "out", n);
  if (a.failed) return NULL;
  if (n > 0) op_copy_strided(x, offset, shape, strides, rank, out);
  return a_undefined(env);
}

// fill(out, value)
static napi_value js_fill(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 2, "fill")) return NULL;
  float *out = a_f32(&a, 0, "out", 0);
  double v = a_num(&a, 1, "value");
  if (a.failed) return NULL;
  size_t len = 0;
  napi_get_typedarray_info(env, a.argv[0], NULL, &len, NULL, NULL, NULL);
  op_fill(out, (long)len, (float)v);
  return a_undefined(env);
}

static int parse_binary(args_t *a, int i, binary_op *op) {
  char s[16];
  a_str(a, i, "op", s, sizeof s);
  if (a->failed) return 0;
  if (!strcmp(s, "add")) *op = BIN_ADD;
  else if (!strcmp(s, "sub")) *op = BIN_SUB;
  else if (!strcmp(s, "mul")) *op = BIN_MUL;
  else if (!strcmp(s, "div")) *op = BIN_DIV;
  else { a_throw(a, 1, "%s must be add|sub|mul|div", "op", 0, 0); return 0; }
  return 1;
}

static int parse_unary(args_t *a, int i, unary_op *op) {
  static const char *names[] = {"neg", "exp", "log", "sqrt", "silu", "relu", "gelu"};
  char s[16];
  a_str(a, i, "op", s, sizeof s);
  if (a->failed) return 0;
  for (int k = 0; k < 7; k++)
    if (!strcmp(s, names[k])) { *op = (unary_op)k; return 1; }
  a_throw(a, 1, "%s must be neg|exp|log|sqrt|silu|relu|gelu", "op", 0, 0);
  return 0;
}

// binary(op, a, aStrides, b, bStrides, out, shape)
static napi_value js_binary(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 7, "binary")) return NULL;
  binary_op op = BIN_ADD;
  parse_binary(&a, 0, &op);
  long as[OP_MAX_RANK], bs[OP_MAX_RANK], shape[OP_MAX_RANK];
  int ra = a_dims(&a, 2, "aStrides", as, 0), rb = a_dims(&a, 4, "bStrides", bs, 0), rank = a_dims(&a, 6, "shape", shape, 0);
  if (!a.failed && (ra != rank || rb != rank)) a_throw(&a, 1, "%s: ranks differ from shape's %.0f", "strides", rank, 0);
  double n = numel(shape, rank);
  float *pa = a_f32(&a, 1, "a", n > 0 ? strided_span(shape, as, rank) : 0);
  float *pb = a_f32(&a, 3, "b", n > 0 ? strided_span(shape, bs, rank) : 0);
  float *out = a_f32(&a, 5, "out", n);
  if (a.failed) return NULL;
  if (n > 0) op_binary(op, pa, as, pb, bs, out, shape, rank);
  return a_undefined(env);
}

// unary(op, x, out, n)
static napi_value js_unary(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 4, "unary")) return NULL;
  unary_op op = UN_NEG;
  parse_unary(&a, 0, &op);
  long n = a_int(&a, 3, "n", 0);
  float *x = a_f32(&a, 1, "x", n), *out = a_f32(&a, 2, "out", n);
  if (a.failed) return NULL;
  op_unary(op, x, out, n);
  return a_undefined(env);
}

// unaryBackward(op, x, dout, dx, n)
static napi_value js_unary_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 5, "unaryBackward")) return NULL;
  unary_op op = UN_NEG;
  parse_unary(&a, 0, &op);
  long n = a_int(&a, 4, "n", 0);
  float *x = a_f32(&a, 1, "x", n), *dout = a_f32(&a, 2, "dout", n), *dx = a_f32(&a, 3, "dx", n);
  if (a.failed) return NULL;
  op_unary_backward(op, x, dout, dx, n);
  return a_undefined(env);
}

// affine(x, out, n, alpha, beta)
static napi_value js_affine(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 5, "affine")) return NULL;
  long n = a_int(&a, 2, "n", 0);
  double alpha = a_num(&a, 3, "alpha"), beta = a_num(&a, 4, "beta");
  float *x = a_f32(&a, 0, "x", n), *out = a_f32(&a, 1, "out", n);
  if (a.failed) return NULL;
  op_affine(x, out, n, (float)alpha, (float)beta);
  return a_undefined(env);
}

// axpy(alpha, x, y, n)
static napi_value js_axpy(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 4, "axpy")) return NULL;
  double alpha = a_num(&a, 0, "alpha");
  long n = a_int(&a, 3, "n", 0);
  float *x = a_f32(&a, 1, "x", n), *y = a_f32(&a, 2, "y", n);
  if (a.failed) return NULL;
  op_axpy((float)alpha, x, y, n);
  return a_undefined(env);
}

// sumTo(x, inShape, out, outShape)
static napi_value js_sum_to(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 4, "sumTo")) return NULL;
  long in[OP_MAX_RANK], outs[OP_MAX_RANK];
  int ri = a_dims(&a, 1, "inShape", in, 0), ro = a_dims(&a, 3, "outShape", outs, 0);
  if (!a.failed && ri != ro) a_throw(&a, 1, "%s: rank %.0f differs from inShape's %.0f", "outShape", ro, ri);
  for (int d = 0; d < ri && !a.failed; d++)
    if (outs[d] != in[d] && outs[d] != 1) a_throw(&a, 1, "%s: dim %.0f must be 1 or %.0f", "outShape", d, in[d]);
  float *x = a_f32(&a, 0, "x", numel(in, ri)), *out = a_f32(&a, 2, "out", numel(outs, ro));
  if (a.failed) return NULL;
  if (op_sum_to(x, in, out, outs, ri) != 0) { napi_throw_error(env, NULL, "nomoat native sumTo: out of memory"); return NULL; }
  return a_undefined(env);
}

// matmul(a, b, c, batch, M, N, K, transA, transB, strideA, strideB, strideC, offA, offB, offC, accumulate, rowwise)
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 17, "matmul")) return NULL;
  gemm_params p = {0};
  p.batch = a_int(&a, 3, "batch", 0);
  p.M = a_int(&a, 4, "M", 0);
  p.N = a_int(&a, 5, "N", 0);
  p.K = a_int(&a, 6, "K", 0);
  p.transA = a_bool(&a, 7, "transA");
  p.transB = a_bool(&a, 8, "transB");
  p.strideA = a_int(&a, 9, "strideA", 0);
  p.strideB = a_int(&a, 10, "strideB", 0);
  p.strideC = a_int(&a, 11, "strideC", 0);
  long offA = a_int(&a, 12, "offA", 0), offB = a_int(&a, 13, "offB", 0), offC = a_int(&a, 14, "offC", 0);
  p.accumulate = a_bool(&a, 15, "accumulate");
  p.rowwise = a_bool(&a, 16, "rowwise");
  int empty = p.batch == 0 || p.M == 0 || p.N == 0;
  double last = (double)(p.batch > 0 ? p.batch - 1 : 0);
  double needA = empty || p.K == 0 ? 0 : offA + last * p.strideA + (double)p.M * p.K;
  double needB = empty || p.K == 0 ? 0 : offB + last * p.strideB + (double)p.K * p.N;
  double needC = empty ? 0 : offC + last * p.strideC + (double)p.M * p.N;
  float *A = a_f32(&a, 0, "a", needA), *B = a_f32(&a, 1, "b", needB), *C = a_f32(&a, 2, "c", needC);
  if (a.failed) return NULL;
  if (!empty) gemm(A + offA, B + offB, C + offC, &p);
  return a_undefined(env);
}

// matmulQuant(x, w, dtype, out, M, N, K, inference) and matmulQuantT(dy, w, dtype, dx, M, N, K); w is a Uint8Array
static napi_value quant_binding(napi_env env, napi_callback_info info, int transposed) {
  args_t a;
  if (!a_init(env, info, &a, transposed ? 7 : 8, transposed ? "matmulQuantT" : "matmulQuant")) return NULL;
  int inference = transposed ? 0 : a_bool(&a, 7, "inference");
  char name[16];
  quant_type q = Q_F16;
  a_str(&a, 2, "dtype", name, sizeof name);
  if (!a.failed && quant_parse(name, &q) != 0) a_throw(&a, 1, "%s must be f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k|iq4_nl|iq4_xs", "dtype", 0, 0);
  long M = a_int(&a, 4, "M", 0), N = a_int(&a, 5, "N", 0), K = a_int(&a, 6, "K", 0);
  if (!a.failed && K % quant_block_size(q))
    a_throw(&a, 1, "%s = %.0f is not a multiple of the dtype's block size %.0f", "K", K, quant_block_size(q));
  double wbytes = (double)N * (K / (a.failed ? 1 : quant_block_size(q))) * quant_block_bytes(q);
  const uint8_t *w = a_typed(&a, 1, "w", napi_uint8_array, "Uint8Array", wbytes);
  float *in = a_f32(&a, 0, transposed ? "dy" : "x", (double)M * (transposed ? N : K));
  float *out = a_f32(&a, 3, transposed ? "dx" : "out", (double)M * (transposed ? K : N));
  if (a.failed) return NULL;
  int rc = transposed ? op_matmul_quant_t(in, w, q, out, M, N, K) : op_matmul_quant(in, w, q, out, M, N, K, inference);
  if (rc != 0) { napi_throw_error(env, NULL, "nomoat native matmulQuant: out of memory"); return NULL; }
  return a_undefined(env);
}
static napi_value js_matmul_quant(napi_env env, napi_callback_info info) { return quant_binding(env, info, 0); }
static napi_value js_matmul_quant_t(napi_env env, napi_callback_info info) { return quant_binding(env, info, 1); }

void register_ops(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      REG("copyStrided", js_copy_strided), REG("fill", js_fill),   REG("binary", js_binary),
      REG("unary", js_unary),              REG("unaryBackward", js_unary_backward),
      REG("affine", js_affine),            REG("axpy", js_axpy),   REG("sumTo", js_sum_to),
      REG("matmul", js_matmul),            REG("matmulQuant", js_matmul_quant),
      REG("matmulQuantT", js_matmul_quant_t),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
