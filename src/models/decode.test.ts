// decodeRows (a server's running batch) gives each row the bits a one-row decodeStep gives, whatever the other rows
// are: their lengths, their deltas, their number (past the invariant chunk sizes), for f32, f16, bf16 and q8_0 bases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linear, noGrad, scale, Tensor, tidy } from '../engine/index.js';
import { encodeBf16, encodeF16, quantize } from '../engine/quant/index.js';
import { decodeRows, decodeStep } from './decode.js';
import { initWeights, tinyConfig } from './init.js';
import { KVCache } from './kvcache.js';
import type { LinearDelta } from './linear.js';
import { LlamaModel } from './llama.js';

/** A low-rank delta like LoRA's: k·(x·Aᵀ)·Bᵀ, through tensor ops only, or also giving its factors (the fast path). */
function lowRank(out: number, inF: number, seed: number, k: number, factors: boolean): LinearDelta & { dispose(): void } {
  const A = Tensor.from(Array.from({ length: 4 * inF }, (_, i) => Math.sin(i * 0.7 + seed) * 0.3), [4, inF]).keep();
  const B = Tensor.from(Array.from({ length: out * 4 }, (_, i) => Math.cos(i * 0.3 + seed) * 0.3), [out, 4]).keep();
  return {
    forward: (x) => tidy(() => linear(scale(linear(x, A), k), B)),
    ...(factors ? { lowRank: () => ({ A, B, k }) } : {}),
    dispose: () => { A.dispose(); B.dispose(); },
  };
}

function model(dtype: 'f32' | 'f16' | 'bf16' | 'q8_0'): LlamaModel {
  const cfg = tinyConfig({ hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 96 });
  const w = initWeights(cfg, 5, 0.2);
  return new LlamaModel(cfg, (name) => {
    const t = w.get(name);
    if (t === undefined || t.ndim < 2 || dtype === 'f32') return t;
    const f = t.toArray();
    const bytes = dtype === 'f16' ? encodeF16(f) : dtype === 'bf16' ? encodeBf16(f) : quantize(dtype, f);
    return Tensor.fromBytes(bytes, t.shape, dtype).keep();
  });
}

for (const dtype of ['f32', 'f16', 'bf16', 'q8_0'] as const) {
  test(`decodeRows: each of 21 rows equals its own decodeStep (${dtype}, mixed lengths and delta stacks)`, () => {
    const m = model(dtype);
    const c = m.config;
    const R = 21; // past every invariant chunk (4, 16) with remainders
    const deltas = [0, 1, 2].map((s) => lowRank(c.numHeads * c.headDim, c.hiddenSize, s, 0.5 + s, s !== 1));
    const stackOf = (r: number): LinearDelta[] => (r % 4 === 0 ? [] : r % 4 === 1 ? [deltas[0]] : r % 4 === 2 ? [deltas[1], deltas[0]] : [deltas[0], deltas[2]]);
    const prompt = (r: number): Int32Array => Int32Array.from({ length: 1 + (r % 5) }, (_, i) => (r * 7 + i * 3) % c.vocabSize);
    const scratch = new Map<string, Tensor>();
    const buf = (name: string, n: number): Float32Array => {
      let t = scratch.get(name);
      if (t === undefined || t.size !== n) { t?.dispose(); t = Tensor.zeros([n]).keep(); scratch.set(name, t); }
      return t.data as Float32Array;
    };
    const withStack = <T>(r: number, f: () => T): T => { // q_proj of layer 0 carries the row's stack while f runs
      const q = m.blocks[0].q;
      q.deltas.push(...stackOf(r));
      try { return f(); } finally { q.deltas.length = 0; }
    };
    noGrad(() => {
      const single = Array.from({ length: R }, () => new KVCache(c, 1, 16));
      const batch = Array.from({ length: R }, () => new KVCache(c, 1, 16));
      for (let r = 0; r < R; r++) {
        const p = prompt(r);
        withStack(r, () => tidy(() => { m.hidden(p, 1, p.length, single[r]); m.hidden(p, 1, p.length, batch[r]); }));
      }
      for (let step = 0; step < 3; step++) {
        const ids = Int32Array.from({ length: R }, (_, r) => (r * 5 + step * 11) % c.vocabSize);
        const want = ids.reduce<number[][]>((acc, id, r) => [...acc, withStack(r, () => tidy(() => Array.from(decodeStep(m, id, single[r]).toArray())))], []);
        const got = tidy(() => decodeRows(m, ids, batch, buf, (lin, r) => (lin === m.blocks[0].q ? stackOf(r) : [])).toArray());
        for (let r = 0; r < R; r++) {
          const row = Array.from(got.subarray(r * c.hiddenSize, (r + 1) * c.hiddenSize));
          assert.deepEqual(row, want[r], `${dtype} step ${step} row ${r}`);
        }
      }
      for (const k of [...single, ...batch]) k.dispose();
    });
    for (const t of scratch.values()) t.dispose();
    for (const d of deltas) d.dispose();
    m.dispose();
  });
}
