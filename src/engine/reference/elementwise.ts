// Reference data-movement, elementwise and reduction kernels: naive loops over flat row-major buffers.

import type { BinaryOp, Buf, UnaryOp } from '../backend.js';
import { dropoutThreshold, hashIndex } from '../rng.js';
import { needCount, needLength, scratch, shapeSize, store } from './check.js';

/** Offset of the flat row-major index `i` of `shape` into a buffer with element `strides`. */
function stridedOffset(i: number, shape: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    const idx = i % shape[d];
    i = (i - idx) / shape[d];
    off += idx * strides[d];
  }
  return off;
}

function needRank(kernel: string, shape: readonly number[], strides: readonly number[], arg: string): void {
  if (strides.length !== shape.length) {
    throw new RangeError(`reference ${kernel}: ${arg} has ${strides.length} strides for a rank-${shape.length} shape`);
  }
}

// ---- data movement -----------------------------------------------------------------------------------------

/** out[i…] = x[offset + Σ idx_d · strides[d]] for every multi-index of `shape`; out is contiguous. */
export function copyStrided(x: Buf, offset: number, shape: readonly number[], strides: readonly number[], out: Buf): void {
  needRank('copyStrided', shape, strides, 'strides');
  const n = shapeSize(shape);
  needLength('copyStrided', 'out', out, n);
  for (let i = 0; i < n; i++) out[i] = x[offset + stridedOffset(i, shape, strides)];
}

export function fill(out: Buf, value: number): void {
  out.fill(value);
}

// ---- elementwise -------------------------------------------------------------------------------------------

function applyBinary(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add':
      return a + b;
    case 'sub':
      return a - b;
    case 'mul':
      return a * b;
    case 'div':
      return a / b;
  }
}

/** out[shape] = a ∘ b; a and b are read through their strides (0 on broadcast dims), out is contiguous. */
export function binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[], out: Buf, shape: readonly number[]): void {
  needRank('binary', shape, aStrides, 'aStrides');
  needRank('binary', shape, bStrides, 'bStrides');
  const n = shapeSize(shape);
  needLength('binary', 'out', out, n);
  for (let i = 0; i < n; i++) {
    out[i] = applyBinary(op, a[stridedOffset(i, shape, aStrides)], b[stridedOffset(i, shape, bStrides)]);
  }
}

/** σ(x) = 1 / (1 + e^−x), written so that neither branch overflows. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

// GELU is the tanh approximation (GPT-2, llm.c, ggml's default): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
// The contract does not say which GELU; this one needs no erf, so every backend can compute it the same way.
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

function applyUnary(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg':
      return -x;
    case 'exp':
      return Math.exp(x);
    case 'log':
      return Math.log(x);
    case 'sqrt':
      return Math.sqrt(x);
    case 'silu':
      return x * sigmoid(x);
    case 'relu':
      return x > 0 ? x : 0;
    case 'gelu':
      return 0.5 * x * (1 + Math.tanh(GELU_C * (x + GELU_A * x * x * x)));
  }
}

/** op'(x), the derivative of each unary op at its forward input x. */
function unaryDerivative(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg':
      return -1;
    case 'exp':
      return Math.exp(x);
    case 'log':
      return 1 / x;
    case 'sqrt':
      return 0.5 / Math.sqrt(x);
    case 'silu': {
      // d/dx x·σ(x) = σ(x) + x·σ(x)·(1 − σ(x))
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case 'relu':
      return x > 0 ? 1 : 0; // the subgradient at 0 is taken as 0
    case 'gelu': {
      // u = c·(x + a·x³), t = tanh(u): d/dx 0.5·x·(1 + t) = 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3a·x²)
      const t = Math.tanh(GELU_C * (x + GELU_A * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * x * x);
    }
  }
}

/** out[n] = op(x[n]). */
export function unary(op: UnaryOp, x: Buf, out: Buf, n: number): void {
  needCount('unary', 'n', n);
  needLength('unary', 'x', x, n);
  needLength('unary', 'out', out, n);
  for (let i = 0; i < n; i++) out[i] = applyUnary(op, x[i]);
}

/** dx[n] = dout[n] · op'(x[n]). */
export function unaryBackward(op: UnaryOp, x: Buf, dout: Buf, dx: Buf, n: number): void {
  needCount('unaryBackward', 'n', n);
  needLength('unaryBackward', 'x', x, n);
  needLength('unaryBackward', 'dout', dout, n);
  needLength('unaryBackward', 'dx', dx, n);
  for (let i = 0; i < n; i++) dx[i] = dout[i] * unaryDerivative(op, x[i]);
}

/** out[n] = alpha · x[n] + beta. */
export function affine(x: Buf, out: Buf, n: number, alpha: number, beta: number): void {
  needLength('affine', 'x', x, n);
  needLength('affine', 'out', out, n);
  for (let i = 0; i < n; i++) out[i] = alpha * x[i] + beta;
}

/** y[n] += alpha · x[n]. */
export function axpy(alpha: number, x: Buf, y: Buf, n: number): void {
  needLength('axpy', 'x', x, n);
  needLength('axpy', 'y', y, n);
  for (let i = 0; i < n; i++) y[i] += alpha * x[i];
}

// ---- reductions --------------------------------------------------------------------------------------------

/** out[outShape] = Σ x[inShape] over the dims where outShape is 1 and inShape is not (keepdims form). */
export function sumTo(x: Buf, inShape: readonly number[], out: Buf, outShape: readonly number[]): void {
  if (inShape.length !== outShape.length) {
    throw new RangeError(`reference sumTo: inShape [${inShape.join(', ')}] and outShape [${outShape.join(', ')}] differ in rank`);
  }
  // Reading x through "output strides" with 0 on the summed dims maps each input index to its output slot.
  const outStrides: number[] = new Array<number>(outShape.length);
  let stride = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    if (outShape[d] !== inShape[d] && outShape[d] !== 1) {
      throw new RangeError(`reference sumTo: outShape [${outShape.join(', ')}] is not a reduction of [${inShape.join(', ')}]`);
    }
    outStrides[d] = outShape[d] === 1 ? 0 : stride;
    stride *= outShape[d];
  }
  const nIn = shapeSize(inShape);
  const nOut = shapeSize(outShape);
  needLength('sumTo', 'x', x, nIn);
  needLength('sumTo', 'out', out, nOut);
  const acc = scratch(nOut);
  for (let i = 0; i < nIn; i++) acc[stridedOffset(i, inShape, outStrides)] += x[i];
  store(acc, out, nOut);
}

// ---- fused small ops ---------------------------------------------------------------------------------------

/** out[n] = silu(gate[n]) · up[n]. */
export function swigluForward(gate: Buf, up: Buf, out: Buf, n: number): void {
  needLength('swigluForward', 'gate', gate, n);
  needLength('swigluForward', 'up', up, n);
  needLength('swigluForward', 'out', out, n);
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/** dgate = dout · up · silu'(gate), dup = dout · silu(gate) (both written). */
export function swigluBackward(gate: Buf, up: Buf, dout: Buf, dgate: Buf, dup: Buf, n: number): void {
  for (const [name, buf] of [['gate', gate], ['up', up], ['dout', dout], ['dgate', dgate], ['dup', dup]] as const) {
    needLength('swigluBackward', name, buf, n);
  }
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    const dsilu = s * (1 + g * (1 - s));
    const u = up[i];
    const d = dout[i];
    dgate[i] = d * u * dsilu;
    dup[i] = d * g * s;
  }
}

/**
 * mask[i] = keep(i) ? 1/(1−p) : 0 with keep(i) ⇔ hashIndex(seed, i) ≥ dropoutThreshold(p); out = x · mask.
 * The scale is rounded to the buffer's precision once, then out is x · mask[i] as stored, so that out and mask
 * agree exactly (and a float32 backend that computes `(float)(1.0 / (1.0 − p))` gets the same bits).
 * p must lie in [0, 1): at p = 1 the scale is infinite.
 */
export function dropoutForward(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number): void {
  if (!(p >= 0 && p < 1)) throw new RangeError(`reference dropoutForward: p must be in [0, 1), got ${p}`);
  needLength('dropoutForward', 'x', x, n);
  needLength('dropoutForward', 'out', out, n);
  needLength('dropoutForward', 'mask', mask, n);
  const threshold = dropoutThreshold(p);
  const scale = 1 / (1 - p);
  for (let i = 0; i < n; i++) {
    mask[i] = hashIndex(seed, i) >= threshold ? scale : 0;
    out[i] = x[i] * mask[i];
  }
}
