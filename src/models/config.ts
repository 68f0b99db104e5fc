// Llama-family model configuration: one typed struct, read from a Hugging Face config.json or GGUF metadata.
// A variant (Qwen2's q/k/v bias, Llama-3's rope scaling, …) is one entry in ARCHITECTURES below.

import type { RopeMode } from '../engine/backend.js';

/** HF config.json `rope_scaling` of rope_type "llama3" (Llama 3.1+): pairs whose wavelength exceeds
 *  original/lowFreqFactor turn `factor` times slower, pairs shorter than original/highFreqFactor keep their speed,
 *  and the ones between are interpolated. */
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
  /**
   * Per-pair frequency divisors f[D/2] as a GGUF file's `rope_freqs.weight` stores them (llama.cpp's form of Llama-3
   * scaling): when present they define the rotation, invFreq[i] = θ^(-2i/D) / f[i], as llama.cpp runs the file, and
   * `ropeScaling` (when not null) is the HF rope_scaling recovered from them, kept only to write config.json.
   * Absent for Hugging Face folders: there `ropeScaling` alone defines the rotation (as transformers computes it).
   */
  ropeFreqFactors?: Float32Array | null;
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

/**
 * Per-pair inverse frequencies invFreq[D/2]. With GGUF frequency factors: θ^(-2i/D) / f[i], as llama.cpp rotates
 * (`rope_freqs.weight`); else with Llama-3 `ropeScaling` folded in, as transformers' _compute_llama3_parameters does.
 */
export function ropeInvFreq(cfg: LlamaConfig): Float32Array {
  const D = cfg.headDim;
  const inv = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / D);
  const factors = cfg.ropeFreqFactors;
  if (factors) {
    if (factors.length !== D / 2) throw new Error(`rope frequency factors: ${factors.length} values for ${D / 2} pairs (head_dim ${D})`);
    for (let i = 0; i < inv.length; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / D) / factors[i];
    return inv;
  }
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

// ---- Llama-3 scaling as llama.cpp stores it: rope_freqs.weight ------------------------------------------------

const f32 = Math.fround;

/**
 * The frequency factors f[D/2] of a Llama-3 rope_scaling, as llama.cpp's convert_hf_to_gguf.py writes them into
 * `rope_freqs.weight` (LlamaModel.generate_extra_tensors): 1 for pairs shorter than original/high_freq_factor,
 * `factor` for pairs longer than original/low_freq_factor, 1 / ((1 − s)/factor + s) between, with
 * s = (original/wavelen − low) / (high − low). Each step is rounded to float32 as its torch code computes it
 * (`x / t` of a scalar by a tensor is reciprocal(t)·x there); θ^(2i/D) is the correctly rounded float32 power,
 * which torch's powf matches or misses by one ulp.
 *
 * One deliberate difference: the converter reads original_max_position_embeddings from the top level of config.json
 * (defaulting to 8192) although HF keeps it inside rope_scaling; we use rope_scaling's value, so the GGUF file runs
 * what transformers runs. For every Meta Llama 3.x model (8192) the two agree.
 */
export function llama3RopeFreqFactors(theta: number, headDim: number, s: RopeScaling): Float32Array {
  const orig = s.originalMaxPositionEmbeddings;
  const lowWavelen = orig / s.lowFreqFactor;
  const highWavelen = orig / s.highFreqFactor;
  if (lowWavelen === highWavelen) throw new Error(`rope_scaling: low_freq_factor and high_freq_factor are both ${s.lowFreqFactor} (the llama3 ramp needs two different values)`);
  const out = new Float32Array(headDim / 2);
  const twoPi = f32(2 * Math.PI);
  for (let i = 0; i < out.length; i++) {
    const freq = f32(1 / f32(Math.pow(f32(theta), f32((2 * i) / headDim))));
    const wavelen = f32(f32(1 / freq) * twoPi);
    if (wavelen < f32(highWavelen)) out[i] = 1;
    else if (wavelen > f32(lowWavelen)) out[i] = s.factor;
    else {
      const smooth = f32(f32(f32(f32(1 / wavelen) * f32(orig)) - f32(s.lowFreqFactor)) / f32(s.highFreqFactor - s.lowFreqFactor));
      out[i] = f32(1 / f32(f32(f32(1 - smooth) / f32(s.factor)) + smooth));
    }
  }
  return out;
}

/** The shortest decimal that rounds to the same float32 (a stored 1.1 reads back as 1.10000002; this gives 1.1). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (f32(v) === x) return v;
  }
  return x;
}

/** Whether factors leave every frequency as it is (a rope_freqs tensor of ones). */
export function isIdentityRopeFactors(f: Float32Array): boolean {
  return f.every((x) => x === 1);
}

/** How close recomputed factors must come to stored ones: float32 rounding (torch's powf may differ by an ulp, and a
 *  smooth pair's factor amplifies that by up to `factor`), far below what any other parameter value would change. */
const FACTOR_RTOL = 1e-5;

/**
 * The Llama-3 rope_scaling whose llama.cpp factors are `f` (within float32 rounding), or null when there is none
 * (or f is all ones, which needs no scaling). GGUF files keep only the factors, and they fix the scaling only up to
 * one degree of freedom (scaling original, low and high together changes nothing), so low_freq_factor is taken as 1
 * (as in every Meta release) and the others are fitted: Meta's high 4 / original 8192 first, then a fit through the
 * interpolated pairs. Any candidate is accepted only when it reproduces every stored factor.
 */
export function llama3ScalingFromFactors(theta: number, headDim: number, f: Float32Array): RopeScaling | null {
  if (f.length !== headDim / 2 || isIdentityRopeFactors(f)) return null;
  const factor = Math.max(...f);
  if (!(factor > 1) || f.some((x) => !(x >= 1))) return null; // llama3 factors lie in [1, factor]
  const freq = Array.from(f, (_, i) => f32(1 / f32(Math.pow(f32(theta), f32((2 * i) / headDim)))));
  const candidates: [number, number][] = [[4, 8192]]; // [high_freq_factor, original_max_position_embeddings]
  // interpolated pairs: s = (orig·freq/2π − 1) / (high − 1), with s from 1/f = (1 − s)/factor + s
  const mid = [...f.keys()].filter((i) => f[i] > 1 && f[i] < factor);
  const sOf = (i: number): number => (1 / f[i] - 1 / factor) / (1 - 1 / factor);
  if (mid.length >= 2) {
    const [a, b] = [mid[0], mid[mid.length - 1]];
    const slope = (sOf(b) - sOf(a)) / (freq[b] - freq[a]); // orig / (2π (high − 1))
    const high = 1 - 1 / (sOf(a) - slope * freq[a]); // intercept = −1 / (high − 1)
    const orig = Math.round(slope * 2 * Math.PI * (high - 1));
    for (let p = 1; p <= 7; p++) candidates.push([Number(high.toPrecision(p)), orig]);
  } else if (mid.length === 1) {
    candidates.push([4, Math.round(((3 * sOf(mid[0]) + 1) * 2 * Math.PI) / freq[mid[0]])]);
  } else {
    // no pair on the ramp: with high 4, original must exceed 4× every unscaled wavelength and stay below every scaled one
    const wave = (i: number): number => (2 * Math.PI) / freq[i];
    const lo = Math.max(0, ...[...f.keys()].filter((i) => f[i] === 1).map((i) => 4 * wave(i)));
    const hi = Math.min(...[...f.keys()].filter((i) => f[i] === factor).map(wave));
    for (let p = 2 ** Math.ceil(Math.log2(lo + 1)); p < hi; p *= 2) candidates.push([4, p]);
    candidates.push([4, Math.ceil(lo + 1)]);
  }
  for (const [high, orig] of candidates) {
    if (!(high > 1) || !(orig > 0) || !Number.isFinite(orig)) continue;
    const s: RopeScaling = { type: 'llama3', factor: shortestF32(factor), lowFreqFactor: 1, highFreqFactor: high, originalMaxPositionEmbeddings: orig };
    const g = llama3RopeFreqFactors(theta, headDim, s);
    if (g.every((x, i) => Math.abs(x - f[i]) <= FACTOR_RTOL * f[i])) return s;
  }
  return null;
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
  const factors = c.ropeFreqFactors;
  if (factors && !isIdentityRopeFactors(factors) && c.ropeScaling === null) {
    // What a user converting a Llama 3.x GGUF expects is a config.json transformers runs identically; when no
    // rope_scaling reproduces the file's factors, writing one would silently change the model, so refuse.
    throw new Error(
      "config.json: this model's RoPE frequency factors (GGUF rope_freqs.weight) match no Llama-3 rope_scaling, so " +
        'transformers could not run it as llama.cpp does; keep it as GGUF',
    );
  }
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
