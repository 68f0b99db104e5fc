// The models of the inference bench: three public shapes (SmolLM-135M, Qwen2.5-0.5B, TinyLlama-1.1B) with random
// weights, written as GGUF files in F32 / F16 / BF16 / Q8_0 by nomoat's writer and as Q4_K_M by llama.cpp's own
// quantizer run on the F16 file (../shared/tools/llamacpp_quantize.py), which is how users get a Q4_K_M file.
// Weights are made directly in the file's type (F16/BF16 codes from a table, Q8_0 blocks of random int8 with one
// scale), so a 1.1B model never exists as f32 in memory (4.4 GB) and no slow encoding runs.

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dtypeBytes, Tensor } from '../src/engine/index.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../src/engine/quant/index.js';
import { LlamaModel } from '../src/models/llama.js';
import { saveGguf, type OutType } from '../src/models/convert.js';
import type { LlamaConfig } from '../src/models/config.js';
import { GgufTokenizer, TokenType } from '../src/tokenizer/index.js';

/** The files: our writer's dtypes, and llama.cpp's Q4_K_M mix (the file most people download). */
export type InferDType = OutType | 'q4_k_m';
export const ALL_DTYPES: readonly InferDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'];

const QUANTIZE = fileURLToPath(new URL('../../../shared/tools/llamacpp_quantize.py', import.meta.url)); // from dist/bench
const Q4_K_M_FTYPE = 15; // llama_ftype (llama.h)

/** SmolLM-135M's shape (HF config of HuggingFaceTB/SmolLM-135M). */
export const SMOLLM_135M: LlamaConfig = {
  arch: 'llama', vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeMode: 'interleaved', maxPositionEmbeddings: 2048,
  tieWordEmbeddings: true, attentionBias: false, bosTokenId: 1, eosTokenId: [2],
};

/** Qwen2.5-0.5B's shape (HF config of Qwen/Qwen2.5-0.5B): llama.cpp's qwen2 architecture, q/k/v biases, tied. */
export const QWEN25_05B: LlamaConfig = {
  arch: 'qwen2', vocabSize: 151936, hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2,
  headDim: 64, rmsNormEps: 1e-6, ropeTheta: 1e6, ropeScaling: null, ropeMode: 'halves', maxPositionEmbeddings: 32768,
  tieWordEmbeddings: true, attentionBias: true, bosTokenId: 1, eosTokenId: [2],
};

/** TinyLlama-1.1B's shape (HF config of TinyLlama/TinyLlama-1.1B-Chat-v1.0): untied LM head. */
export const TINYLLAMA_11B: LlamaConfig = {
  arch: 'llama', vocabSize: 32000, hiddenSize: 2048, intermediateSize: 5632, numLayers: 22, numHeads: 32, numKvHeads: 4,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeMode: 'interleaved', maxPositionEmbeddings: 4096,
  tieWordEmbeddings: false, attentionBias: false, bosTokenId: 1, eosTokenId: [2],
};

/** The shapes by the name NOMOAT_INFER_SHAPES and the metric names use. */
export const SHAPES = { '135m': SMOLLM_135M, 'qwen2.5-0.5b': QWEN25_05B, 'tinyllama-1.1b': TINYLLAMA_11B } as const;
export type ShapeName = keyof typeof SHAPES;

/** An SPM vocab of `n` tokens llama.cpp loads: <unk> <s> </s>, the 256 byte tokens (it needs <0x0A>), then
 *  synthetic normal pieces. Only its size matters here: both engines are fed token ids. */
function syntheticVocab(n: number, name: string): GgufTokenizer {
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)];
  while (tokens.length < n) tokens.push(`\u2581t${tokens.length}`);
  const types = tokens.map((_, i) => (i === 0 ? TokenType.unknown : i < 3 ? TokenType.control : i < 259 ? TokenType.byte : TokenType.normal));
  return new GgufTokenizer({
    model: 'llama', pre: 'default', tokens, scores: tokens.map((_, i) => -i), tokenTypes: types, merges: [], bosId: 1, eosId: 2,
    unkId: 0, padId: null, eotId: null, addBos: true, chatTemplate: null, name,
  });
}

/** Shape of a weight of cfg by HF name: [rows, cols] for matrices, [n] for biases. */
function weightShape(cfg: LlamaConfig, name: string): number[] {
  const [C, I, q, kv] = [cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * cfg.headDim, cfg.numKvHeads * cfg.headDim];
  if (/q_proj\.bias$/.test(name)) return [q];
  if (/[kv]_proj\.bias$/.test(name)) return [kv];
  const byModule: [RegExp, [number, number]][] = [
    [/embed_tokens|lm_head/, [cfg.vocabSize, C]], [/q_proj/, [q, C]], [/[kv]_proj/, [kv, C]], [/o_proj/, [C, q]],
    [/gate_proj|up_proj/, [I, C]], [/down_proj/, [C, I]],
  ];
  const hit = byModule.find(([re]) => re.test(name));
  if (hit === undefined) throw new Error(`infer bench: no shape for ${name}`);
  return hit[1];
}

/** xorshift32: fast seeded 32-bit words (Math.random would make 1.1B values slowly and unrepeatably). */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

/**
 * A random model of shape `cfg` with its 2-D weights directly in `dtype`: uniform values of std 0.02 (f32; f16/bf16
 * from a table of 65536 evenly spaced codes, two per random word), q8_0 blocks of random int8 with one fixed scale.
 * Norms are 1, biases 0.02-uniform f32.
 */
function randomModel(cfg: LlamaConfig, dtype: OutType): LlamaModel {
  const next = xorshift(0x9e3779b9);
  const amp = 0.02 * Math.sqrt(3); // uniform(−a, a) has std a/√3
  const uniform = (): number => (next() / 2 ** 31 - 1) * amp;
  const codes = new Uint16Array(65536);
  if (dtype === 'f16' || dtype === 'bf16') {
    const enc = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < codes.length; i++) codes[i] = enc(((i + 0.5) / 32768 - 1) * amp);
  }
  return new LlamaModel(cfg, (name) => {
    if (/norm\.weight$/.test(name)) return Tensor.full([cfg.hiddenSize], 1).keep();
    if (!name.endsWith('.weight') && !name.endsWith('.bias')) return undefined;
    const shape = weightShape(cfg, name);
    if (shape.length === 2 && dtype === 'q8_0') {
      const bytes = new Uint8Array(dtypeBytes('q8_0', shape[0] * shape[1]));
      const words = new Uint32Array(bytes.buffer, 0, bytes.length >>> 2);
      for (let i = 0; i < words.length; i++) words[i] = next();
      const scale = f32ToF16Bits(amp / 127);
      for (let b = 0; b < bytes.length; b += 34) {
        bytes[b] = scale & 0xff;
        bytes[b + 1] = scale >>> 8;
      }
      return Tensor.fromBytes(bytes, shape, 'q8_0').keep();
    }
    if (shape.length === 2 && (dtype === 'f16' || dtype === 'bf16')) {
      const half = new Uint16Array(shape[0] * shape[1]); // even: every width here is
      for (let i = 0; i < half.length; i += 2) {
        const w = next();
        half[i] = codes[w & 0xffff];
        half[i + 1] = codes[w >>> 16];
      }
      return Tensor.fromBytes(new Uint8Array(half.buffer), shape, dtype).keep();
    }
    const t = Tensor.zeros(shape).keep();
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = uniform();
    return t;
  });
}

/** Writes the GGUF file of `dtype` for shape `name` into `dir`; returns its path. */
export function writeModel(dir: string, name: ShapeName, dtype: InferDType): string {
  const cfg = SHAPES[name];
  const path = join(dir, `${name}-random-${dtype}.gguf`);
  const written: OutType = dtype === 'q4_k_m' ? 'f16' : dtype;
  const model = randomModel(cfg, written);
  const source = dtype === 'q4_k_m' ? join(dir, `${name}-random-q4_k_m-source-f16.gguf`) : path;
  saveGguf(model, syntheticVocab(cfg.vocabSize, `bench-${name}`), source, { dtype: written });
  model.dispose();
  if (dtype === 'q4_k_m') quantizeQ4KM(source, path);
  return path;
}

/** Writes the 135M-shaped GGUF file of each dtype; returns their paths (the serve bench's models). */
export function writeModels<D extends InferDType>(dir: string, dtypes: readonly D[]): Map<D, string> {
  return new Map(dtypes.map((d) => [d, writeModel(dir, '135m', d)]));
}

/** llama.cpp's Q4_K_M file of an F16 one (the quantizer loads libllama from node-llama-cpp in the package root). */
function quantizeQ4KM(src: string, dst: string): void {
  if (!existsSync(QUANTIZE)) throw new Error(`infer bench: Q4_K_M needs llama.cpp's quantizer ${QUANTIZE} (../shared/tools beside the clone)`);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync('python3', [QUANTIZE, src, dst, String(Q4_K_M_FTYPE)], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`infer bench: ${QUANTIZE} ${src} → Q4_K_M failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
  rmSync(src);
}
