// `nomoat merge` run for real: merged GGUF and Hugging Face models equal the base with the adapters attached,
// --outtype re-quantizes, --unmerge restores the base, --format peft|gguf writes the combined adapter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import { logitsOf, makeFixture, maxDiff, nomoat, ok, stackLogits, type Fixture } from './stack-helpers.js';

let fx: Fixture;
before(() => {
  fx = makeFixture('nomoat-merge-');
});
after(() => rmSync(fx.dir, { recursive: true, force: true }));

const modelLogits = (path: string): Float32Array => {
  const { model } = loadModel(path);
  const l = logitsOf(model);
  model.dispose();
  return l;
};

interface Inspect { tensors: { name: string; type: string; shape: number[] }[] }
const inspect = (p: string): Inspect => JSON.parse(ok(['inspect', p, '--json']).stdout) as Inspect;

test('merge writes GGUF and Hugging Face models equal to the base with the adapters stacked; --outtype re-quantizes', () => {
  const want = stackLogits(fx.base, [[fx.a, 1], [fx.b, -0.5]]);
  const gguf = join(fx.dir, 'merged.gguf');
  const r = ok(['merge', fx.recipe, '-o', gguf]);
  assert.match(r.stderr, /merged 2 adapters at scales 1, -0\.5 → .*merged\.gguf \(gguf, f32\)/);
  assert.ok(maxDiff(modelLogits(gguf), want) < 1e-4);
  assert.ok(maxDiff(modelLogits(gguf), modelLogits(fx.base)) > 1e-2, 'merging should change the model');

  const hf = join(fx.dir, 'merged-hf');
  ok(['merge', '-m', fx.base, '--lora', fx.a, '--lora-scaled', fx.b, '-0.5', '-o', hf, '--outtype', 'f16']);
  assert.equal((JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype, 'float16');
  assert.ok(existsSync(join(hf, 'tokenizer.json')));
  assert.ok(maxDiff(modelLogits(hf), want) < 5e-2, 'f16 merged model drifted');
  const hfBf16 = join(fx.dir, 'merged-hf-bf16');
  ok(['merge', fx.recipe, '-o', hfBf16, '--outtype', 'bf16']);
  assert.equal((JSON.parse(readFileSync(join(hfBf16, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype, 'bfloat16');
  assert.ok(maxDiff(modelLogits(hfBf16), want) < 5e-2, 'bf16 merged model drifted');

  const q8 = join(fx.dir, 'merged-q8.gguf');
  ok(['merge', fx.recipe, '-o', q8, '--outtype', 'q8_0']);
  for (const t of inspect(q8).tensors) assert.equal(t.type, t.shape.length === 2 ? 'q8_0' : 'f32', t.name);
  const g = ok(['generate', '-m', q8, '-p', 'the', '-n', '4', '--temp', '0', '--json']);
  assert.equal((JSON.parse(g.stdout) as { tokens: number[] }).tokens.length > 0, true);
  const bad = nomoat(['merge', fx.recipe, '-o', join(fx.dir, 'hf-q8'), '--outtype', 'q8_0']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--outtype q8_0 needs a \.gguf OUT/);
});

test('merge then --unmerge restores the base weights (f32 round trip)', () => {
  const merged = join(fx.dir, 'rt-merged.gguf');
  const restored = join(fx.dir, 'rt-restored.gguf');
  ok(['merge', fx.recipe, '-o', merged]);
  const r = ok(['merge', fx.recipe, '--unmerge', '-m', merged, '-o', restored]);
  assert.match(r.stderr, /unmerged 2 adapters/);
  const a = loadModel(fx.base).model;
  const b = loadModel(restored).model;
  const m = loadModel(merged).model;
  let worst = 0, moved = 0;
  const merge = new Map(m.namedTensors());
  for (const [name, t] of a.namedTensors()) {
    const u = b.namedTensors().find(([n]) => n === name)![1];
    worst = Math.max(worst, maxDiff(t.toArray(), u.toArray()));
    moved = Math.max(moved, maxDiff(t.toArray(), merge.get(name)!.toArray()));
  }
  assert.ok(moved > 1e-3, `merging moved no weight (${moved})`);
  assert.ok(worst < 1e-5, `unmerge left max |ΔW| ${worst}`);
  for (const x of [a, b, m]) x.dispose();
  assert.equal(nomoat(['merge', fx.recipe, '--unmerge', '-o', join(fx.dir, 'x.gguf')]).status, 2, '--unmerge without -m');
});

test('merge --method combines first; --format peft|gguf writes the combined adapter instead of a model', () => {
  const model = join(fx.dir, 'linear-merged.gguf');
  const adapter = join(fx.dir, 'linear.gguf');
  const peft = join(fx.dir, 'linear-peft');
  ok(['merge', fx.recipe, '--method', 'svd', '--svd-rank', '4', '-o', model]);
  ok(['merge', fx.recipe, '--method', 'svd', '--svd-rank', '4', '--format', 'gguf', '-o', adapter]);
  ok(['merge', fx.recipe, '--method', 'svd', '--svd-rank', '4', '--format', 'peft', '-o', peft]);
  const want = stackLogits(fx.base, [[adapter, 1]]);
  assert.ok(maxDiff(modelLogits(model), want) < 1e-4);
  assert.ok(maxDiff(stackLogits(fx.base, [[peft, 1]]), want) < 1e-4);
  assert.ok(maxDiff(want, stackLogits(fx.base, [[fx.a, 1], [fx.b, -0.5]])) > 1e-4, 'rank-4 svd of a rank-6 sum should not be exact');
  assert.match(nomoat(['merge', fx.recipe, '--format', 'peft', '--outtype', 'q8_0', '-o', join(fx.dir, 'z')]).stderr, /adapters are written in f32 or f16/);
});
