// Fixtures for the stack / merge CLI tests: a tiny random GGUF model with a tokenizer in a temp folder, two random
// adapters trained on nothing (B filled with seeded normals so they change the output) saved as PEFT and GGUF, a
// recipe naming them, the `nomoat` binary run for real, and logits computed in-process for comparisons.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../src/engine/index.js';
import { LoraAdapter, loadAdapter, saveGgufLora, savePeftAdapter } from '../src/lora/index.js';
import { saveGguf } from '../src/models/convert.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import { randomize } from './lora-helpers.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function nomoat(args: string[]): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs nomoat and requires exit status 0. */
export function ok(args: string[]): Result {
  const r = nomoat(args);
  assert.equal(r.status, 0, `nomoat ${args.join(' ')}\n${r.stderr}`);
  return r;
}

export interface Fixture {
  dir: string;
  /** the base: f32 GGUF with tokenizer */
  base: string;
  /** adapter A as a PEFT folder (r 4, q/v/down), adapter B as a GGUF LoRA (r 2, q/k/o/up, rsLoRA):
   *  q_proj is in both */
  a: string;
  b: string;
  /** recipe {base, adapters: [a at 1, b at -0.5]} with paths relative to it */
  recipe: string;
}

export function makeFixture(prefix: string): Fixture {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const base = join(dir, 'base.gguf');
  const m0 = randomModel(testConfig(), 11, 0.1);
  saveGguf(m0, tinyTokenizer(), base, { dtype: 'f32' });
  m0.dispose();
  const { model } = loadModel(base);
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 3 }), 5, 0.3);
  const b = randomize(LoraAdapter.create(model, { r: 2, loraAlpha: 4, useRslora: true, targetModules: ['q_proj', 'k_proj', 'o_proj', 'up_proj'] }, { seed: 4 }), 6, 0.3);
  savePeftAdapter(a, join(dir, 'a'));
  saveGgufLora(b, join(dir, 'b.gguf'));
  for (const x of [a, b, model]) x.dispose();
  const recipe = join(dir, 'recipe.json');
  writeFileSync(recipe, JSON.stringify({ base: 'base.gguf', adapters: [{ path: 'a', scale: 1 }, { path: 'b.gguf', scale: -0.5 }] }));
  return { dir, base, a: join(dir, 'a'), b: join(dir, 'b.gguf'), recipe };
}

export const IDS = Int32Array.from([1, 40, 77, 300, 5, 261, 290, 12, 9]);

/** Logits [T, V] of IDS on a model, no tape. */
export function logitsOf(model: LlamaModel): Float32Array {
  return noGrad(() => tidy(() => model.forward(IDS, 1, IDS.length).toArray()));
}

/** Logits of a model file with adapter files attached at scales (the unmerged stack, in-process). */
export function stackLogits(modelPath: string, adapters: readonly [string, number][]): Float32Array {
  const { model } = loadModel(modelPath);
  for (const [p, s] of adapters) loadAdapter(p, model, { onWarning: () => {} }).attach(model, { scale: s });
  const out = logitsOf(model);
  model.dispose();
  return out;
}

export function maxDiff(x: Float32Array, y: Float32Array): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
