// `nomoat distill` runs for real (node bin/nomoat.js …) on a tiny model folder: a teacher (the tiny base + an adapter
// fine-tuned here) is distilled into a LoRA student, lowering the held-out divergence; a run with on-policy batches
// resumes to the same bytes as one uninterrupted run; a stale teacher cache and a student with another vocabulary are
// refused; a whole smaller student is saved as a folder that loads and generates.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { loadPeftAdapter } from '../src/lora/index.js';
import { generateTokens } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import { readCacheHeader, readMetrics } from '../src/train/index.js';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';
let data = '';
let heldOut = '';
let teacherLora = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FAST = ['--batch', '4', '-c', '48', '--progress', 'none', '-t', '1', '--top-k', '8'];
const teacher = (): string[] => ['--teacher', model, '--teacher-lora', teacherLora];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-distill-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  data = join(dir, 'data.jsonl');
  writeFileSync(data, skillJsonl(skillExamples(32)));
  heldOut = join(dir, 'held-out.jsonl');
  writeFileSync(heldOut, skillJsonl(skillExamples(8, 99)));
  // the teacher: the tiny base with an adapter trained hard enough to move its distributions away from the base
  teacherLora = join(dir, 'teacher-lora');
  const r = nomoat(['finetune', data, '-m', model, '-o', teacherLora, '--steps', '30', '--lr', '2e-2', '--target-modules', 'all-linear', '-r', '8', ...FAST.slice(0, 8)]);
  assert.equal(r.status, 0, r.stderr);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('distill into a LoRA student lowers the held-out divergence and writes the adapter and the cache', () => {
  const out = join(dir, 'lora');
  const r = nomoat(['distill', data, ...teacher(), '-o', out, '--eval-data', heldOut, '--eval-every', '1', '--steps', '12', '--lr', '2e-2', '--target-modules', 'all-linear', ...FAST]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /scoring 40 rows with the teacher \(top-8 at T 1\)/);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'adapter.gguf', 'metrics.jsonl', 'loss.svg', 'teacher-topk.bin']) assert.ok(existsSync(join(out, f)), `missing ${f}`);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 12);
  const kl = m.map((x) => x.eval_forward_kl as number);
  assert.ok(kl.every((x) => Number.isFinite(x) && x >= 0));
  assert.ok(kl[11] < 0.7 * kl[0], `held-out KL(teacher‖student) fell: ${kl[0]} → ${kl[11]}`);
  assert.ok(typeof m[0].ce === 'number' && m[0].on_policy === 0);
  const h = readCacheHeader(join(out, 'teacher-topk.bin')).header;
  assert.equal(h.k, 8);
  assert.equal(h.rows, 40);
  assert.match(h.teacher, /teacher-lora@1/);
  const { model: base } = loadModel(model);
  assert.equal(loadPeftAdapter(out, base).modules.size, 14);

  // the same command again with another K finds the cache stale and says so (the teacher is not silently reused)
  const stale = nomoat(['distill', data, ...teacher(), '-o', out, '--eval-data', heldOut, '--steps', '2', ...FAST.slice(0, 6), '--top-k', '4']);
  assert.equal(stale.status, 1);
  assert.match(stale.stderr, /stale teacher cache: k changed \(8 → 4\); delete it to recompute/);
});

test('distill with on-policy batches resumes to the same bytes as one run', () => {
  const out = join(dir, 'resume');
  const ckpt = (step: number, f = ''): string => join(out, 'checkpoints', `step-${String(step).padStart(6, '0')}`, f);
  const run = (extra: string[]): ReturnType<typeof nomoat> => nomoat(['distill', data, ...teacher(), '-o', out, '--steps', '6', '--save-every', '1', '--lambda', '0.5', '--gen-temp', '1', '--gen-max', '6', '--loss', 'jsd', '--ce-weight', '0.2', '--lr', '1e-2', '--dropout', '0.1', ...FAST, ...extra]);
  const first = run([]);
  assert.equal(first.status, 0, first.stderr);
  const full = readFileSync(join(out, 'adapter_model.safetensors'));
  const fullMetrics = readMetrics(join(out, 'metrics.jsonl'));
  const onPolicy = fullMetrics.map((x) => x.on_policy);
  assert.ok(onPolicy.includes(1) && onPolicy.includes(0), `both kinds of batch in 6 steps: ${onPolicy.join(',')}`);
  for (const s of [4, 5, 6]) rmSync(ckpt(s), { recursive: true });
  for (const f of ['adapter_model.safetensors', 'adapter.gguf', 'adapter_config.json']) rmSync(join(out, f));
  const r = run(['--resume', '--progress', 'lines']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resumed from .*step-000003 at step 3\n/);
  assert.doesNotMatch(r.stderr, /scoring/, 'the cache is reused: the teacher scores only on-policy batches');
  const again = readMetrics(join(out, 'metrics.jsonl'));
  assert.deepEqual(again.map((x) => [x.step, x.loss, x.on_policy]), fullMetrics.map((x) => [x.step, x.loss, x.on_policy]));
  assert.ok(readFileSync(join(out, 'adapter_model.safetensors')).equals(full), 'the resumed adapter = the uninterrupted run\'s');
});

test('a whole student (--student-shape) is saved as a folder that loads and generates', () => {
  const out = join(dir, 'whole');
  const r = nomoat(['distill', data, ...teacher(), '-o', out, '--student-shape', 'layers=1', '--steps', '4', '--lr', '1e-2', ...FAST]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /a 1-layer student .* from teacher layers 1/);
  const loaded = loadModel(out);
  assert.equal(loaded.model.config.numLayers, 1);
  assert.ok(loaded.tokenizer !== null, 'the teacher\'s tokenizer was copied');
  const g = generateTokens(loaded.model, loaded.tokenizer, [[1, 2, 3]], { maxTokens: 3, sampling: { temperature: 0 } });
  assert.equal(g.length, 1);
  assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, 4);
});

test('distill refuses a student with another vocabulary and bad flags, naming them', () => {
  const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
  const bad = join(dir, 'other-vocab.json');
  writeFileSync(bad, JSON.stringify({ ...cfg, vocab_size: (cfg.vocab_size as number) + 7 }));
  const r = nomoat(['distill', data, ...teacher(), '-o', join(dir, 'x'), '--student-config', bad, '--steps', '1', ...FAST]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /other-vocab\.json: student vocabulary \d+ ≠ the teacher's \d+/);
  assert.match(nomoat(['distill', data, '-o', join(dir, 'y'), '--loss', 'kl']).stderr, /--loss must be forward-kl\|reverse-kl\|jsd/);
  assert.match(nomoat(['distill', data, '-o', join(dir, 'y'), '--lambda', '2']).stderr, /--lambda must be in \[0, 1\]/);
  assert.match(nomoat(['distill', data, '-o', join(dir, 'y'), '--student-shape', 'layers=2', '-m', model]).stderr, /-m BASE is for a LoRA student/);
  assert.match(nomoat(['distill', data, ...teacher(), '-o', join(dir, 'z'), '--student-shape', 'depth=2', ...FAST]).stderr, /--student-shape: "depth=2" is not KEY=N/);
});
