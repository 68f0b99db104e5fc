// N-API bindings for the fused model ops and the optimizer (argument order as in backend.ts, AttentionParams and
// AdamWParams flattened). Index arrays (ids, targets) are range-checked here: a bad id throws instead of reading
// outside the table.
#include <math.h>
#include "addon_args.h"

#define REG(name, fn) { name, 0, fn, 0, 0, 0, napi_enumerable, 0 }

static void check_ids(args_t *a, const int32_t *ids, long n, long limit, const char *name, int ignore, int has_ignore) {
  if (a->failed) return;
  for (long i = 0; i < n; i++) {
    if (has_ignore && ids[i] == ignore) continue;
    if (ids[i] < 0 || ids[i] >= limit) { a_throw(a, 1, "%s holds %.0f, outside [0, %.0f)", name, ids[i], (double)limit); return; }
  }
}

// embeddingForward(table, ids, out, N, C) / embeddingBackward(dout, ids, dtable, N, C)
static napi_value embedding(napi_env env, napi_callback_info info, int backward) {
  args_t a;
  if (!a_init(env, info, &a, 5, backward ? "embeddingBackward" : "embeddingForward")) return NULL;
  long N = a_int(&a, 3, "N", 0), C = a_int(&a, 4, "C", 0);
  int32_t *ids = a_i32(&a, 1, "ids", N);
  float *src = a_f32(&a, 0, backward ? "dout" : "table", backward ? (double)N * C : 0);
  float *dst = a_f32(&a, 2, backward ? "dtable" : "out", backward ? 0 : (double)N * C);
  if (a.failed) return NULL;
  size_t tlen = 0;
  napi_get_typedarray_info(env, a.argv[backward ? 2 : 0], NULL, &tlen, NULL, NULL, NULL);
  check_ids(&a, ids, N, C > 0 ? (long)(tlen / C) : 0, "ids", 0, 0);
  if (a.failed) return NULL;
  if (N > 0 && C > 0) {
    if (backward) op_embedding_backward(src, ids, dst, N, C);
    else op_embedding_forward(src, ids, dst, N, C);
  }
  return a_undefined(env);
}
static napi_value js_embedding_forward(napi_env env, napi_callback_info info) { return embedding(env, info, 0); }

// lowRankRows(x, rows, A, B, out, K, N, r, k): out[rows[i]] += (k · x[rows[i]] · Aᵀ) · Bᵀ
static napi_value js_lowrank_rows(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 9, "lowRankRows")) return NULL;
  long K = a_int(&a, 5, "K", 0), N = a_int(&a, 6, "N", 0), r = a_int(&a, 7, "r", 0);
  double k = a_num(&a, 8, "k");
  size_t G = 0;
  if (!a.failed) napi_get_typedarray_info(env, a.argv[1], NULL, &G, NULL, NULL, NULL);
  int32_t *rows = a_i32(&a, 1, "rows", (double)G);
  float *x = a_f32(&a, 0, "x", 0), *A = a_f32(&a, 2, "A", (double)r * K), *B = a_f32(&a, 3, "B", (double)N * r);
  float *out = a_f32(&a, 4, "out", 0);
  if (a.failed) return NULL;
  size_t xl = 0, ol = 0;
  napi_get_typedarray_info(env, a.argv[0], NULL, &xl, NULL, NULL, NULL);
  napi_get_typedarray_info(env, a.argv[4], NULL, &ol, NULL, NULL, NULL);
  long R = K > 0 && N > 0 ? (long)(xl / K < ol / N ? xl / K : ol / N) : 0;
  check_ids(&a, rows, (long)G, R, "rows", 0, 0);
  if (!a.failed && r > 1024) a_throw(&a, 1, "%s = %.0f: ranks above 1024 are not supported", "r", r, 0);
  if (a.failed) return NULL;
  op_lowrank_rows(x, rows, (long)G, A, B, out, K, N, r, (float)k);
  return a_undefined(env);
}

// gatherQuant(table, dtype, ids, out, N, C): out[N, C] = rows ids of a frozen table[V, C] stored in a byte dtype
static napi_value js_gather_quant(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 6, "gatherQuant")) return NULL;
  char name[16];
  quant_type q = Q_F16;
  a_str(&a, 1, "dtype", name, sizeof name);
  if (!a.failed && quant_parse(name, &q) != 0) a_throw(&a, 1, "%s must be f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k|iq4_nl|iq4_xs", "dtype", 0, 0);
  long N = a_int(&a, 4, "N", 0), C = a_int(&a, 5, "C", 0);
  if (!a.failed && C % quant_block_size(q))
    a_throw(&a, 1, "%s = %.0f is not a multiple of the dtype's block size %.0f", "C", C, quant_block_size(q));
  const uint8_t *table = a_typed(&a, 0, "table", napi_uint8_array, "Uint8Array", 0);
  int32_t *ids = a_i32(&a, 2, "ids", N);
  float *out = a_f32(&a, 3, "out", (double)N * C);
  if (a.failed) return NULL;
  size_t tlen = 0;
  napi_get_typedarray_info(env, a.argv[0], NULL, &tlen, NULL, NULL, NULL);
  long row_bytes = C / quant_block_size(q) * quant_block_bytes(q);
  check_ids(&a, ids, N, row_bytes > 0 ? (long)(tlen / row_bytes) : 0, "ids", 0, 0);
  if (a.failed) return NULL;
  if (N > 0 && C > 0) op_gather_quant(table, q, ids, out, N, C);
  return a_undefined(env);
}
static napi_value js_embedding_backward(napi_env env, napi_callback_info info) { return embedding(env, info, 1); }

// rmsnormForward(x, w, out, rstd, N, C, eps)
static napi_value js_rmsnorm_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 7, "rmsnormForward")) return NULL;
  long N = a_int(&a, 4, "N", 0), C = a_int(&a, 5, "C", 0);
  double eps = a_num(&a, 6, "eps"), NC = (double)N * C;
  float *x = a_f32(&a, 0, "x", NC), *w = a_f32(&a, 1, "w", C), *out = a_f32(&a, 2, "out", NC), *rstd = a_f32(&a, 3, "rstd", N);
  if (a.failed) return NULL;
  if (N > 0) op_rmsnorm_forward(x, w, out, rstd, N, C, (float)eps);
  return a_undefined(env);
}

// rmsnormBackward(dout, x, w, rstd, dx, dw, N, C)
static napi_value js_rmsnorm_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 8, "rmsnormBackward")) return NULL;
  long N = a_int(&a, 6, "N", 0), C = a_int(&a, 7, "C", 0);
  double NC = (double)N * C;
  float *dout = a_f32(&a, 0, "dout", NC), *x = a_f32(&a, 1, "x", NC), *w = a_f32(&a, 2, "w", C);
  float *rstd = a_f32(&a, 3, "rstd", N), *dx = a_f32(&a, 4, "dx", NC), *dw = a_f32(&a, 5, "dw", C);
  if (a.failed) return NULL;
  if (N > 0 && C > 0 && op_rmsnorm_backward(dout, x, w, rstd, dx, dw, N, C) != 0) {
    napi_throw_error(env, NULL, "nomoat native rmsnormBackward: out of memory");
    return NULL;
  }
  return a_undefined(env);
}

// rope(x, out, B, T, H, D, positions, invFreq, mode, inverse)
static napi_value js_rope(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 10, "rope")) return NULL;
  long B = a_int(&a, 2, "B", 0), T = a_int(&a, 3, "T", 0), H = a_int(&a, 4, "H", 0), D = a_int(&a, 5, "D", 0);
  if (!a.failed && D % 2) a_throw(&a, 1, "%s must be even, got %.0f", "D", D, 0);
  char mode[16];
  a_str(&a, 8, "mode", mode, sizeof mode);
  if (!a.failed && strcmp(mode, "interleaved") && strcmp(mode, "halves")) a_throw(&a, 1, "%s must be interleaved|halves", "mode", 0, 0);
  int inverse = a_bool(&a, 9, "inverse");
  double n = (double)B * T * H * D;
  float *x = a_f32(&a, 0, "x", n), *out = a_f32(&a, 1, "out", n), *inv = a_f32(&a, 7, "invFreq", D / 2);
  int32_t *pos = a_i32(&a, 6, "positions", T);
  if (a.failed) return NULL;
  if (n > 0 && op_rope(x, out, B, T, H, D, pos, inv, !strcmp(mode, "halves"), inverse) != 0) {
    napi_throw_error(env, NULL, "nomoat native rope: out of memory");
    return NULL;
  }
  return a_undefined(env);
}

// reads B, Tq, Tk, H, G, D, scale, qOffset, causal starting at argument i
static void attn_args(args_t *a, int i, attn_params *p) {
  p->B = (int)a_int(a, i, "B", 0);
  p->Tq = (int)a_int(a, i + 1, "Tq", 0);
  p->Tk = (int)a_int(a, i + 2, "Tk", 0);
  p->H = (int)a_int(a, i + 3, "H", 1);
  p->G = (int)a_int(a, i + 4, "G", 1);
  p->D = (int)a_int(a, i + 5, "D", 1);
  p->scale = (float)a_num(a, i + 6, "scale");
  p->qOffset = (int)a_int(a, i + 7, "qOffset", -2147483647L);
  p->causal = a_bool(a, i + 8, "causal");
  if (a->failed) return;
  if (p->H % p->G) a_throw(a, 1, "%s: H = %.0f is not a multiple of G = %.0f", "G", p->H, p->G);
  else if (p->D > ATT_DMAX) a_throw(a, 1, "%s = %.0f exceeds the supported head dim %.0f", "D", p->D, ATT_DMAX);
}

// attentionForward(q, k, v, out, lse, B, Tq, Tk, H, G, D, scale, qOffset, causal)
static napi_value js_attention_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 14, "attentionForward")) return NULL;
  attn_params p;
  attn_args(&a, 5, &p);
  double nq = (double)p.B * p.Tq * p.H * p.D, nk = (double)p.B * p.Tk * p.G * p.D;
  float *q = a_f32(&a, 0, "q", nq), *k = a_f32(&a, 1, "k", nk), *v = a_f32(&a, 2, "v", nk);
  float *out = a_f32(&a, 3, "out", nq), *lse = a_f32(&a, 4, "lse", (double)p.B * p.H * p.Tq);
  if (a.failed) return NULL;
  if (op_attention_forward(q, k, v, out, lse, &p) != 0) {
    napi_throw_error(env, NULL, "nomoat native attentionForward: out of memory");
    return NULL;
  }
  return a_undefined(env);
}

// attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, B, Tq, Tk, H, G, D, scale, qOffset, causal)
static napi_value js_attention_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 18, "attentionBackward")) return NULL;
  attn_params p;
  attn_args(&a, 9, &p);
  double nq = (double)p.B * p.Tq * p.H * p.D, nk = (double)p.B * p.Tk * p.G * p.D;
  float *q = a_f32(&a, 0, "q", nq), *k = a_f32(&a, 1, "k", nk), *v = a_f32(&a, 2, "v", nk);
  float *out = a_f32(&a, 3, "out", nq), *lse = a_f32(&a, 4, "lse", (double)p.B * p.H * p.Tq);
  float *dout = a_f32(&a, 5, "dout", nq), *dq = a_f32(&a, 6, "dq", nq), *dk = a_f32(&a, 7, "dk", nk), *dv = a_f32(&a, 8, "dv", nk);
  if (a.failed) return NULL;
  if (op_attention_backward(q, k, v, out, lse, dout, dq, dk, dv, &p) != 0) {
    napi_throw_error(env, NULL, "nomoat native attentionBackward: out of memory");
    return NULL;
  }
  return a_undefined(env);
}

// swigluForward(gate, up, out, n)
static napi_value js_swiglu_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 4, "swigluForward")) return NULL;
  long n = a_int(&a, 3, "n", 0);
  float *g = a_f32(&a, 0, "gate", n), *u = a_f32(&a, 1, "up", n), *o = a_f32(&a, 2, "out", n);
  if (a.failed) return NULL;
  op_swiglu_forward(g, u, o, n);
  return a_undefined(env);
}

// swigluBackward(gate, up, dout, dgate, dup, n)
static napi_value js_swiglu_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 6, "swigluBackward")) return NULL;
  long n = a_int(&a, 5, "n", 0);
  float *g = a_f32(&a, 0, "gate", n), *u = a_f32(&a, 1, "up", n), *d = a_f32(&a, 2, "dout", n);
  float *dg = a_f32(&a, 3, "dgate", n), *du = a_f32(&a, 4, "dup", n);
  if (a.failed) return NULL;
  op_swiglu_backward(g, u, d, dg, du, n);
  return a_undefined(env);
}

// softmaxForward(x, out, N, C) / softmaxBackward(y, dout, dx, N, C)
static napi_value js_softmax_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 4, "softmaxForward")) return NULL;
  long N = a_int(&a, 2, "N", 0), C = a_int(&a, 3, "C", 1);
  float *x = a_f32(&a, 0, "x", (double)N * C), *out = a_f32(&a, 1, "out", (double)N * C);
  if (a.failed) return NULL;
  if (N > 0) op_softmax_forward(x, out, N, C);
  return a_undefined(env);
}
static napi_value js_softmax_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 5, "softmaxBackward")) return NULL;
  long N = a_int(&a, 3, "N", 0), C = a_int(&a, 4, "C", 1);
  double NC = (double)N * C;
  float *y = a_f32(&a, 0, "y", NC), *d = a_f32(&a, 1, "dout", NC), *dx = a_f32(&a, 2, "dx", NC);
  if (a.failed) return NULL;
  if (N > 0) op_softmax_backward(y, d, dx, N, C);
  return a_undefined(env);
}

// crossEntropyForward(logits, targets, losses, lse, N, V, ignoreIndex) → counted rows
static napi_value js_ce_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 7, "crossEntropyForward")) return NULL;
  long N = a_int(&a, 4, "N", 0), V = a_int(&a, 5, "V", 1);
  long ignore = a_int(&a, 6, "ignoreIndex", -2147483647L);
  float *x = a_f32(&a, 0, "logits", (double)N * V), *losses = a_f32(&a, 2, "losses", N), *lse = a_f32(&a, 3, "lse", N);
  int32_t *t = a_i32(&a, 1, "targets", N);
  check_ids(&a, t, N, V, "targets", (int)ignore, 1);
  if (a.failed) return NULL;
  return a_number(env, N > 0 ? (double)op_ce_forward(x, t, losses, lse, N, V, (int)ignore) : 0.0);
}

// crossEntropyBackward(logits, targets, lse, dloss, dlogits, N, V, ignoreIndex)
static napi_value js_ce_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 8, "crossEntropyBackward")) return NULL;
  long N = a_int(&a, 5, "N", 0), V = a_int(&a, 6, "V", 1);
  long ignore = a_int(&a, 7, "ignoreIndex", -2147483647L);
  float *x = a_f32(&a, 0, "logits", (double)N * V), *lse = a_f32(&a, 2, "lse", N), *dl = a_f32(&a, 3, "dloss", N);
  float *dx = a_f32(&a, 4, "dlogits", (double)N * V);
  int32_t *t = a_i32(&a, 1, "targets", N);
  check_ids(&a, t, N, V, "targets", (int)ignore, 1);
  if (a.failed) return NULL;
  if (N > 0) op_ce_backward(x, t, lse, dl, dx, N, V, (int)ignore);
  return a_undefined(env);
}

// klDivForward(student, teacher, losses, N, V, temperature)
static napi_value js_kl_forward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 6, "klDivForward")) return NULL;
  long N = a_int(&a, 3, "N", 0), V = a_int(&a, 4, "V", 1);
  double temp = a_num(&a, 5, "temperature");
  if (!a.failed && !(temp > 0)) a_throw(&a, 1, "%s must be > 0, got %g", "temperature", temp, 0);
  float *s = a_f32(&a, 0, "student", (double)N * V), *t = a_f32(&a, 1, "teacher", (double)N * V), *l = a_f32(&a, 2, "losses", N);
  if (a.failed) return NULL;
  if (N > 0) op_kl_forward(s, t, l, N, V, (float)temp);
  return a_undefined(env);
}

// klDivBackward(student, teacher, dloss, dstudent, N, V, temperature)
static napi_value js_kl_backward(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 7, "klDivBackward")) return NULL;
  long N = a_int(&a, 4, "N", 0), V = a_int(&a, 5, "V", 1);
  double temp = a_num(&a, 6, "temperature");
  if (!a.failed && !(temp > 0)) a_throw(&a, 1, "%s must be > 0, got %g", "temperature", temp, 0);
  float *s = a_f32(&a, 0, "student", (double)N * V), *t = a_f32(&a, 1, "teacher", (double)N * V);
  float *dl = a_f32(&a, 2, "dloss", N), *ds = a_f32(&a, 3, "dstudent", (double)N * V);
  if (a.failed) return NULL;
  if (N > 0) op_kl_backward(s, t, dl, ds, N, V, (float)temp);
  return a_undefined(env);
}

// dropoutForward(x, out, mask, n, p, seed); seed is taken as uint32 (seed >>> 0 in TS)
static napi_value js_dropout(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 6, "dropoutForward")) return NULL;
  long n = a_int(&a, 3, "n", 0);
  if (!a.failed && n > 4294967296L) a_throw(&a, 1, "%s = %.0f exceeds 2^32 (the hash counter)", "n", n, 0);
  double p = a_num(&a, 4, "p");
  long seed = a_int(&a, 5, "seed", 0);
  float *x = a_f32(&a, 0, "x", n), *out = a_f32(&a, 1, "out", n), *mask = a_f32(&a, 2, "mask", n);
  if (a.failed) return NULL;
  op_dropout(x, out, mask, n, p, (uint32_t)seed);
  return a_undefined(env);
}

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step)
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 11, "adamw")) return NULL;
  long n = a_int(&a, 4, "n", 0);
  double lr = a_num(&a, 5, "lr"), b1 = a_num(&a, 6, "beta1"), b2 = a_num(&a, 7, "beta2");
  double eps = a_num(&a, 8, "eps"), wd = a_num(&a, 9, "weightDecay");
  long step = a_int(&a, 10, "step", 1);
  float *p = a_f32(&a, 0, "param", n), *g = a_f32(&a, 1, "grad", n), *m = a_f32(&a, 2, "m", n), *v = a_f32(&a, 3, "v", n);
  if (a.failed) return NULL;
  op_adamw(p, g, m, v, n, lr, b1, b2, eps, wd, (double)step);
  return a_undefined(env);
}

// sumSquares(x, n) → Σ x² (double)
static napi_value js_sum_squares(napi_env env, napi_callback_info info) {
  args_t a;
  if (!a_init(env, info, &a, 2, "sumSquares")) return NULL;
  long n = a_int(&a, 1, "n", 0);
  float *x = a_f32(&a, 0, "x", n);
  if (a.failed) return NULL;
  return a_number(env, op_sum_squares(x, n));
}

void register_model_ops(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      REG("embeddingForward", js_embedding_forward),   REG("embeddingBackward", js_embedding_backward),
      REG("gatherQuant", js_gather_quant),       REG("lowRankRows", js_lowrank_rows),
      REG("rmsnormForward", js_rmsnorm_forward),       REG("rmsnormBackward", js_rmsnorm_backward),
      REG("rope", js_rope),                            REG("attentionForward", js_attention_forward),
      REG("attentionBackward", js_attention_backward), REG("swigluForward", js_swiglu_forward),
      REG("swigluBackward", js_swiglu_backward),       REG("softmaxForward", js_softmax_forward),
      REG("softmaxBackward", js_softmax_backward),     REG("crossEntropyForward", js_ce_forward),
      REG("crossEntropyBackward", js_ce_backward),     REG("klDivForward", js_kl_forward),
      REG("klDivBackward", js_kl_backward),            REG("dropoutForward", js_dropout),
      REG("adamw", js_adamw),                          REG("sumSquares", js_sum_squares),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
