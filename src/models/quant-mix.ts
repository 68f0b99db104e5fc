// The per-tensor type of a llama-quantize mix (Q4_K_M, Q5_K_S, …), as llama.cpp's llama_tensor_get_type chooses it
// without overrides, with or without an importance matrix (src/llama-quant.cpp of the llama.cpp that node-llama-cpp bundles).
//
// Facts taken from it, for the mixes written here (llama architecture, no experts):
// - only tensors of 2+ dims (ggml_n_dims) named *weight, not *_norm.weight and not a short list of small or special
//   tensors, are requantized; the rest are copied in their own type;
// - output.weight, and token_embd.weight when the model has no output.weight (tied), take q6_k unless the mix is
//   q8_0 (q8_0 also when the row does not split into the mix type's blocks);
// - Q4_K_M and Q5_K_M give q6_k to attn_v and ffn_down of the "use_more_bits" layers (the first and last eighth and
//   every third in between); Q4_K_S gives q5_k to the first 4 attn_v and the first eighth of ffn_down;
// - the i-th attn_v is counted in llama.cpp's tensor order (non-layer tensors, then layer by layer, each by name);
//   ffn_down is placed by that count too, out of the block count;
// - a row that does not split into the chosen type's blocks falls back: q4_k → q5_0, q5_k → q5_1, q6_k → q8_0,
//   q2_k/q3_k → q4_0, then f16 if even 32-value blocks do not fit;
// - with an importance matrix, Q4_0 gives q4_1 to ffn_down of the first eighth of the layers (llama.cpp's "guard
//   against craziness"); no other mix here changes, and none of them needs an imatrix (tensor_requires_imatrix: only
//   the IQ1/IQ2/IQ3_XXS types and Q2_K_S's q2_k do).

import { DTYPES, type DType } from '../engine/dtype.js';

/** The mixes `nomoat quantize` writes, by llama.cpp's name in lower case. */
export type QuantMix = 'q4_k_m' | 'q4_k_s' | 'q5_k_m' | 'q5_k_s' | 'q6_k' | 'q8_0' | 'q4_0' | 'f32' | 'f16' | 'bf16';
export const QUANT_MIXES: readonly QuantMix[] = ['q4_k_m', 'q4_k_s', 'q5_k_m', 'q5_k_s', 'q6_k', 'q8_0', 'q4_0', 'f32', 'f16', 'bf16'];

/** general.file_type (llama_ftype in llama.h) of each mix. */
export const MIX_FILE_TYPE: Readonly<Record<QuantMix, number>> = {
  f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_s: 14, q4_k_m: 15, q5_k_s: 16, q5_k_m: 17, q6_k: 18, bf16: 32,
};

/** llama_ftype_get_default_type: the type of every weight the mix does not single out. */
const MIX_DEFAULT: Readonly<Record<QuantMix, DType>> = {
  f32: 'f32', f16: 'f16', bf16: 'bf16', q4_0: 'q4_0', q8_0: 'q8_0', q4_k_s: 'q4_k', q4_k_m: 'q4_k', q5_k_s: 'q5_k', q5_k_m: 'q5_k', q6_k: 'q6_k',
};

const FLOATS: ReadonlySet<DType> = new Set<DType>(['f32', 'f16', 'bf16']);

export interface MixTensor {
  name: string;
  /** row-major shape (last dimension contiguous: ggml's ne[0]) */
  shape: readonly number[];
}

export interface MixOptions {
  /** the model's block count ({arch}.block_count); defaults to the number of ffn_down tensors */
  blockCount?: number;
  /** every requantized weight in the mix's default type (llama-quantize --pure); fallbacks still apply */
  pure?: boolean;
  /** an importance matrix is given (llama-quantize --imatrix): Q4_0's first-eighth ffn_down become q4_1 */
  imatrix?: boolean;
}

/** ggml_n_dims: dimensions up to the last of ggml's ne[] that is not 1 (row-major: leading 1s do not count). */
function nDims(shape: readonly number[]): number {
  const first = shape.findIndex((d) => d > 1);
  return first < 0 ? 1 : Math.max(1, shape.length - first);
}

// Substrings of tensors llama.cpp never requantizes (tensor_allows_quantization), whatever the architecture.
const NEVER = [
  '_norm.weight', 'ffn_gate_inp.weight', 'ffn_gate_tid2eid.weight', 'altup', 'laurel', 'per_layer_model_proj',
  'ssm_conv1d', 'shortconv.conv.weight', 'indexer.k_proj.weight', 'indexer.q_proj.weight', 'time_mix_first.weight',
  'time_mix_w0.weight', 'time_mix_w1.weight', 'time_mix_w2.weight', 'time_mix_v0.weight', 'time_mix_v1.weight',
  'time_mix_v2.weight', 'time_mix_a0.weight', 'time_mix_a1.weight', 'time_mix_a2.weight', 'time_mix_g1.weight',
  'time_mix_g2.weight', 'time_mix_decay_w1.weight', 'time_mix_decay_w2.weight', 'time_mix_lerp_fused.weight',
  'attn_rel_b.weight', '.position_embd', 'sam.pos_embd', 'sam.neck.', 'sam.net_', '.rel_pos', '.patch_embd',
  '.patch_merger', 'a.rvq.codebook', 'mm.a.code_embd',
];

/** tensor_allows_quantization with llama-quantize's defaults (output.weight included). */
export function allowsQuantization(t: MixTensor): boolean {
  if (nDims(t.shape) < 2 || !t.name.endsWith('weight')) return false;
  if (t.name === 'position_embd.weight' || t.name === 'token_types.weight') return false;
  return !NEVER.some((s) => t.name.includes(s));
}

type Category = 'token_embd' | 'output' | 'attn_v' | 'ffn_down' | 'other';

/** tensor_get_category, for the categories these mixes act on (attn_qkv / attn_kv_b count as attn_v). */
function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v';
  // attn_k / attn_q / attn_output / ffn_up / ffn_gate: no change in these mixes
  if (/attn_(k|q|output)\.weight|ffn_up|ffn_gate/.test(name)) return 'other';
  return name.includes('ffn_down') ? 'ffn_down' : 'other';
}

/** The layer of a blk.N.* name, −1 for the others: llama.cpp's weight order sorts by it, then by name. */
function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  return m === null ? -1 : Number(m[1]);
}

/** llama_model_loader's weight order (weight_name_comparer). */
export function llamaTensorOrder<T extends MixTensor>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) => layerOf(a.name) - layerOf(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const useMoreBits = (i: number, n: number): boolean =>
  i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** tensor_type_fallback: a type whose blocks fit a row of `cols` values. */
function fallback(type: DType, cols: number): DType {
  if (cols % DTYPES[type].blockSize === 0) return type;
  const next: DType = type === 'q4_k' ? 'q5_0' : type === 'q5_k' ? 'q5_1' : type === 'q6_k' ? 'q8_0' : type === 'q2_k' || type === 'q3_k' ? 'q4_0' : type;
  return cols % DTYPES[next].blockSize === 0 ? next : 'f16';
}

/**
 * The type of each tensor in `mix`, by name: null for a tensor llama-quantize copies unchanged (not a quantizable
 * weight), else the target type (which may equal the tensor's own type: then it is copied too).
 */
export function mixTensorTypes(mix: QuantMix, tensors: readonly MixTensor[], opts: MixOptions = {}): Map<string, DType | null> {
  const base = MIX_DEFAULT[mix];
  const ordered = llamaTensorOrder(tensors);
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const nAttnV = tensors.filter((t) => category(t.name) === 'attn_v').length;
  const nLayer = opts.blockCount ?? tensors.filter((t) => category(t.name) === 'ffn_down').length;
  let iAttnV = 0;
  let iFfnDown = 0;
  const out = new Map<string, DType | null>();
  for (const t of ordered) {
    if (!allowsQuantization(t)) {
      out.set(t.name, null);
      continue;
    }
    if (FLOATS.has(base)) {
      out.set(t.name, base);
      continue;
    }
    const cols = t.shape[t.shape.length - 1] ?? 1;
    let type = base;
    const cat = category(t.name);
    if (!opts.pure) {
      if (cat === 'output' || (tied && cat === 'token_embd')) {
        if (cols % DTYPES[base].blockSize !== 0) type = 'q8_0';
        else if (base !== 'q8_0') type = 'q6_k';
      } else if (cat === 'attn_v') {
        if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(iAttnV, nAttnV)) type = 'q6_k';
        else if (mix === 'q4_k_s' && iAttnV < 4) type = 'q5_k';
        iAttnV++;
      } else if (cat === 'ffn_down') {
        if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(iFfnDown, nLayer)) type = 'q6_k';
        else if (mix === 'q4_k_s' && iFfnDown < Math.trunc(nLayer / 8)) type = 'q5_k';
        else if (mix === 'q4_0' && opts.imatrix && iFfnDown < Math.trunc(nLayer / 8)) type = 'q4_1';
        iFfnDown++;
      }
    }
    out.set(t.name, fallback(type, cols));
  }
  return out;
}
