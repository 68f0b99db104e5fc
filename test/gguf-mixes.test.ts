// The GGUF files people download: llama.cpp's own quantizer (../shared/tools/llamacpp_quantize.py, node-llama-cpp's
// libllama) writes the common mixes of a SmolLM-135M-shaped model, and nomoat must load each file and give
// llama.cpp's greedy tokens. 576-wide rows are not a multiple of 256, so llama-quantize falls back per tensor (Q4_K →
// q5_0, Q5_K → q5_1, Q2_K / Q3_K / IQ4_XS → iq4_nl, Q6_K → q8_0) and only ffn_down (1536-wide rows) keeps the
// K-quant: every file mixes types, and Q4_K_M files were the ones nomoat could not read ("tensor token_embd.weight has
// type q5_0, which nomoat cannot read yet").
//
// The model is trained for a few seconds to memorize a text, so its greedy predictions are confident: llama.cpp
// rounds the activations to q8_0 / q8_1 / q8_K blocks for these products and nomoat keeps them float on the
// dequantize path, and on a random model that difference alone flips near-tied argmaxes.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import { saveGguf } from '../src/models/convert.js';
import { readGguf } from '../src/formats/gguf.js';
import { greedyLlama, greedyOurs, maxProbDiff, useLlamaOracle } from './llama-oracle.js';
import { randomModel, testConfig, tinyTokenizer, trainedModel } from './cli-model.js';
import type { LlamaConfig } from '../src/models/config.js';

const THREADS = 1;
const STEPS = 24;
const PROMPTS = ['the dog', 'a bird sang', 'the cat sat on the mat. the dog ran to the log. a bird'];
const QUANTIZE = join(import.meta.dirname, '..', '..', '..', 'shared', 'tools', 'llamacpp_quantize.py');
const ROOT = join(import.meta.dirname, '..', '..');

// llama_ftype (llama.h) of each mix, the ggml types it must write on the shape (the ones the mix is here to cover;
// every 2-D weight type is printed), and the loosest top-5 probability difference allowed (measured: 4.9e-4 to
// 1.3e-2, the largest wide256 Q4_K_M's).
interface Mix { name: string; ftype: number; must: readonly string[]; probTol: number }
// SmolLM-135M's widths: 576-wide rows fall back (Q4_K → q5_0, Q5_K → q5_1, IQ4_XS → iq4_nl); ffn_down (1536) does not.
const SMOL_MIXES: readonly Mix[] = [
  { name: 'Q4_K_M', ftype: 15, must: ['q5_0', 'q6_K'], probTol: 3e-2 },
  { name: 'Q4_K_S', ftype: 14, must: ['q4_K', 'q5_0', 'q5_1'], probTol: 3e-2 },
  { name: 'Q5_K_M', ftype: 17, must: ['q5_1', 'q6_K'], probTol: 3e-2 },
  { name: 'Q5_0', ftype: 8, must: ['q5_0'], probTol: 3e-2 },
  { name: 'Q5_1', ftype: 9, must: ['q5_1'], probTol: 3e-2 },
  { name: 'Q4_1', ftype: 3, must: ['q4_1'], probTol: 3e-2 },
  { name: 'IQ4_NL', ftype: 25, must: ['iq4_nl'], probTol: 3e-2 },
  { name: 'IQ4_XS', ftype: 30, must: ['iq4_nl', 'iq4_xs'], probTol: 3e-2 },
];
// 256-wide rows, where no tensor falls back and the small K-quants themselves are written (SmolLM's widths never
// get q2_K / q3_K: those mixes put them only on 576-wide rows).
const WIDE256_MIXES: readonly Mix[] = [
  { name: 'Q2_K', ftype: 10, must: ['q2_K', 'q3_K'], probTol: 3e-2 },
  { name: 'Q3_K_M', ftype: 12, must: ['q3_K', 'q4_K', 'q5_K'], probTol: 3e-2 },
  { name: 'Q4_K_M', ftype: 15, must: ['q4_K', 'q6_K'], probTol: 3e-2 },
  { name: 'Q5_K_M', ftype: 17, must: ['q5_K', 'q6_K'], probTol: 3e-2 },
];

const oracle = useLlamaOracle('gguf-mixes', THREADS);

const skipQuantizer = existsSync(QUANTIZE) || process.env.CI === 'true' ? false : `${QUANTIZE} absent (../shared/tools beside the clone)`;

async function checkMixes(t: TestContext, label: string, cfg: LlamaConfig, mixes: readonly Mix[]): Promise<void> {
  if (oracle.unavailable(t)) return;
  const llama = oracle.llama;
  assert.ok(llama !== null);
  const { model, loss } = trainedModel(40, cfg, 3e-3);
  assert.ok(loss < 0.3, `training did not converge (loss ${loss}); the test needs confident predictions`);
  const tok = tinyTokenizer();
  const f32Path = join(oracle.dir, `${label}-f32.gguf`);
  saveGguf(model, tok, f32Path, { dtype: 'f32' });
  model.dispose();
  const ids = PROMPTS.map((p) => tok.encode(p));
  for (const mix of mixes) {
    await t.test(mix.name, async () => {
      const path = join(oracle.dir, `${label}-${mix.name}.gguf`);
      const q = spawnSync('python3', [QUANTIZE, f32Path, path, String(mix.ftype)], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(q.status, 0, `llamacpp_quantize.py ${mix.name} failed:\n${q.stdout}\n${q.stderr}`);
      const written = [...new Set(readGguf(path).tensors.filter((i) => i.shape.length === 2).map((i) => i.typeName))].sort();
      for (const type of mix.must) assert.ok(written.includes(type), `${label} ${mix.name}: llama.cpp wrote ${written.join(', ')}, no ${type}`);
      const loaded = loadModel(path);
      const { runs } = await greedyLlama(llama, path, ids, STEPS, THREADS);
      let worst = 0;
      ids.forEach((prompt, i) => {
        const mine = greedyOurs(loaded.model, prompt, STEPS);
        assert.deepEqual(mine.tokens, runs[i].tokens, `${label} ${mix.name}: greedy tokens from ${JSON.stringify(PROMPTS[i])}\n ours:  ${tok.decode(mine.tokens)}\n llama: ${tok.decode(runs[i].tokens)}`);
        worst = Math.max(worst, maxProbDiff(mine, runs[i]));
      });
      loaded.model.dispose();
      console.log(`# ${label} ${mix.name} (${written.join(', ')}): ${PROMPTS.length} prompts × ${STEPS} greedy tokens identical; max top-5 probability difference ${worst.toExponential(2)}`);
      assert.ok(worst <= mix.probTol, `${label} ${mix.name}: probabilities differ by ${worst} (> ${mix.probTol})`);
    });
  }
}

test('llama.cpp-quantized mixes of a SmolLM-135M-shaped model load and give llama.cpp\'s greedy tokens', { skip: skipQuantizer }, (t) =>
  // SmolLM-135M's widths (576 wide, 9 heads of 64 with 3 kv heads, ff 1536) with one layer and the tiny vocab
  checkMixes(t, 'smol', testConfig({ hiddenSize: 576, intermediateSize: 1536, numHeads: 9, numKvHeads: 3, headDim: 64, numLayers: 1 }), SMOL_MIXES));

test('llama.cpp\'s Q2_K / Q3_K_M / Q4_K_M / Q5_K_M mixes of a 256-wide model load and give llama.cpp\'s greedy tokens', { skip: skipQuantizer }, (t) =>
  // two layers: llama-quantize gives the last one more bits, the first the mix's own types
  checkMixes(t, 'wide256', testConfig({ hiddenSize: 256, intermediateSize: 768, numHeads: 4, numKvHeads: 2, headDim: 64, numLayers: 2 }), WIDE256_MIXES));

test('a tensor type nomoat does not read still stops the load with a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-mixes-'));
  try {
    const path = join(dir, 'm.gguf');
    const model = randomModel();
    saveGguf(model, tinyTokenizer(), path, { dtype: 'f32' });
    model.dispose();
    const bytes = readFileSync(path);
    // tensor info: name (u64 length + bytes), n_dims u32, dims u64 × 2, then the ggml type u32: f32 (0) → q8_1 (9)
    const name = Buffer.from('token_embd.weight');
    const at = bytes.indexOf(name) + name.length + 4 + 16;
    assert.equal(bytes.readUInt32LE(at), 0);
    bytes.writeUInt32LE(9, at);
    writeFileSync(path, bytes);
    assert.throws(() => loadModel(path), /tensor token_embd\.weight has type q8_1, which nomoat cannot read yet/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
