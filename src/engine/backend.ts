// The backend contract: the narrow boundary between the TypeScript engine and the code that does arithmetic.
//
// Two implementations exist: `reference` (plain TypeScript, written for clarity, the oracle; it also runs in
// float64 for finite-difference gradient checks) and `native` (C through N-API, SIMD chosen at run time, a
// thread pool). Everything above this file (tensors, autograd, models, training) is backend-agnostic.
//
// Conventions for every kernel:
// - Buffers are flat, row-major and contiguous unless a stride argument says otherwise. Offsets are in elements.
// - Outputs are written, never read, unless the kernel says `accumulate`.
// - Kernels never allocate tensors and never keep references to their arguments after returning.
// - Letters used in shape comments: B batch, T time (sequence), H query heads, G key/value heads, D head dim,
//   C channels, V vocabulary, N rows, M/N/K matmul dims.

import type { DType } from './dtype.js';

/** A buffer of numbers. Native backends use Float32Array only; the reference backend may run in float64. */
export type Buf = Float32Array | Float64Array;

/** Elementwise binary operations with broadcasting. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

/** Elementwise unary operations (the ones not fused elsewhere). */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'silu' | 'relu' | 'gelu';

/** RoPE layouts used by real checkpoints. `interleaved`: pairs (x0,x1),(x2,x3)… as in GGUF/llama2.c/Meta.
 *  `halves`: pairs (x_i, x_{i+D/2}) as in Hugging Face's rotate_half. */
export type RopeMode = 'interleaved' | 'halves';

export interface MatmulParams {
  batch: number; // number of independent products
  M: number;
  N: number;
  K: number;
  /** A is stored [K, M] (so op(A) = Aᵀ) instead of [M, K]. */
  transA: boolean;
  /** B is stored [N, K] (so op(B) = Bᵀ) instead of [K, N]. Linear layers use this: y = x Wᵀ. */
  transB: boolean;
  /** element strides between consecutive batch items; 0 broadcasts one matrix to every batch item */
  strideA: number;
  strideB: number;
  strideC: number;
  offA: number;
  offB: number;
  offC: number;
  /** C += op(A) op(B) instead of C = op(A) op(B). */
  accumulate: boolean;
  /**
   * Each row of C is computed as a one-row product computes it, bit for bit, whatever M is (batch invariance: a
   * server's rows do not depend on what shares their batch). For decode-shaped products: the native backend then
   * dots each row of B with every row of A instead of packing a GEMM.
   */
  rowwise?: boolean;
}

export interface AttentionParams {
  B: number;
  Tq: number; // query positions
  Tk: number; // key positions (≥ Tq with a KV cache)
  H: number; // query heads
  G: number; // key/value heads; H % G == 0 (grouped-query attention)
  D: number; // head dim
  scale: number; // usually 1/sqrt(D)
  /** position of query 0 in the key timeline; query i may attend keys 0..qOffset+i (causal). */
  qOffset: number;
  causal: boolean;
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // 1-based, for bias correction
}

/**
 * The contract. Every method is synchronous. All shapes are given explicitly; buffers carry no shape.
 * Each forward kernel that has a gradient is paired with its backward kernel right below it.
 */
export interface Backend {
  readonly name: string;
  /** Fresh zero-filled buffer of n elements. Native memory: it must be returned through `free`. */
  alloc(n: number): Buf;
  /**
   * Fresh buffer of n elements with unspecified contents, for an output that a kernel writes in full before anything
   * reads it (skips alloc's zero fill). Never for `accumulate` outputs. Freed through `free` like alloc's.
   */
  allocUninit(n: number): Buf;
  /** Release a buffer from `alloc`. Afterwards the buffer must not be used (native detaches it: length 0). */
  free(buf: Buf): void;
  /** Bytes currently allocated through `alloc` and not freed (leak checks). */
  liveBytes(): number;
  /** Threads used by kernels (1 for the reference). */
  setThreads(n: number): void;
  getThreads(): number;

  // ---- data movement -------------------------------------------------------------------------------------
  /** out[i…] = x[offset + Σ idx_d * strides[d]] over `shape` (strided gather into contiguous). */
  copyStrided(x: Buf, offset: number, shape: readonly number[], strides: readonly number[], out: Buf): void;
  fill(out: Buf, value: number): void;

  // ---- elementwise -------------------------------------------------------------------------------------------
  /** out[shape] = a ∘ b with broadcasting expressed as strides (stride 0 on broadcast dims); out is contiguous. */
  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[], out: Buf, shape: readonly number[]): void;
  /** out = op(x), n elements. */
  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void;
  /** dx = dout * op'(x) (x is the forward input), n elements. */
  unaryBackward(op: UnaryOp, x: Buf, dout: Buf, dx: Buf, n: number): void;
  /** out = alpha * x + beta (n elements). */
  affine(x: Buf, out: Buf, n: number, alpha: number, beta: number): void;
  /** y += alpha * x (n elements). */
  axpy(alpha: number, x: Buf, y: Buf, n: number): void;

  // ---- reductions --------------------------------------------------------------------------------------------
  /** out[outShape] = Σ x[inShape] over the dims where outShape has 1 (same rank; keepdims form). */
  sumTo(x: Buf, inShape: readonly number[], out: Buf, outShape: readonly number[]): void;

  // ---- matmul ------------------------------------------------------------------------------------------------
  /** C[b] (+)= op(A[b]) · op(B[b]); C is [M, N] per batch item. */
  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void;

  /**
   * out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ, for a frozen weight w stored row by row in a byte dtype
   * (f16, bf16, q8_0, q4_0, q4_k, q6_k; ggml block layouts). No dequantized copy of w is made. q8_0/q4_0 products
   * of up to INT8_DOT_MAX_M rows quantize x to int8 blocks first (as llama.cpp). `inference` (no gradient recorded)
   * rounds x as llama.cpp does at every M: int8 blocks for q8_0/q4_0, bf16 for bf16 weights (ggml's vec_dot_type);
   * training keeps float activations, which its gradients are checked against.
   */
  matmulQuant(x: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, out: Buf, M: number, N: number, K: number, inference?: boolean): void;
  /** dx[M, K] = dy[M, N] · dequant(w)[N, K] (the input gradient through the frozen weight). */
  matmulQuantT(dy: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, dx: Buf, M: number, N: number, K: number): void;
  /**
   * out[N, C] = dequant(table)[ids[n], :] for a frozen table[V, C] in a byte dtype (a token embedding kept as
   * stored, also the tied LM head). Ids out of range are the caller's bug (checked in TS).
   */
  gatherQuant(table: Uint8Array, dtype: Exclude<DType, 'f32'>, ids: Int32Array, out: Buf, N: number, C: number): void;
  /**
   * out[rows[i], :] += (k · x[rows[i], :] · A[r, K]ᵀ) · B[N, r]ᵀ for every i: one low-rank delta (a LoRA module) on
   * the rows of a server's batch that use it. Each row is computed as if alone (its bits never depend on the other
   * rows); x is [R, K] and out [R, N] for some R > max(rows). Rows out of range are the caller's bug.
   */
  lowRankRows(x: Buf, rows: Int32Array, A: Buf, B: Buf, out: Buf, K: number, N: number, r: number, k: number): void;

  // ---- model ops (fused) -------------------------------------------------------------------------------------
  /** out[N, C] = table[ids[n], C]. Ids out of range are the caller's bug (checked in TS). */
  embeddingForward(table: Buf, ids: Int32Array, out: Buf, N: number, C: number): void;
  /** dtable[ids[n], :] += dout[n, :] (scatter-add; duplicates accumulate in order). */
  embeddingBackward(dout: Buf, ids: Int32Array, dtable: Buf, N: number, C: number): void;

  /** out[N, C] = x / rms(x) * w; rstd[N] saved for backward. */
  rmsnormForward(x: Buf, w: Buf, out: Buf, rstd: Buf, N: number, C: number, eps: number): void;
  /** dx[N, C] = …; dw[C] += Σ_n dout * x * rstd (accumulates). */
  rmsnormBackward(dout: Buf, x: Buf, w: Buf, rstd: Buf, dx: Buf, dw: Buf, N: number, C: number): void;

  /**
   * Rotary embedding on x[B, T, H, D] (H heads of D dims), positions[T] (absolute positions of the T rows),
   * invFreq[D/2] (per-pair inverse frequencies; Llama-3 scaling is already folded in).
   * `inverse` rotates by −angle: that is the backward (the rotation is orthogonal).
   */
  rope(x: Buf, out: Buf, B: number, T: number, H: number, D: number, positions: Int32Array, invFreq: Buf, mode: RopeMode, inverse: boolean): void;

  /**
   * Fused causal self-attention with grouped-query heads, streaming softmax (never a full T×T matrix).
   * q[B, Tq, H, D], k/v[B, Tk, G, D] → out[B, Tq, H, D], lse[B, H, Tq] (log-sum-exp of the scaled scores,
   * kept for backward).
   */
  attentionForward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, p: AttentionParams): void;
  /** Gradients of attentionForward, recomputing probabilities from lse. dq/dk/dv are written (not accumulated). */
  attentionBackward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, dout: Buf, dq: Buf, dk: Buf, dv: Buf, p: AttentionParams): void;

  /** out = silu(gate) * up, n elements. */
  swigluForward(gate: Buf, up: Buf, out: Buf, n: number): void;
  swigluBackward(gate: Buf, up: Buf, dout: Buf, dgate: Buf, dup: Buf, n: number): void;

  /** out[N, C] = softmax over the last dim. */
  softmaxForward(x: Buf, out: Buf, N: number, C: number): void;
  /** dx = y * (dout − Σ dout·y). */
  softmaxBackward(y: Buf, dout: Buf, dx: Buf, N: number, C: number): void;

  /**
   * Cross-entropy fused with log-softmax: losses[N] = lse(logits[n]) − logits[n, targets[n]], 0 where
   * targets[n] == ignoreIndex; lse[N] saved. Returns the number of counted (non-ignored) rows.
   */
  crossEntropyForward(logits: Buf, targets: Int32Array, losses: Buf, lse: Buf, N: number, V: number, ignoreIndex: number): number;
  /** dlogits[n] = (softmax(logits[n]) − onehot(targets[n])) * dloss[n]; zero rows where ignored. */
  crossEntropyBackward(logits: Buf, targets: Int32Array, lse: Buf, dloss: Buf, dlogits: Buf, N: number, V: number, ignoreIndex: number): void;

  /**
   * Distillation loss per row: losses[N] = T² · KL(softmax(teacher/T) ‖ softmax(student/T)).
   * Teacher logits are constants (no gradient).
   */
  klDivForward(student: Buf, teacher: Buf, losses: Buf, N: number, V: number, temperature: number): void;
  /** dstudent[n] = T · (softmax(student/T) − softmax(teacher/T)) * dloss[n]. */
  klDivBackward(student: Buf, teacher: Buf, dloss: Buf, dstudent: Buf, N: number, V: number, temperature: number): void;

  /**
   * Dropout: mask[i] = keep ? 1/(1−p) : 0, decided by a counter-based hash of (seed, i) that every backend
   * computes identically (see `dropoutKeep` in reference/rng.ts); out = x * mask.
   */
  dropoutForward(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number): void;

  // ---- optimizer -------------------------------------------------------------------------------------------
  /** One AdamW step (decoupled weight decay) on n parameters; m and v are updated in place. */
  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, n: number, p: AdamWParams): void;
  /** Σ x², for gradient clipping, accumulated in double. */
  sumSquares(x: Buf, n: number): number;
}
