// Matrix products. Transposed operands are read in place through the backend's transA/transB flags: a transposed
// view never turns into a transposed copy, in the forward or in either backward product.

import type { Buf } from '../backend.js';
import { record } from '../autograd.js';
import { numel, Tensor } from '../tensor.js';
import { add, base } from './elementwise.js';
import { reshape, transpose } from './movement.js';

/** How a [..., R, C] tensor is laid out for the GEMM: trans means stored as [..., C, R]. */
interface Layout {
  t: Tensor; // the tensor actually read (x itself, or a contiguous copy)
  copied: boolean;
  trans: boolean;
  rows: number;
  cols: number;
  batch: number; // product of leading dims
  batchStride: number; // elements between batch items (0 when batch == 1)
}

function packedBatch(x: Tensor): boolean {
  let s = x.shape[x.ndim - 1] * x.shape[x.ndim - 2];
  for (let i = x.ndim - 3; i >= 0; i--) {
    if (x.shape[i] !== 1 && x.strides[i] !== s) return false;
    s *= x.shape[i];
  }
  return true;
}

function layout(x: Tensor): Layout {
  if (x.ndim < 2) throw new Error(`matmul operands need ≥ 2 dims, got ${x.label()}`);
  if (x.dtype !== 'f32') throw new Error(`matmul: ${x.label()} is ${x.dtype}; quantized operands go through qmatmul`);
  const rows = x.shape[x.ndim - 2];
  const cols = x.shape[x.ndim - 1];
  const sr = x.strides[x.ndim - 2];
  const sc = x.strides[x.ndim - 1];
  const batch = numel(x.shape.slice(0, -2));
  const make = (t: Tensor, copied: boolean, trans: boolean): Layout => ({ t, copied, trans, rows, cols, batch, batchStride: batch > 1 ? rows * cols : 0 });
  if (packedBatch(x)) {
    if ((sc === 1 || cols === 1) && (sr === cols || rows === 1)) return make(x, false, false);
    if ((sr === 1 || rows === 1) && (sc === rows || cols === 1)) return make(x, false, true);
  }
  return make(x.contiguousCopy(), true, false);
}

function release(l: Layout): void {
  if (l.copied) l.t.dispose();
}

/**
 * out[batch, M, N] (+)= op(A) · op(B), A given as [M, K] logical (stored transposed when a.trans), B as [K, N].
 * bBatchStride 0 broadcasts B.
 */
function gemm(a: Buf, transA: boolean, b: Buf, transB: boolean, M: number, N: number, K: number, batch: number, sA: number, sB: number, out: Tensor, accumulate: boolean): void {
  out.backend.matmul(a, b, out.data, { batch, M, N, K, transA, transB, strideA: sA, strideB: sB, strideC: batch > 1 ? M * N : 0, offA: 0, offB: 0, offC: 0, accumulate });
}

/**
 * a[..., M, K] · b[..., K, N] → [..., M, N]. b may be 2-D (shared across a's batch) or have a's batch shape.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const la = layout(a);
  const lb = layout(b);
  const [M, K, N] = [la.rows, la.cols, lb.cols];
  if (lb.rows !== K) throw new Error(`matmul: inner dims differ: ${a.label()} · ${b.label()}`);
  const shared = b.ndim === 2;
  if (!shared && (a.ndim !== b.ndim || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i]))) {
    throw new Error(`matmul: batch dims differ: ${a.label()} · ${b.label()} (b must be 2-D or share a's batch shape)`);
  }
  const outShape = [...a.shape.slice(0, -2), M, N];
  const out = Tensor.empty(outShape, a.backend);
  forward(la, lb, out, shared);
  release(la);
  release(lb);
  return record('matmul', out, [a, b], [a, b], (node, g, needs) => {
    const [sa, sb] = [node.get(0), node.get(1)];
    const A = layout(sa);
    const B = layout(sb);
    const res = [needs[0] ? gradA(A, B, g, shared) : null, needs[1] ? gradB(A, B, g, shared) : null];
    release(A);
    release(B);
    return res;
  });
}

function forward(la: Layout, lb: Layout, out: Tensor, shared: boolean): void {
  const [M, K, N] = [la.rows, la.cols, lb.cols];
  if (shared && !la.trans) {
    // Shared weight: fold a's batch into rows (one big GEMM, the training hot path).
    gemm(base(la.t), false, base(lb.t), lb.trans, M * la.batch, N, K, 1, 0, 0, out, false);
  } else {
    gemm(base(la.t), la.trans, base(lb.t), lb.trans, M, N, K, la.batch, la.batchStride, shared ? 0 : lb.batchStride, out, false);
  }
}

// C = op(A)·op(B)  ⇒  d op(A) = dC·op(B)ᵀ,  d op(B) = op(A)ᵀ·dC.
function gradA(A: Layout, B: Layout, g: Tensor, shared: boolean): Tensor {
  const [M, K, N] = [A.rows, A.cols, B.cols];
  const lead = g.shape.slice(0, -2);
  const gBuf = g.data;
  const sB = shared ? 0 : B.batchStride;
  if (A.trans) {
    // A stored [K,M]: dA_stored = (dC·op(B)ᵀ)ᵀ = op(B)·dCᵀ → [K, M]; handed back as a transposed view.
    const gStored = Tensor.empty([...lead, K, M], g.backend);
    gemm(base(B.t), B.trans, gBuf, true, K, M, N, A.batch, sB, M * N, gStored, false);
    return transpose(gStored, -2, -1);
  }
  // dA[M,K] = dC[M,N] · op(B)ᵀ
  const gA = Tensor.empty([...lead, M, K], g.backend);
  if (shared) gemm(gBuf, false, base(B.t), !B.trans, M * A.batch, K, N, 1, 0, 0, gA, false);
  else gemm(gBuf, false, base(B.t), !B.trans, M, K, N, A.batch, M * N, sB, gA, false);
  return gA;
}

function gradB(A: Layout, B: Layout, g: Tensor, shared: boolean): Tensor {
  const [M, K, N] = [A.rows, A.cols, B.cols];
  const gBuf = g.data;
  if (shared && !A.trans) {
    // Rows of every batch item contribute: fold the batch into the reduction dimension.
    const R = M * A.batch;
    if (!B.trans) {
      const gB = Tensor.empty([K, N], g.backend); // dB = Aᵀ[K,R] · dC[R,N]
      gemm(base(A.t), true, gBuf, false, K, N, R, 1, 0, 0, gB, false);
      return gB;
    }
    const gB = Tensor.empty([N, K], g.backend); // B stored [N,K]: dB_stored = dCᵀ[N,R] · A[R,K]
    gemm(gBuf, true, base(A.t), false, N, K, R, 1, 0, 0, gB, false);
    return transpose(gB, -2, -1);
  }
  const lead = shared ? [] : g.shape.slice(0, -2);
  const batch = A.batch;
  if (!B.trans) {
    // (a shared B summed over zero batch items stays zero: only that case needs the zero fill)
    const gB = shared && batch === 0 ? Tensor.zeros([K, N], g.backend) : Tensor.empty([...lead, K, N], g.backend);
    if (shared) {
      // Transposed A with a shared B: accumulate each batch item's product.
      for (let i = 0; i < batch; i++) {
        g.backend.matmul(base(A.t), gBuf, gB.data, { batch: 1, M: K, N, K: M, transA: !A.trans, transB: false, strideA: 0, strideB: 0, strideC: 0, offA: i * A.batchStride, offB: i * M * N, offC: 0, accumulate: i > 0 });
      }
    } else gemm(base(A.t), !A.trans, gBuf, false, K, N, M, batch, A.batchStride, M * N, gB, false);
    return gB;
  }
  const gB = shared && batch === 0 ? Tensor.zeros([N, K], g.backend) : Tensor.empty([...lead, N, K], g.backend);
  if (shared) {
    for (let i = 0; i < batch; i++) {
      g.backend.matmul(gBuf, base(A.t), gB.data, { batch: 1, M: N, N: K, K: M, transA: true, transB: A.trans, strideA: 0, strideB: 0, strideC: 0, offA: i * M * N, offB: i * A.batchStride, offC: 0, accumulate: i > 0 });
    }
  } else gemm(gBuf, true, base(A.t), A.trans, N, K, M, batch, M * N, A.batchStride, gB, false);
  return transpose(gB, -2, -1);
}

/** y = x · Wᵀ (+ bias): x[..., in], W[out, in] as checkpoints store it, bias[out]. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const y = matmul(x.ndim === 1 ? reshape(x, [1, x.size]) : x, transpose(w, 0, 1));
  return bias === undefined ? y : add(y, bias);
}
