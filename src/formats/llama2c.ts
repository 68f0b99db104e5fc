// llama2.c checkpoints (legacy version 0) and tokenizer.bin, read into Hugging-Face-named tensors.
//
// Checkpoint layout (karpathy/llama2.c run.c: read_checkpoint, memory_map_weights), little-endian:
//   7 × int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//     (a negative vocab_size means the classifier is not shared with the embedding: wcls is stored at the end)
//   f32 arrays, each covering all layers, each matrix row-major [out, in]:
//     token_embedding_table [V, dim] | rms_att_weight [L, dim] | wq [L, H·hd, dim] | wk [L, KV·hd, dim]
//     | wv [L, KV·hd, dim] | wo [L, dim, H·hd] | rms_ffn_weight [L, dim] | w1 [L, hidden, dim]
//     | w2 [L, dim, hidden] | w3 [L, hidden, dim] | rms_final_weight [dim]
//     | freq_cis_real [seq_len, hd/2] | freq_cis_imag [seq_len, hd/2] (unused RoPE tables, skipped)
//     | wcls [V, dim] (only when unshared)
// Q and K rows are in Meta's layout (RoPE rotates interleaved pairs x[2i], x[2i+1]), not HF's rotate_half layout.
//
// tokenizer.bin (run.c build_tokenizer): int32 max_token_length, then per token: f32 score, int32 len, len bytes.

import { ByteReader, FormatError, f32FromBytes, toSource, type ByteSource } from './source.js';

export interface Llama2cConfig {
  dim: number; // transformer width
  hiddenDim: number; // FFN inner width
  nLayers: number;
  nHeads: number;
  nKvHeads: number; // < nHeads for grouped-query attention
  vocabSize: number; // always positive here; see sharedClassifier
  seqLen: number; // maximum context length
  sharedClassifier: boolean; // lm_head tied to the embedding (vocab_size was positive in the file)
}

export interface NamedTensor {
  /** row-major, [out, in] for linear layers */
  shape: number[];
  data: Float32Array;
}

export interface Llama2cModel {
  config: Llama2cConfig;
  /** Meta layout: RoPE rotates interleaved pairs. Use `permuteQKInterleavedToHalves` for HF-layout consumers. */
  ropeLayout: 'interleaved';
  /** HF names: model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …, model.norm.weight, lm_head.weight */
  tensors: Map<string, NamedTensor>;
}

const HEADER_BYTES = 28;
const VERSIONED_MAGIC = 0x616b3432; // "ak42": llama2.c's newer export versions, not supported

function readConfig(r: ByteReader): Llama2cConfig {
  const magic = r.u32('magic');
  if (magic === VERSIONED_MAGIC) r.fail('magic', 'versioned llama2.c export (magic "ak42"); only the legacy version 0 format is supported', 0);
  r.pos = 0;
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'].map((f) => {
    const at = r.pos;
    const v = r.i32(`header ${f}`);
    if (f === 'vocab_size' ? v === 0 || v === -0x80000000 : v <= 0) r.fail(`header ${f}`, `invalid value ${v}`, at);
    return v;
  }) as [number, number, number, number, number, number, number];
  if (dim % nHeads !== 0) r.fail('header', `dim ${dim} is not divisible by n_heads ${nHeads}`, 0);
  if (nHeads % nKvHeads !== 0) r.fail('header', `n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`, 0);
  if ((dim / nHeads) % 2 !== 0) r.fail('header', `head size ${dim / nHeads} is odd; RoPE needs pairs`, 0);
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
}

/** Reads a legacy llama2.c checkpoint; the file size must match the header exactly. */
export function readLlama2c(src: ByteSource | string): Llama2cModel {
  const source = toSource(src);
  try {
    return readModel(source);
  } finally {
    if (typeof src === 'string') source.close?.(); // everything is read eagerly: a file we opened is closed
  }
}

function readModel(source: ByteSource): Llama2cModel {
  const r: ByteReader = new ByteReader(source);
  const c = readConfig(r);
  const hd = c.dim / c.nHeads;
  const L = c.nLayers;
  const qDim = c.nHeads * hd;
  const kvDim = c.nKvHeads * hd;
  // [name template, per-layer shape] in file order; null shape entries are skipped tables
  type Part = { name: string | null; layers: number; shape: number[] };
  const parts: Part[] = [
    { name: 'model.embed_tokens.weight', layers: 0, shape: [c.vocabSize, c.dim] },
    { name: 'model.layers.{i}.input_layernorm.weight', layers: L, shape: [c.dim] },
    { name: 'model.layers.{i}.self_attn.q_proj.weight', layers: L, shape: [qDim, c.dim] },
    { name: 'model.layers.{i}.self_attn.k_proj.weight', layers: L, shape: [kvDim, c.dim] },
    { name: 'model.layers.{i}.self_attn.v_proj.weight', layers: L, shape: [kvDim, c.dim] },
    { name: 'model.layers.{i}.self_attn.o_proj.weight', layers: L, shape: [c.dim, qDim] },
    { name: 'model.layers.{i}.post_attention_layernorm.weight', layers: L, shape: [c.dim] },
    { name: 'model.layers.{i}.mlp.gate_proj.weight', layers: L, shape: [c.hiddenDim, c.dim] }, // w1
    { name: 'model.layers.{i}.mlp.down_proj.weight', layers: L, shape: [c.dim, c.hiddenDim] }, // w2
    { name: 'model.layers.{i}.mlp.up_proj.weight', layers: L, shape: [c.hiddenDim, c.dim] }, // w3
    { name: 'model.norm.weight', layers: 0, shape: [c.dim] },
    { name: null, layers: 0, shape: [c.seqLen, hd / 2] }, // freq_cis_real
    { name: null, layers: 0, shape: [c.seqLen, hd / 2] }, // freq_cis_imag
  ];
  if (!c.sharedClassifier) parts.push({ name: 'lm_head.weight', layers: 0, shape: [c.vocabSize, c.dim] });

  const count = (p: Part): number => p.shape.reduce((a, b) => a * b, 1) * Math.max(1, p.layers);
  const expected = HEADER_BYTES + 4 * parts.reduce((s, p) => s + count(p), 0);
  if (!Number.isSafeInteger(expected) || expected !== source.size) {
    throw new FormatError(source.name, null, 'size', `the header implies ${expected} bytes but the file has ${source.size}`);
  }

  const tensors = new Map<string, NamedTensor>();
  let at = HEADER_BYTES;
  for (const p of parts) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    for (let i = 0; i < Math.max(1, p.layers); i++) {
      if (p.name !== null) {
        const name = p.name.replace('{i}', String(i));
        tensors.set(name, { shape: [...p.shape], data: f32FromBytes(source.read(at, n * 4)) });
      }
      at += n * 4;
    }
  }
  if (c.sharedClassifier) {
    const emb = tensors.get('model.embed_tokens.weight');
    if (emb) tensors.set('lm_head.weight', emb); // the same array: tied weights
  }
  return { config: c, ropeLayout: 'interleaved', tensors };
}

export interface Llama2cTokenizer {
  maxTokenLength: number;
  /** token strings (UTF-8; byte tokens look like "<0x0A>") */
  tokens: string[];
  scores: Float32Array;
}

/** Reads tokenizer.bin; without `vocabSize` it reads tokens until the end of the file. */
export function readLlama2cTokenizer(src: ByteSource | string, vocabSize?: number): Llama2cTokenizer {
  const source = toSource(src);
  try {
    return readTokenizer(source, vocabSize);
  } finally {
    if (typeof src === 'string') source.close?.();
  }
}

function readTokenizer(source: ByteSource, vocabSize: number | undefined): Llama2cTokenizer {
  const r: ByteReader = new ByteReader(source);
  const maxTokenLength = r.i32('max_token_length');
  if (maxTokenLength <= 0) r.fail('max_token_length', `invalid value ${maxTokenLength}`, 0);
  if (vocabSize !== undefined) r.need(vocabSize * 8, 'tokens', `${vocabSize} tokens`);
  const tokens: string[] = [];
  const scores: number[] = [];
  while (vocabSize === undefined ? r.remaining > 0 : tokens.length < vocabSize) {
    const i = tokens.length;
    scores.push(r.f32(`token ${i} score`));
    const lenAt = r.pos;
    const len = r.i32(`token ${i} length`);
    if (len < 0 || len > maxTokenLength) r.fail(`token ${i} length`, `length ${len} is outside 0..${maxTokenLength}`, lenAt);
    tokens.push(r.utf8(len, `token ${i} bytes`, lenAt));
  }
  return { maxTokenLength, tokens, scores: Float32Array.from(scores) };
}
