// Model export: a loaded model (+ its tokenizer) written as a GGUF file llama.cpp runs, or as a Hugging Face folder
// transformers loads; and GGUF → GGUF requantization (what llama.cpp's `llama-quantize` does: its mixes, bit-exact).
//
// Facts from llama.cpp: convert_hf_to_gguf.py keeps 1-D tensors (norms, biases) in F32 whatever the outtype, falls
// back to F16 for a tensor whose rows do not split into quantization blocks, and permutes Q/K rows of the `llama`
// architecture to the interleaved RoPE pairing; llama-quantize quantizes only 2-D `*.weight` tensors and refuses
// to requantize an already quantized file unless asked (--allow-requantize).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DTYPES, dtypeBytes, type DType } from '../engine/dtype.js';
import { readGguf, readGgufTensor, readGgufTensorF32, type GgufTensorInfo } from '../formats/gguf.js';
import { GGML_TYPES, GGML_TYPE_OF, type GgufKV, type GgufScalar, type GgufType } from '../formats/gguf-types.js';
import { GGUF_ROPE_FREQS, hfConfigToGgufMetadata, hfToGgufName, qkHalvesToInterleaved, qkInterleavedToHalves, type HfLlamaConfig } from '../formats/names.js';
import { isWritableDType, quantize, tensorValues } from '../engine/quant/index.js';
import type { Imatrix } from '../formats/imatrix.js';
import { writeGguf, type GgufTensorSpec } from '../formats/gguf-write.js';
import { writeSafetensors, type SafetensorsTensorSpec } from '../formats/safetensors.js';
import {
  GGUF_TOKENIZER_KEY_TYPES, GgufTokenizer, HfTokenizer, ggufMetadataToTokenizerJson, tokenizerJsonToGgufMetadata,
  type GgufVocab, type Tokenizer, type TokenizerConfig, type TokenizerJson,
} from '../tokenizer/index.js';
import type { RopeMode } from '../engine/backend.js';
import { ARCHITECTURES, configToHf, llama3RopeFreqFactors, type LlamaConfig } from './config.js';
import type { LlamaModel } from './llama.js';
import { MIX_FILE_TYPE, mixTensorTypes, type QuantMix } from './quant-mix.js';

/** The tensor types nomoat writes. bf16 rounds to nearest even, as ggml_compute_fp32_to_bf16 and torch do. */
export type OutType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';
export const OUT_TYPES: readonly OutType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];

export interface SaveGgufOptions {
  /** type of the 2-D weights (default f16, as convert_hf_to_gguf.py); 1-D tensors stay f32 */
  dtype?: OutType;
  /** general.name (default: the GGUF vocab's name, else none) */
  name?: string;
}

// ---- tensor values ---------------------------------------------------------------------------------------------


/** Row order that turns `from` RoPE pairing into `to` for a q/k projection of `rows` rows in `nHead` heads:
 *  perm[dst] = src. Computed by permuting row indices with the formats' own Q/K permutation. */
function ropeRowOrder(rows: number, nHead: number, from: RopeMode, to: RopeMode): Int32Array | null {
  if (from === to) return null;
  const idx = Float32Array.from({ length: rows }, (_, i) => i);
  const moved = from === 'halves' ? qkHalvesToInterleaved(idx, rows, nHead) : qkInterleavedToHalves(idx, rows, nHead);
  return Int32Array.from(moved);
}

/** Reorders the rows of a row-major buffer (f32 values or block-encoded bytes: blocks never cross rows). */
function permuteRowsOf<T extends Float32Array | Uint8Array>(data: T, order: Int32Array): T {
  const rowLen = data.length / order.length;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  order.forEach((src, dst) => out.set(data.subarray(src * rowLen, (src + 1) * rowLen), dst * rowLen));
  return out;
}

/** For a HF tensor name, the number of heads whose rows the RoPE pairing permutes (q: H, k: G), else 0. */
function ropeHeads(name: string, c: LlamaConfig): number {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(name)) return c.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(name)) return c.numKvHeads;
  return 0;
}

/** The type llama.cpp's converter would store a tensor of `shape` in when asked for `want`. */
export function tensorOutType(shape: readonly number[], want: OutType): OutType {
  if (shape.length < 2) return 'f32';
  const row = shape[shape.length - 1] ?? 1;
  if (row % DTYPES[want].blockSize !== 0) return 'f16';
  return want;
}

// ---- tokenizer metadata ----------------------------------------------------------------------------------------

/** `tokenizer.ggml.*` entries of a GGUF vocab (the inverse of ggufVocabFromMetadata). */
function vocabMetadata(v: GgufVocab): Map<string, unknown> {
  const m = new Map<string, unknown>();
  m.set('tokenizer.ggml.model', v.model);
  m.set('tokenizer.ggml.pre', v.pre);
  m.set('tokenizer.ggml.tokens', v.tokens);
  if (v.model === 'llama') m.set('tokenizer.ggml.scores', v.scores);
  m.set('tokenizer.ggml.token_type', v.tokenTypes);
  if (v.model === 'gpt2') m.set('tokenizer.ggml.merges', v.merges);
  const ids: [string, number | null][] = [
    ['bos_token_id', v.bosId], ['eos_token_id', v.eosId], ['unknown_token_id', v.unkId], ['padding_token_id', v.padId], ['eot_token_id', v.eotId],
  ];
  for (const [k, id] of ids) if (id !== null) m.set(`tokenizer.ggml.${k}`, id);
  if (v.addBos !== undefined) m.set('tokenizer.ggml.add_bos_token', v.addBos);
  if (v.addEos !== undefined) m.set('tokenizer.ggml.add_eos_token', v.addEos);
  if (v.addSpacePrefix !== undefined) m.set('tokenizer.ggml.add_space_prefix', v.addSpacePrefix);
  if (v.chatTemplate !== null) m.set('tokenizer.chat_template', v.chatTemplate);
  return m;
}

/** The tokenizer as `tokenizer.ggml.*` metadata (untyped values, as GGUF readers return them). */
export function tokenizerMetadata(tok: Tokenizer): Map<string, unknown> {
  if (tok instanceof GgufTokenizer) return vocabMetadata(tok.vocab);
  if (tok instanceof HfTokenizer) return tokenizerJsonToGgufMetadata(tok.json, tok.config);
  throw new Error('export: the tokenizer is neither a GGUF vocab nor a tokenizer.json; cannot write it');
}

/** The tokenizer metadata with the GGUF value types llama.cpp's loader requires. */
function typedTokenizerKvs(meta: Map<string, unknown>): GgufKV[] {
  const types: Record<string, GgufType> = { string: 'string', uint32: 'uint32', bool: 'bool', 'string[]': { array: 'string' }, 'float32[]': { array: 'float32' }, 'int32[]': { array: 'int32' } };
  return [...meta].map(([key, value]) => {
    const t = GGUF_TOKENIZER_KEY_TYPES[key];
    if (t === undefined) throw new Error(`export: tokenizer metadata key ${key} has no known GGUF type`);
    return { key, type: types[t], value: value as GgufScalar | GgufScalar[] };
  });
}

// ---- GGUF ------------------------------------------------------------------------------------------------------

/** The HF config fields GGUF metadata carries. */
function ggufConfigOf(c: LlamaConfig): HfLlamaConfig {
  const hf: HfLlamaConfig = {
    model_type: c.arch, vocab_size: c.vocabSize, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers, num_attention_heads: c.numHeads, num_key_value_heads: c.numKvHeads,
    max_position_embeddings: c.maxPositionEmbeddings, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
  };
  if (c.headDim !== c.hiddenSize / c.numHeads) hf.head_dim = c.headDim;
  return hf;
}

/**
 * rope_freqs.weight [D/2] for a model with Llama-3 rope scaling, else null: the factors it was loaded with (a GGUF
 * file, copied unchanged), or those llama.cpp's converter computes from its HF rope_scaling. llama.cpp writes no
 * metadata key for this scaling: the tensor alone carries it.
 */
export function ggufRopeFreqs(c: LlamaConfig): Float32Array | null {
  const f = c.ropeFreqFactors ?? (c.ropeScaling !== null ? llama3RopeFreqFactors(c.ropeTheta, c.headDim, c.ropeScaling) : null);
  if (f === null) return null;
  // llama.cpp reads rope_freqs for its llama architecture only (qwen2 would refuse the file: an unexpected tensor)
  if (c.arch !== 'llama') throw new Error(`export to GGUF: llama.cpp's ${c.arch} architecture has no rope_freqs tensor, so this model's Llama-3 rope scaling cannot be written`);
  return f;
}

/** The GGUF tensors of a model: llama.cpp names, Q/K rows in the architecture's GGUF pairing, per-tensor types;
 *  rope_freqs first when the model has Llama-3 scaling (where convert_hf_to_gguf.py puts its extra tensors). Each
 *  tensor's data is made when the writer asks for it: export holds one decoded tensor at a time beside the model. */
export function ggufTensors(model: LlamaModel, dtype: OutType): GgufTensorSpec[] {
  const c = model.config;
  const target = ARCHITECTURES[c.arch].ggufRopeMode;
  const freqs = ggufRopeFreqs(c);
  const extra: GgufTensorSpec[] = freqs === null ? [] : [{ name: GGUF_ROPE_FREQS, dtype: 'f32', shape: [freqs.length], data: freqs }];
  return extra.concat(model.namedTensors().map(([name, t]) => {
    const gname = hfToGgufName(name);
    if (gname === null) throw new Error(`export to GGUF: tensor ${name} has no llama.cpp name`);
    const out = tensorOutType(t.shape, dtype);
    const heads = ropeHeads(name, c);
    const order = heads > 0 ? ropeRowOrder(t.shape[0], heads, c.ropeMode, target) : null;
    const data = (): Float32Array | Uint8Array => {
      // Same type in and out: copy the stored bytes (no decode/encode, so q8_0 → q8_0 is exact).
      const d = t.dtype === out && t.dtype !== 'f32' ? t.bytes : tensorValues(t);
      return order !== null ? permuteRowsOf(d, order) : d;
    };
    return { name: gname, dtype: out, shape: [...t.shape], data };
  }));
}

/** Writes model + tokenizer as a GGUF file llama.cpp loads. */
export function saveGguf(model: LlamaModel, tokenizer: Tokenizer | null, path: string, opts: SaveGgufOptions = {}): void {
  const dtype = opts.dtype ?? 'f16';
  const name = opts.name ?? (tokenizer instanceof GgufTokenizer ? (tokenizer.vocab.name ?? undefined) : undefined);
  const metadata = hfConfigToGgufMetadata(ggufConfigOf(model.config), { ...(name !== undefined ? { name } : {}), fileType: dtype });
  if (tokenizer !== null) metadata.push(...typedTokenizerKvs(tokenizerMetadata(tokenizer)));
  writeGguf(path, { metadata, tensors: ggufTensors(model, dtype) });
}

// ---- GGUF → GGUF requantization ---------------------------------------------------------------------------------

export interface QuantizeOptions {
  /** requantize tensors that are already quantized (quality loss twice), as llama-quantize --allow-requantize */
  allowRequantize?: boolean;
  /** every requantized weight in the mix's own type (llama-quantize --pure); rows that do not fit still fall back */
  pure?: boolean;
  /** called with the input tensor bytes handled so far, of `total` */
  onProgress?: (done: number, total: number) => void;
  /** an importance matrix (formats/imatrix.ts): each requantized tensor it covers is written by ggml's weighted
   *  writers with its values, as llama-quantize --imatrix does, and the output records quantize.imatrix.* */
  imatrix?: Imatrix;
}

export interface QuantizeReport {
  quantized: number; // tensors converted to another type
  kept: { name: string; type: string; reason: string }[];
  /** the number of tensors written in each type, by ggml type name */
  types: Map<string, number>;
  inBytes: number;
  outBytes: number;
  /** with an imatrix: requantized tensors it has no entry for (llama-quantize: "did not find weights for …"), and
   *  token_embd when its entry has the wrong length (llama-quantize quantizes it without, as here) */
  withoutImatrix: string[];
}

const FLOAT_TYPES = new Set<DType | null>(['f32', 'f16', 'bf16']);

/**
 * Requantizes a GGUF file as llama-quantize does for `mix`: each tensor's type chosen as llama_tensor_get_type does
 * (quant-mix.ts), its f32 values encoded by ggml's writers (bit-exact; with `opts.imatrix`, the weighted ones for each
 * tensor it covers), every metadata entry kept but general.file_type (and quantize.imatrix.* with an imatrix).
 * Tensors stay in the input's order.
 */
export function quantizeGguf(inPath: string, outPath: string, mix: QuantMix, opts: QuantizeOptions = {}): QuantizeReport {
  const file = readGguf(inPath);
  const report: QuantizeReport = { quantized: 0, kept: [], types: new Map(), inBytes: 0, outBytes: 0, withoutImatrix: [] };
  const imatrix = opts.imatrix;
  const blockCount = file.metadata.get(`${String(file.metadata.get('general.architecture'))}.block_count`);
  const targets = mixTensorTypes(mix, file.tensors, {
    pure: opts.pure,
    blockCount: typeof blockCount === 'number' ? blockCount : undefined,
    imatrix: imatrix !== undefined,
  });
  /** The importance weights of a tensor about to be requantized, as llama-quantize looks them up. */
  const weightsOf = (info: GgufTensorInfo): Float32Array | undefined => {
    if (imatrix === undefined) return undefined;
    const w = imatrix.entries.get(info.name);
    const cols = info.ne[0] ?? 0;
    if (w === undefined || (w.length !== cols && info.name === 'token_embd.weight')) {
      report.withoutImatrix.push(info.name);
      return undefined;
    }
    if (info.ne.length > 2 && info.ne.slice(2).some((n) => n > 1)) {
      throw new Error(`${inPath}: tensor ${info.name} has ${info.ne.length} dimensions; per-expert importance matrices are not supported`);
    }
    if (w.length !== cols) {
      throw new Error(`${imatrix.name}: the imatrix entry for ${info.name} has ${w.length} values, but the tensor's rows have ${cols} (an imatrix made for another model?)`);
    }
    return w;
  };
  const total = file.tensors.reduce((n, i) => n + i.byteLength, 0);
  let done = 0;
  const progress = (info: GgufTensorInfo): void => {
    done += info.byteLength;
    opts.onProgress?.(done, total);
  };
  const tensors = file.tensors.map((info: GgufTensorInfo): GgufTensorSpec => {
    report.inBytes += info.byteLength;
    if (info.dtype === null) throw new Error(`${inPath}: tensor ${info.name} has type ${info.typeName}, which nomoat cannot copy`);
    const target = targets.get(info.name) ?? null;
    const out = target ?? info.dtype;
    const typeName = GGML_TYPES.get(GGML_TYPE_OF[out])?.name ?? out;
    report.types.set(typeName, (report.types.get(typeName) ?? 0) + 1);
    if (out === info.dtype) {
      report.kept.push({ name: info.name, type: info.typeName, reason: target === null ? 'not a quantizable weight' : 'already in the target type' });
      report.outBytes += info.byteLength;
      return { name: info.name, dtype: out, shape: info.shape, data: () => (progress(info), readGgufTensor(file, info)) };
    }
    if (!FLOAT_TYPES.has(info.dtype) && !opts.allowRequantize) {
      throw new Error(`${inPath}: tensor ${info.name} is already ${info.typeName}; requantizing loses quality twice (pass --allow-requantize to do it anyway)`);
    }
    report.quantized++;
    report.outBytes += dtypeBytes(out, info.nElements);
    const weights = weightsOf(info);
    if (weights !== undefined && isWritableDType(out)) {
      return { name: info.name, dtype: out, shape: info.shape, data: () => (progress(info), quantize(out, readGgufTensorF32(file, info), weights)) };
    }
    return { name: info.name, dtype: out, shape: info.shape, data: () => (progress(info), readGgufTensorF32(file, info)) }; // encoded when written
  });
  const fileType = MIX_FILE_TYPE[mix];
  const metadata: GgufKV[] = [...file.metadata].map(([key, value]) => {
    const type = file.metadataTypes.get(key);
    if (type === undefined) throw new Error(`${inPath}: metadata ${key} has no type`);
    return key === 'general.file_type' ? { key, type: 'uint32', value: fileType } : { key, type, value };
  });
  if (!file.metadata.has('general.file_type')) metadata.push({ key: 'general.file_type', type: 'uint32', value: fileType });
  if (imatrix !== undefined) {
    // llama-quantize's kv overrides: strings cut to 127 bytes, counts as uint32, chunks only when known
    const set = (kv: GgufKV): void => {
      const i = metadata.findIndex((m) => m.key === kv.key);
      if (i >= 0) metadata[i] = kv;
      else metadata.push(kv);
    };
    set({ key: 'quantize.imatrix.file', type: 'string', value: cString127(imatrix.name) });
    const dataset = imatrix.datasets[0];
    if (dataset !== undefined) set({ key: 'quantize.imatrix.dataset', type: 'string', value: cString127(dataset) });
    set({ key: 'quantize.imatrix.entries_count', type: 'uint32', value: imatrix.entries.size });
    if (imatrix.chunkCount > 0) set({ key: 'quantize.imatrix.chunks_count', type: 'uint32', value: imatrix.chunkCount });
  }
  writeGguf(outPath, { metadata, tensors, alignment: file.alignment });
  return report;
}

/** A string as llama-quantize's 128-byte override buffer keeps it: at most 127 UTF-8 bytes (not splitting a character). */
function cString127(s: string): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= 127) return s;
  let n = 127;
  while (n > 0 && ((b[n] ?? 0) & 0xc0) === 0x80) n--;
  return b.subarray(0, n).toString('utf8');
}

// ---- Hugging Face folder ---------------------------------------------------------------------------------------

/** The safetensors dtypes a Hugging Face folder is written in, with config.json's torch_dtype for each. */
export const HF_DTYPES = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;
export type HfDType = keyof typeof HF_DTYPES;

/** The safetensors dtype for an out type, or null for the GGUF-only block types. */
export function hfDtypeOf(t: OutType): HfDType | null {
  return t === 'f32' ? 'F32' : t === 'f16' ? 'F16' : t === 'bf16' ? 'BF16' : null;
}

export interface SaveHfOptions {
  /** safetensors dtype of every tensor (default F32) */
  dtype?: HfDType;
}

/** The tokenizer as tokenizer.json + tokenizer_config.json. */
export function tokenizerFiles(tok: Tokenizer): { tokenizerJson: TokenizerJson; tokenizerConfig: TokenizerConfig } {
  if (tok instanceof HfTokenizer) return { tokenizerJson: tok.json, tokenizerConfig: tok.config };
  if (tok instanceof GgufTokenizer) return ggufMetadataToTokenizerJson(vocabMetadata(tok.vocab));
  throw new Error('export: the tokenizer is neither a GGUF vocab nor a tokenizer.json; cannot write it');
}

const writeJson = (path: string, v: unknown): void => writeFileSync(path, JSON.stringify(v, null, 2) + '\n');

/** Writes a Hugging Face model folder: config.json, model.safetensors, generation_config.json and the tokenizer. */
export function saveHfFolder(model: LlamaModel, tokenizer: Tokenizer | null, dir: string, opts: SaveHfOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const c = model.config;
  const config = configToHf({ ...c, ropeMode: 'halves' }); // first: it refuses rope factors config.json cannot express
  const tensors: SafetensorsTensorSpec[] = model.namedTensors().map(([name, t]) => {
    const heads = ropeHeads(name, c);
    const order = heads > 0 ? ropeRowOrder(t.shape[0], heads, c.ropeMode, 'halves') : null;
    const data = (): Float32Array => (order === null ? tensorValues(t) : permuteRowsOf(tensorValues(t), order)); // made when written
    return { name, dtype, shape: [...t.shape], data };
  });
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  config.torch_dtype = HF_DTYPES[dtype];
  writeJson(join(dir, 'config.json'), config);
  const gen: Record<string, unknown> = { _from_model_config: true };
  if (c.bosTokenId !== null) gen.bos_token_id = c.bosTokenId;
  if (c.eosTokenId.length > 0) gen.eos_token_id = c.eosTokenId.length === 1 ? c.eosTokenId[0] : c.eosTokenId;
  writeJson(join(dir, 'generation_config.json'), gen);
  if (tokenizer !== null) {
    const { tokenizerJson, tokenizerConfig } = tokenizerFiles(tokenizer);
    writeJson(join(dir, 'tokenizer.json'), tokenizerJson);
    writeJson(join(dir, 'tokenizer_config.json'), tokenizerConfig);
  }
}
