// `nomoat generate`'s sampling flags run for real on a small random model: every token the CLI prints must lie in
// the set its flag allows at that step (recomputed here from the model's logits over the prompt and the tokens so
// far), and the same seed without the flag must leave that set somewhere, so each check can fail if the flag is
// ignored. Also: --top-k 1 is greedy, a seed repeats and another seed differs, a large --repeat-penalty stops repeats.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../src/engine/index.js';
import { saveGguf } from '../src/models/convert.js';
import type { LlamaModel } from '../src/models/llama.js';
import { filteredDistribution, type SamplingConfig } from '../src/models/sampling.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const N = 24; // tokens per run
/** Every filter off at T = 1: the flag under test is the only one that cuts. */
const OFF = ['--temp', '1', '--top-k', '0', '--top-p', '1', '--min-p', '0'];
const PLAIN: SamplingConfig = { temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 0 };

let dir = '';
let path = '';
let model: LlamaModel;

interface Run {
  tokens: number[];
  prompt_tokens: number[];
}

function generate(...flags: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, 'generate', '-m', path, '-p', 'the cat', '-n', String(N), '--ignore-eos', '-t', '1', '--json', ...flags], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Run;
  assert.equal(out.tokens.length, N);
  return out;
}

/** The model's logits before each generated token: row j predicts tokens[j]. */
function stepLogits(run: Run): Float32Array[] {
  const ids = [...run.prompt_tokens, ...run.tokens];
  const V = model.config.vocabSize;
  const all = noGrad(() => tidy(() => model.forward(Int32Array.from(ids), 1, ids.length).toArray()));
  return run.tokens.map((_, j) => all.subarray((run.prompt_tokens.length + j - 1) * V, (run.prompt_tokens.length + j) * V));
}

/** Steps where the run's token is outside what `config`'s filters allow. */
function outside(run: Run, config: SamplingConfig): number[] {
  const rows = stepLogits(run);
  const bad: number[] = [];
  run.tokens.forEach((t, j) => {
    const history = [...run.prompt_tokens, ...run.tokens.slice(0, j)];
    if (!filteredDistribution(rows[j], history, config).ids.includes(t)) bad.push(j);
  });
  return bad;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-cli-sampling-'));
  path = join(dir, 'tiny.gguf');
  model = randomModel(testConfig(), 11, 0.3);
  saveGguf(model, tinyTokenizer(), path, { dtype: 'f32' });
});
after(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('--seed: the same seed repeats, another seed differs, and --temp 0 ignores it', () => {
  const a = generate(...OFF, '--seed', '1');
  assert.deepEqual(generate(...OFF, '--seed', '1').tokens, a.tokens);
  assert.notDeepEqual(generate(...OFF, '--seed', '2').tokens, a.tokens);
  assert.deepEqual(generate('--temp', '0', '--seed', '1').tokens, generate('--temp', '0', '--seed', '2').tokens);
});

test('--top-k: 1 is the greedy output; k keeps every token among the k most likely', () => {
  const greedy = generate('--temp', '0');
  assert.deepEqual(outside(greedy, { ...PLAIN, temperature: 0 }), []);
  assert.deepEqual(generate(...OFF, '--top-k', '1', '--seed', '5').tokens, greedy.tokens);
  const top3 = { ...PLAIN, topK: 3 };
  assert.deepEqual(outside(generate(...OFF, '--top-k', '3', '--seed', '5'), top3), []);
  assert.notDeepEqual(outside(generate(...OFF, '--seed', '5'), top3), [], 'without --top-k the same seed leaves the top 3');
});

test('--top-p: every token is in the smallest set reaching p', () => {
  const topP = { ...PLAIN, topP: 0.3 };
  assert.deepEqual(outside(generate(...OFF, '--top-p', '0.3', '--seed', '5'), topP), []);
  assert.notDeepEqual(outside(generate(...OFF, '--seed', '5'), topP), [], 'without --top-p the same seed leaves the top-p set');
});

test('--min-p: every token has at least min-p × the top probability', () => {
  const minP = { ...PLAIN, minP: 0.3 };
  assert.deepEqual(outside(generate(...OFF, '--min-p', '0.3', '--seed', '5'), minP), []);
  assert.notDeepEqual(outside(generate(...OFF, '--seed', '5'), minP), [], 'without --min-p the same seed leaves the min-p set');
});

test('--repeat-penalty: greedy output repeats tokens, a large penalty removes the repeats (the penalized argmax each step)', () => {
  const plain = generate('--temp', '0');
  assert.ok(new Set(plain.tokens).size < N, 'greedy output has repeats');
  const pen = generate('--temp', '0', '--repeat-penalty', '1000', '--repeat-last-n', '64');
  assert.deepEqual(outside(pen, { ...PLAIN, temperature: 0, repeatPenalty: 1000 }), []);
  assert.equal(new Set(pen.tokens).size, N, `repeats left: ${pen.tokens.join(' ')}`);
  assert.ok(pen.tokens.every((t) => !pen.prompt_tokens.includes(t)), 'a prompt token came back');
});
