// Shared helpers for the LoRA tests: tiny random models (f32, f16, quantized, either RoPE layout) and adapters with
// random B (a fresh adapter's B is zero, which would make every comparison trivially pass).

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, Rng, tidy, Tensor, type DType } from '../src/engine/index.js';
import { qkHalvesToInterleaved, quantize } from '../src/formats/index.js';
import type { LlamaConfig } from '../src/models/config.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LINEAR_MODULES, linearName, LlamaModel } from '../src/models/llama.js';
import type { LoraAdapter } from '../src/lora/index.js';

/** A tiny model; linears stored in `dtype`; 'interleaved' permutes q/k rows as GGUF llama stores them (same function). */
export function makeModel(opts: { seed?: number; dtype?: Extract<DType, 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0'>; ropeMode?: 'halves' | 'interleaved'; over?: Partial<LlamaConfig> } = {}): LlamaModel {
  const cfg = tinyConfig({ intermediateSize: 64, ropeMode: opts.ropeMode ?? 'halves', ...opts.over });
  const w = initWeights(cfg, opts.seed ?? 1, 0.2);
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const m of LINEAR_MODULES) {
      const name = `${linearName(l, m)}.weight`;
      const t = w.get(name)!;
      let data = t.toArray();
      if (cfg.ropeMode === 'interleaved' && (m === 'q_proj' || m === 'k_proj')) {
        data = qkHalvesToInterleaved(data, t.shape[0], m === 'q_proj' ? cfg.numHeads : cfg.numKvHeads);
      }
      const dtype = opts.dtype ?? 'f32';
      w.set(name, dtype === 'f32' ? Tensor.from(data, t.shape).keep() : Tensor.fromBytes(quantize(dtype, data), t.shape, dtype).keep());
    }
  }
  return new LlamaModel(cfg, (n) => w.get(n));
}

/** Fills every B (and perturbs A) with seeded normals so the adapter changes the output. */
export function randomize(a: LoraAdapter, seed: number, std = 0.3): LoraAdapter {
  const rng = new Rng(seed);
  for (const m of a.modules.values()) {
    const b = m.B.data;
    for (let i = 0; i < b.length; i++) b[i] = rng.normal() * std;
  }
  return a;
}

export const IDS = Int32Array.from([1, 5, 9, 13, 7, 3, 60, 2]);

/** Logits [T, V] of ids (default IDS), no gradients recorded. */
export function logits(model: LlamaModel, ids: Int32Array = IDS): Float32Array {
  return noGrad(() => tidy(() => model.forward(ids, 1, ids.length).toArray()));
}

/** Same, with the tape on (as in training): q8_0/q4_0 products of more than INT8_DOT_MAX_M rows keep float activations. */
export function floatLogits(model: LlamaModel, ids: Int32Array = IDS): Float32Array {
  return tidy(() => model.forward(ids, 1, ids.length).toArray());
}

export function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  const d = maxDiff(a, b);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'nomoat-lora-'));
}
