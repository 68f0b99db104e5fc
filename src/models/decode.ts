// One generation step (B = 1 sequence, T = 1 new token, with a KV cache) written straight against the backend
// kernels, into work buffers the cache keeps. The math is LlamaModel.hidden's, op for op and kernel for kernel
// (llama.test.ts checks the two agree). It exists because a step runs ~16 ops per layer, and the per-op tensor
// bookkeeping (a fresh native buffer per result, scopes, GC) cost ~3.6 ms per token on 30 layers: as much as the
// whole arithmetic of a q8_0 135M model on one core. Training, batches and prompts keep the tensor path.
//
// Letters: C hidden, H query heads, G kv heads, D head dim, I MLP width, P cached positions.

import type { Backend, Buf } from '../engine/backend.js';
import { tidy } from '../engine/context.js';
import type { DType } from '../engine/dtype.js';
import { Storage, Tensor } from '../engine/tensor.js';
import type { KVCache } from './kvcache.js';
import type { Linear, LinearDelta } from './linear.js';
import type { LlamaModel } from './llama.js';

/** Work buffers of a decode step, kept between steps by their owner (a cache, a server's batch). */
export type Scratch = (name: string, n: number) => Buf;

/** Per row, the deltas a linear adds for that row, in order (default: the linear's attached ones, for every row). */
export type RowDeltas = (lin: Linear, row: number) => readonly LinearDelta[];

/**
 * Rows per base product call, so that each row's result is the one a single-row call gives (batch invariance):
 * every backend path up to these sizes reduces each row on its own, in the same order (f32: a rowwise matmul at
 * any M; f16/bf16: the row-dot kernel up to 16 rows; q8_0/q4_0/q4_1/q5_0/q5_1/iq4_nl and the k-quants q2_k … q6_k at
 * inference: the int8 path at any M; iq4_xs: dequantized row dots up to 4 rows).
 */
export function invariantRows(dtype: DType): number {
  if (dtype === 'f16' || dtype === 'bf16') return 16;
  if (dtype === 'iq4_xs') return 4;
  return 64;
}
/** Tensor-path deltas (without factors) per call: below the scalar level's 4-row micro-tile, per-row dots. */
const DELTA_ROWS = 3;

/** out[R, N] = x[R, K] · W[N, K]ᵀ (+ bias) (+ each row's deltas(x)), rows in invariant chunks. */
function linearRows(be: Backend, lin: Linear, x: Buf, out: Buf, R: number, deltasOf: RowDeltas | null): void {
  const w = lin.weight;
  const [N, K] = w.shape as [number, number];
  const chunk = invariantRows(w.dtype);
  for (let r0 = 0; r0 < R; r0 += chunk) {
    const M = Math.min(chunk, R - r0);
    const [xs, os] = [x.subarray(r0 * K, (r0 + M) * K), out.subarray(r0 * N, (r0 + M) * N)];
    if (w.dtype === 'f32') {
      be.matmul(xs, w.data, os, { batch: 1, M, N, K, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate: false, rowwise: true });
    }
    else be.matmulQuant(xs, w.bytes, w.dtype, os, M, N, K, true); // generation: inference rounding, as qlinear without a tape
  }
  if (lin.bias !== null) for (let r = 0; r < R; r++) be.axpy(1, lin.bias.data, out.subarray(r * N, (r + 1) * N), N);
  const lists = Array.from({ length: R }, (_, r) => (deltasOf === null ? lin.deltas : deltasOf(lin, r)));
  const depth = lists.reduce((d, l) => Math.max(d, l.length), 0);
  // rows that add the same delta at the same place in their stack go together (so each row still adds its deltas
  // in its own stack's order): S-LoRA's grouping of the low-rank products by adapter
  for (let j = 0; j < depth; j++) {
    const groups = new Map<LinearDelta, number[]>();
    lists.forEach((l, r) => {
      const d = l[j];
      if (d !== undefined) groups.set(d, [...(groups.get(d) ?? []), r]);
    });
    for (const [d, rows] of groups) {
      if (d.lowRank !== undefined) { // one kernel call per adapter group, every row's bits as if it were alone
        const f = d.lowRank();
        be.lowRankRows(x, Int32Array.from(rows), f.A.data, f.B.data, out, K, N, f.A.shape[0], f.k);
      } else for (let g0 = 0; g0 < rows.length; g0 += DELTA_ROWS) tensorDeltaRows(be, d, x, out, rows.slice(g0, g0 + DELTA_ROWS), N, K);
    }
  }
}

/** out[rows] += d(x[rows]) through the delta's own tensor ops (few rows: per-row dots at every level). */
function tensorDeltaRows(be: Backend, d: LinearDelta, x: Buf, out: Buf, part: number[], N: number, K: number): void {
  tidy(() => {
    let xt: Tensor;
    if (part.length === 1) { // a view of the row (not owned: the caller keeps the buffer)
      xt = new Tensor(new Storage(be, x.subarray(part[0] * K, (part[0] + 1) * K), null, false), [1, K], [K, 1], 0, 'f32');
    } else {
      xt = Tensor.zeros([part.length, K], be);
      part.forEach((r, i) => xt.data.set(x.subarray(r * K, (r + 1) * K), i * K));
    }
    const y = d.forward(xt).data;
    part.forEach((r, i) => be.axpy(1, y.subarray(i * N, (i + 1) * N), out.subarray(r * N, (r + 1) * N), N));
  });
}

/** Hidden state [1, 1, C] after the final norm for one new token `id`, appended to the cache (B = 1). */
export function decodeStep(model: LlamaModel, id: number, cache: KVCache): Tensor {
  if (cache.batch !== 1) throw new Error(`decodeStep: the cache holds ${cache.batch} sequences, this path runs one`);
  return decodeRows(model, Int32Array.of(id), [cache], (name, n) => cache.scratch(name, n), null);
}

/**
 * Hidden states [R, 1, C] after the final norm for R sequences, one new token each (ids[r]), each appended to its
 * own single-sequence cache, whatever their lengths: a server's running batch. Each row's deltas come from
 * deltasOf (per-request adapter stacks) or, when null, from the linears' attached ones. Every row gets the bits a
 * one-row step gives: the base products run in invariant chunks (invariantRows), attention and RoPE per row.
 */
export function decodeRows(model: LlamaModel, ids: Int32Array, caches: readonly KVCache[], scratch: Scratch, deltasOf: RowDeltas | null): Tensor {
  const c = model.config;
  const [C, H, G, D, I] = [c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize];
  const be = model.norm.backend;
  const V = model.embed.shape[0];
  const R = ids.length;
  if (caches.length !== R) throw new Error(`decodeRows: ${R} ids but ${caches.length} caches`);
  ids.forEach((id, r) => {
    if (!(id >= 0 && id < V)) throw new Error(`embedding: token id ${id} at position ${r} is outside the vocabulary [0, ${V})`);
  });
  for (const cache of caches) {
    if (cache.batch !== 1) throw new Error(`decodeRows: each row needs a one-sequence cache, got one of ${cache.batch}`);
    cache.checkRoom(1);
  }
  const row = G * D;
  const [x, h, rstd, q, qr, kr, a, lse, tmp, g, u, s] = [
    scratch('x', R * C), scratch('h', R * C), scratch('rstd', R), scratch('q', R * H * D), scratch('qr', R * H * D), scratch('kr', R * row),
    scratch('a', R * H * D), scratch('lse', R * H), scratch('tmp', R * C), scratch('gate', R * I), scratch('up', R * I), scratch('act', R * I),
  ];
  const vrow = scratch('v', R * row);

  // x[R, C] = embed[ids]
  const e = model.embed;
  if (e.dtype === 'f32') be.embeddingForward(e.data, ids, x, R, C);
  else be.gatherQuant(e.bytes, e.dtype, ids, x, R, C);

  const part = (b: Buf, r: number, n: number): Buf => b.subarray(r * n, (r + 1) * n);
  model.blocks.forEach((b, i) => {
    be.rmsnormForward(x, b.attnNorm.data, h, rstd, R, C, c.rmsNormEps);
    linearRows(be, b.q, h, q, R, deltasOf);
    linearRows(be, b.k, h, kr, R, deltasOf);
    linearRows(be, b.v, h, vrow, R, deltasOf);
    caches.forEach((cache, r) => {
      const P = cache.length;
      const positions = Int32Array.of(P);
      const { k: kc, v: vc } = cache.layerBuffers(i); // [1, maxT, G, D]
      be.rope(part(q, r, H * D), part(qr, r, H * D), 1, 1, H, D, positions, model.invFreq, c.ropeMode, false);
      be.rope(part(kr, r, row), kc.subarray(P * row, (P + 1) * row), 1, 1, G, D, positions, model.invFreq, c.ropeMode, false);
      vc.set(part(vrow, r, row), P * row);
      const attn = { B: 1, Tq: 1, Tk: P + 1, H, G, D, scale: 1 / Math.sqrt(D), qOffset: P, causal: true };
      be.attentionForward(part(qr, r, H * D), kc.subarray(0, (P + 1) * row), vc.subarray(0, (P + 1) * row), part(a, r, H * D), part(lse, r, H), attn);
    });
    linearRows(be, b.o, a, tmp, R, deltasOf);
    be.axpy(1, tmp, x, R * C); // x += o(a)
    be.rmsnormForward(x, b.mlpNorm.data, h, rstd, R, C, c.rmsNormEps);
    linearRows(be, b.gate, h, g, R, deltasOf);
    linearRows(be, b.up, h, u, R, deltasOf);
    be.swigluForward(g, u, s, R * I);
    linearRows(be, b.down, s, tmp, R, deltasOf);
    be.axpy(1, tmp, x, R * C); // x += down(silu(gate) * up)
  });
  for (const cache of caches) cache.advance(1);
  const out = Tensor.zeros([R, 1, C], be);
  be.rmsnormForward(x, model.norm.data, out.data, rstd, R, C, c.rmsNormEps);
  return out;
}

/** Logits [R, V] of hidden states [R, 1, C] (decodeRows' result) into out, the LM head's rows in invariant chunks. */
export function logitsRows(model: LlamaModel, h: Tensor, out: Buf): void {
  const R = h.size / model.config.hiddenSize;
  const head = model.lmHead;
  if (out.length !== R * head.outFeatures) throw new Error(`logitsRows: out holds ${out.length} values, not ${R} × ${head.outFeatures}`);
  linearRows(h.backend, head, h.data, out, R, null);
}
