// The `nomoat` command run for real (node bin/nomoat.js …) on a small model written to a temp folder: help for
// every command, errors with suggestions, generate (--json and streaming), convert round trip, quantize, inspect,
// chat through a pipe, LoRA flags.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../src/cli/commands.js';
import { generateTokens } from '../src/models/generate.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function nomoat(args: string[], input?: string): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-cli-'));
  model = join(dir, 'tiny.gguf');
  const m = randomModel(testConfig(), 11, 0.1);
  saveGguf(m, tinyTokenizer(), model, { dtype: 'f32' });
  m.dispose();
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('nomoat --help lists every command; each command has --help with examples', () => {
  const top = nomoat(['--help']);
  assert.equal(top.status, 0);
  for (const c of COMMANDS) {
    assert.match(top.stdout, new RegExp(`\\n  ${c.name} `), `top-level help lacks ${c.name}`);
    const h = nomoat([...c.name.split(' '), '--help']);
    assert.equal(h.status, 0, `${c.name} --help: ${h.stderr}`);
    assert.match(h.stdout, new RegExp(`Usage: nomoat ${c.name} `));
    assert.match(h.stdout, /Examples:\n {2}nomoat /);
  }
});

test('errors: unknown command and flag get suggestions, a missing model says what to pass', () => {
  const cmd = nomoat(['genrate']);
  assert.equal(cmd.status, 2);
  assert.match(cmd.stderr, /did you mean "generate"/);
  const flag = nomoat(['generate', '-m', model, '-p', 'x', '--tmep', '0']);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /unknown flag --tmep \(did you mean --temp\?\)/);
  const missing = nomoat(['generate', '-m', join(dir, 'nope.gguf'), '-p', 'x']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /model not found: .*nope\.gguf/);
  assert.match(missing.stderr, /GGUF file.*Hugging Face model folder.*llama2\.c/);
  const bad = nomoat(['generate', '-m', model, '-p', 'x', '-n', 'many']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /-n expects a number/);
  const q = nomoat(['quantize', model, join(dir, 'x.gguf'), 'q7_k']);
  assert.equal(q.status, 2);
  assert.match(q.stderr, /TYPE must be one of Q4_K_M, .*F32, F16, BF16; got "q7_k"/);
});

test('generate --json gives the tokens the library generates; streaming prints the same text', () => {
  const args = ['generate', '-m', model, '-p', 'the cat', '-n', '12', '--temp', '0', '-t', '1', '--ignore-eos'];
  const r = nomoat([...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { tokens: number[]; text: string; stop_reason: string; timings: Record<string, number> };
  assert.equal(out.tokens.length, 12);
  assert.equal(out.stop_reason, 'length');
  for (const k of ['load_ms', 'prompt_ms', 'prompt_tokens_per_s', 'generation_ms', 'generation_tokens_per_s']) assert.equal(typeof out.timings[k], 'number', k);
  const { model: m, tokenizer } = loadModel(model);
  const [g] = generateTokens(m, tokenizer, [tokenizer!.encode('the cat')], { maxTokens: 12, sampling: { temperature: 0 }, stopTokens: [] });
  assert.deepEqual(out.tokens, g.tokens);
  assert.equal(out.text, g.text);
  m.dispose();
  const s = nomoat(args);
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stdout, `${out.text}\n`);
  assert.match(s.stderr, /prompt \d+ tokens in [\d.]+ ms \([\d.]+ tok\/s\) \| generated 12 tokens/);
});

test('generate --stop cuts the text before the stop string', () => {
  const base = JSON.parse(nomoat(['generate', '-m', model, '-p', 'a', '-n', '24', '--temp', '0', '--ignore-eos', '--json']).stdout) as { text: string };
  const chars = [...base.text];
  assert.ok(chars.length >= 6, `too little text to cut: ${JSON.stringify(base.text)}`);
  const stop = chars.slice(3, 5).join('');
  const cut = JSON.parse(nomoat(['generate', '-m', model, '-p', 'a', '-n', '24', '--temp', '0', '--ignore-eos', '--stop', stop, '--json']).stdout) as { text: string; stop_reason: string };
  assert.equal(cut.stop_reason, 'stop_string');
  assert.equal(cut.text, base.text.slice(0, base.text.indexOf(stop)));
});

test('convert GGUF → HF → GGUF keeps every tensor; quantize and inspect report the types', () => {
  const hf = join(dir, 'hf');
  const back = join(dir, 'back.gguf');
  assert.equal(nomoat(['convert', model, hf]).status, 0);
  const c = nomoat(['convert', hf, back]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /hf → gguf \(f32\)/);
  interface Inspect { format: string; tensors: { name: string; type: string; shape: number[] }[]; parameters: number; metadata: Record<string, unknown> }
  const inspect = (p: string): Inspect => JSON.parse(nomoat(['inspect', p, '--json']).stdout) as Inspect;
  const a = inspect(model);
  const b = inspect(back);
  assert.equal(a.format, 'gguf');
  assert.deepEqual(b.tensors, a.tensors);
  assert.equal(b.parameters, a.parameters);
  assert.equal(inspect(hf).parameters, a.parameters);
  assert.equal(a.metadata['llama.embedding_length'], 64);

  const q8 = join(dir, 'tiny-q8_0.gguf');
  const q = nomoat(['quantize', model, q8, 'q8_0']);
  assert.equal(q.status, 0, q.stderr);
  for (const t of inspect(q8).tensors) assert.equal(t.type, t.shape.length === 2 ? 'q8_0' : 'f32', t.name);
  assert.equal(nomoat(['quantize', model, q8, 'q8_0']).status, 1, 'overwrote without --force');
  const g = nomoat(['generate', '-m', q8, '-p', 'the', '-n', '4', '--temp', '0', '--json']);
  assert.equal(g.status, 0, g.stderr);
  const table = nomoat(['inspect', q8]);
  assert.match(table.stdout, /blk\.0\.attn_q\.weight\s+q8_0\s+64 × 64/);
});

test('chat reads turns from a pipe; /reset forgets, /exit stops', () => {
  const chat = (input: string): Result => nomoat(['chat', '-m', model, '--temp', '0', '-n', '6', '-t', '1'], input);
  const fresh = chat('the cat\n');
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.ok(fresh.stdout.length > 1);
  const reset = chat('a dog\n/reset\nthe cat\n');
  assert.equal(reset.status, 0, reset.stderr);
  assert.ok(reset.stdout.endsWith(fresh.stdout) && reset.stdout.length > fresh.stdout.length, 'after /reset the reply differs from a fresh session');
  const kept = chat('a dog\nthe cat\n');
  assert.notEqual(kept.stdout, reset.stdout, 'without /reset the second reply should see the first turn');
  const exit = chat('the cat\n/exit\na dog\n');
  assert.equal(exit.stdout, fresh.stdout);
});

test('LoRA flags: a missing adapter is a clear error', () => {
  const r = nomoat(['generate', '-m', model, '-p', 'x', '--lora', join(dir, 'no-adapter')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /LoRA adapter not found: .*no-adapter/);
  const s = nomoat(['generate', '-m', model, '-p', 'x', '--lora-scaled', join(dir, 'no-adapter'), 'half']);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /SCALE must be a number/);
});

test('LoRA flags: --lora changes the output, --lora-scaled at 0 gives the base output', async () => {
  const { LoraAdapter, savePeftAdapter } = await import('../src/lora/index.js');
  const { model: m } = loadModel(model);
  const adapter = LoraAdapter.create(m, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 3 });
  for (const lin of adapter.modules.values()) lin.B.data.forEach((_, i, b) => (b[i] = Math.sin(i) * 0.5)); // PEFT starts B at 0: make it matter
  const peft = join(dir, 'adapter');
  savePeftAdapter(adapter, peft);
  adapter.dispose();
  m.dispose();
  const run = (...extra: string[]): string => {
    const r = nomoat(['generate', '-m', model, '-p', 'the cat', '-n', '10', '--temp', '0', '--ignore-eos', '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.stringify((JSON.parse(r.stdout) as { tokens: number[] }).tokens);
  };
  const base = run();
  assert.notEqual(run('--lora', peft), base);
  assert.equal(run('--lora-scaled', peft, '0'), base);
});
