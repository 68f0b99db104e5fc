// `nomoat finetune` on data where some conversations' whole reply falls past -c (issue 18, item 10): the rows with
// nothing to learn are dropped when the data is loaded, with a message saying how many and that a larger -c keeps
// them, and metrics.jsonl has a finite loss and tokens/s on every step (no NaN, which JSON writes as null).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { skillConversation } from '../src/data/skills.js';
import { skillExamples, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';
let data = '';
const SHORT = 10;
const LONG = 2;

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-ft-masked-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  const short = skillExamples(SHORT).map((e) => skillConversation(e));
  // a user turn of ~110 tokens: at -c 48 every position of a padded row, and at least one whole packed row, predicts a
  // prompt token; at -c 128 the reply fits
  const long = skillExamples(LONG, 9).map((e) => skillConversation({ ...e, prompt: Array.from({ length: 15 }, () => e.prompt).join(' ') }));
  data = join(dir, 'data.jsonl');
  writeFileSync(data, [...short.slice(0, 5), long[0], ...short.slice(5), long[1]].map((c) => JSON.stringify(c)).join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** metrics.jsonl's records, each checked for a finite loss and tokens/s on the raw JSON (NaN is written as null). */
function finiteMetrics(out: string): number {
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const steps = lines.filter((l) => 'step' in l);
  for (const r of steps) {
    assert.equal(typeof r.loss, 'number', `step ${String(r.step)}: loss ${JSON.stringify(r.loss)}`);
    assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.tokens_per_s) && (r.grad_norm as number) > 0, JSON.stringify(r));
  }
  return steps.length;
}

const common = (): string[] => ['-m', model, '-b', '1', '--eval-split', '0', '--progress', 'none', '-t', '1', '--lr', '1e-2'];

test('padded: conversations whose whole reply falls past -c are dropped with a message; every step has a loss', () => {
  const out = join(dir, 'padded');
  const r = nomoat(['finetune', data, '-o', out, '--packing', 'padded', '-c', '48', '--epochs', '1', ...common()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`dropped ${LONG} of ${SHORT + LONG} training conversations whose whole reply falls past -c 48 .*a larger -c keeps them`));
  assert.match(r.stderr, new RegExp(`${SHORT} steps of 1×1 rows`), 'an epoch counts the kept rows');
  assert.equal(finiteMetrics(out), SHORT);
  assert.doesNotMatch(r.stderr, /NaN/);
  // the same data at -c 128 keeps them
  const whole = nomoat(['finetune', data, '-o', join(dir, 'padded-128'), '--packing', 'padded', '-c', '128', '--steps', '1', ...common()]);
  assert.equal(whole.status, 0, whole.stderr);
  assert.doesNotMatch(whole.stderr, /dropped/);
});

test('packed: rows holding only prompt tokens are dropped with a message; every step has a loss', () => {
  const out = join(dir, 'packed');
  const r = nomoat(['finetune', data, '-o', out, '-c', '48', '--epochs', '1', ...common()]);
  assert.equal(r.status, 0, r.stderr);
  const m = /dropped (\d+) packed rows holding only prompt tokens \(conversations longer than -c 48\); a larger -c keeps/.exec(r.stderr);
  assert.ok(m !== null && Number(m[1]) >= 1, r.stderr);
  assert.equal(finiteMetrics(out) > 0, true);
  assert.doesNotMatch(r.stderr, /NaN/);
});
