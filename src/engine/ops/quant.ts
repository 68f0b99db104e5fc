// Products with frozen weights stored in f16, bf16 or ggml block-quantized formats, read block by block
// (no dequantized copy of the weight is ever made). Only the input receives a gradient.

import { record } from '../autograd.js';
import { isGradEnabled } from '../context.js';
import { Tensor } from '../tensor.js';
import { contiguous } from './movement.js';

/** y[..., N] = x[..., K] · dequant(W)[N, K]ᵀ with W frozen in a byte dtype. */
export function qlinear(x: Tensor, w: Tensor): Tensor {
  const dtype = w.dtype;
  if (dtype === 'f32') throw new Error(`qlinear: ${w.label()} is f32; use linear`);
  const [N, K] = w.shape as [number, number];
  if (x.shape[x.ndim - 1] !== K) throw new Error(`qlinear: ${x.label()} · ${w.label()}ᵀ: inner dims differ`);
  const xc = contiguous(x);
  const M = x.size / K;
  const out = Tensor.empty([...x.shape.slice(0, -1), N], x.backend);
  // Without a tape (generation, evaluation) q8_0/q4_0 products round x to int8 blocks at every M, as llama.cpp's
  // prefill does (here 3× faster than the float path at 9 rows, 1.3× at 512); with one, only decode-shaped products
  // do, so a training step's forward keeps float activations and its loss and gradients do not depend on that rounding.
  // bf16 products round x to bf16 without a tape, as llama.cpp (and PyTorch's bf16 matmuls) do.
  x.backend.matmulQuant(xc.data, w.bytes, dtype, out.data, M, N, K, !isGradEnabled());
  return record('qlinear', out, [xc], [], (_n, g) => {
    const gx = Tensor.empty(x.shape, x.backend);
    x.backend.matmulQuantT(g.data, w.bytes, dtype, gx.data, M, N, K);
    return [gx];
  });
}
