// `nomoat export` run for real (node bin/nomoat.js) on an adapter trained by `nomoat finetune` and on recipes: the
// command line it prints is the README's, a stack is refused for vLLM naming "adapters" (exit 1, nothing written),
// the same stack combined exactly ("merge": {"method": "cat"}) is accepted, and a bad --for is a usage error.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args, '-t', '1'], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-export-cli-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  writeFileSync(join(dir, 'data.jsonl'), skillJsonl(skillExamples(12)));
  for (const [name, seed] of [['a', '1'], ['b', '2']]) {
    const r = nomoat(['finetune', join(dir, 'data.jsonl'), '-m', model, '-o', join(dir, name), '--steps', '2', '-c', '32', '-b', '2', '--progress', 'none', '-s', seed, '--lr', '1e-2']);
    assert.equal(r.status, 0, r.stderr);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('export ADAPTER --for vllm|peft|llama.cpp|ollama prints the README\'s command (base from the adapter\'s base_model_name_or_path)', () => {
  const want: Record<string, RegExp> = {
    vllm: /^vllm serve \.\/base --enable-lora --lora-modules a=\.\/adapters\/a --max-lora-rank 8$/,
    peft: /^python3 scripts\/gpu-handoff-check\.py logits /,
    'llama.cpp': /^llama-server -m model\.gguf --lora a\.gguf$/,
    ollama: /^ollama create out-ollama -f Modelfile$/,
  };
  for (const [target, re] of Object.entries(want)) {
    const out = join(dir, `out-${target}`);
    const r = nomoat(['export', join(dir, 'a'), '--for', target, '-o', out]);
    assert.equal(r.status, 0, `${target}: ${r.stderr}`);
    const line = r.stdout.trim();
    assert.match(line, re);
    assert.ok(readFileSync(join(out, 'README.md'), 'utf8').includes(line), `${target}: the README holds the command`);
  }
});

test('a recipe stack is refused for vLLM naming "adapters" (nothing written); combined with merge cat it exports as one adapter', () => {
  const stack = join(dir, 'stack.json');
  writeFileSync(stack, JSON.stringify({ base: model, adapters: [{ path: join(dir, 'a'), scale: 1 }, { path: join(dir, 'b'), scale: 0.5 }] }));
  const r = nomoat(['export', stack, '--for', 'vllm', '-o', join(dir, 'v-stack')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /export --for vllm: adapters lists 2 adapters .*"merge": \{ "method": "cat" \}/);
  assert.ok(!existsSync(join(dir, 'v-stack')));
  const l = nomoat(['export', stack, '--for', 'llama.cpp', '-o', join(dir, 'l-stack')]);
  assert.equal(l.status, 0, l.stderr);
  assert.equal(l.stdout.trim(), 'llama-server -m model.gguf --lora a.gguf --lora-scaled b.gguf 0.5');
  const merged = join(dir, 'merged.json');
  writeFileSync(merged, JSON.stringify({ base: model, adapters: [{ path: join(dir, 'a') }, { path: join(dir, 'b') }], merge: { method: 'cat', weights: [1, 0.5] } }));
  const m = nomoat(['export', merged, '--for', 'vllm', '-o', join(dir, 'v-merged')]);
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /--lora-modules merged=\.\/adapters\/merged --max-lora-rank 16/);
});

test('usage errors: a missing or unknown --for, a GGUF type for safetensors output', () => {
  const r = nomoat(['export', join(dir, 'a'), '--for', 'tgi', '-o', join(dir, 'x')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--for must be one of vllm, llama\.cpp, ollama, peft/);
  const q = nomoat(['export', join(dir, 'a'), '--for', 'peft', '--outtype', 'q4_0', '-o', join(dir, 'x')]);
  assert.equal(q.status, 2);
  assert.match(q.stderr, /GGUF type/);
});
