// The fused low-rank update of a linear layer's output (LoRA): y = base + k·(h·Aᵀ)·Bᵀ as one op with one gradient
// rule, accumulated by the GEMM into base's own buffer. Unfused, every adapter on every linear allocated a [N, out]
// product and then a [N, out] sum; here the only temporary is the [N, r] intermediate.
//
// Letters: N rows (all leading dims of h folded), in/out features, r rank.

import type { MatmulParams } from '../backend.js';
import { record } from '../autograd.js';
import { Tensor } from '../tensor.js';
import { contiguous } from './movement.js';

function gemmParams(M: number, N: number, K: number, transA: boolean, transB: boolean, accumulate: boolean): MatmulParams {
  return { batch: 1, M, N, K, transA, transB, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate };
}

/** base's buffer as the output when nothing else can see it (then base's handle is given up), else a copy. */
function takeOver(base: Tensor): Tensor {
  const d = base.storage.data;
  const whole = d !== null && base.offset === 0 && d.length === base.size && base.isContiguous;
  if (whole && base.storage.exclusive) return new Tensor(base.storage.retain(), base.shape, base.strides, 0, 'f32');
  return base.contiguousCopy();
}

/**
 * base[..., out] + k · (h[..., in] · A[r, in]ᵀ) · B[out, r]ᵀ → base's shape. h and base have the same number of rows
 * (N = h.size / in = base.size / out). A and B are f32 (trainable adapter factors).
 *
 * base is consumed: it is disposed on return, and when nothing else holds its storage (the usual case, the fresh
 * output of the layer's base product) that buffer becomes the result. So base must be an op's result, not a leaf
 * that requires grad (its gradient would have nowhere to go).
 *
 * Gradients, with t = k·h·Aᵀ [N, r] saved and u = k·g·B [N, r]: dbase = g, dh = u·A, dA = uᵀ·h, dB = gᵀ·t.
 */
export function addLowRank(base: Tensor, h: Tensor, A: Tensor, B: Tensor, k: number): Tensor {
  if (A.ndim !== 2 || B.ndim !== 2 || A.shape[0] !== B.shape[1]) {
    throw new Error(`addLowRank: A ${A.label()} and B ${B.label()} are not [r, in] and [out, r]`);
  }
  if (A.dtype !== 'f32' || B.dtype !== 'f32' || h.dtype !== 'f32' || base.dtype !== 'f32') {
    throw new Error(`addLowRank: base ${base.label()}, h ${h.label()}, A and B must be f32`);
  }
  const [r, inF] = A.shape as [number, number];
  const outF = B.shape[0];
  const N = h.size / inF;
  if (h.shape[h.ndim - 1] !== inF || base.shape[base.ndim - 1] !== outF || base.size / outF !== N) {
    throw new Error(`addLowRank: base ${base.label()} + (h ${h.label()} · A ${A.label()}ᵀ) · B ${B.label()}ᵀ: shapes do not match`);
  }
  if (base.requiresGrad && base.node === null) {
    throw new Error(`addLowRank: base ${base.label()} is a leaf that requires grad; it would be consumed (pass an op's result)`);
  }
  const be = base.backend;
  const [hc, Ac, Bc] = [contiguous(h), contiguous(A), contiguous(B)];
  const out = takeOver(base);
  // t[N, r] = k · h[N, in] · A[r, in]ᵀ (scaling the rank-r intermediate costs r/out of scaling the result)
  const t = Tensor.empty([N, r], be);
  be.matmul(hc.data, Ac.data, t.data, gemmParams(N, r, inF, false, true, false));
  if (k !== 1) be.affine(t.data, t.data, t.size, k, 0);
  // out[N, out] += t[N, r] · B[out, r]ᵀ
  be.matmul(t.data, Bc.data, out.data, gemmParams(N, outF, r, false, true, true));
  const res = record('addLowRank', out, [base, hc, Ac, Bc], [hc, Ac, Bc, t], (node, g, needs) => {
    const [hs, As, Bs, ts] = [node.get(0), node.get(1), node.get(2), node.get(3)];
    const gb = needs[0] ? g.view(g.shape, g.strides, g.offset) : null;
    let gh: Tensor | null = null;
    let gA: Tensor | null = null;
    if (needs[1] || needs[2]) {
      const u = Tensor.empty([N, r], be); // u = k · g[N, out] · B[out, r]
      be.matmul(g.data, Bs.data, u.data, gemmParams(N, r, outF, false, false, false));
      if (k !== 1) be.affine(u.data, u.data, u.size, k, 0);
      if (needs[1]) {
        gh = Tensor.empty(hs.shape, be); // dh[N, in] = u · A[r, in]
        be.matmul(u.data, As.data, gh.data, gemmParams(N, inF, r, false, false, false));
      }
      if (needs[2]) {
        gA = Tensor.empty([r, inF], be); // dA[r, in] = uᵀ · h[N, in]
        be.matmul(u.data, hs.data, gA.data, gemmParams(r, inF, N, true, false, false));
      }
      u.dispose();
    }
    let gB: Tensor | null = null;
    if (needs[3]) {
      gB = Tensor.empty([outF, r], be); // dB[out, r] = gᵀ · t[N, r]
      be.matmul(g.data, ts.data, gB.data, gemmParams(outF, r, N, true, false, false));
    }
    return [gb, gh, gA, gB];
  });
  t.dispose();
  base.dispose();
  return res;
}
