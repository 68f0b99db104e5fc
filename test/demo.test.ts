// `nomoat demo` smoke tests with a tiny step count: on a tiny model folder (always), and on the bundled model and
// data exactly as a fresh clone runs it (when assets/default-model is present). Checks the before/after report, that
// training changed something (lower held-out loss, a reply changed), the files left behind, and that
// `generate --lora` accepts the adapter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SKILLS, skillSplit, DEMO_SKILLS, type SkillExample } from '../src/data/skills.js';
import { skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';

function nomoat(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000, cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-demo-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Report {
  steps: number;
  before: { held_out_loss: number; exact_match: number; by_skill: Record<string, { correct: number; total: number }> };
  after: { held_out_loss: number; exact_match: number };
  samples: { skill: string; prompt: string; expected: string; before: string; after: string }[];
}

function checkRun(r: { status: number | null; stdout: string; stderr: string }, out: string, tests: number): Report {
  assert.equal(r.status, 0, r.stderr);
  for (const s of ['before:', 'held-out loss', 'exact match', 'samples (held-out prompts, greedy):', 'try it:  nomoat chat -m ']) assert.ok(r.stdout.includes(s), `stdout lacks "${s}":\n${r.stdout}`);
  for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'adapter/adapter.gguf', 'adapter/metrics.jsonl', 'report.json']) {
    assert.ok(existsSync(join(out, f)), `missing ${f}`);
  }
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(rep.samples.length, tests);
  for (const k of ['before', 'after'] as const) {
    assert.ok(Number.isFinite(rep[k].held_out_loss) && rep[k].held_out_loss > 0);
    assert.ok(rep[k].exact_match >= 0 && rep[k].exact_match <= 1);
  }
  // the reported accuracy is what the checker says about the reported replies
  const right = rep.samples.filter((s) => SKILLS[s.skill as keyof typeof SKILLS].check(s.before, s.expected)).length;
  assert.equal(right / rep.samples.length, rep.before.exact_match);
  // Training moved the model, even in the tests' 2 steps: the held-out loss falls and at least one greedy reply changes.
  assert.ok(rep.after.held_out_loss < rep.before.held_out_loss, `held-out loss ${rep.before.held_out_loss} → ${rep.after.held_out_loss}`);
  assert.ok(rep.samples.some((s) => s.after !== s.before), 'no reply changed after training');
  return rep;
}

test('nomoat demo --steps 2 on a tiny model: before/after report, adapter files, and generate --lora accepts it', () => {
  const model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  const data = join(dir, 'train.jsonl');
  const testFile = join(dir, 'test.jsonl');
  const train: SkillExample[] = [];
  const held: SkillExample[] = [];
  DEMO_SKILLS.forEach((s, i) => {
    const sp = skillSplit(s, { train: 8, test: 2, seed: i });
    train.push(...sp.train);
    held.push(...sp.test);
  });
  writeFileSync(data, skillJsonl(train));
  writeFileSync(testFile, skillJsonl(held));
  const out = join(dir, 'out');
  const r = nomoat(['demo', '-m', model, '--data', data, '--test-data', testFile, '-o', out, '--steps', '2', '--progress', 'none', '-t', '1']);
  const rep = checkRun(r, out, held.length);
  assert.equal(rep.steps, 2);
  assert.match(r.stdout, new RegExp(`--lora ${join(out, 'adapter').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const gen = nomoat(['generate', '-m', model, '--lora', join(out, 'adapter'), '-p', 'What is 2 plus 2?', '-n', '2', '--temp', '0', '-t', '1']);
  assert.equal(gen.status, 0, gen.stderr);
  const bad = nomoat(['demo', '-m', model, '--data', join(dir, 'nope.jsonl'), '-o', out]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /data file not found/);
});

const bundled = join(process.cwd(), 'assets', 'default-model', 'config.json');
test('nomoat demo --steps 2 with the bundled model and data, from another folder', { skip: !existsSync(bundled) ? 'assets/default-model is not built yet' : false }, () => {
  const cwd = join(dir, 'elsewhere');
  mkdirSync(cwd);
  const r = nomoat(['demo', '--steps', '2', '--progress', 'none'], cwd);
  const rep = checkRun(r, join(cwd, 'nomoat-demo'), 48);
  assert.ok(rep.before.exact_match < 0.5, 'the base model should not already know the skills');
});
