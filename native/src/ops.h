// Threaded drivers for every backend kernel (ops.c, attention.c): pointers are already validated by the addon.
#ifndef NOMOAT_OPS_H
#define NOMOAT_OPS_H
#include "nomoat.h"

#define OP_MAX_RANK 16

void op_fill(float *out, long n, float v);
void op_affine(const float *x, float *out, long n, float alpha, float beta);
void op_axpy(float alpha, const float *x, float *y, long n);
void op_unary(unary_op op, const float *x, float *out, long n);
void op_unary_backward(unary_op op, const float *x, const float *dout, float *dx, long n);
void op_swiglu_forward(const float *gate, const float *up, float *out, long n);
void op_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n);
void op_binary(binary_op op, const float *a, const long *as, const float *b, const long *bs, float *out,
               const long *shape, int rank);
void op_copy_strided(const float *x, long offset, const long *shape, const long *strides, int rank, float *out);
int op_sum_to(const float *x, const long *in_shape, float *out, const long *out_shape, int rank);
void op_embedding_forward(const float *table, const int32_t *ids, float *out, long N, long C);
void op_embedding_backward(const float *dout, const int32_t *ids, float *dtable, long N, long C);
void op_rmsnorm_forward(const float *x, const float *w, float *out, float *rstd, long N, long C, float eps);
int op_rmsnorm_backward(const float *dout, const float *x, const float *w, const float *rstd, float *dx, float *dw,
                        long N, long C);
void op_softmax_forward(const float *x, float *out, long N, long C);
void op_softmax_backward(const float *y, const float *dout, float *dx, long N, long C);
long op_ce_forward(const float *logits, const int32_t *targets, float *losses, float *lse, long N, long V, int ignore);
void op_ce_backward(const float *logits, const int32_t *targets, const float *lse, const float *dloss, float *dlogits,
                    long N, long V, int ignore);
void op_kl_forward(const float *s, const float *t, float *losses, long N, long V, float temp);
void op_kl_backward(const float *s, const float *t, const float *dloss, float *ds, long N, long V, float temp);
void op_dropout(const float *x, float *out, float *mask, long n, double p, uint32_t seed);
void op_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double b1, double b2, double eps,
              double wd, double step);
double op_sum_squares(const float *x, long n);
int op_attention_forward(const float *q, const float *k, const float *v, float *out, float *lse, const attn_params *p);
int op_attention_backward(const float *q, const float *k, const float *v, const float *out, const float *lse,
                          const float *dout, float *dq, float *dk, float *dv, const attn_params *p);
int op_rope(const float *x, float *out, long B, long T, long H, long D, const int32_t *positions, const float *inv_freq,
            int halves, int inverse);
typedef enum {
  Q_F16, Q_BF16, Q_Q8_0, Q_Q4_0, Q_Q4_K, Q_Q6_K,
  Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q2_K, Q_Q3_K, Q_Q5_K, Q_IQ4_NL, Q_IQ4_XS, Q_COUNT
} quant_type;
int quant_parse(const char *s, quant_type *q); // 0 on success
long quant_block_size(quant_type q);
long quant_block_bytes(quant_type q);
// inference (no gradient recorded): x is rounded as llama.cpp rounds it, bf16 weights rounding x to bf16 (ggml's
// vec_dot_type) and q8_0/q4_0 taking the int8 path at every M, not only decode-shaped ones; training keeps float
// activations
int op_matmul_quant(const float *x, const uint8_t *w, quant_type q, float *out, long M, long N, long K, int inference);
int op_matmul_quant_t(const float *dy, const uint8_t *w, quant_type q, float *dx, long M, long N, long K);
// out[N, C] = dequant(w)[ids[n], :] for a frozen table w[V, C] (ids already checked against V)
void op_gather_quant(const uint8_t *w, quant_type q, const int32_t *ids, float *out, long N, long C);
uint32_t op_hash_index(uint32_t seed, uint32_t index);
// out[rows[i], :] += (k · x[rows[i], :] · A[r, K]ᵀ) · B[N, r]ᵀ for i < G, each row in per-row dots (r ≤ 1024; −1 past)
int op_lowrank_rows(const float *x, const int32_t *rows, long G, const float *A, const float *B, float *out, long K, long N, long r,
                    float k);

#endif
