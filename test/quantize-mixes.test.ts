// `nomoat quantize` against llama.cpp's own quantizer (../shared/tools/llamacpp_quantize.py: llama_model_quantize in
// node-llama-cpp's libllama, no importance matrix): for each mix, every tensor must get llama-quantize's type and
// llama-quantize's bytes, and llama.cpp must run the file we write to the same greedy tokens as nomoat.
//
// Three models, each for what it exercises: ten 256-wide layers (the use_more_bits layer pattern and Q4_K_S's
// "first 4 attn_v" rule; types only, so nothing slow runs on our side), one SmolLM-135M-shaped layer (576-wide rows
// fall back to q5_0 / q5_1 / q8_0, 1536-wide ffn_down keeps the K-quant; all seven mixes byte for byte), and the
// bundled model (a trained model, so greedy decoding is not a coin toss on near-ties: Q4_K_M byte for byte, then
// run by llama.cpp).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import { quantizeGguf, saveGguf } from '../src/models/convert.js';
import { mixTensorTypes, type QuantMix } from '../src/models/quant-mix.js';
import { readGguf, readGgufTensor } from '../src/formats/gguf.js';
import { greedyLlama, greedyOurs, useLlamaOracle } from './llama-oracle.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import type { LlamaConfig } from '../src/models/config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const QUANTIZE = join(ROOT, '..', 'shared', 'tools', 'llamacpp_quantize.py');
const NOMOAT = join(ROOT, 'bin', 'nomoat.js');
const THREADS = 1;

/** llama_ftype of each mix (llama.h). */
const FTYPE: Readonly<Record<string, number>> = { q4_k_m: 15, q4_k_s: 14, q5_k_m: 17, q5_k_s: 16, q6_k: 18, q8_0: 7, q4_0: 2 };
const MIXES = Object.keys(FTYPE) as QuantMix[];

const oracle = useLlamaOracle('quantize-mixes', THREADS);
const skipQuantizer = existsSync(QUANTIZE) || process.env.CI === 'true' ? false : `${QUANTIZE} absent (../shared/tools beside the clone)`;

function llamaQuantize(input: string, output: string, mix: QuantMix): void {
  const q = spawnSync('python3', [QUANTIZE, input, output, String(FTYPE[mix])], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(q.status, 0, `llamacpp_quantize.py ${mix} failed:\n${q.stdout}\n${q.stderr}`);
}

/** name → ggml type name of every tensor of a GGUF file. */
function typesOf(path: string): Map<string, string> {
  return new Map(readGguf(path).tensors.map((t) => [t.name, t.typeName]));
}

/** Asserts two GGUF files hold the same tensors with the same types and bytes; returns the types, counted. */
function assertSameTensors(ours: string, theirs: string, what: string): string {
  const a = readGguf(ours);
  const b = readGguf(theirs);
  const bt = new Map(b.tensors.map((t) => [t.name, t]));
  assert.deepEqual(a.tensors.map((t) => t.name).sort(), [...bt.keys()].sort(), `${what}: tensor names`);
  const counts = new Map<string, number>();
  for (const t of a.tensors) {
    const u = bt.get(t.name)!;
    assert.equal(t.typeName, u.typeName, `${what}: type of ${t.name}`);
    const x = readGgufTensor(a, t);
    const y = readGgufTensor(b, u);
    let i = 0;
    while (i < x.length && x[i] === y[i]) i++;
    assert.ok(i === x.length && x.length === y.length, `${what}: ${t.name} (${t.typeName}) bytes differ from byte ${i} of ${y.length}`);
    counts.set(t.typeName, (counts.get(t.typeName) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

function f32File(cfg: LlamaConfig, path: string): void {
  const model = randomModel(cfg, 3, 0.1);
  saveGguf(model, tinyTokenizer(), path, { dtype: 'f32' });
  model.dispose();
}

test('the type of every tensor is the one llama-quantize picks, layer rules included (ten 256-wide layers)', { skip: skipQuantizer }, () => {
  const dir = oracle.dir;
  const f32 = join(dir, 'ten-f32.gguf');
  // untied: output.weight is its own tensor and token_embd keeps the mix's type
  f32File(testConfig({ hiddenSize: 256, intermediateSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, numLayers: 10, tieWordEmbeddings: false }), f32);
  const file = readGguf(f32);
  // the mixes with per-layer rules, and one whose output.weight differs from the rest (the others: the smol test)
  for (const mix of ['q4_k_m', 'q4_k_s', 'q5_k_m', 'q4_0'] as const) {
    const ref = join(dir, `ten-${mix}.gguf`);
    llamaQuantize(f32, ref, mix);
    const theirs = typesOf(ref);
    const ours = mixTensorTypes(mix, file.tensors, { blockCount: 10 });
    for (const t of file.tensors) {
      assert.equal(ours.get(t.name) ?? t.typeName, theirs.get(t.name)?.toLowerCase(), `${mix}: ${t.name}`);
    }
  }
  // the layer pattern itself, so a shared misreading of llama.cpp would show: Q4_K_M's more-bits layers of 10
  const q4km = mixTensorTypes('q4_k_m', file.tensors, { blockCount: 10 });
  const more = [...Array(10).keys()].filter((i) => q4km.get(`blk.${i}.ffn_down.weight`) === 'q6_k');
  assert.deepEqual(more, [0, 3, 6, 8, 9]);
  assert.equal(q4km.get('output.weight'), 'q6_k');
  assert.equal(q4km.get('token_embd.weight'), 'q4_k');
});

test('all seven mixes of a SmolLM-135M-shaped layer: llama-quantize\'s types and bytes, fallbacks included', { skip: skipQuantizer }, () => {
  const dir = oracle.dir;
  const f32 = join(dir, 'smol-f32.gguf');
  f32File(testConfig({ hiddenSize: 576, intermediateSize: 1536, numHeads: 9, numKvHeads: 3, headDim: 64, numLayers: 1 }), f32);
  for (const mix of MIXES) {
    const ours = join(dir, `smol-${mix}-ours.gguf`);
    const ref = join(dir, `smol-${mix}-ref.gguf`);
    llamaQuantize(f32, ref, mix);
    quantizeGguf(f32, ours, mix);
    const types = assertSameTensors(ours, ref, `smol ${mix}`);
    assert.equal(readGguf(ours).metadata.get('general.file_type'), FTYPE[mix]);
    console.log(`# smol ${mix}: ${types}: identical to llama-quantize`);
  }
});

test('the bundled model at Q4_K_M: llama-quantize\'s bytes, and llama.cpp runs our file to nomoat\'s greedy tokens', { skip: skipQuantizer }, async (t) => {
  if (oracle.unavailable(t)) return;
  const llama = oracle.llama!;
  const dir = oracle.dir;
  const f32 = join(dir, 'bundled-f32.gguf');
  const ours = join(dir, 'bundled-Q4_K_M-ours.gguf');
  const ref = join(dir, 'bundled-Q4_K_M-ref.gguf');
  const src = loadModel(join(ROOT, 'assets', 'default-model'));
  saveGguf(src.model, src.tokenizer, f32, { dtype: 'f32' });
  src.model.dispose();
  llamaQuantize(f32, ref, 'q4_k_m');
  // through the CLI, as a user runs it
  const r = spawnSync(process.execPath, [NOMOAT, 'quantize', f32, ours, 'Q4_K_M', '--quiet'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const types = assertSameTensors(ours, ref, 'bundled Q4_K_M');
  assert.match(types, /q6_K/);
  assert.match(types, /q4_K/);
  const loaded = loadModel(ours);
  assert.ok(loaded.tokenizer !== null);
  const tok = loaded.tokenizer;
  const prompts = ['The capital of France is', 'Once upon a time'].map((p) => tok.encode(p));
  const { runs } = await greedyLlama(llama, ours, prompts, 12, THREADS);
  prompts.forEach((p, i) => {
    const mine = greedyOurs(loaded.model, p, 12);
    assert.deepEqual(mine.tokens, runs[i].tokens, `greedy tokens\n ours:  ${tok.decode(mine.tokens)}\n llama: ${tok.decode(runs[i].tokens)}`);
  });
  loaded.model.dispose();
  console.log(`# bundled Q4_K_M: ${types}: identical to llama-quantize; llama.cpp's greedy tokens on our file = nomoat's`);
});

test('nomoat quantize refuses an unknown TYPE in the words of the CLI (--imatrix: quantize-imatrix.test.ts)', () => {
  const run = (...args: string[]): { status: number | null; stderr: string } =>
    spawnSync(process.execPath, [NOMOAT, 'quantize', ...args], { cwd: ROOT, encoding: 'utf8' });
  const bad = run('in.gguf', 'out.gguf', 'Q3_K_L');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /TYPE must be one of Q4_K_M, Q4_K_S, .*; got "Q3_K_L"/);
});
