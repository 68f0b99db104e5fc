// Outside reference for the Qwen2 GGUF export (issue 18 item 6): a tiny random Qwen2 model (q/k/v biases, GQA, Q/K
// rows in HF's "halves" layout that llama.cpp's qwen2 architecture rotates with NEOX RoPE, so no permutation) written
// as f32 GGUF and run by llama.cpp (node-llama-cpp) must give nomoat's greedy tokens and next-token probabilities
// (within 1e-4, the f32 tolerance of test/parity.test.ts; measured 8.2e-7). A random model rather than a
// trained one: its predictions are far from one-hot, so a missing bias or a permuted Q/K moves the probabilities.
// The model in memory is compared, not only the file read back by nomoat: a wrong Q/K permutation is read back as
// consistently by both engines, and only the model before export shows it. Checked: export with the llama Q/K
// permutation applied to qwen2 fails here (greedy tokens differ), and so do biases written as zeros (greedy tokens
// differ) or left out (the file no longer loads).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import { saveGguf } from '../src/models/convert.js';
import { Rng } from '../src/engine/rng.js';
import { greedyLlama, greedyOurs, maxProbDiff, useLlamaOracle } from './llama-oracle.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';

const THREADS = 1;
const STEPS = 24;
const PROB_TOL = 1e-4;

const oracle = useLlamaOracle('qwen2-parity', THREADS);

test('a Qwen2 GGUF file written by nomoat (f32) runs in llama.cpp with the same greedy tokens and probabilities', async (t) => {
  if (oracle.unavailable(t)) return;
  const llama = oracle.llama;
  assert.ok(llama !== null);
  const tok = tinyTokenizer();
  const cfg = testConfig({ arch: 'qwen2', attentionBias: true });
  const model = randomModel(cfg, 3, 0.2);
  const path = join(oracle.dir, 'qwen2-f32.gguf');
  saveGguf(model, tok, path, { dtype: 'f32' });
  const loaded = loadModel(path);
  assert.equal(loaded.model.config.arch, 'qwen2');
  assert.equal(loaded.model.config.attentionBias, true);
  const rng = new Rng(5);
  // BOS, then runs of the vocabulary's text pieces (ids 259..305)
  const prompts = [4, 9, 30].map((n) => [1, ...Array.from({ length: n }, () => 259 + rng.int(47))]);
  const { runs } = await greedyLlama(llama, path, prompts, STEPS, THREADS);
  let worst = 0;
  // The model as it was before export (what a Q/K permutation the file should not have would change) and as nomoat
  // reads the file back: both must agree with llama.cpp.
  for (const [label, m] of [['in memory', model], ['reloaded', loaded.model]] as const) {
    prompts.forEach((ids, i) => {
      const mine = greedyOurs(m, ids, STEPS);
      assert.deepEqual(mine.tokens, runs[i].tokens, `${label}: greedy tokens from prompt ${i}`);
      worst = Math.max(worst, maxProbDiff(mine, runs[i]));
    });
  }
  model.dispose();
  loaded.model.dispose();
  console.log(`# qwen2 parity: ${prompts.length} prompts × ${STEPS} greedy tokens identical; max top-5 probability difference ${worst.toExponential(2)}`);
  assert.ok(worst <= PROB_TOL, `probabilities differ by ${worst} (> ${PROB_TOL})`);
});
