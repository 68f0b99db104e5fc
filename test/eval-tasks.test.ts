// `nomoat eval` through the CLI: a task file on a tiny model run twice (identical numbers, lm-eval's JSON shape,
// samples_<task>.jsonl), the `skills` built-in on the bundled model, perplexity, and errors that say what to fix.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCorrect, replies, type TestItem } from '../src/cli/demo.js';
import { builtinTask, evaluateTasks } from '../src/eval/index.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
import { randomModel, testConfig, tinyTokenizer, TRAIN_TEXT } from './cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const BUNDLED = join(process.cwd(), 'assets', 'default-model');
let dir = '';
let model = '';

function nomoat(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Results {
  results: Record<string, Record<string, string | number>>;
  versions: Record<string, unknown>;
  'n-shot': Record<string, number>;
  configs: Record<string, Record<string, unknown>>;
  higher_is_better: Record<string, Record<string, boolean>>;
  'n-samples': Record<string, { original: number; effective: number }>;
  config: Record<string, unknown>;
  date: number;
}

const DOCS = [
  { q: 'the cat sat on the', choices: ['mat', 'big dog', 'a'], label: 0 },
  { q: 'a bird sang in the', choices: ['tree', 'log', 'sea water'], label: 0 },
  { q: 'the dog ran to the', choices: ['log', 'at', 'the mat and'], label: 0 },
  { q: 'the sun is', choices: ['hot', 'ice', 'sad'], label: 1 },
  { q: 'the cat ran to the', choices: ['log', 'sun'], label: 0 },
  { q: 'a dog sat on the', choices: ['mat', 'tree'], label: 0 },
];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-eval-'));
  model = join(dir, 'tiny.gguf');
  const m = randomModel(testConfig(), 5, 0.3);
  saveGguf(m, tinyTokenizer(), model, { dtype: 'f32' });
  m.dispose();
  writeFileSync(join(dir, 'mc.jsonl'), DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');
  writeFileSync(join(dir, 'mc.yaml'), [
    'task: tiny_mc', 'dataset_path: mc.jsonl', 'output_type: multiple_choice', 'doc_to_text: "{{q}}"', 'doc_to_choice: "{{choices}}"',
    'doc_to_target: label', 'num_fewshot: 2', 'metric_list:', '  - metric: acc', '  - metric: acc_norm', 'metadata:', '  version: 1.0', '',
  ].join('\n'));
  writeFileSync(join(dir, 'gen.yaml'), [
    'task: tiny_gen', 'dataset_path: mc.jsonl', 'doc_to_text: "{{q}}"', 'doc_to_target: "{{choices[label]}}"', 'num_fewshot: 1',
    'generation_kwargs:', '  until: ["."]', '  max_gen_toks: 5', '',
  ].join('\n'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('nomoat eval on a task file: twice the same numbers, lm-eval\'s results.json and samples_<task>.jsonl', () => {
  const run = (out: string): { stdout: string; json: Results } => {
    const r = nomoat(['eval', '-m', model, '--tasks', `${join(dir, 'mc.yaml')},${join(dir, 'gen.yaml')}`, '-t', '1', '--log-samples', '-o', out, '--progress', 'none']);
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout, json: JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results };
  };
  const a = run(join(dir, 'a'));
  const b = run(join(dir, 'b'));
  assert.deepEqual(a.json.results, b.json.results);
  assert.equal(a.stdout, b.stdout);
  const mc = a.json.results.tiny_mc;
  assert.deepEqual(Object.keys(mc).sort(), ['acc,none', 'acc_norm,none', 'acc_norm_stderr,none', 'acc_stderr,none', 'alias']);
  assert.equal(mc.alias, 'tiny_mc');
  for (const k of ['acc,none', 'acc_norm,none']) assert.ok(typeof mc[k] === 'number' && mc[k] >= 0 && mc[k] <= 1, k);
  assert.ok('exact_match,none' in a.json.results.tiny_gen);
  assert.deepEqual(a.json.versions, { tiny_mc: 1, tiny_gen: null });
  assert.deepEqual(a.json['n-shot'], { tiny_mc: 2, tiny_gen: 1 });
  assert.deepEqual(a.json['n-samples'].tiny_mc, { original: 6, effective: 6 });
  assert.deepEqual(a.json.higher_is_better.tiny_mc, { acc: true, acc_norm: true });
  assert.equal(a.json.configs.tiny_mc.output_type, 'multiple_choice');
  assert.equal(a.json.configs.tiny_mc.target_delimiter, ' ');
  assert.equal(a.json.config.model, model);
  assert.equal(a.json.config.batch_size, 8);
  assert.equal(typeof a.json.date, 'number');
  // the table on stdout
  assert.match(a.stdout, /\|\s+Tasks\s+\|Version\|Filter\|n-shot\|\s*Metric\s*\|\s+\|Value \|\s+\|Stderr\|/);
  assert.match(a.stdout, /\|tiny_mc\s*\|\s+1\|none\s*\|\s+2\|acc\s*\|↑\s*\|\d\.\d{4}\|±\s*\|\d\.\d{4}\|/);
  // samples: one line per document, the few-shot context and the choices as requests, the metrics per document
  const lines = readFileSync(join(dir, 'a', 'samples_tiny_mc.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 6);
  const s = lines[3] as { doc: unknown; target: unknown; arguments: Record<string, { arg_0: string; arg_1: string }>; resps: unknown[]; filtered_resps: unknown[]; metrics: string[]; acc: number };
  assert.deepEqual(s.doc, DOCS[3]);
  assert.equal(s.target, 1);
  assert.equal(Object.keys(s.arguments).length, 3);
  assert.ok(s.arguments.gen_args_0.arg_0.endsWith('\n\nthe sun is'), s.arguments.gen_args_0.arg_0); // two examples, then the question
  assert.equal(s.arguments.gen_args_1.arg_1, ' ice');
  assert.equal(s.resps.length, 3);
  assert.deepEqual(s.metrics, ['acc', 'acc_norm']);
  assert.equal(lines.reduce((n, l) => n + (l.acc as number), 0) / 6, mc['acc,none']);
  const gen = readFileSync(join(dir, 'a', 'samples_tiny_gen.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { resps: string[][]; filtered_resps: string[] });
  for (const g of gen) assert.ok(!g.resps[0][0].includes('.'), 'generation not cut at until');
});

test('nomoat eval --tasks skills on the bundled model (a few documents)', () => {
  const r = nomoat(['eval', '-m', BUNDLED, '--tasks', 'skills,opposites-mc', '--limit', '4', '-t', '2', '--progress', 'none']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^nomoat \(model=.*default-model\), limit: 4, num_fewshot: None, batch_size: 8\n/);
  assert.match(r.stdout, /\|skills\s*\|\s+1\|none\s*\|\s+0\|exact_match\|↑\s*\|\d\.\d{4}\|±\s*\|\d\.\d{4}\|/);
  assert.match(r.stdout, /\|opposites-mc\s*\|\s+1\|none\s*\|\s+0\|acc\s*\|/);
});

test('nomoat eval --tasks perplexity scores a text file', () => {
  const text = join(dir, 'text.txt');
  writeFileSync(text, TRAIN_TEXT.repeat(3));
  const out = join(dir, 'ppl');
  const r = nomoat(['eval', '-m', model, '--tasks', 'perplexity', '--ppl-file', text, '--ctx', '64', '--stride', '32', '-o', out, '--progress', 'none']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
  const p = j.results.perplexity;
  for (const k of ['token_perplexity,none', 'word_perplexity,none', 'byte_perplexity,none', 'bits_per_byte,none']) assert.ok(typeof p[k] === 'number' && Number.isFinite(p[k]) && p[k] > 0, k);
  assert.ok((p['token_perplexity,none'] as number) > 1);
  assert.deepEqual(j.higher_is_better.perplexity, { token_perplexity: false, word_perplexity: false, byte_perplexity: false, bits_per_byte: false });
  assert.match(r.stdout, /\|perplexity\|\s+N\/A\|none\s*\|\s+0\|bits_per_byte\s*\|↓/);
});

test('nomoat eval errors name what to fix', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'task: bad\ndataset_path: mc.jsonl\ndoc_to_text: q\ndoc_to_target: label\nuse_prompt: "promptsource:x"\n');
  const r = nomoat(['eval', '-m', model, '--tasks', bad]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.yaml:5: field `use_prompt` is not supported by nomoat/);
  const missing = nomoat(['eval', '-m', model, '--tasks', 'gsm8k'], { NOMOAT_SHARED_DATA: join(dir, 'nowhere') });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /gsm8k needs GSM8K .*not found at .*nowhere.*eval.*gsm8k-test\.jsonl/);
  assert.match(missing.stderr, /NOMOAT_SHARED_DATA/);
  const unknown = nomoat(['eval', '-m', model, '--tasks', 'hellaswag']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown task "hellaswag": built-in tasks are skills, skills-hard, gsm8k, gsm8k-plain, opposites-mc/);
  const ppl = nomoat(['eval', '-m', model, '--tasks', 'perplexity']);
  assert.equal(ppl.status, 2);
  assert.match(ppl.stderr, /the perplexity task needs --ppl-file FILE/);
  const samples = nomoat(['eval', '-m', model, '--tasks', 'skills', '--log-samples']);
  assert.equal(samples.status, 2);
  assert.match(samples.stderr, /--log-samples writes files: give --output-path DIR/);
  assert.ok(!existsSync(join(dir, 'nowhere')));
});

test('the skills task asks what `nomoat demo` asks and scores as it does (same replies, same verdicts)', async () => {
  const task = await builtinTask('skills');
  assert.equal(task.evalDocs.docs.length, 48); // assets/data/demo-test.jsonl
  const n = 8;
  const { model: m, tokenizer } = loadModel(BUNDLED);
  try {
    const r = evaluateTasks(m, tokenizer!, [task], { limit: n, logSamples: true });
    const items: TestItem[] = task.evalDocs.docs.slice(0, n).map((e) => ({
      skill: e.doc.skill as TestItem['skill'], messages: [{ role: 'user', content: String(e.doc.prompt) }], answer: String(e.doc.answer),
    }));
    const demo = replies(m, tokenizer!, tokenizer!.chatTemplate!, items);
    const samples = r.samples!.skills;
    assert.deepEqual(samples.map((s) => (s.resps[0] as string[])[0]), demo);
    assert.deepEqual(samples.map((s) => s.exact_match), items.map((it, i) => Number(isCorrect(it, demo[i]))));
    assert.equal(r.results.skills['exact_match,none'], samples.reduce((a, s) => a + (s.exact_match as number), 0) / n);
  } finally {
    m.dispose();
  }
});
