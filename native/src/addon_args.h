// Argument readers for the N-API bindings: each checks the JS type and the size a kernel will touch, and throws a
// clear TypeError/RangeError naming the function and argument, so a bad call never reaches C memory.
#ifndef NOMOAT_ADDON_ARGS_H
#define NOMOAT_ADDON_ARGS_H
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include "ops.h"

typedef struct {
  napi_env env;
  napi_value argv[24];
  size_t argc;
  const char *fn;
  int failed;
} args_t;

static void a_throw(args_t *a, int range, const char *fmt, const char *name, double x, double y) {
  if (a->failed) return;
  char msg[320], detail[240];
  snprintf(detail, sizeof detail, fmt, name, x, y);
  snprintf(msg, sizeof msg, "nomoat native %s: %s", a->fn, detail);
  if (range) napi_throw_range_error(a->env, NULL, msg);
  else napi_throw_type_error(a->env, NULL, msg);
  a->failed = 1;
}

static int a_init(napi_env env, napi_callback_info info, args_t *a, size_t expected, const char *fn) {
  a->env = env;
  a->fn = fn;
  a->failed = 0;
  a->argc = 24;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) a->argc = 0;
  if (a->argc < expected) a_throw(a, 0, "%s: expected %.0f arguments, got %.0f", "arguments", (double)expected, (double)a->argc);
  return !a->failed;
}

static double a_num(args_t *a, int i, const char *name) {
  double d = 0;
  if (a->failed) return 0;
  if (napi_get_value_double(a->env, a->argv[i], &d) != napi_ok) a_throw(a, 0, "%s must be a number", name, 0, 0);
  return d;
}

// An integer ≥ min (exact, no fraction).
static long a_int(args_t *a, int i, const char *name, long min) {
  double d = a_num(a, i, name);
  if (a->failed) return 0;
  if (d != (double)(long)d || d > 9007199254740991.0) a_throw(a, 1, "%s must be an integer, got %g", name, d, 0);
  else if (d < (double)min) a_throw(a, 1, "%s must be ≥ %g", name, (double)min, 0);
  return (long)d;
}

static int a_bool(args_t *a, int i, const char *name) {
  bool b = false;
  if (a->failed) return 0;
  if (napi_get_value_bool(a->env, a->argv[i], &b) != napi_ok) a_throw(a, 0, "%s must be a boolean", name, 0, 0);
  return b;
}

static void *a_typed(args_t *a, int i, const char *name, napi_typedarray_type want, const char *want_name, double need) {
  if (a->failed) return NULL;
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  napi_is_typedarray(a->env, a->argv[i], &is);
  if (!is || napi_get_typedarray_info(a->env, a->argv[i], &type, &len, &data, NULL, NULL) != napi_ok || type != want) {
    char fmt[96];
    snprintf(fmt, sizeof fmt, "%%s must be a %s", want_name);
    a_throw(a, 0, fmt, name, 0, 0);
    return NULL;
  }
  if ((double)len < need) {
    a_throw(a, 1, "%s has %.0f elements but the call needs %.0f (freed buffers have 0)", name, (double)len, need);
    return NULL;
  }
  // a zero-length view may have a NULL data pointer; kernels never touch it then
  static float dummy[16];
  return data ? data : (void *)dummy;
}

static float *a_f32(args_t *a, int i, const char *name, double need) {
  return a_typed(a, i, name, napi_float32_array, "Float32Array", need);
}
static int32_t *a_i32(args_t *a, int i, const char *name, double need) {
  return a_typed(a, i, name, napi_int32_array, "Int32Array", need);
}

// An array of integers (shape or strides), at most OP_MAX_RANK long, each ≥ min.
static int a_dims(args_t *a, int i, const char *name, long *dims, long min) {
  if (a->failed) return 0;
  bool is = false;
  uint32_t n = 0;
  napi_is_array(a->env, a->argv[i], &is);
  if (!is || napi_get_array_length(a->env, a->argv[i], &n) != napi_ok) {
    a_throw(a, 0, "%s must be an array of integers", name, 0, 0);
    return 0;
  }
  if (n > OP_MAX_RANK) {
    a_throw(a, 1, "%s has rank %.0f, more than %.0f", name, n, OP_MAX_RANK);
    return 0;
  }
  for (uint32_t d = 0; d < n; d++) {
    napi_value v;
    double x = 0;
    if (napi_get_element(a->env, a->argv[i], d, &v) != napi_ok || napi_get_value_double(a->env, v, &x) != napi_ok ||
        x != (double)(long)x || x < (double)min) {
      a_throw(a, 1, "%s[%.0f] must be an integer ≥ %g", name, d, (double)min);
      return 0;
    }
    dims[d] = (long)x;
  }
  return (int)n;
}

static void a_str(args_t *a, int i, const char *name, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = 0;
  if (a->failed) return;
  if (napi_get_value_string_utf8(a->env, a->argv[i], buf, cap, &len) != napi_ok) a_throw(a, 0, "%s must be a string", name, 0, 0);
}

static napi_value a_undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
static napi_value a_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

#endif
