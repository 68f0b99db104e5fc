// nomoat export --for llama.cpp, loaded by llama.cpp itself (node-llama-cpp 3.21.1, the oracle of lora-parity.test.ts):
// the exported model.gguf and the GGUF LoRA files, at the scales the README's llama-server line gives (--lora /
// --lora-scaled), produce nomoat's greedy tokens with the same adapters stacked at those scales.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AdamW, backward, crossEntropy, tidy, zeroGrad } from '../src/engine/index.js';
import { exportFor } from '../src/handoff/index.js';
import { LoraAdapter } from '../src/lora/index.js';
import type { LlamaModel } from '../src/models/llama.js';
import { greedyLlama, greedyOurs, maxProbDiff, useLlamaOracle, type LlamaLora } from './llama-oracle.js';
import { tinyTokenizer, trainedModel } from './cli-model.js';

const THREADS = 1;
const STEPS = 32;
const PROMPTS = ['the dog', 'a bird'];

const oracle = useLlamaOracle('export-llama', THREADS);

/** Trains an adapter on a text the base did not memorize, so its effect on greedy output is visible. */
function train(model: LlamaModel, adapter: LoraAdapter, text: string, seed: number): void {
  const tok = tinyTokenizer();
  const ids = tok.encode(text.repeat(6), { addBos: false });
  const params = adapter.parameters();
  const opt = new AdamW(params, { lr: 2e-2 });
  const [B, T] = [4, 48];
  adapter.attach(model);
  for (let step = 0; step < 50; step++) {
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const start = (step * 29 + b * 53 + seed) % (ids.length - T);
      const seq = [tok.bosId ?? 1, ...ids.slice(start, start + T)];
      for (let t = 0; t < T; t++) [x[b * T + t], y[b * T + t]] = [seq[t], seq[t + 1]];
    }
    tidy(() => backward(crossEntropy(model.forward(x, B, T), y)));
    opt.update();
    zeroGrad(params);
  }
  adapter.detach();
  opt.dispose();
}

test('export --for llama.cpp: llama.cpp loads model.gguf + the LoRA files at the README\'s scales and gives nomoat\'s greedy tokens', async (t) => {
  if (oracle.unavailable(t)) return;
  const { model } = trainedModel();
  for (const [, w] of model.namedTensors()) w.requiresGrad = false;
  const tok = tinyTokenizer();
  const a = LoraAdapter.create(model, { r: 8, loraAlpha: 16, targetModules: 'all-linear' }, { seed: 3 });
  const b = LoraAdapter.create(model, { r: 4, loraAlpha: 8, useRslora: true, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 4 });
  train(model, a, 'the cat ran to the tree. the dog sang on the log. ', 0);
  train(model, b, 'a bird sat on the mat. the cat sang in the tree. ', 7);
  const out = join(oracle.dir, 'export');
  const r = exportFor({ target: 'llama.cpp', out, model, tokenizer: tok, ggufType: 'f32', adapters: [{ name: 'a', adapter: a, scale: 1 }, { name: 'b', adapter: b, scale: 0.6 }] });
  assert.equal(r.command, 'llama-server -m model.gguf --lora a.gguf --lora-scaled b.gguf 0.6');
  // the adapters as llama-server's flags name them
  const lora: LlamaLora[] = [];
  const flags = r.command.split(' ');
  flags.forEach((f, i) => {
    if (f === '--lora') lora.push({ filePath: join(out, flags[i + 1]), scale: 1 });
    if (f === '--lora-scaled') lora.push({ filePath: join(out, flags[i + 1]), scale: Number(flags[i + 2]) });
  });
  const prompts = PROMPTS.map((p) => tok.encode(p));
  const base = prompts.map((p) => greedyOurs(model, p, STEPS).tokens);
  const { runs } = await greedyLlama(oracle.llama!, join(out, 'model.gguf'), prompts, STEPS, THREADS, [], lora);
  a.attach(model, { scale: 1 });
  b.attach(model, { scale: 0.6 });
  try {
    const ours = prompts.map((p) => greedyOurs(model, p, STEPS));
    assert.ok(ours.some((o, i) => o.tokens.join() !== base[i].join()), 'the stack should change greedy output');
    let worst = 0;
    ours.forEach((o, i) => {
      assert.deepEqual(o.tokens, runs[i].tokens, `greedy tokens from ${JSON.stringify(PROMPTS[i])}\n ours:  ${tok.decode(o.tokens)}\n llama: ${tok.decode(runs[i].tokens)}`);
      worst = Math.max(worst, maxProbDiff(o, runs[i]));
    });
    console.log(`# export-llama: ${PROMPTS.length} prompts × ${STEPS} greedy tokens identical; max top-5 probability difference ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `probabilities differ by ${worst}`);
  } finally {
    a.dispose();
    b.dispose();
    model.dispose();
  }
});
