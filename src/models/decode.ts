// One generation step (B = 1 sequence, T = 1 new token, with a KV cache) written straight against the backend
// kernels, into work buffers the cache keeps. The math is LlamaModel.hidden's, op for op and kernel for kernel
// (llama.test.ts checks the two agree). It exists because a step runs ~16 ops per layer, and the per-op tensor
// bookkeeping (a fresh native buffer per result, scopes, GC) cost ~3.6 ms per token on 30 layers: as much as the
// whole arithmetic of a q8_0 135M model on one core. Training, batches and prompts keep the tensor path.
//
// Letters: C hidden, H query heads, G kv heads, D head dim, I MLP width, P cached positions.

import type { Backend, Buf } from '../engine/backend.js';
import { tidy } from '../engine/context.js';
import { Storage, Tensor } from '../engine/tensor.js';
import type { KVCache } from './kvcache.js';
import type { Linear } from './linear.js';
import type { LlamaModel } from './llama.js';

/** out[N] = W[N, K] · x[K] (+ bias) (+ Σ deltas(x)), for an f32 or byte-dtype weight. */
function linearInto(be: Backend, lin: Linear, x: Buf, out: Buf): void {
  const w = lin.weight;
  const [N, K] = w.shape as [number, number];
  if (w.dtype === 'f32') {
    be.matmul(x, w.data, out, { batch: 1, M: 1, N, K, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate: false });
  } else be.matmulQuant(x, w.bytes, w.dtype, out, 1, N, K, true); // generation: inference rounding, as qlinear without a tape
  if (lin.bias !== null) be.axpy(1, lin.bias.data, out, N);
  if (lin.deltas.length === 0) return;
  // adapters take tensors: view x as one (not owned: the cache keeps the buffer) and add what each returns
  tidy(() => {
    const xt = new Tensor(new Storage(be, x, null, false), [1, K], [K, 1], 0, 'f32');
    for (const d of lin.deltas) be.axpy(1, d.forward(xt).data, out, N);
  });
}

/** Hidden state [1, 1, C] after the final norm for one new token `id`, appended to the cache (B = 1). */
export function decodeStep(model: LlamaModel, id: number, cache: KVCache): Tensor {
  const c = model.config;
  const [C, H, G, D, I] = [c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize];
  const be = model.norm.backend;
  const V = model.embed.shape[0];
  if (cache.batch !== 1) throw new Error(`decodeStep: the cache holds ${cache.batch} sequences, this path runs one`);
  if (!(id >= 0 && id < V)) throw new Error(`embedding: token id ${id} at position 0 is outside the vocabulary [0, ${V})`);
  cache.checkRoom(1);
  const P = cache.length;
  const row = G * D;
  const buf = (name: string, n: number): Buf => cache.scratch(name, n);
  const [x, h, rstd, q, qr, kr, a, lse, tmp, g, u, s] = [
    buf('x', C), buf('h', C), buf('rstd', 1), buf('q', H * D), buf('qr', H * D), buf('kr', row), buf('a', H * D), buf('lse', H),
    buf('tmp', C), buf('gate', I), buf('up', I), buf('act', I),
  ];
  const positions = Int32Array.of(P);

  // x[C] = embed[id]
  const e = model.embed;
  if (e.dtype === 'f32') be.embeddingForward(e.data, Int32Array.of(id), x, 1, C);
  else be.gatherQuant(e.bytes, e.dtype, Int32Array.of(id), x, 1, C);

  const attn = { B: 1, Tq: 1, Tk: P + 1, H, G, D, scale: 1 / Math.sqrt(D), qOffset: P, causal: true };
  model.blocks.forEach((b, i) => {
    const { k: kc, v: vc } = cache.layerBuffers(i); // [1, maxT, G, D]
    be.rmsnormForward(x, b.attnNorm.data, h, rstd, 1, C, c.rmsNormEps);
    linearInto(be, b.q, h, q);
    be.rope(q, qr, 1, 1, H, D, positions, model.invFreq, c.ropeMode, false);
    linearInto(be, b.k, h, kr);
    be.rope(kr, kc.subarray(P * row, (P + 1) * row), 1, 1, G, D, positions, model.invFreq, c.ropeMode, false);
    linearInto(be, b.v, h, vc.subarray(P * row, (P + 1) * row));
    be.attentionForward(qr, kc.subarray(0, (P + 1) * row), vc.subarray(0, (P + 1) * row), a, lse, attn);
    linearInto(be, b.o, a, tmp);
    be.axpy(1, tmp, x, C); // x += o(a)
    be.rmsnormForward(x, b.mlpNorm.data, h, rstd, 1, C, c.rmsNormEps);
    linearInto(be, b.gate, h, g);
    linearInto(be, b.up, h, u);
    be.swigluForward(g, u, s, I);
    linearInto(be, b.down, s, tmp);
    be.axpy(1, tmp, x, C); // x += down(silu(gate) * up)
  });
  cache.advance(1);
  const out = Tensor.zeros([1, 1, C], be);
  be.rmsnormForward(x, model.norm.data, out.data, rstd, 1, C, c.rmsNormEps);
  return out;
}
