// Fresh weights for a configuration: normal(0, std) matrices and unit norms, seeded (tests, benchmarks, pretraining).

import { Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import { encodeBf16, encodeF16 } from '../engine/quant/index.js';
import type { LlamaConfig } from './config.js';
import { LINEAR_MODULES, linearName } from './llama.js';

/**
 * HF-named weights for cfg, drawn from N(0, std²) (std 0.02 as transformers' initializer_range). `dtype` stores the
 * 2-D weights in f16 or bf16 (the same draws, rounded; never a whole f32 copy), as a frozen Hugging Face checkpoint
 * arrives; norms and biases stay f32.
 */
export function initWeights(cfg: LlamaConfig, seed = 0, std = 0.02, dtype: 'f32' | 'f16' | 'bf16' = 'f32'): Map<string, Tensor> {
  const rng = new Rng(seed);
  const w = new Map<string, Tensor>();
  const CHUNK = 1 << 16;
  const normal = (shape: number[]): Tensor => {
    if (dtype === 'f32' || shape.length < 2) {
      const t = Tensor.zeros(shape).keep();
      const d = t.data;
      for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
      return t;
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(2 * n);
    const chunk = new Float32Array(CHUNK);
    const encode = dtype === 'f16' ? encodeF16 : encodeBf16;
    for (let o = 0; o < n; o += CHUNK) {
      const part = chunk.subarray(0, Math.min(CHUNK, n - o));
      for (let i = 0; i < part.length; i++) part[i] = rng.normal() * std;
      bytes.set(encode(part), 2 * o);
    }
    return Tensor.fromBytes(bytes, shape, dtype).keep();
  };
  const ones = (n: number): Tensor => Tensor.full([n], 1).keep();
  const [C, I, q, kv] = [cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * cfg.headDim, cfg.numKvHeads * cfg.headDim];
  const shapes: Record<(typeof LINEAR_MODULES)[number], [number, number]> = {
    q_proj: [q, C], k_proj: [kv, C], v_proj: [kv, C], o_proj: [C, q], gate_proj: [I, C], up_proj: [I, C], down_proj: [C, I],
  };
  w.set('model.embed_tokens.weight', normal([cfg.vocabSize, C]));
  for (let i = 0; i < cfg.numLayers; i++) {
    w.set(`model.layers.${i}.input_layernorm.weight`, ones(C));
    w.set(`model.layers.${i}.post_attention_layernorm.weight`, ones(C));
    for (const m of LINEAR_MODULES) w.set(`${linearName(i, m)}.weight`, normal(shapes[m]));
    if (cfg.attentionBias) for (const m of ['q_proj', 'k_proj', 'v_proj'] as const) w.set(`${linearName(i, m)}.bias`, normal([shapes[m][0]]));
  }
  w.set('model.norm.weight', ones(C));
  if (!cfg.tieWordEmbeddings) w.set('lm_head.weight', normal([cfg.vocabSize, C]));
  return w;
}

/** A small configuration for tests (every dimension tiny, GQA on). */
export function tinyConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    arch: 'llama', vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeMode: 'halves', maxPositionEmbeddings: 128,
    tieWordEmbeddings: false, attentionBias: false, bosTokenId: 1, eosTokenId: [2], ...over,
  };
}
