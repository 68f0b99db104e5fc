// `-m hf://…` read from a Hugging Face cache laid out by hand exactly as huggingface_hub writes it (hub-layout.ts),
// offline (HF_HUB_OFFLINE=1): the bundled model as an HF folder repository and as GGUF quants (two snapshot links to
// one blob, as the cache dedupes), compared token for token with the same files loaded by path; a revision by commit;
// the errors for a model not in the cache and for an ambiguous quant.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecipe } from '../src/lora/recipe.js';
import { commitOf, etagOf, layOut, readFolder } from './hub-layout.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const BUNDLED = join(process.cwd(), 'assets', 'default-model');
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
let home = '';
let gguf = '';

function nomoat(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HF_HOME: home, HF_HUB_OFFLINE: '1', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const GEN = ['-p', 'Once upon a time', '-n', '12', '--temp', '0', '-t', '1', '--json'];
function tokensOf(stdout: string): number[] {
  const t = (JSON.parse(stdout) as { tokens: number[] }).tokens;
  assert.equal(t.length, 12);
  return t;
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'nomoat-hfhome-'));
  gguf = join(home, 'tiny-q8_0.gguf');
  const c = nomoat(['convert', BUNDLED, gguf, '--outtype', 'q8_0']);
  assert.equal(c.status, 0, c.stderr);
  const hub = join(home, 'hub');
  layOut(hub, 'nomoat-test/tiny', commitOf('tiny'), { ...readFolder(BUNDLED, FILES), 'README.md': Buffer.from('# tiny\n') });
  const q = readFileSync(gguf);
  layOut(hub, 'nomoat-test/tiny-GGUF', commitOf('tiny-gguf'), { 'tiny-Q8_0.gguf': q, 'tiny-q8_0-copy.gguf': q, 'tiny-F16.gguf': q });
});
after(() => rmSync(home, { recursive: true, force: true }));

test('the cache is huggingface_hub\'s: relative links into blobs/<etag>, refs/main = commit', () => {
  const folder = join(home, 'hub', 'models--nomoat-test--tiny');
  assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), commitOf('tiny'));
  const st = readFileSync(join(BUNDLED, 'model.safetensors'));
  assert.equal(readlinkSync(join(folder, 'snapshots', commitOf('tiny'), 'model.safetensors')), `../../blobs/${etagOf('model.safetensors', st)}`);
});

test('generate -m hf://OWNER/REPO offline gives the tokens of the same folder by path', () => {
  const byPath = nomoat(['generate', '-m', BUNDLED, ...GEN]);
  assert.equal(byPath.status, 0, byPath.stderr);
  const byHub = nomoat(['generate', '-m', 'hf://nomoat-test/tiny', ...GEN]);
  assert.equal(byHub.status, 0, byHub.stderr);
  assert.deepEqual(tokensOf(byHub.stdout), tokensOf(byPath.stdout));
  const byCommit = nomoat(['generate', '-m', `hf://nomoat-test/tiny@${commitOf('tiny')}`, ...GEN]);
  assert.equal(byCommit.status, 0, byCommit.stderr);
  assert.deepEqual(tokensOf(byCommit.stdout), tokensOf(byPath.stdout));
});

test('hf://OWNER/REPO:QUANT picks the GGUF by tag (case-insensitive) and equals the file by path', () => {
  const byPath = nomoat(['generate', '-m', gguf, ...GEN]);
  assert.equal(byPath.status, 0, byPath.stderr);
  for (const spec of ['hf://nomoat-test/tiny-GGUF:f16', 'hf://nomoat-test/tiny-GGUF:tiny-Q8_0.gguf']) {
    const r = nomoat(['generate', '-m', spec, ...GEN]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tokensOf(r.stdout), tokensOf(byPath.stdout), spec);
  }
  const ins = nomoat(['inspect', 'hf://nomoat-test/tiny-GGUF:F16', '--json', '--no-tensors']);
  assert.equal(ins.status, 0, ins.stderr);
});

test('offline and not cached: says so and shows the pull line; several matches: lists them', () => {
  const miss = nomoat(['generate', '-m', 'hf://nomoat-test/absent:Q4_K_M', '-p', 'x']);
  assert.equal(miss.status, 1);
  assert.match(miss.stderr, /HF_HUB_OFFLINE=1 forbids downloading it/);
  assert.match(miss.stderr, /nomoat pull hf:\/\/nomoat-test\/absent:Q4_K_M/);
  const amb = nomoat(['generate', '-m', 'hf://nomoat-test/tiny-GGUF:q8_0', '-p', 'x']);
  assert.equal(amb.status, 1);
  assert.match(amb.stderr, /matches 2 GGUF files[\s\S]*tiny-Q8_0\.gguf[\s\S]*tiny-q8_0-copy\.gguf/);
  const none = nomoat(['generate', '-m', 'hf://nomoat-test/tiny-GGUF', '-p', 'x']);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /3 GGUF files and no single Q4_K_M/);
});

test('a recipe\'s base may be hf://…: kept as written (adapter paths still resolve against the recipe\'s folder)', () => {
  const file = join(home, 'recipe.json');
  writeFileSync(file, JSON.stringify({ base: 'hf://nomoat-test/tiny', adapters: [{ path: 'a', scale: 0.5 }] }));
  const r = loadRecipe(file);
  assert.equal(r.base, 'hf://nomoat-test/tiny');
  assert.equal(r.adapters[0].path, join(home, 'a'));
});
