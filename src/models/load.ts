// Loading a model and its tokenizer from what users have: a Hugging Face folder (config.json + safetensors +
// tokenizer.json), a GGUF file (weights, metadata and vocabulary in one), or a llama2.c checkpoint.
//
// Frozen weights stay in their stored dtype (f16, q8_0, …) and are read block by block by the matmul; pass
// `dtype: 'f32'` to get trainable f32 copies instead (full-parameter training).

import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../engine/tensor.js';
import { readGguf, readGgufTensor, readGgufTensorF32, type GgufFile, type GgufTensorInfo } from '../formats/gguf.js';
import { LITTLE_ENDIAN } from '../formats/source.js';
import { readLlama2c, readLlama2cTokenizer } from '../formats/llama2c.js';
import { GGUF_ROPE_FREQS, ggufMetadataToHfConfig, ggufToHfName } from '../formats/names.js';
import { openSafetensorsModel, readSafetensorsBytes, readSafetensorsF32 } from '../formats/safetensors.js';
import { GgufTokenizer, HfTokenizer, ggufVocabFromMetadata, TokenType, type Tokenizer } from '../tokenizer/index.js';
import { ARCHITECTURES, archFromGguf, configFromHf, llama3ScalingFromFactors, type LlamaConfig } from './config.js';
import { LlamaModel } from './llama.js';

export type ModelFormat = 'hf' | 'gguf' | 'llama2c';

export interface LoadOptions {
  /** 'keep' (default): frozen weights stay in their stored dtype; 'f32': everything as f32 (for full training). */
  dtype?: 'keep' | 'f32';
}

export interface LoadedModel {
  model: LlamaModel;
  tokenizer: Tokenizer | null;
  format: ModelFormat;
  path: string;
  /** The raw GGUF metadata, when loaded from GGUF (for re-export and inspection). */
  gguf?: GgufFile;
}

export function detectFormat(path: string): ModelFormat {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  if (statSync(path).isDirectory()) return 'hf';
  if (path.endsWith('.gguf')) return 'gguf';
  const head = readFileSync(path, { encoding: null, flag: 'r' }).subarray(0, 4);
  if (head.toString('latin1') === 'GGUF') return 'gguf';
  return 'llama2c';
}

export function loadModel(path: string, opts: LoadOptions = {}): LoadedModel {
  switch (detectFormat(path)) {
    case 'hf':
      return loadHfFolder(path, opts);
    case 'gguf':
      return loadGgufModel(path, opts);
    case 'llama2c':
      return loadLlama2c(path);
  }
}

// ---- Hugging Face folder ----------------------------------------------------------------------------------------

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function loadHfFolder(dir: string, opts: LoadOptions = {}): LoadedModel {
  const config = configFromHf(readJson(join(dir, 'config.json')));
  const st = openSafetensorsModel(dir);
  const cache = new Map<string, Tensor>();
  const lookup = (name: string): Tensor | undefined => {
    const hit = cache.get(name);
    if (hit) return hit;
    const e = st.get(name);
    if (e === undefined) return undefined;
    const { shape, dtype } = e.entry;
    let t: Tensor;
    // frozen 2-D weights stay as stored, the token embedding too (it is the tied LM head; rows are converted as
    // they are gathered), as GGUF files load
    if (opts.dtype === 'f32' || dtype === 'F32' || shape.length < 2) {
      t = Tensor.from(readSafetensorsF32(e.file, name), shape);
    } else if (dtype === 'F16' || dtype === 'BF16') {
      t = Tensor.fromBytes(readSafetensorsBytes(e.file, name), shape, dtype === 'F16' ? 'f16' : 'bf16');
    } else throw new Error(`${dir}: tensor ${name} has unsupported dtype ${dtype}`);
    t.name = name;
    cache.set(name, t.keep());
    return t;
  };
  const model = new LlamaModel(config, lookup);
  st.close();
  const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? HfTokenizer.fromDirectory(dir) : null;
  if (tokenizer && config.eosTokenId.length === 0 && tokenizer.eosId !== null) config.eosTokenId = [tokenizer.eosId];
  return { model, tokenizer, format: 'hf', path: dir };
}

// ---- GGUF ------------------------------------------------------------------------------------------------------

/** Model configuration described by GGUF metadata. */
export function configFromGguf(file: GgufFile): LlamaConfig {
  const hf = ggufMetadataToHfConfig(file.metadata);
  const arch = archFromGguf(hf.model_type);
  const md = file.metadata;
  const num = (k: string): number | null => {
    const v = md.get(k);
    return typeof v === 'number' ? v : null;
  };
  const cfg = configFromHf({ ...hf, rope_scaling: null });
  cfg.ropeMode = ARCHITECTURES[arch].ggufRopeMode;
  cfg.tieWordEmbeddings = !file.tensors.some((t) => t.name === 'output.weight');
  cfg.bosTokenId = num('tokenizer.ggml.bos_token_id');
  const eos = [num('tokenizer.ggml.eos_token_id'), num('tokenizer.ggml.eot_token_id')].filter((x): x is number => x !== null);
  cfg.eosTokenId = [...new Set(eos)];
  if (hf.rope_scaling) throw new Error(`${file.source.name}: rope scaling "${hf.rope_scaling.rope_type}" is not supported yet`);
  const freqs = file.tensors.find((t) => t.name === GGUF_ROPE_FREQS);
  if (freqs !== undefined) {
    cfg.ropeFreqFactors = ropeFreqFactorsOf(file, freqs, cfg.headDim);
    // The factors run the model (as llama.cpp does); the rope_scaling they come from, when it can be recovered
    // exactly, is kept so that export to a Hugging Face folder writes it (configToHf refuses otherwise).
    cfg.ropeScaling = llama3ScalingFromFactors(cfg.ropeTheta, cfg.headDim, cfg.ropeFreqFactors);
  }
  return cfg;
}

/** rope_freqs.weight (Llama 3.1+): F32 [D/2] frequency divisors, each finite and positive. */
function ropeFreqFactorsOf(file: GgufFile, info: GgufTensorInfo, headDim: number): Float32Array {
  const where = `${file.source.name}: tensor ${info.name}`;
  if (info.shape.length !== 1 || info.nElements !== headDim / 2) {
    throw new Error(`${where} has shape [${info.shape.join(', ')}]; expected [${headDim / 2}] (half the head dimension ${headDim})`);
  }
  const f = readGgufTensorF32(file, info);
  const bad = f.findIndex((x) => !(x > 0 && Number.isFinite(x)));
  if (bad >= 0) throw new Error(`${where}: factor ${bad} is ${f[bad]}; frequency factors must be finite and positive`);
  return f;
}

export function loadGgufModel(path: string, opts: LoadOptions = {}): LoadedModel {
  const file = readGguf(path);
  const config = configFromGguf(file);
  const byName = new Map(file.tensors.map((t) => [ggufToHfName(t.name), t] as const));
  const fd = openSync(path, 'r');
  const lookup = (name: string): Tensor | undefined => {
    const info = byName.get(name);
    if (info === undefined) return undefined;
    if (info.dtype === null) throw new Error(`${path}: tensor ${info.name} has type ${info.typeName}, which nomoat cannot read yet`);
    // Frozen 2-D weights (the token embedding too) stay in their stored dtype; the rest becomes f32.
    const keep = opts.dtype !== 'f32' && info.dtype !== 'f32' && info.shape.length === 2;
    let t: Tensor;
    if (keep) t = Tensor.fromBytes(readGgufTensor(file, info), info.shape, info.dtype as Exclude<typeof info.dtype, 'f32'>);
    else if (info.dtype === 'f32') t = readF32Into(fd, file, info);
    else t = Tensor.from(readGgufTensorF32(file, info), info.shape);
    t.name = name;
    return t.keep();
  };
  let model: LlamaModel;
  try {
    model = new LlamaModel(config, lookup);
  } finally {
    closeSync(fd);
  }
  const tokenizer = file.metadata.has('tokenizer.ggml.model') ? new GgufTokenizer(ggufVocabFromMetadata(file.metadata)) : null;
  return { model, tokenizer, format: 'gguf', path, gguf: file };
}

/** An f32 GGUF tensor read from the file straight into a fresh tensor's buffer: one copy, no JS-heap detour
 *  (decoding into a Float32Array and then copying it into native memory held the model twice while loading). */
function readF32Into(fd: number, file: GgufFile, info: GgufTensorInfo): Tensor {
  const t = Tensor.zeros(info.shape);
  const data = t.data;
  if (!LITTLE_ENDIAN || !(data instanceof Float32Array)) {
    data.set(readGgufTensorF32(file, info)); // byte-swapping host, or a float64 reference backend
    return t;
  }
  const view = new Uint8Array(data.buffer, data.byteOffset, info.byteLength);
  for (let done = 0; done < info.byteLength; ) {
    const n = readSync(fd, view, done, info.byteLength - done, info.offset + done);
    if (n === 0) throw new Error(`${file.source.name}: tensor ${info.name}: file ends ${info.byteLength - done} bytes early`);
    done += n;
  }
  return t;
}

// ---- llama2.c ------------------------------------------------------------------------------------------------

/** A llama2.c checkpoint; the tokenizer is `tokenizer.bin` beside it (or the given path). */
export function loadLlama2c(path: string, tokenizerPath?: string): LoadedModel {
  const ck = readLlama2c(path);
  const c = ck.config;
  const config: LlamaConfig = {
    arch: 'llama', vocabSize: c.vocabSize, hiddenSize: c.dim, intermediateSize: c.hiddenDim, numLayers: c.nLayers,
    numHeads: c.nHeads, numKvHeads: c.nKvHeads, headDim: c.dim / c.nHeads, rmsNormEps: 1e-5, ropeTheta: 10000,
    ropeScaling: null, ropeMode: 'interleaved', maxPositionEmbeddings: c.seqLen, tieWordEmbeddings: c.sharedClassifier,
    attentionBias: false, bosTokenId: 1, eosTokenId: [2],
  };
  const model = new LlamaModel(config, (name) => {
    const t = ck.tensors.get(name);
    return t === undefined ? undefined : Tensor.from(t.data, t.shape).keep();
  });
  let tokenizer: Tokenizer | null = null;
  const tokPath = tokenizerPath ?? [join(path, '..', 'tokenizer.bin')].find((p) => existsSync(p));
  if (tokPath !== undefined) tokenizer = llama2cTokenizer(tokPath, c.vocabSize);
  return { model, tokenizer, format: 'llama2c', path };
}

/** llama2.c's tokenizer.bin as an SPM vocabulary (ids 0,1,2 = <unk>, <s>, </s>; <0xXX> byte tokens). */
export function llama2cTokenizer(path: string, vocabSize: number): Tokenizer {
  const t = readLlama2cTokenizer(path, vocabSize);
  const tokens = t.tokens.map((s) => s.replace(/ /g, '\u2581'));
  const types = tokens.map((s, i) => (i === 0 ? TokenType.unknown : i < 3 ? TokenType.control : /^<0x[0-9A-F]{2}>$/.test(s) ? TokenType.byte : TokenType.normal));
  return new GgufTokenizer({
    model: 'llama', pre: 'default', tokens, scores: [...t.scores], tokenTypes: types, merges: [], bosId: 1, eosId: 2, unkId: 0, padId: null,
    eotId: null, addBos: true, chatTemplate: null, name: 'llama2.c',
  });
}
