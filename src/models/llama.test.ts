// The model on tiny random weights: cached decoding equals the full forward, batches equal single sequences,
// gradients reach every weight, and generation is deterministic under a seed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, crossEntropy, linear, noGrad, tidy } from '../engine/index.js';
import { initWeights, tinyConfig } from './init.js';
import { KVCache } from './kvcache.js';
import { LlamaModel } from './llama.js';
import { generateTokens } from './generate.js';
import { Tensor } from '../engine/tensor.js';
import { dequantize, quantize } from '../engine/quant/index.js';

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

for (const variant of [{}, { attentionBias: true, arch: 'qwen2' as const, tieWordEmbeddings: true }, { ropeMode: 'interleaved' as const }]) {
  test(`KV-cache decoding equals the full forward (${JSON.stringify(variant)})`, () => {
    const cfg = tinyConfig(variant);
    const weights = initWeights(cfg, 3, 0.2);
    const model = new LlamaModel(cfg, (n) => weights.get(n));
    const ids = Int32Array.from([1, 5, 9, 13, 7, 3, 60]);
    noGrad(() =>
      tidy(() => {
        const full = model.forward(ids, 1, ids.length).toArray(); // [T, V]
        const cache = new KVCache(cfg, 1, 16);
        const V = cfg.vocabSize;
        const first = model.forward(ids.subarray(0, 4), 1, 4, cache).toArray();
        close(first, full.subarray(0, 4 * V), 1e-5, 'prefill');
        for (let t = 4; t < ids.length; t++) {
          const step = model.forwardLast(ids.subarray(t, t + 1), 1, 1, cache).toArray();
          close(step, full.subarray(t * V, (t + 1) * V), 1e-5, `position ${t}`);
        }
        cache.dispose();
      }),
    );
    model.dispose();
  });
}

test('a batch of two equals each sequence alone', () => {
  const cfg = tinyConfig();
  const weights = initWeights(cfg, 4, 0.2);
  const model = new LlamaModel(cfg, (n) => weights.get(n));
  const a = [1, 4, 8, 2];
  const b = [1, 30, 2, 9];
  noGrad(() =>
    tidy(() => {
      const both = model.forward(Int32Array.from([...a, ...b]), 2, 4).toArray();
      const V = cfg.vocabSize;
      close(both.subarray(0, 4 * V), model.forward(Int32Array.from(a), 1, 4).toArray(), 1e-5, 'a');
      close(both.subarray(4 * V), model.forward(Int32Array.from(b), 1, 4).toArray(), 1e-5, 'b');
    }),
  );
  const gen = generateTokens(model, null, [a, a, b], { maxTokens: 5, sampling: { temperature: 0 } });
  assert.deepEqual(gen[0].tokens, gen[1].tokens);
  assert.deepEqual(gen[2].tokens, generateTokens(model, null, [b], { maxTokens: 5, sampling: { temperature: 0 } })[0].tokens);
  const s1 = generateTokens(model, null, [a], { maxTokens: 8, sampling: { temperature: 1, seed: 5 } })[0].tokens;
  const s2 = generateTokens(model, null, [a], { maxTokens: 8, sampling: { temperature: 1, seed: 5 } })[0].tokens;
  assert.deepEqual(s1, s2);
  model.dispose();
});

test('gradients reach every trainable weight', () => {
  const cfg = tinyConfig();
  const weights = initWeights(cfg, 5, 0.2);
  for (const t of weights.values()) t.requiresGrad = true;
  const model = new LlamaModel(cfg, (n) => weights.get(n));
  tidy(() => {
    const ids = Int32Array.from([1, 5, 9, 13, 7, 3]);
    const targets = Int32Array.from([5, 9, 13, 7, 3, -100]);
    backward(crossEntropy(model.forward(ids, 1, 6), targets));
  });
  for (const [name, t] of weights) {
    assert.ok(t.grad !== null, `${name} got no gradient`);
    assert.ok(t.grad.toArray().some((x) => x !== 0), `${name} gradient is all zero`);
  }
  model.dispose();
});

test('a quantized tied embedding is gathered row by row and serves as the LM head, as its f32 decode does', () => {
  const cfg = tinyConfig({ hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, tieWordEmbeddings: true });
  const weights = initWeights(cfg, 6, 0.2);
  const f32 = weights.get('model.embed_tokens.weight');
  assert.ok(f32 !== undefined);
  const q = quantize('q8_0', f32.toArray());
  const qTable = Tensor.fromBytes(q, f32.shape, 'q8_0').keep();
  const decoded = Tensor.from(dequantize('q8_0', q, f32.size), f32.shape).keep();
  const quantModel = new LlamaModel(cfg, (n) => (n === 'model.embed_tokens.weight' ? qTable : weights.get(n)));
  const decodedModel = new LlamaModel(cfg, (n) => (n === 'model.embed_tokens.weight' ? decoded : weights.get(n)));
  assert.equal(quantModel.lmHead.weight, qTable);
  // an adapter-like delta on one projection: the single-token decode path must apply it too
  const deltaW = Tensor.from(Array.from({ length: 32 * 64 }, (_, i) => Math.sin(i) * 0.1), [32, 64]).keep();
  for (const m of [quantModel, decodedModel]) m.blocks[1].k.deltas.push({ forward: (x) => linear(x, deltaW) });
  // 10 positions with the tape on: more rows than INT8_DOT_MAX_M, so the full forward's q8_0 products stay in float
  // (without a tape they would take the int8 path at any M, as llama.cpp's prefill does)
  const ids = Int32Array.from([1, 5, 9, 63, 7, 2, 40, 11, 3, 8]);
  const full = tidy(() => quantModel.forward(ids, 1, ids.length).toArray());
  noGrad(() =>
    tidy(() => {
      close(full, decodedModel.forward(ids, 1, ids.length).toArray(), 1e-4, 'logits');
      const cache = new KVCache(cfg, 1, 16);
      quantModel.forwardLast(ids.subarray(0, 2), 1, 2, cache);
      for (let t = 2; t < ids.length; t++) {
        // a one-row q8_0 product quantizes its input row to int8 blocks (as llama.cpp does) and the taped 10-row
        // forward does not: with K = 64 (two blocks) that rounding moves logits by up to ~1 % of the largest one
        const step = quantModel.forwardLast(ids.subarray(t, t + 1), 1, 1, cache).toArray();
        const want = full.subarray(t * 64, (t + 1) * 64);
        const top = Math.max(...want.map(Math.abs));
        step.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 2e-2 * top, `cached step ${t}[${i}]: ${v} vs ${want[i]}`));
      }
      cache.dispose();
      assert.throws(() => quantModel.forward(Int32Array.of(64), 1, 1), /token id 64 at position 0 is outside the vocabulary \[0, 64\)/);
    }),
  );
  for (const t of [...weights.values(), qTable, decoded, deltaW]) t.dispose();
});
