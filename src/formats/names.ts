// Hugging Face ↔ llama.cpp (GGUF) naming: tensor names, the Q/K RoPE row permutation, config ↔ metadata keys.
//
// Facts from llama.cpp: gguf-py/gguf/constants.py (MODEL_TENSOR names, Keys.LLM/Attention/Rope, LlamaFileType),
// gguf-py/gguf/tensor_mapping.py (HF names), conversion/llama.py `LlamaModel.permute` (applied to q_proj and
// k_proj for the `llama` architecture only; qwen2 keeps HF's layout because llama.cpp runs it with NEOX RoPE),
// conversion/base.py `set_gguf_parameters` (which hparams become which keys, and their GGUF types).

import type { DType } from '../engine/dtype.js';
import type { GgufKV, GgufValue } from './gguf-types.js';

export type LlamaArch = 'llama' | 'qwen2';

// ---- tensor names ----------------------------------------------------------------------------------------------

const GLOBAL: readonly [string, string][] = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

const PER_LAYER: readonly [string, string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'], // qwen2
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

/** llama.cpp's Llama-3 rope scaling: F32 [head_dim/2] frequency divisors (theta_i = pos·base^(-2i/D) / f[i]), one
 *  tensor for the whole model. HF has no tensor for it (rope_scaling in config.json instead), so it has no HF name:
 *  the GGUF loader reads it into LlamaConfig.ropeFreqFactors and the GGUF writer writes it from there. */
export const GGUF_ROPE_FREQS = 'rope_freqs.weight';

/** GGUF name for an HF Llama/Qwen2 tensor name, or null when it has none (e.g. rotary_emb.inv_freq). */
export function hfToGgufName(name: string): string | null {
  for (const [hf, gg] of GLOBAL) if (name === hf) return gg;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m === null) return null;
  const rest = m[2];
  for (const [hf, gg] of PER_LAYER) if (rest === hf) return `blk.${m[1]}.${gg}`;
  return null;
}

/** HF name for a GGUF tensor name, or null when it has none (e.g. GGUF_ROPE_FREQS). */
export function ggufToHfName(name: string): string | null {
  for (const [hf, gg] of GLOBAL) if (name === gg) return hf;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (m === null) return null;
  const rest = m[2];
  for (const [hf, gg] of PER_LAYER) if (rest === gg) return `model.layers.${m[1]}.${hf}`;
  return null;
}

// ---- Q/K RoPE permutation --------------------------------------------------------------------------------------

// Within each head of D rows, HF (rotate_half) pairs row i with row i + D/2; GGUF/Meta/llama2.c pair rows 2i, 2i+1.
// convert_hf_to_gguf's permute reshapes rows to (n_head, 2, D/2) and swaps the last two axes:
//   interleaved row h·D + 2i + j  =  halves row h·D + j·D/2 + i      (i < D/2, j ∈ {0, 1})
function permuteRows(data: Float32Array, rows: number, nHead: number, toInterleaved: boolean): Float32Array {
  if (rows % nHead !== 0 || (rows / nHead) % 2 !== 0 || data.length % rows !== 0) {
    throw new Error(`Q/K permutation: ${rows} rows do not split into ${nHead} heads of an even size (data ${data.length})`);
  }
  const cols = data.length / rows;
  const D = rows / nHead;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < D / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const inter = h * D + 2 * i + j;
        const halves = h * D + j * (D / 2) + i;
        const [dst, src] = toInterleaved ? [inter, halves] : [halves, inter];
        out.set(data.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** HF q_proj/k_proj (weight [rows, in] or bias [rows]) → GGUF `llama` layout. nHead: query heads for q, kv heads for k. */
export function qkHalvesToInterleaved(data: Float32Array, rows: number, nHead: number): Float32Array {
  return permuteRows(data, rows, nHead, true);
}

/** The inverse: GGUF `llama` / llama2.c / Meta layout → HF rotate_half layout. */
export function qkInterleavedToHalves(data: Float32Array, rows: number, nHead: number): Float32Array {
  return permuteRows(data, rows, nHead, false);
}

/** Whether llama.cpp permutes Q/K for this architecture when converting from HF. */
export function ggufPermutesQK(arch: LlamaArch): boolean {
  return arch === 'llama';
}

// ---- config.json ↔ metadata ------------------------------------------------------------------------------------

/** The config.json fields of LlamaForCausalLM / Qwen2ForCausalLM that GGUF metadata carries. */
export interface HfLlamaConfig {
  model_type: LlamaArch;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** only when it differs from hidden_size / num_attention_heads */
  head_dim?: number;
  /** linear and yarn scaling map to metadata; llama3-style scaling becomes a rope_freqs tensor in llama.cpp
   *  (GGUF_ROPE_FREQS, and no metadata key) */
  rope_scaling?: { rope_type: 'linear' | 'yarn'; factor: number; original_max_position_embeddings?: number } | null;
}

/** general.file_type values (llama.cpp LlamaFileType) for a model stored mostly in one dtype. */
export const GGUF_FILE_TYPE: Readonly<Record<DType, number>> = {
  f32: 0, // ALL_F32
  f16: 1, // MOSTLY_F16
  q4_0: 2, // MOSTLY_Q4_0
  q4_1: 3, // MOSTLY_Q4_1
  q8_0: 7, // MOSTLY_Q8_0
  q5_0: 8, // MOSTLY_Q5_0
  q5_1: 9, // MOSTLY_Q5_1
  q2_k: 10, // MOSTLY_Q2_K
  q3_k: 12, // MOSTLY_Q3_K_M
  q4_k: 15, // MOSTLY_Q4_K_M
  q5_k: 17, // MOSTLY_Q5_K_M
  q6_k: 18, // MOSTLY_Q6_K
  iq4_nl: 25, // MOSTLY_IQ4_NL
  iq4_xs: 30, // MOSTLY_IQ4_XS
  bf16: 32, // MOSTLY_BF16
};

/** GGUF metadata for an HF config, with the key names and value types llama.cpp's converter writes. */
export function hfConfigToGgufMetadata(c: HfLlamaConfig, opts: { name?: string; fileType?: DType } = {}): GgufKV[] {
  const a = c.model_type;
  const u32 = (key: string, value: number): GgufKV => ({ key: `${a}.${key}`, type: 'uint32', value });
  const f32 = (key: string, value: number): GgufKV => ({ key: `${a}.${key}`, type: 'float32', value });
  const kv: GgufKV[] = [{ key: 'general.architecture', type: 'string', value: a }];
  if (opts.name !== undefined) kv.push({ key: 'general.name', type: 'string', value: opts.name });
  if (opts.fileType !== undefined) kv.push({ key: 'general.file_type', type: 'uint32', value: GGUF_FILE_TYPE[opts.fileType] });
  kv.push(
    u32('vocab_size', c.vocab_size),
    u32('context_length', c.max_position_embeddings),
    u32('embedding_length', c.hidden_size),
    u32('block_count', c.num_hidden_layers),
    u32('feed_forward_length', c.intermediate_size),
    u32('attention.head_count', c.num_attention_heads),
    u32('attention.head_count_kv', c.num_key_value_heads),
    f32('attention.layer_norm_rms_epsilon', c.rms_norm_eps),
    f32('rope.freq_base', c.rope_theta),
    u32('rope.dimension_count', c.head_dim ?? c.hidden_size / c.num_attention_heads),
  );
  if (c.head_dim !== undefined) kv.push(u32('attention.key_length', c.head_dim), u32('attention.value_length', c.head_dim));
  const rs = c.rope_scaling;
  if (rs) {
    kv.push({ key: `${a}.rope.scaling.type`, type: 'string', value: rs.rope_type }, f32('rope.scaling.factor', rs.factor));
    if (rs.original_max_position_embeddings !== undefined) kv.push(u32('rope.scaling.original_context_length', rs.original_max_position_embeddings));
  }
  return kv;
}

/** The shortest decimal that rounds to the same float32 (GGUF stores 1e-5 as 9.99999974e-6; this gives 1e-5 back). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return v;
  }
  return x;
}

/** The HF config described by GGUF metadata (llama or qwen2). Throws naming the missing or mistyped key. */
export function ggufMetadataToHfConfig(md: ReadonlyMap<string, GgufValue>): HfLlamaConfig {
  const arch = md.get('general.architecture');
  if (arch !== 'llama' && arch !== 'qwen2') throw new Error(`GGUF metadata: general.architecture ${JSON.stringify(String(arch))} is not llama or qwen2`);
  const num = (key: string, fallback?: number): number => {
    const v = md.get(`${arch}.${key}`);
    if (typeof v === 'number') return v;
    if (v === undefined && fallback !== undefined) return fallback;
    throw new Error(`GGUF metadata: ${arch}.${key} is ${v === undefined ? 'missing' : 'not a number'}`);
  };
  const tokens = md.get('tokenizer.ggml.tokens');
  const heads = num('attention.head_count');
  const hidden = num('embedding_length');
  const c: HfLlamaConfig = {
    model_type: arch,
    vocab_size: num('vocab_size', Array.isArray(tokens) ? tokens.length : undefined),
    hidden_size: hidden,
    intermediate_size: num('feed_forward_length'),
    num_hidden_layers: num('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: num('attention.head_count_kv', heads),
    max_position_embeddings: num('context_length'),
    rms_norm_eps: shortestF32(num('attention.layer_norm_rms_epsilon')),
    rope_theta: shortestF32(num('rope.freq_base', 10000)),
  };
  const headDim = md.get(`${arch}.attention.key_length`) ?? md.get(`${arch}.rope.dimension_count`);
  if (typeof headDim === 'number' && headDim !== hidden / heads) c.head_dim = headDim;
  const type = md.get(`${arch}.rope.scaling.type`);
  if (type === 'linear' || type === 'yarn') {
    c.rope_scaling = { rope_type: type, factor: shortestF32(num('rope.scaling.factor')) };
    const orig = md.get(`${arch}.rope.scaling.original_context_length`);
    if (typeof orig === 'number') c.rope_scaling.original_max_position_embeddings = orig;
  }
  return c;
}
