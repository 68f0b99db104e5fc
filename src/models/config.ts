// Llama-family model configuration: one typed struct, read from a Hugging Face config.json or GGUF metadata.
// A variant (Qwen2's q/k/v bias, Llama-3's rope scaling, …) is one entry in ARCHITECTURES below.

import type { RopeMode } from '../engine/backend.js';

export interface RopeScaling {
  type: 'llama3'; // Llama 3.1+ frequency-dependent scaling
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  arch: ArchName;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number; // MLP width
  numLayers: number;
  numHeads: number; // H
  numKvHeads: number; // G ≤ H (grouped-query attention)
  headDim: number; // D, usually hiddenSize / numHeads
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** How q/k weights pair dimensions for RoPE: HF checkpoints use 'halves'; GGUF llama and llama2.c 'interleaved'. */
  ropeMode: RopeMode;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean; // lm_head shares the embedding matrix
  attentionBias: boolean; // q/k/v projections carry a bias (Qwen2)
  bosTokenId: number | null;
  eosTokenId: number[]; // several ids may end a turn (Llama 3)
}

export interface ArchInfo {
  /** GGUF general.architecture */
  gguf: string;
  /** HF config.json model_type values */
  hfModelTypes: readonly string[];
  attentionBias: boolean;
  /** the RoPE pairing llama.cpp uses for this architecture's GGUF files */
  ggufRopeMode: RopeMode;
}

/** The registry: adding a Llama-family variant is one entry here. */
export const ARCHITECTURES = {
  llama: { gguf: 'llama', hfModelTypes: ['llama', 'mistral'], attentionBias: false, ggufRopeMode: 'interleaved' },
  qwen2: { gguf: 'qwen2', hfModelTypes: ['qwen2'], attentionBias: true, ggufRopeMode: 'halves' },
} as const satisfies Record<string, ArchInfo>;

export type ArchName = keyof typeof ARCHITECTURES;

export function archFromHf(modelType: string): ArchName {
  for (const [name, info] of Object.entries(ARCHITECTURES) as [ArchName, ArchInfo][]) {
    if (info.hfModelTypes.includes(modelType)) return name;
  }
  throw new Error(`unsupported model_type "${modelType}" (supported: ${Object.values(ARCHITECTURES).flatMap((a) => a.hfModelTypes).join(', ')})`);
}

export function archFromGguf(arch: string): ArchName {
  for (const [name, info] of Object.entries(ARCHITECTURES) as [ArchName, ArchInfo][]) if (info.gguf === arch) return name;
  throw new Error(`unsupported GGUF architecture "${arch}" (supported: ${Object.values(ARCHITECTURES).map((a) => a.gguf).join(', ')})`);
}

/** Per-pair inverse frequencies invFreq[D/2], with Llama-3 scaling folded in (as transformers computes them). */
export function ropeInvFreq(cfg: LlamaConfig): Float32Array {
  const D = cfg.headDim;
  const inv = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / D);
  const s = cfg.ropeScaling;
  if (s !== null) {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[i] = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  return inv;
}

type Json = Record<string, unknown>;

function num(j: Json, key: string, fallback?: number): number {
  const v = j[key];
  if (typeof v === 'number') return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new Error(`config.json: field "${key}" must be a number, got ${JSON.stringify(v)}`);
}

/** From a Hugging Face config.json object. */
export function configFromHf(j: Json): LlamaConfig {
  const arch = archFromHf(typeof j.model_type === 'string' ? j.model_type : 'llama');
  const hiddenSize = num(j, 'hidden_size');
  const numHeads = num(j, 'num_attention_heads');
  const rs = j.rope_scaling as Json | null | undefined;
  let ropeScaling: RopeScaling | null = null;
  if (rs && (rs.rope_type ?? rs.type) === 'llama3') {
    ropeScaling = {
      type: 'llama3',
      factor: num(rs, 'factor'),
      lowFreqFactor: num(rs, 'low_freq_factor'),
      highFreqFactor: num(rs, 'high_freq_factor'),
      originalMaxPositionEmbeddings: num(rs, 'original_max_position_embeddings'),
    };
  } else if (rs && (rs.rope_type ?? rs.type) !== 'default') {
    throw new Error(`config.json: rope_scaling type "${String(rs.rope_type ?? rs.type)}" is not supported (supported: llama3)`);
  }
  const eos = j.eos_token_id;
  return {
    arch,
    vocabSize: num(j, 'vocab_size'),
    hiddenSize,
    intermediateSize: num(j, 'intermediate_size'),
    numLayers: num(j, 'num_hidden_layers'),
    numHeads,
    numKvHeads: num(j, 'num_key_value_heads', numHeads),
    headDim: num(j, 'head_dim', hiddenSize / numHeads),
    rmsNormEps: num(j, 'rms_norm_eps', 1e-6),
    ropeTheta: num(j, 'rope_theta', 10000),
    ropeScaling,
    ropeMode: 'halves',
    maxPositionEmbeddings: num(j, 'max_position_embeddings', 2048),
    tieWordEmbeddings: j.tie_word_embeddings === true,
    attentionBias: j.attention_bias === true || ARCHITECTURES[arch].attentionBias,
    bosTokenId: typeof j.bos_token_id === 'number' ? j.bos_token_id : null,
    eosTokenId: Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : typeof eos === 'number' ? [eos] : [],
  };
}

/** Back to a Hugging Face config.json object (what transformers writes for LlamaForCausalLM / Qwen2ForCausalLM). */
export function configToHf(c: LlamaConfig): Json {
  const out: Json = {
    architectures: [c.arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: ARCHITECTURES[c.arch].hfModelTypes[0],
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  if (c.arch === 'llama') out.attention_bias = c.attentionBias;
  if (c.ropeScaling) {
    const s = c.ropeScaling;
    out.rope_scaling = { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositionEmbeddings };
  }
  if (c.bosTokenId !== null) out.bos_token_id = c.bosTokenId;
  if (c.eosTokenId.length > 0) out.eos_token_id = c.eosTokenId.length === 1 ? c.eosTokenId[0] : c.eosTokenId;
  return out;
}

/** The number of parameters of a configuration (embeddings counted once when tied). */
export function paramCount(c: LlamaConfig): number {
  const C = c.hiddenSize;
  const kv = c.numKvHeads * c.headDim;
  const q = c.numHeads * c.headDim;
  const attn = C * q + 2 * C * kv + q * C + (c.attentionBias ? q + 2 * kv : 0);
  const mlp = 3 * C * c.intermediateSize;
  const layer = attn + mlp + 2 * C;
  return c.vocabSize * C * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * layer + C;
}
