// `nomoat finetune`, `nomoat pretrain` and `nomoat tokenizer train` run for real (node bin/nomoat.js …) on a tiny
// model folder in a temp dir: outputs exist and load (PEFT and GGUF agree), bad data stops training naming
// file:line, --skip-bad-lines reports what it dropped, --epochs counts rows, --resume continues (only the missing
// steps, the optimizer state read, the same bytes as an uninterrupted run), Ctrl-C checkpoints.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { countRows } from '../src/cli/finetune.js';
import { loadConversations } from '../src/data/index.js';
import { loadGgufLora, loadPeftAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { HfTokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/index.js';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';
let data = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FAST = ['-m', '', '--batch', '2', '-c', '48', '--progress', 'none', '-t', '1', '--lr', '1e-2'];
const fast = (): string[] => FAST.map((a) => (a === '' ? model : a));

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-ft-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  data = join(dir, 'data.jsonl');
  writeFileSync(data, skillJsonl(skillExamples(24)));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('finetune writes a PEFT adapter, a GGUF LoRA, metrics.jsonl and loss.svg that load and agree', () => {
  const out = join(dir, 'out');
  const r = nomoat(['finetune', data, '-o', out, '--steps', '3', '--target-modules', 'all-linear', '-r', '4', '--alpha', '8', ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'adapter.gguf', 'metrics.jsonl', 'loss.svg']) assert.ok(existsSync(join(out, f)), `missing ${f}`);
  assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, 3);
  assert.match(readFileSync(join(out, 'loss.svg'), 'utf8'), /^<svg/);
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number; base_model_name_or_path: string };
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.equal(cfg.base_model_name_or_path, model);

  const { model: m } = loadModel(model);
  const peft = loadPeftAdapter(out, m);
  const gguf = loadGgufLora(join(out, 'adapter.gguf'), m);
  assert.equal(peft.modules.size, 2 * 7, 'all-linear on 2 layers');
  const [p, g] = [peft.moduleData(), gguf.moduleData()];
  let trained = 0;
  p.forEach((pm, i) => {
    const gm = g[i];
    assert.equal(gm.name, pm.name);
    assert.deepEqual(gm.A, pm.A);
    for (let k = 0; k < pm.B.length; k++) assert.ok(Math.abs(gm.B[k] - pm.B[k]) <= 1e-6 * (1 + Math.abs(pm.B[k])), `${pm.name} B[${k}]`);
    trained += pm.B.reduce((s, x) => s + Math.abs(x), 0);
  });
  assert.ok(trained > 0, 'B moved off zero: the adapter was trained');
  // the chat/generate path accepts it
  const gen = nomoat(['generate', '-m', model, '--lora', out, '-p', 'hi', '-n', '2', '--temp', '0', '-t', '1']);
  assert.equal(gen.status, 0, gen.stderr);
  m.dispose();
});

test('a malformed data line stops training before it starts, naming file:line; --skip-bad-lines drops it', () => {
  const bad = join(dir, 'bad.jsonl');
  const lines = skillJsonl(skillExamples(12)).trim().split('\n');
  lines.splice(2, 0, '{"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}');
  lines.splice(5, 0, '{not json');
  writeFileSync(bad, lines.join('\n') + '\n');
  const out = join(dir, 'bad-out');
  const r = nomoat(['finetune', bad, '-o', out, '--steps', '1', ...fast()]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: .*role`));
  assert.match(r.stderr, /bad\.jsonl:6: invalid JSON/);
  assert.match(r.stderr, /--skip-bad-lines/);
  assert.ok(!existsSync(join(out, 'metrics.jsonl')), 'nothing trained');
  const s = nomoat(['finetune', bad, '-o', out, '--steps', '1', '--skip-bad-lines', ...fast()]);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stderr, /skipped 2 bad record\(s\) of .*bad\.jsonl \(first: .*bad\.jsonl:3:/);
});

test('--epochs sets the steps from the rows; --steps with --epochs is a usage error', async () => {
  const out = join(dir, 'epochs');
  const r = nomoat(['finetune', data, '-o', out, '--epochs', '2', '--eval-split', '0', '--packing', 'padded', ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  const { conversations } = await loadConversations(data);
  const rows = countRows(HfTokenizer.fromDirectory(model), conversations, 'padded', 48);
  assert.equal(rows, 24);
  assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, Math.ceil((2 * rows) / 2));
  const both = nomoat(['finetune', data, '-o', out, '--epochs', '1', '--steps', '2', ...fast()]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--steps or --epochs/);
  const targets = nomoat(['finetune', data, '-o', out, '--target-modules', 'q_proj,wq', ...fast()]);
  assert.equal(targets.status, 2);
  assert.match(targets.stderr, /--target-modules/);
});

test('--resume continues from the newest checkpoint: steps 3-4 only, optimizer state read, the same bytes as one run', () => {
  // One uninterrupted 4-step run checkpointing every step; then its steps 3-4 are taken away and --resume redoes them.
  const out = join(dir, 'resume');
  const ckpt = (step: number, f = ''): string => join(out, 'checkpoints', `step-${String(step).padStart(6, '0')}`, f);
  const run = (extra: string[]): ReturnType<typeof nomoat> => nomoat(['finetune', data, '-o', out, '--steps', '4', '--save-every', '1', ...fast(), ...extra]);
  assert.equal(run([]).status, 0);
  const read = (f: string): Buffer => readFileSync(join(out, f));
  const full = { adapter: read('adapter_model.safetensors'), gguf: read('adapter.gguf'), optimizer: readFileSync(ckpt(4, 'optimizer.safetensors')) };
  const fullMetrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  const rewind = (): void => {
    for (const s of [3, 4]) rmSync(ckpt(s), { recursive: true });
    for (const f of ['adapter_model.safetensors', 'adapter.gguf', 'adapter_config.json']) rmSync(join(out, f));
  };

  rewind();
  const r = run(['--resume', '--progress', 'lines']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resumed from .*step-000002 at step 2\n/);
  // steps 1-2 are the first run's lines, kept as written (their timings too); 3-4 were run again, to the same loss
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  const parsed = lines.map((l) => JSON.parse(l) as { step: number; loss: number; elapsed_s: number; tokens_per_s: number });
  assert.deepEqual(parsed.map((m) => m.step), [1, 2, 3, 4]);
  assert.deepEqual(lines.slice(0, 2), fullMetrics.slice(0, 2));
  const fullParsed = fullMetrics.map((l) => JSON.parse(l) as { loss: number; tokens_per_s: number });
  assert.deepEqual(parsed.slice(2).map((m) => m.loss), fullParsed.slice(2).map((m) => m.loss));
  assert.ok(parsed.slice(2).some((m, i) => m.tokens_per_s !== fullParsed[2 + i].tokens_per_s), 'steps 3-4 were timed again');
  // the trainer is deterministic: the resumed run ends byte for byte where the uninterrupted one did
  assert.ok(read('adapter_model.safetensors').equals(full.adapter), 'PEFT adapter = the uninterrupted run\'s');
  assert.ok(read('adapter.gguf').equals(full.gguf), 'GGUF LoRA = the uninterrupted run\'s');
  assert.ok(readFileSync(ckpt(4, 'optimizer.safetensors')).equals(full.optimizer), 'AdamW moments at step 4 = the uninterrupted run\'s');

  // The AdamW moments come from the checkpoint: step 1's moments in step 2's folder change where steps 3-4 go.
  rewind();
  writeFileSync(ckpt(2, 'optimizer.safetensors'), readFileSync(ckpt(1, 'optimizer.safetensors')));
  assert.equal(run(['--resume']).status, 0);
  assert.ok(!read('adapter_model.safetensors').equals(full.adapter), 'other optimizer moments, another adapter');
});

test('Ctrl-C saves a checkpoint and exits 130 with a --resume hint', async () => {
  const out = join(dir, 'sigint');
  const child = spawn(process.execPath, [BIN, 'finetune', data, '-o', out, '--steps', '100000', ...fast()], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const metrics = join(out, 'metrics.jsonl');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /--resume/);
  assert.ok(readdirSync(join(out, 'checkpoints')).length >= 1);
  assert.ok(!existsSync(join(out, 'adapter_model.safetensors')), 'no final adapter from an interrupted run');
});

test('tokenizer train writes a tokenizer.json (+ config with ChatML) that round-trips text', () => {
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, 'Once upon a time there was a little cat.\n\nThe cat liked to play in the sun. ' .repeat(20) + '\n\nÜber café 🐈\n');
  const out = join(dir, 'tok', 'tokenizer.json');
  const r = nomoat(['tokenizer', 'train', corpus, '--vocab-size', '300', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const tok = HfTokenizer.fromDirectory(join(dir, 'tok'));
  assert.ok(tok.vocabSize > 259 && tok.vocabSize <= 300, `vocab ${tok.vocabSize}`);
  for (const s of ['Once upon a time', 'Über café 🐈 zzz']) assert.equal(tok.decode(tok.encode(s, { addBos: false })), s);
  assert.ok(tok.encode('the cat', { addBos: false }).length < 'the cat'.length, 'merges learned');
  assert.notEqual(tok.chatTemplate, null);
  assert.equal(tok.idToToken(tok.eosId ?? -1), '<|im_end|>');
  const missing = nomoat(['tokenizer', 'train', join(dir, 'nope.txt')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /corpus not found/);
});

test('pretrain writes a Hugging Face folder that loads and generates', () => {
  const corpus = join(dir, 'stories.txt');
  writeFileSync(corpus, Array.from({ length: 30 }, (_, i) => `Tom had ${i} red balls. He gave one to Sue.`).join('\n\n'));
  const out = join(dir, 'pre');
  const r = nomoat(['pretrain', corpus, '-o', out, '--vocab-size', '300', '--hidden', '32', '--layers', '1', '--heads', '2', '--kv-heads', '1',
    '--steps', '3', '-c', '32', '-b', '2', '--max-positions', '64', '--progress', 'none', '-t', '1']);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'metrics.jsonl']) assert.ok(existsSync(join(out, f)), `missing ${f}`);
  const loaded = loadModel(out);
  assert.equal(loaded.model.config.hiddenSize, 32);
  assert.equal(loaded.model.config.numKvHeads, 1);
  assert.equal(loaded.model.config.vocabSize, loaded.tokenizer?.vocabSize);
  loaded.model.dispose();
  const gen = nomoat(['generate', '-m', out, '-p', 'Tom had', '-n', '3', '--temp', '0', '-t', '1']);
  assert.equal(gen.status, 0, gen.stderr);
  const bad = nomoat(['pretrain', corpus, '-o', out, '--hidden', '30', '--heads', '4']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /multiple of --heads/);
});

test('finetune --replay mixes general chats into training only, at the asked share, and refuses bad replay input clearly', () => {
  const replay = join(dir, 'replay.jsonl');
  const chats = ['hi', 'thank you', 'what is the first word? the cat sat.', 'tell me about a dog.'].map((p, i) =>
    JSON.stringify({ messages: [{ role: 'user', content: p }, { role: 'assistant', content: `reply ${i}` }] }));
  writeFileSync(replay, chats.join('\n') + '\n');
  const steps = (args: string[]): number => {
    const out = join(dir, `replay-${args.join('-').replace(/[^a-z0-9.-]/gi, '')}`);
    const r = nomoat(['finetune', data, '-o', out, '--epochs', '1', '--eval-split', '0', '--packing', 'padded', ...args, ...fast()]);
    assert.equal(r.status, 0, r.stderr);
    return readMetrics(join(out, 'metrics.jsonl')).length;
  };
  const plain = steps([]);
  const half = steps(['--replay', replay]);
  const quarter = steps(['--replay', replay, '--replay-share', '0.25']);
  // 24 task conversations, one per padded row, batch 2: 12 updates; +24 replayed at 50 %; +8 at 25 %
  assert.equal(plain, 12);
  assert.equal(half, 24);
  assert.equal(quarter, 16);
  const r = nomoat(['finetune', data, '-o', join(dir, 'replay-msg'), '--steps', '1', '--replay', replay, ...fast()]);
  assert.match(r.stderr, /\(\+ \d+ replayed from .*replay\.jsonl\)/);

  const bad = join(dir, 'replay-bad.jsonl');
  writeFileSync(bad, chats[0] + '\n{"messages": [\n');
  const b = nomoat(['finetune', data, '-o', join(dir, 'replay-bad'), '--steps', '1', '--replay', bad, ...fast()]);
  assert.notEqual(b.status, 0);
  assert.match(b.stderr, /replay-bad\.jsonl:2/);
  const missing = nomoat(['finetune', data, '-o', join(dir, 'replay-x'), '--steps', '1', '--replay', join(dir, 'nope.jsonl'), ...fast()]);
  assert.match(missing.stderr, /replay file not found: .*nope\.jsonl/);
  assert.match(nomoat(['finetune', data, '-o', join(dir, 'replay-x'), '--replay-share', '0.3', ...fast()]).stderr, /--replay-share needs --replay FILE/);
  assert.match(nomoat(['finetune', data, '-o', join(dir, 'replay-x'), '--replay', replay, '--replay-share', '1', ...fast()]).stderr, /--replay-share must be in \[0, 0\.95\], got 1/);
});
