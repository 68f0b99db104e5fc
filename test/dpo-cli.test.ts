// `nomoat finetune --method dpo` run for real on a tiny model folder: the reference is the policy at step 0 (rewards
// start at exactly 0), training raises rewards/accuracies on its pairs, metrics.jsonl carries TRL's names (and eval_
// versions), the output loads as a PEFT adapter, --init-adapter continues an SFT adapter (which is then the
// reference), --resume ends byte for byte where one run does and refuses another starting adapter, and bad pairs
// or misplaced flags stop the command with file:line or the flag's name.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { loadPeftAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { readMetrics, type MetricsRecord } from '../src/train/index.js';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';
let pairs = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const fast = (): string[] => ['-m', model, '--batch', '4', '-c', '48', '--progress', 'none', '-t', '1'];
const num = (r: MetricsRecord, k: string): number => {
  const v = r[k];
  assert.equal(typeof v, 'number', `metrics.jsonl has no number "${k}"`);
  return v as number;
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-dpo-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  // chosen: the right answer; rejected: another example's (different) answer, in TRL's standard and conversational forms
  const ex = skillExamples(16, 9);
  const lines = ex.map((e, i) => {
    const other = ex.slice(i + 1).concat(ex).find((o) => o.answer !== e.answer)!.answer;
    return i % 2 === 0
      ? { prompt: e.prompt, chosen: e.answer, rejected: other }
      : { prompt: [{ role: 'user', content: e.prompt }], chosen: [{ role: 'assistant', content: e.answer }], rejected: [{ role: 'assistant', content: other }] };
  });
  pairs = join(dir, 'pairs.jsonl');
  writeFileSync(pairs, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('dpo raises rewards/accuracies on its training pairs; metrics with TRL names; a PEFT adapter', () => {
  const out = join(dir, 'out');
  const r = nomoat(['finetune', pairs, '--method', 'dpo', '--eval-data', pairs, '--eval-every', '6', '--steps', '24', '--lr', '2e-2', '--beta', '0.5', '-o', out, ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /16 training and 16 eval pairs; fresh LoRA .*reference: the base.*sigmoid β 0\.5/);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'adapter.gguf', 'metrics.jsonl', 'loss.svg']) assert.ok(existsSync(join(out, f)), `missing ${f}`);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 24);
  for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected']) {
    num(m[0], k);
    num(m[5], `eval_${k}`);
  }
  // step 1 is measured before any update with a fresh adapter (B = 0): policy = reference, so every reward is 0,
  // the loss is log 2 and no pair counts as won (TRL counts chosen > rejected)
  assert.ok(Math.abs(num(m[0], 'rewards/chosen')) < 1e-5 && Math.abs(num(m[0], 'rewards/rejected')) < 1e-5, JSON.stringify(m[0]));
  assert.ok(Math.abs(num(m[0], 'loss') - Math.LN2) < 1e-5);
  assert.equal(num(m[0], 'rewards/accuracies'), 0);
  const first = num(m[5], 'eval_rewards/accuracies');
  const last = num(m[23], 'eval_rewards/accuracies');
  assert.ok(last >= 0.9, `eval rewards/accuracies on the training pairs after 24 steps: ${last} (after 6: ${first})`);
  assert.ok(num(m[23], 'eval_rewards/margins') > 0);
  assert.ok(num(m[23], 'eval_loss') < Math.LN2, 'the DPO loss fell below its starting log 2');
  assert.match(r.stderr, /rewards\/accuracies/);

  const { model: base } = loadModel(model);
  const a = loadPeftAdapter(out, base);
  assert.ok(a.modules.size > 0);
  a.dispose();
});

test('--loss-type ipo: step 1 (policy = reference, h = 0) has loss (0 − 1/(2β))² = 1 at β 0.5; --rpo-alpha adds nll_loss', () => {
  const out = join(dir, 'ipo');
  const r = nomoat(['finetune', pairs, '--method', 'dpo', '--loss-type', 'ipo', '--beta', '0.5', '--steps', '1', '-o', out, ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  const [m] = readMetrics(join(out, 'metrics.jsonl'));
  assert.ok(Math.abs(num(m, 'loss') - 1) < 1e-6, JSON.stringify(m));
  const rpo = join(dir, 'rpo');
  assert.equal(nomoat(['finetune', pairs, '--method', 'dpo', '--rpo-alpha', '1', '--steps', '1', '-o', rpo, ...fast()]).status, 0);
  const [q] = readMetrics(join(rpo, 'metrics.jsonl'));
  // loss = log 2 (h = 0) + 1 · the chosen replies' mean NLL
  assert.ok(num(q, 'nll_loss') > 0);
  assert.ok(Math.abs(num(q, 'loss') - (Math.LN2 + num(q, 'nll_loss'))) < 1e-5, JSON.stringify(q));
});

test('--init-adapter: DPO continues an SFT adapter, which is the reference (rewards start at 0 again)', () => {
  const sftData = join(dir, 'sft.jsonl');
  writeFileSync(sftData, skillJsonl(skillExamples(16, 9)));
  const sft = join(dir, 'sft');
  assert.equal(nomoat(['finetune', sftData, '-o', sft, '--steps', '4', '--lr', '1e-2', ...fast()]).status, 0);
  const out = join(dir, 'from-sft');
  const r = nomoat(['finetune', pairs, '--method', 'dpo', '--init-adapter', sft, '--steps', '2', '--lr', '1e-2', '-o', out, ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /continuing .*sft \(also the reference\)/);
  const m = readMetrics(join(out, 'metrics.jsonl'));
  // the SFT adapter's B is not 0, yet step 1's rewards are: the reference is the adapter as DPO starts
  assert.ok(Math.abs(num(m[0], 'rewards/chosen')) < 1e-5, JSON.stringify(m[0]));
  const sftCfg = JSON.parse(readFileSync(join(sft, 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
  const dpoCfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
  assert.deepEqual([dpoCfg.r, dpoCfg.target_modules.sort()], [sftCfg.r, sftCfg.target_modules.sort()]);
  // the adapter keeps its own shape: LoRA shape flags are refused beside it
  const bad = nomoat(['finetune', pairs, '--method', 'dpo', '--init-adapter', sft, '-r', '4', '-o', join(dir, 'x'), ...fast()]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--rank does not apply with --init-adapter/);
});

test('--resume ends where one run does, and refuses a checkpoint made from another starting adapter', () => {
  const out = join(dir, 'resume');
  const ckpt = (step: number, f = ''): string => join(out, 'checkpoints', `step-${String(step).padStart(6, '0')}`, f);
  const run = (extra: string[]): ReturnType<typeof nomoat> => nomoat(['finetune', pairs, '--method', 'dpo', '-o', out, '--steps', '4', '--save-every', '1', '--lr', '1e-2', ...fast(), ...extra]);
  assert.equal(run([]).status, 0);
  const full = readFileSync(join(out, 'adapter_model.safetensors'));
  const fullMetrics = readMetrics(join(out, 'metrics.jsonl'));
  const rewind = (): void => {
    for (const s of [3, 4]) rmSync(ckpt(s), { recursive: true, force: true });
    rmSync(join(out, 'adapter_model.safetensors'));
  };
  rewind();
  const r = run(['--resume', '--progress', 'lines']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resumed from .*step-000002 at step 2\n/);
  assert.ok(readFileSync(join(out, 'adapter_model.safetensors')).equals(full), 'the resumed adapter = the uninterrupted run\'s');
  const again = readMetrics(join(out, 'metrics.jsonl'));
  assert.deepEqual(again.map((x) => x['rewards/margins']), fullMetrics.map((x) => x['rewards/margins']));

  // another starting adapter means another reference: the checkpoint is refused, not silently mixed
  rewind();
  const sft = join(dir, 'sft2');
  const sftData = join(dir, 'sft2.jsonl');
  writeFileSync(sftData, skillJsonl(skillExamples(8, 4)));
  assert.equal(nomoat(['finetune', sftData, '-o', sft, '--steps', '2', '--lr', '1e-2', ...fast()]).status, 0);
  const other = run(['--resume', '--init-adapter', sft]);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /reference log-probs .* differ from the checkpoint's/);
});

test('bad pairs stop the command naming file:line and the field; sft-only and dpo-only flags are refused', () => {
  const bad = join(dir, 'bad.jsonl');
  const good = (q: string): string => JSON.stringify({ prompt: q, chosen: 'a', rejected: 'b' });
  writeFileSync(bad, [good('q'), JSON.stringify({ prompt: 'q', chosen: '', rejected: 'b' }), JSON.stringify({ prompt: 'q', chosen: 'a' }), good('r')].join('\n') + '\n');
  const r = nomoat(['finetune', bad, '--method', 'dpo', '-o', join(dir, 'bad-out'), ...fast()]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.jsonl:2: field "chosen" is empty/);
  assert.match(r.stderr, /bad\.jsonl:3: missing field "rejected"/);
  assert.match(r.stderr, /--skip-bad-lines/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  const skipped = nomoat(['finetune', bad, '--method', 'dpo', '--skip-bad-lines', '--eval-split', '0', '--steps', '1', '-o', join(dir, 'skip-out'), ...fast()]);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.match(skipped.stderr, /skipped 2 bad pair\(s\)/);

  const flags: [string[], RegExp][] = [
    [['--method', 'dpo', '--packing', 'packed'], /--packing is for --method sft/],
    [['--method', 'dpo', '--replay', pairs], /--replay is for --method sft/],
    [['--beta', '0.2'], /--beta is for --method dpo/],
    [['--method', 'dpo', '--loss-type', 'hinge'], /--loss-type must be sigmoid\|ipo/],
    [['--method', 'dpo', '--beta', '0'], /--beta must be > 0/],
    [['--method', 'ppo'], /--method must be sft or dpo/],
  ];
  for (const [args, msg] of flags) {
    const x = nomoat(['finetune', pairs, '-o', join(dir, 'flag-out'), ...args, ...fast()]);
    assert.equal(x.status, 2, `${args.join(' ')}: ${x.stderr}`);
    assert.match(x.stderr, msg);
  }
});
