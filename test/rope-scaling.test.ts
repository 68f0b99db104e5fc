// Llama-3 rope scaling across formats: an HF model with rope_scaling "llama3" exported to GGUF carries llama.cpp's
// rope_freqs.weight and computes the same logits when loaded back; GGUF → HF writes the rope_scaling again; factors
// no rope_scaling reproduces run from GGUF but are refused by HF export; and llama.cpp itself runs our file with the
// same greedy tokens and probabilities over a context long enough that the scaling changes every position.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../src/engine/index.js';
import { readGguf, readGgufTensor, readGgufTensorF32 } from '../src/formats/gguf.js';
import { writeGguf, type GgufTensorSpec } from '../src/formats/gguf-write.js';
import type { GgufKV } from '../src/formats/gguf-types.js';
import { llama3RopeFreqFactors, type LlamaConfig, type RopeScaling } from '../src/models/config.js';
import { saveGguf, saveHfFolder } from '../src/models/convert.js';
import { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { greedyLlama, greedyOurs, maxProbDiff, useLlamaOracle } from './llama-oracle.js';
import { randomModel, testConfig, tinyTokenizer, trainedModel, TRAIN_TEXT } from './cli-model.js';

const THREADS = 1;
const oracle = useLlamaOracle('rope-scaling', THREADS);
const tmp = mkdtempSync(join(tmpdir(), 'nomoat-rope-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// head_dim 16, θ 10000: wavelengths 2π·10^(i/2) = 6.3, 19.9, 62.8, 199, …; with original 64 pair 0 keeps its speed,
// pairs 1 and 2 are on the ramp and pairs 3–7 turn 8× slower, so every regime of the scaling is exercised.
const SCALING: RopeScaling = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 };
const CFG = testConfig({ ropeScaling: SCALING, tieWordEmbeddings: false });

function logits(model: LlamaModel, ids: Int32Array): Float32Array {
  return noGrad(() => tidy(() => model.forward(ids, 1, ids.length).toArray()));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** 200 token ids (positions far past original_max_position_embeddings 64), seeded. */
function longIds(): Int32Array {
  let x = 12345;
  return Int32Array.from({ length: 200 }, () => 3 + ((x = (x * 1103515245 + 12345) % 2147483648) % 317));
}

/** The same weights run with another RoPE configuration (tensors shared: dispose only the original). */
function withRope(m: LlamaModel, over: Partial<LlamaConfig>): LlamaModel {
  const w = new Map(m.namedTensors());
  return new LlamaModel({ ...m.config, ...over }, (n) => w.get(n));
}

test('HF model with Llama-3 rope_scaling → GGUF: rope_freqs written as llama.cpp does; same invFreq and logits back', () => {
  const hf = join(tmp, 'hf');
  const gguf = join(tmp, 'scaled.gguf');
  const m0 = randomModel(CFG, 5);
  saveHfFolder(m0, tinyTokenizer(), hf);
  m0.dispose();
  const a = loadModel(hf);
  assert.deepEqual(a.model.config.ropeScaling, SCALING);
  saveGguf(a.model, a.tokenizer, gguf, { dtype: 'f32' });

  const file = readGguf(gguf);
  const freqs = file.tensors[0];
  assert.equal(freqs.name, 'rope_freqs.weight');
  assert.equal(freqs.typeName, 'f32');
  assert.deepEqual(freqs.shape, [8]);
  assert.deepEqual(readGgufTensorF32(file, freqs), llama3RopeFreqFactors(10000, 16, SCALING));
  assert.ok(![...file.metadata.keys()].some((k) => k.includes('rope.scaling')), 'llama.cpp writes no scaling metadata for llama3');

  const b = loadModel(gguf);
  assert.deepEqual(b.model.config.ropeFreqFactors, llama3RopeFreqFactors(10000, 16, SCALING));
  assert.deepEqual(b.model.config.ropeScaling, SCALING, 'the rope_scaling is recovered from the factors');
  b.model.invFreq.forEach((x, i) => assert.ok(Math.abs(x - a.model.invFreq[i]) <= 1e-6 * a.model.invFreq[i], `invFreq[${i}]: ${x} vs ${a.model.invFreq[i]}`));

  const ids = longIds();
  const want = logits(a.model, ids);
  const d = maxDiff(logits(b.model, ids), want);
  assert.ok(d < 1e-4, `GGUF logits differ from the HF model by ${d}`);
  // control: the same file without its factors (what nomoat ran before) computes something else at these positions
  const unscaled = withRope(b.model, { ropeFreqFactors: null, ropeScaling: null });
  const dc = maxDiff(logits(unscaled, ids), want);
  assert.ok(dc > 0.05, `dropping the rope scaling changed logits by only ${dc}: the test would not notice it`);
  a.model.dispose();
  b.model.dispose();
});

test('GGUF with rope_freqs → HF folder writes the rope_scaling back; → GGUF again copies the factors', () => {
  const gguf = join(tmp, 'scaled.gguf');
  const back = join(tmp, 'hf-back');
  const again = join(tmp, 'again.gguf');
  const g = loadModel(gguf);
  saveHfFolder(g.model, g.tokenizer, back);
  const config = JSON.parse(readFileSync(join(back, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config.rope_scaling, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 });
  const h = loadModel(back);
  const ids = longIds();
  assert.ok(maxDiff(logits(h.model, ids), logits(g.model, ids)) < 1e-4, 'the HF folder written back computes other logits');
  saveGguf(g.model, g.tokenizer, again, { dtype: 'f32' });
  const [f1, f2] = [readGguf(gguf), readGguf(again)];
  assert.ok(Buffer.from(readGgufTensor(f2, f2.tensors[0])).equals(Buffer.from(readGgufTensor(f1, f1.tensors[0]))), 'rope_freqs bytes changed');
  g.model.dispose();
  h.model.dispose();
});

test('factors no rope_scaling reproduces run from GGUF as θ^(-2i/D)/f, and HF export refuses them', () => {
  const odd = Float32Array.of(1, 2, 1.5, 3, 3, 3, 3, 5);
  const m = randomModel(testConfig({ ropeFreqFactors: odd }), 6);
  const gguf = join(tmp, 'odd.gguf');
  saveGguf(m, tinyTokenizer(), gguf, { dtype: 'f32' });
  const g = loadModel(gguf);
  assert.deepEqual(g.model.config.ropeFreqFactors, odd);
  assert.equal(g.model.config.ropeScaling, null);
  g.model.invFreq.forEach((x, i) => assert.ok(Math.abs(x - Math.pow(10000, -i / 8) / odd[i]) <= 1e-7 * x, `invFreq[${i}]`));
  const ids = longIds().subarray(0, 100);
  assert.ok(maxDiff(logits(g.model, ids), logits(m, ids)) < 1e-4);
  const out = join(tmp, 'odd-hf');
  assert.throws(() => saveHfFolder(g.model, g.tokenizer, out), /rope_freqs\.weight\) match no Llama-3 rope_scaling/);
  assert.ok(!existsSync(out), 'nothing is written when config.json cannot be');
  m.dispose();
  g.model.dispose();
});

test('a malformed rope_freqs.weight is refused naming the tensor; qwen2 cannot carry one', () => {
  const src = readGguf(join(tmp, 'scaled.gguf'));
  const metadata: GgufKV[] = [...src.metadata].map(([key, value]) => ({ key, type: src.metadataTypes.get(key)!, value }));
  const rewrite = (freqs: Float32Array, name: string): string => {
    const tensors: GgufTensorSpec[] = src.tensors.map((t) =>
      t.name === 'rope_freqs.weight' ? { name: t.name, dtype: 'f32', shape: [freqs.length], data: freqs } : { name: t.name, dtype: t.dtype!, shape: t.shape, data: readGgufTensor(src, t) });
    const path = join(tmp, name);
    writeGguf(path, { metadata, tensors });
    return path;
  };
  assert.throws(() => loadModel(rewrite(Float32Array.of(1, 2, 3), 'short.gguf')), /rope_freqs\.weight has shape \[3\]; expected \[8\]/);
  assert.throws(() => loadModel(rewrite(Float32Array.of(1, 1, 0, 8, 8, 8, 8, 8), 'zero.gguf')), /rope_freqs\.weight: factor 2 is 0/);
  const q = randomModel(testConfig({ arch: 'qwen2', attentionBias: true, ropeScaling: SCALING }), 7);
  assert.throws(() => saveGguf(q, null, join(tmp, 'qwen2.gguf')), /qwen2 architecture has no rope_freqs/);
  q.dispose();
});

// ---- llama.cpp -------------------------------------------------------------------------------------------------

const STEPS = 48;
// Measured here (f32 file, f32 KV cache, llama.cpp's flash attention off): 3.3e-6 with the scaling; 1.0 when nomoat
// drops the scaling. (With flash attention on, llama.cpp's own default, it was 3.3e-3: see greedyLlama.)
const PROB_TOL = 1e-4;

test('llama.cpp runs our Llama-3-scaled GGUF with the same greedy tokens and probabilities', async (t) => {
  if (oracle.unavailable(t)) return;
  const { model, loss } = trainedModel(80, CFG);
  assert.ok(loss < 0.3, `training did not converge (loss ${loss})`);
  const tok = tinyTokenizer();
  const path = join(oracle.dir, 'llama3-scaled-f32.gguf');
  saveGguf(model, tok, path, { dtype: 'f32' });
  // a prompt of ~50 tokens and 48 more: positions run to ~100, past original_max_position_embeddings (64)
  const prompt = tok.encode(TRAIN_TEXT.slice(0, 150));
  assert.ok(prompt.length > 40, `prompt of ${prompt.length} tokens`);
  const loaded = loadModel(path);
  const llama = oracle.llama;
  assert.ok(llama !== null);
  const want = (await greedyLlama(llama, path, [prompt], STEPS, THREADS)).runs[0];
  const mine = greedyOurs(loaded.model, prompt, STEPS);
  assert.deepEqual(mine.tokens, want.tokens, `greedy tokens\n ours:  ${tok.decode(mine.tokens)}\n llama: ${tok.decode(want.tokens)}`);
  const d = maxProbDiff(mine, want);
  // control: our model without the scaling, against the same llama.cpp run
  const unscaled = greedyOurs(withRope(loaded.model, { ropeFreqFactors: null, ropeScaling: null }), prompt, STEPS);
  const dc = maxProbDiff(unscaled, want);
  console.log(`# rope scaling parity: ${STEPS} greedy tokens identical; max top-5 probability difference ${d.toExponential(2)} (unscaled: ${dc.toExponential(2)})`);
  assert.ok(d <= PROB_TOL, `probabilities differ by ${d} (> ${PROB_TOL})`);
  assert.ok(dc > 10 * PROB_TOL, `without scaling the probabilities differ by only ${dc}: this prompt does not exercise the scaling`);
  loaded.model.dispose();
  model.dispose();
});
