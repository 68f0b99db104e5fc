// nomoat import: an adapter that comes back is checked against the base (refused on a foreign base, naming what
// differs) and registered in a library folder that --lora takes at once; a model folder must have the base's shapes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importFolder, importKind, libraryDir } from '../src/handoff/index.js';
import { BaseMismatchError, LoraAdapter, loadAdapter, loadGgufLora, savePeftAdapter } from '../src/lora/index.js';
import { saveHfFolder } from '../src/models/convert.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import { logits, maxDiff, randomize, tempDir } from './lora-helpers.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');

test('an adapter of the base is registered: PEFT + GGUF in LIBRARY/NAME, loadable by path, with the same effect', () => {
  const dir = tempDir();
  const base = randomModel(undefined, 1);
  try {
    const a = randomize(LoraAdapter.create(base, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 2 }), 5, 0.05);
    savePeftAdapter(a, join(dir, 'back'), { baseModelNameOrPath: 'somewhere/else' });
    assert.equal(importKind(join(dir, 'back')), 'adapter');
    const r = importFolder({ source: join(dir, 'back'), base, basePath: join(dir, 'base'), into: join(dir, 'lib'), name: 'style' });
    assert.equal(r.path, join(dir, 'lib', 'style'));
    assert.equal(r.check, 'base fingerprint matches');
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'adapter.gguf']) assert.ok(existsSync(join(r.path, f)), f);
    const want = (() => {
      a.attach(base);
      const l = logits(base);
      a.detach();
      return l;
    })();
    for (const path of [r.path, join(r.path, 'adapter.gguf')]) {
      const b = loadAdapter(path, base);
      b.attach(base);
      assert.ok(maxDiff(logits(base), want) < 1e-5, `${path} has the adapter's effect`);
      b.dispose();
    }
    assert.throws(() => importFolder({ source: join(dir, 'back'), base, basePath: 'x', into: join(dir, 'lib'), name: 'style' }), /exists; pass --force/);
    a.dispose();
  } finally {
    base.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an adapter recording another base is refused, naming what differs; nothing is registered', () => {
  const dir = tempDir();
  const base = randomModel(undefined, 1);
  const other = randomModel(undefined, 9); // same shapes, other weights
  try {
    const a = randomize(LoraAdapter.create(other, { r: 4 }, { seed: 2 }), 5);
    savePeftAdapter(a, join(dir, 'foreign'));
    assert.throws(
      () => importFolder({ source: join(dir, 'foreign'), base, basePath: 'b', into: join(dir, 'lib') }),
      (e: unknown) => e instanceof BaseMismatchError && /base weights: sha256/.test(e.message), // (random models share norms of 1: the weights hash tells them apart)
    );
    assert.ok(!existsSync(join(dir, 'lib', 'foreign')));
    a.dispose();
  } finally {
    base.dispose();
    other.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an adapter without a fingerprint (PEFT trained elsewhere) is checked for shapes, registered with the base\'s fingerprint', () => {
  const dir = tempDir();
  const base = randomModel(undefined, 1);
  const wide = randomModel(testConfig({ hiddenSize: 96, numHeads: 6, numKvHeads: 3 }), 1);
  try {
    const a = randomize(LoraAdapter.create(base, { r: 4 }, { seed: 2 }), 5);
    const bare = new LoraAdapter(a.config, a.base, null, a.moduleData(), { name: 'bare' });
    savePeftAdapter(bare, join(dir, 'peft'));
    const r = importFolder({ source: join(dir, 'peft'), base, basePath: 'b', into: join(dir, 'lib') });
    assert.match(r.check, /no fingerprint recorded: tensor names and shapes checked/);
    const cfg = JSON.parse(readFileSync(join(r.path, 'adapter_config.json'), 'utf8')) as { nomoat: { fingerprint: { arch: string } } };
    assert.equal(cfg.nomoat.fingerprint.arch, 'llama', 'registered with the base fingerprint');
    const g = loadGgufLora(join(r.path, 'adapter.gguf'), base); // and the GGUF copy records it too (no warning path)
    assert.notEqual(g.fingerprint, null);
    g.dispose();
    assert.throws(() => importFolder({ source: join(dir, 'peft'), base: wide, basePath: 'w', into: join(dir, 'lib2') }), /lora_A \[4, 64\].*needs \[r, 96\]/);
    a.dispose();
    bare.dispose();
  } finally {
    base.dispose();
    wide.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model folder must have the base\'s architecture and shapes', () => {
  const dir = tempDir();
  const base = randomModel(undefined, 1);
  const tuned = randomModel(undefined, 4);
  const wide = randomModel(testConfig({ intermediateSize: 96 }), 1);
  try {
    saveHfFolder(tuned, tinyTokenizer(), join(dir, 'tuned'));
    saveHfFolder(wide, tinyTokenizer(), join(dir, 'wide'));
    assert.equal(importKind(join(dir, 'tuned')), 'model');
    const r = importFolder({ source: join(dir, 'tuned'), base, basePath: 'b', into: join(dir, 'models') });
    assert.match(r.check, /architecture and shapes match the base \(fine-tuned weights/);
    assert.ok(existsSync(join(r.path, 'model.safetensors')) && existsSync(join(r.path, 'tokenizer.json')));
    assert.throws(() => importFolder({ source: join(dir, 'wide'), base, basePath: 'b', into: join(dir, 'models') }), /intermediateSize: returned 96, base 128/);
    writeFileSync(join(dir, 'nothing.txt'), '');
    assert.throws(() => importKind(join(dir, 'nothing.txt')), /not a folder/);
  } finally {
    for (const m of [base, tuned, wide]) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nomoat import (CLI): registers under $NOMOAT_HOME/adapters by default; a foreign base exits 1 with the differences', () => {
  const dir = tempDir();
  const base = randomModel(undefined, 1);
  const other = randomModel(undefined, 9);
  try {
    saveHfFolder(base, tinyTokenizer(), join(dir, 'base'));
    saveHfFolder(other, tinyTokenizer(), join(dir, 'other'));
    const a = randomize(LoraAdapter.create(base, { r: 4 }, { seed: 2 }), 5);
    savePeftAdapter(a, join(dir, 'run-output'));
    a.dispose();
    const env = { ...process.env, NOMOAT_HOME: join(dir, 'home') };
    const run = (args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [BIN, 'import', ...args, '-t', '1'], { encoding: 'utf8', env, timeout: 60_000 });
    const ok = run([join(dir, 'run-output'), '-m', join(dir, 'base')]);
    assert.equal(ok.status, 0, String(ok.stderr));
    const lib = libraryDir('adapter', env);
    assert.equal(lib, join(dir, 'home', 'adapters'));
    assert.equal(String(ok.stdout).split('\n')[0], join(lib, 'run-output'));
    assert.ok(existsSync(join(lib, 'run-output', 'adapter.gguf')));
    const bad = run([join(dir, 'run-output'), '-m', join(dir, 'other'), '--name', 'x']);
    assert.equal(bad.status, 1);
    assert.match(String(bad.stderr), /refused: .*different base model: base weights: sha256/);
    assert.ok(!existsSync(join(lib, 'x')));
  } finally {
    base.dispose();
    other.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
