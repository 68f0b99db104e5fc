// Model export: HF folder → GGUF → HF folder is byte-lossless in f32, f16 and bf16 with the same tokenization; GGUF
// files compute what the model computes (Q/K rows permuted to llama.cpp's layout); bf16 is written rounded to nearest
// even (ggml's bytes); requantization keeps metadata; `nomoat convert --outtype bf16` and `auto` on a bf16 checkpoint.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../src/engine/index.js';
import { readGguf, readGgufTensor } from '../src/formats/gguf.js';
import { hfToGgufName } from '../src/formats/names.js';
import { encodeBf16, tensorValues } from '../src/engine/quant/index.js';
import { openSafetensorsModel, readSafetensorsBytes } from '../src/formats/safetensors.js';
import { quantizeGguf, saveGguf, saveHfFolder, tensorOutType, type OutType } from '../src/models/convert.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadLlama2c, loadModel } from '../src/models/load.js';
import { HfTokenizer, ggufMetadataToTokenizerJson, type Tokenizer } from '../src/tokenizer/index.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const dir = mkdtempSync(join(tmpdir(), 'nomoat-convert-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TEXTS = ['the cat sat on the mat.', 'Hello, World! 123', '  spaces   and\nnewlines\t', 'ünïcödé → bytes 🙂'];

/** An HF tokenizer.json tokenizer with the test vocabulary. */
function hfTokenizer(): HfTokenizer {
  const t = tinyTokenizer();
  const meta = new Map<string, unknown>([
    ['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', t.vocab.tokens], ['tokenizer.ggml.scores', t.vocab.scores],
    ['tokenizer.ggml.token_type', t.vocab.tokenTypes], ['tokenizer.ggml.bos_token_id', 1], ['tokenizer.ggml.eos_token_id', 2],
    ['tokenizer.ggml.unknown_token_id', 0], ['tokenizer.chat_template', t.chatTemplate],
  ]);
  const { tokenizerJson, tokenizerConfig } = ggufMetadataToTokenizerJson(meta);
  return new HfTokenizer(tokenizerJson, tokenizerConfig);
}

function logits(model: LlamaModel, ids: number[]): Float32Array {
  return noGrad(() => tidy(() => model.forward(Int32Array.from(ids), 1, ids.length).toArray()));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function sameTokenization(a: Tokenizer, b: Tokenizer, what: string): void {
  for (const s of TEXTS) assert.deepEqual(b.encode(s), a.encode(s), `${what}: ${JSON.stringify(s)}`);
}

const GGUF_TYPE_OF_HF = { F32: 'f32', F16: 'f16', BF16: 'bf16' } as const satisfies Record<string, OutType>;

for (const dtype of ['F32', 'F16', 'BF16'] as const) {
  test(`HF folder → GGUF → HF folder is lossless (${dtype})`, () => {
    const src = join(dir, `hf-${dtype}`);
    const gguf = join(dir, `rt-${dtype}.gguf`);
    const back = join(dir, `hf-back-${dtype}`);
    const m0 = randomModel(testConfig({ tieWordEmbeddings: false }), 3);
    saveHfFolder(m0, hfTokenizer(), src, { dtype });
    m0.dispose();

    const a = loadModel(src);
    assert.equal(a.model.config.ropeMode, 'halves');
    saveGguf(a.model, a.tokenizer, gguf, { dtype: GGUF_TYPE_OF_HF[dtype] });
    const g = loadModel(gguf);
    for (const t of readGguf(gguf).tensors) assert.equal(t.typeName, t.shape.length === 2 ? GGUF_TYPE_OF_HF[dtype] : 'f32', t.name);
    assert.equal(g.model.config.ropeMode, 'interleaved');
    saveHfFolder(g.model, g.tokenizer, back, { dtype });

    const s1 = openSafetensorsModel(src);
    const s2 = openSafetensorsModel(back);
    assert.deepEqual([...s2.names].sort(), [...s1.names].sort());
    for (const name of s1.names) {
      const e1 = s1.get(name)!;
      const e2 = s2.get(name)!;
      assert.equal(e2.entry.dtype, e1.entry.dtype, name);
      assert.deepEqual(e2.entry.shape, e1.entry.shape, name);
      assert.ok(Buffer.from(readSafetensorsBytes(e2.file, name)).equals(Buffer.from(readSafetensorsBytes(e1.file, name))), `${name}: bytes differ`);
    }
    s1.close();
    s2.close();
    assert.deepEqual(JSON.parse(readFileSync(join(back, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')));

    // the same text gives the same ids through all three tokenizers, and the GGUF computes the same logits
    const t1 = a.tokenizer!;
    sameTokenization(t1, g.tokenizer!, 'GGUF tokenizer');
    sameTokenization(t1, HfTokenizer.fromDirectory(back), 'tokenizer.json written back');
    const ids = t1.encode(TEXTS[0]);
    assert.ok(maxDiff(logits(g.model, ids), logits(a.model, ids)) < 1e-4, 'GGUF logits differ from the HF model');
    a.model.dispose();
    g.model.dispose();
  });
}

test('bf16 export writes encodeBf16 of the f32 weights (ggml\'s round to nearest even) to GGUF (type 30) and safetensors', () => {
  const m = randomModel(testConfig({ tieWordEmbeddings: false }), 8);
  const gguf = join(dir, 'rne-bf16.gguf');
  const hf = join(dir, 'rne-bf16-hf');
  saveGguf(m, tinyTokenizer(), gguf, { dtype: 'bf16' });
  saveHfFolder(m, tinyTokenizer(), hf, { dtype: 'BF16' });
  const f = readGguf(gguf);
  assert.equal(f.metadata.get('general.file_type'), 32); // LLAMA_FTYPE_MOSTLY_BF16
  const byName = new Map(f.tensors.map((t) => [t.name, t]));
  const st = openSafetensorsModel(hf);
  let rounded = 0; // values where nearest-even differs from truncating the low 16 bits
  for (const [name, t] of m.namedTensors()) {
    const values = tensorValues(t);
    const want = Buffer.from(encodeBf16(values));
    const info = byName.get(hfToGgufName(name)!)!;
    assert.equal(st.get(name)?.entry.dtype, 'BF16', name);
    assert.ok(Buffer.from(readSafetensorsBytes(st.get(name)!.file, name)).equals(want), `${name}: safetensors bytes differ from encodeBf16`);
    if (t.shape.length < 2) {
      assert.equal(info.typeName, 'f32', name);
      continue;
    }
    assert.equal(info.ggmlType, 30, name);
    // Q/K rows are permuted to llama.cpp's RoPE layout in GGUF (the round trips above cover them)
    if (!/\.(q|k)_proj\./.test(name)) assert.ok(Buffer.from(readGgufTensor(f, info)).equals(want), `${name}: GGUF bytes differ from encodeBf16`);
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) if ((bits[i] >>> 16) !== want.readUInt16LE(2 * i)) rounded++;
  }
  assert.ok(rounded > 0, 'no value rounded up: bf16 looks truncated');
  assert.equal((JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype, 'bfloat16');
  st.close();
  m.dispose();
});

test('GGUF tensors: llama.cpp names, f32 norms, Q/K permuted for llama and not for qwen2', () => {
  for (const arch of ['llama', 'qwen2'] as const) {
    const cfg = testConfig({ arch, attentionBias: arch === 'qwen2' });
    const m = randomModel(cfg, 4, 0.05); // small weights: std 0.2 amplifies quantization error chaotically through the layers
    const path = join(dir, `${arch}.gguf`);
    saveGguf(m, tinyTokenizer(), path, { dtype: 'q8_0' });
    const f = readGguf(path);
    const byName = new Map(f.tensors.map((t) => [t.name, t]));
    assert.equal(byName.get('blk.0.attn_norm.weight')?.typeName, 'f32');
    assert.equal(byName.get('blk.1.ffn_down.weight')?.typeName, 'q8_0');
    assert.equal(byName.get('token_embd.weight')?.typeName, 'q8_0');
    assert.equal(f.metadata.get('general.architecture'), arch);
    assert.equal(f.metadata.get('general.file_type'), 7);
    if (arch === 'qwen2') assert.equal(byName.get('blk.0.attn_q.bias')?.typeName, 'f32');
    // an f32 export computes what the model computes (the Q/K permutation matches the RoPE layout)
    const f32 = join(dir, `${arch}-f32.gguf`);
    saveGguf(m, tinyTokenizer(), f32, { dtype: 'f32' });
    const back = loadModel(f32);
    assert.equal(back.model.config.ropeMode, arch === 'llama' ? 'interleaved' : 'halves');
    const ids = [1, 270, 280, 290, 300, 261];
    const want = logits(m, ids);
    assert.ok(maxDiff(logits(back.model, ids), want) < 1e-4, `${arch}: f32 GGUF logits differ`);
    // q8_0: close to the f32 model relative to the logits' range, not equal
    const q = loadModel(path);
    const range = want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    const d = maxDiff(logits(q.model, ids), want);
    assert.ok(d > 0 && d < 0.05 * range, `${arch}: q8_0 GGUF logits differ by ${d} (range ${range})`);
    q.model.dispose();
    m.dispose();
    back.model.dispose();
  }
});

test('a weight whose rows do not fill quantization blocks falls back to f16; 1-D tensors stay f32', () => {
  assert.equal(tensorOutType([64, 172], 'q4_0'), 'f16');
  assert.equal(tensorOutType([172, 64], 'q4_0'), 'q4_0');
  assert.equal(tensorOutType([64], 'q8_0'), 'f32');
  assert.equal(tensorOutType([64, 64], 'f16'), 'f16');
  assert.equal(tensorOutType([64, 172], 'bf16'), 'bf16'); // block size 1: no fallback
  const m = randomModel(testConfig({ intermediateSize: 48 }), 5); // down_proj rows of 48 values
  const path = join(dir, 'odd.gguf');
  saveGguf(m, null, path, { dtype: 'q4_0' });
  const types = new Map(readGguf(path).tensors.map((t) => [t.name, t.typeName]));
  assert.equal(types.get('blk.0.ffn_down.weight'), 'f16');
  assert.equal(types.get('blk.0.ffn_up.weight'), 'q4_0');
  m.dispose();
});

test('quantizeGguf requantizes 2-D weights, keeps metadata, refuses double quantization unless allowed', () => {
  const m = randomModel(testConfig(), 6);
  const f32 = join(dir, 'q-f32.gguf');
  const q8 = join(dir, 'q-q8.gguf');
  const q4 = join(dir, 'q-q4.gguf');
  saveGguf(m, tinyTokenizer(), f32, { dtype: 'f32' });
  const r = quantizeGguf(f32, q8, 'q8_0');
  const a = readGguf(f32);
  const b = readGguf(q8);
  assert.equal(r.quantized, a.tensors.filter((t) => t.shape.length === 2).length);
  assert.ok(r.outBytes < r.inBytes / 3);
  for (const [k, v] of a.metadata) if (k !== 'general.file_type') assert.deepEqual(b.metadata.get(k), v, k);
  assert.equal(b.metadata.get('general.file_type'), 7);
  for (const t of b.tensors) assert.equal(t.typeName, t.shape.length === 2 ? 'q8_0' : 'f32', t.name);
  // the same bytes as exporting the model straight to q8_0
  saveGguf(m, tinyTokenizer(), join(dir, 'direct-q8.gguf'), { dtype: 'q8_0' });
  assert.ok(readFileSync(join(dir, 'direct-q8.gguf')).equals(readFileSync(q8)), 'quantize(f32 file) differs from export at q8_0');
  assert.throws(() => quantizeGguf(q8, q4, 'q4_0'), /already q8_0.*--allow-requantize/);
  quantizeGguf(q8, q4, 'q4_0', { allowRequantize: true, pure: true }); // --pure: no q6_k output as llama-quantize's Q4_0 mix gives
  assert.ok(readGguf(q4).tensors.every((t) => t.typeName === (t.shape.length === 2 ? 'q4_0' : 'f32')));
  // bf16 as a target: the same bytes as exporting the model straight to bf16
  const bf16 = join(dir, 'q-bf16.gguf');
  quantizeGguf(f32, bf16, 'bf16');
  saveGguf(m, tinyTokenizer(), join(dir, 'direct-bf16.gguf'), { dtype: 'bf16' });
  assert.ok(readFileSync(join(dir, 'direct-bf16.gguf')).equals(readFileSync(bf16)), 'quantize(f32 file) differs from export at bf16');
  m.dispose();
});

const AIDREAMS = sharedPath('tiny-llama2c-model', 'aidreams260K.bin');
const AIDREAMS_TOK = sharedPath('tiny-llama2c-model', 'aidreams-tok512.bin');

test('a llama2.c checkpoint exported as a Hugging Face folder computes the same logits', needsShared(AIDREAMS, AIDREAMS_TOK), () => {
  requireShared(AIDREAMS, AIDREAMS_TOK);
  const src = loadLlama2c(AIDREAMS, AIDREAMS_TOK);
  const out = join(dir, 'aidreams-hf');
  saveHfFolder(src.model, src.tokenizer, out);
  const hf = loadModel(out);
  sameTokenization(src.tokenizer!, hf.tokenizer!, 'llama2.c tokenizer as tokenizer.json');
  const ids = src.tokenizer!.encode('Once upon a time');
  assert.ok(maxDiff(logits(hf.model, ids), logits(src.model, ids)) < 1e-4);
  src.model.dispose();
  hf.model.dispose();
});

test('nomoat convert --outtype bf16 writes GGUF and Hugging Face bf16; auto keeps a bf16 checkpoint bf16', () => {
  const nomoat = (args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [join(process.cwd(), 'bin', 'nomoat.js'), 'convert', ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stderr: r.stderr };
  };
  const m = randomModel(testConfig(), 9);
  const f32 = join(dir, 'cli-f32.gguf');
  saveGguf(m, tinyTokenizer(), f32, { dtype: 'f32' });
  m.dispose();
  const gguf = join(dir, 'cli-bf16.gguf');
  const hf = join(dir, 'cli-bf16-hf');
  const again = join(dir, 'cli-auto.gguf');
  const types = (p: string): string[] => [...new Set(readGguf(p).tensors.filter((t) => t.shape.length === 2).map((t) => t.typeName))];
  let r = nomoat([f32, gguf, '--outtype', 'bf16']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /gguf → gguf \(bf16\)/);
  assert.deepEqual(types(gguf), ['bf16']);
  r = nomoat([f32, hf, '--outtype', 'bf16']);
  assert.equal(r.status, 0, r.stderr);
  const st = openSafetensorsModel(hf);
  assert.deepEqual([...new Set([...st.names].map((n) => st.get(n)!.entry.dtype))], ['BF16']);
  st.close();
  r = nomoat([hf, again]); // auto
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /hf → gguf \(bf16\)/);
  const direct = readGguf(gguf);
  const viaHf = readGguf(again);
  direct.tensors.forEach((t, i) => assert.ok(Buffer.from(readGgufTensor(viaHf, viaHf.tensors[i])).equals(Buffer.from(readGgufTensor(direct, t))), `${t.name}: HF bf16 → GGUF differs`));
  r = nomoat([gguf, join(dir, 'cli-auto-hf')]); // auto, to HF
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /gguf → hf \(bf16\)/);
  r = nomoat([f32, join(dir, 'cli-q8-hf'), '--outtype', 'q8_0']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /Hugging Face folders hold f32\/f16\/bf16 safetensors/);
});
