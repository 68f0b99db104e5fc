// Golden check for adapters against llama.cpp (node-llama-cpp): a LoRA adapter trained here, exported as GGUF LoRA
// and loaded by llama.cpp over our GGUF base, gives the same greedy tokens as our engine with the adapter attached.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AdamW, backward, crossEntropy, noGrad, tidy, zeroGrad } from '../src/engine/index.js';
import { KVCache } from '../src/models/kvcache.js';
import type { LlamaModel } from '../src/models/llama.js';
import { saveGguf } from '../src/models/convert.js';
import { LoraAdapter, saveGgufLora } from '../src/lora/index.js';
import { useLlamaOracle } from './llama-oracle.js';
import { tinyTokenizer, trainedModel } from './cli-model.js';

const THREADS = 1;
const STEPS = 48;
const PROMPTS = ['the dog', 'the cat', 'a bird'];
// The adapter teaches a different text than the base memorized, so its effect on greedy output is visible.
const ADAPTER_TEXT = 'the cat ran to the tree. the dog sang on the log. a bird sat on the mat. ';

const oracle = useLlamaOracle('lora-parity', THREADS);

function greedy(model: LlamaModel, prompt: number[]): number[] {
  const cache = new KVCache(model.config, 1, prompt.length + STEPS);
  const out: number[] = [];
  try {
    let input = Int32Array.from(prompt);
    for (let s = 0; s < STEPS; s++) {
      const logits = noGrad(() => tidy(() => model.forwardLast(input, 1, input.length, cache).toArray()));
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      out.push(best);
      input = Int32Array.of(best);
    }
  } finally {
    cache.dispose();
  }
  return out;
}

function trainAdapter(model: LlamaModel, adapter: LoraAdapter, steps: number): number {
  const tok = tinyTokenizer();
  const ids = tok.encode(ADAPTER_TEXT.repeat(6), { addBos: false });
  const params = adapter.parameters();
  const opt = new AdamW(params, { lr: 2e-2 });
  const [B, T] = [4, 48];
  let loss = NaN;
  for (let step = 0; step < steps; step++) {
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const start = (step * 29 + b * 53) % (ids.length - T);
      const seq = [tok.bosId ?? 1, ...ids.slice(start, start + T)];
      for (let t = 0; t < T; t++) {
        x[b * T + t] = seq[t]!;
        y[b * T + t] = seq[t + 1]!;
      }
    }
    loss = tidy(() => {
      const l = crossEntropy(model.forward(x, B, T), y);
      backward(l);
      return l.item();
    });
    opt.update();
    zeroGrad(params);
  }
  opt.dispose();
  return loss;
}

test('a GGUF LoRA adapter trained here gives llama.cpp the same greedy tokens as our engine', async (t) => {
  if (oracle.unavailable(t)) return;
  const llama = oracle.llama!;
  const { model } = trainedModel();
  for (const [, w] of model.namedTensors()) w.requiresGrad = false;
  const tok = tinyTokenizer();
  const basePath = join(oracle.dir, 'base-f32.gguf');
  saveGguf(model, tok, basePath, { dtype: 'f32' });
  const prompts = PROMPTS.map((p) => tok.encode(p));
  const baseTokens = prompts.map((p) => greedy(model, p));

  const adapter = LoraAdapter.create(model, { r: 8, loraAlpha: 16, targetModules: 'all-linear' }, { seed: 3 });
  adapter.attach(model);
  const loss = trainAdapter(model, adapter, 60);
  assert.ok(loss < 1, `adapter training did not converge (loss ${loss})`);
  const loraPath = join(oracle.dir, 'adapter.gguf');
  saveGgufLora(adapter, loraPath);
  const oursTokens = prompts.map((p) => greedy(model, p));
  assert.ok(oursTokens.some((o, i) => o.join() !== baseTokens[i].join()), 'the adapter should change greedy output');

  const m = await llama.loadModel({ modelPath: basePath, gpuLayers: 0 });
  const ctx = await m.createContext({
    contextSize: 256, threads: THREADS, sequences: 1, lora: { adapters: [{ filePath: loraPath, scale: 1 }] },
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false, // as greedyLlama: our arithmetic
  });
  try {
    for (const [i, prompt] of prompts.entries()) {
      const seq = ctx.getSequence();
      const theirs: number[] = [];
      for await (const tokId of seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true })) {
        theirs.push(tokId);
        if (theirs.length >= STEPS) break;
      }
      seq.dispose();
      assert.deepEqual(oursTokens[i], theirs, `greedy tokens from ${JSON.stringify(PROMPTS[i])}\n ours:  ${tok.decode(oursTokens[i])}\n llama: ${tok.decode(theirs)}`);
    }
  } finally {
    await ctx.dispose();
    await m.dispose();
  }
  adapter.detach();
  adapter.dispose();
  model.dispose();
});
