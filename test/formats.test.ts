// Public-API checks of src/formats on real files (the repository's GGUF vocab fixtures, llama2.c files from the shared
// data beside the clone) and against node-llama-cpp's GGUF parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import {
  encodeGguf,
  ggufString,
  qkInterleavedToHalves,
  readGguf,
  readGgufTensorF32,
  readLlama2c,
  readLlama2cTokenizer,
  writeGguf,
  type GgufKV,
} from '../src/formats/index.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const VOCAB_DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');
const LLAMA2C = sharedPath('tiny-llama2c-model', 'aidreams260K.bin');
const LLAMA2C_TOK = sharedPath('tiny-llama2c-model', 'aidreams-tok512.bin');
const LLAMA2_TOK = sharedPath('llama2c-tokenizer', 'tokenizer.bin');
const SPM_GGUF = join(VOCAB_DIR, 'ggml-vocab-llama-spm.gguf');

// expected tokenizer model and vocabulary size of each vocab-only GGUF (data/README.md)
const VOCABS: Record<string, [string, number]> = {
  'ggml-vocab-llama-spm.gguf': ['llama', 32000],
  'ggml-vocab-phi-3.gguf': ['llama', 32064],
  'ggml-vocab-gpt-2.gguf': ['gpt2', 50257],
  'ggml-vocab-deepseek-coder.gguf': ['gpt2', 32256],
};

void test('real vocab-only GGUF files parse', () => {
  const files = readdirSync(VOCAB_DIR).filter((f) => f.endsWith('.gguf'));
  assert.equal(files.length, 4);
  for (const name of files) {
    const file = readGguf(join(VOCAB_DIR, name));
    try {
      const expected = VOCABS[name];
      assert.ok(expected, `unexpected file ${name}`);
      assert.equal(ggufString(file, 'tokenizer.ggml.model'), expected[0], name);
      const tokens = file.metadata.get('tokenizer.ggml.tokens');
      assert.ok(Array.isArray(tokens));
      assert.equal(tokens.length, expected[1], name);
      assert.deepEqual(file.metadataTypes.get('tokenizer.ggml.tokens'), { array: 'string' });
      assert.equal(file.tensors.length, 0);
    } finally {
      file.source.close?.();
    }
  }
});

void test('a real file re-written by our writer is identical in metadata', () => {
  const orig = readGguf(SPM_GGUF);
  orig.source.close?.();
  const metadata: GgufKV[] = [...orig.metadata].map(([key, value]) => ({ key, type: orig.metadataTypes.get(key) ?? 'string', value }));
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-fmt-'));
  try {
    const path = join(dir, 'copy.gguf');
    writeGguf(path, { metadata, tensors: [] });
    const copy = readGguf(path);
    copy.source.close?.();
    assert.deepEqual(copy.metadata, orig.metadata);
    assert.deepEqual(copy.metadataTypes, orig.metadataTypes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('node-llama-cpp reads what our GGUF writer wrote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-fmt-'));
  try {
    const path = join(dir, 'tiny.gguf');
    const data = Float32Array.from({ length: 64 * 3 }, (_, i) => i / 7);
    writeGguf(path, {
      metadata: [
        { key: 'general.architecture', type: 'string', value: 'llama' },
        { key: 'llama.block_count', type: 'uint32', value: 1 },
        { key: 'llama.rope.freq_base', type: 'float32', value: 10000 },
        { key: 'tokenizer.ggml.tokens', type: { array: 'string' }, value: ['a', 'b'] },
      ],
      tensors: [
        { name: 'token_embd.weight', dtype: 'q8_0', shape: [3, 64], data },
        { name: 'output_norm.weight', dtype: 'f32', shape: [64], data: data.subarray(0, 64) },
      ],
    });
    const info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
    assert.equal(info.version, 3);
    const md = info.metadata as unknown as { llama: { block_count: number; rope: { freq_base: number } }; tokenizer: { ggml: { tokens: string[] } } };
    assert.equal(md.llama.block_count, 1);
    assert.equal(md.llama.rope.freq_base, 10000);
    assert.deepEqual(md.tokenizer.ggml.tokens, ['a', 'b']);
    const ours = readGguf(path);
    ours.source.close?.();
    const theirs = info.fullTensorInfo ?? info.tensorInfo ?? [];
    assert.equal(theirs.length, 2);
    for (const [i, t] of theirs.entries()) {
      const o = ours.tensors[i];
      assert.ok(o);
      assert.equal(t.name, o.name);
      assert.deepEqual(t.dimensions.map(Number), o.ne);
      assert.equal(Number(t.ggmlType), o.ggmlType);
      assert.equal(Number(t.offset) + ours.dataOffset, o.offset);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('aidreams260K llama2.c checkpoint and its tokenizer', needsShared(LLAMA2C, LLAMA2C_TOK), () => {
  requireShared(LLAMA2C, LLAMA2C_TOK);
  const m = readLlama2c(LLAMA2C);
  assert.deepEqual(m.config, { dim: 64, hiddenDim: 172, nLayers: 4, nHeads: 4, nKvHeads: 4, vocabSize: 512, seqLen: 128, sharedClassifier: true });
  assert.equal(m.ropeLayout, 'interleaved');
  assert.equal(m.tensors.size, 3 + 4 * 9);
  assert.deepEqual(m.tensors.get('model.layers.3.mlp.down_proj.weight')?.shape, [64, 172]);
  assert.deepEqual(m.tensors.get('model.layers.0.self_attn.q_proj.weight')?.shape, [64, 64]);
  assert.equal(m.tensors.get('lm_head.weight'), m.tensors.get('model.embed_tokens.weight'));
  // trained RMSNorm gains hover around 1; a misaligned read would give garbage
  const norm = m.tensors.get('model.norm.weight')?.data ?? new Float32Array(0);
  const mean = norm.reduce((a, b) => a + b, 0) / norm.length;
  assert.ok(mean > 0.2 && mean < 5, `final norm mean ${mean}`);
  for (const t of m.tensors.values()) assert.ok(t.data.every(Number.isFinite));
  const q = m.tensors.get('model.layers.0.self_attn.q_proj.weight');
  assert.ok(q);
  assert.equal(qkInterleavedToHalves(q.data, 64, 4).length, q.data.length);

  const tok = readLlama2cTokenizer(LLAMA2C_TOK);
  assert.equal(tok.tokens.length, 512);
  assert.equal(tok.scores.length, 512);
  assert.equal(tok.tokens[0], '<unk>');
});

void test('llama2.c Llama-2 tokenizer.bin', needsShared(LLAMA2_TOK), () => {
  requireShared(LLAMA2_TOK);
  const tok = readLlama2cTokenizer(LLAMA2_TOK, 32000);
  assert.equal(tok.tokens.length, 32000);
  assert.equal(tok.tokens[1], '\n<s>\n'); // llama2.c's export wraps BOS/EOS in newlines
  assert.equal(tok.tokens[13], '<0x0A>');
  const gguf = readGguf(SPM_GGUF);
  gguf.source.close?.();
  const tokens = gguf.metadata.get('tokenizer.ggml.tokens') as string[];
  const scores = gguf.metadata.get('tokenizer.ggml.scores') as number[];
  assert.deepEqual(Array.from(tok.scores), scores);
  // llama2.c's export writes SentencePiece's ▁ as a plain space
  for (const i of [0, 259, 1000, 31999]) assert.equal(tok.tokens[i], tokens[i]?.replaceAll('▁', ' '));
});

void test('readGgufTensorF32 decodes an encoded file through the public surface', () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => i * 8 - 127); // amax 127 → q8_0 scale exactly 1
  const bytes = encodeGguf({ metadata: [], tensors: [{ name: 'x', dtype: 'q8_0', shape: [32], data: x }] });
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-fmt-'));
  try {
    const p = join(dir, 'x.gguf');
    writeGguf(p, { metadata: [], tensors: [{ name: 'x', dtype: 'q8_0', shape: [32], data: x }] });
    const f = readGguf(p);
    const info = f.tensors[0];
    assert.ok(info);
    assert.deepEqual(readGgufTensorF32(f, info), x); 
    assert.equal(f.source.size, bytes.length);
    f.source.close?.();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
