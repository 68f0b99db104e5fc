// evaluateTasks on a tiny random model: requests as lm-eval builds them, metrics from the model's own scores, the
// results object's shape, determinism, and the Markdown table.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomModel, testConfig, tinyTokenizer } from '../../test/cli-model.js';
import { generateTokens } from '../models/generate.js';
import { chooseAnswer } from './metrics.js';
import { makeTable, writeResults } from './results.js';
import { encodePair, evaluateTasks } from './run.js';
import { loglikelihoods } from './score.js';
import { loadTask } from './task.js';

const dir = mkdtempSync(join(tmpdir(), 'nomoat-run-'));
const model = randomModel(testConfig(), 3, 0.3);
const tok = tinyTokenizer();
after(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const DOCS = [
  { q: 'the cat sat on the', choices: ['mat', 'big dog', 'a'], label: 0 },
  { q: 'a bird sang in the', choices: ['tree', 'log', 'sea water'], label: 0 },
  { q: 'the dog ran to the', choices: ['log', 'at', 'the mat and'], label: 0 },
  { q: 'the sun is', choices: ['hot', 'ice', 'sad'], label: 1 },
];
writeFileSync(join(dir, 'mc.jsonl'), DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');
writeFileSync(join(dir, 'mc.yaml'), 'task: mc\ndataset_path: mc.jsonl\noutput_type: multiple_choice\ndoc_to_text: "{{q}}"\ndoc_to_choice: choices\ndoc_to_target: label\n');
writeFileSync(join(dir, 'gen.yaml'), 'task: gen\ndataset_path: mc.jsonl\ndoc_to_text: "{{q}}"\ndoc_to_target: "{{choices[label]}}"\ngeneration_kwargs:\n  until: ["."]\n  max_gen_toks: 6\nfilter_list:\n  - name: first-word\n    filter:\n      - function: regex\n        regex_pattern: "(\\\\w+)"\n      - function: take_first\n');

test("encodePair moves the context's trailing space into the continuation and puts BOS in front", () => {
  const p = encodePair(tok, 'the cat ', 'sat', false);
  assert.deepEqual(p.context, [tok.bosId!, ...tok.encode('the cat', { addBos: false })]);
  const whole = tok.encode('the cat sat', { addBos: false });
  assert.deepEqual([...p.context.slice(1), ...p.continuation], whole);
});

test('multiple choice: acc and acc_norm are the argmax of the model\'s own log-likelihoods; stderr by bootstrap', async () => {
  const task = await loadTask(join(dir, 'mc.yaml'));
  const r = evaluateTasks(model, tok, [task], { logSamples: true, batchSize: 3 });
  // the same requests scored directly
  let acc = 0;
  let accNorm = 0;
  for (const d of DOCS) {
    const reqs = d.choices.map((c) => encodePair(tok, d.q, ` ${c}`, false));
    const lls = loglikelihoods(model, reqs).map((x) => x.logprob);
    const { pred, predNorm } = chooseAnswer(lls, d.choices);
    acc += Number(pred === d.label);
    accNorm += Number(predNorm === d.label);
  }
  assert.equal(r.results.mc['acc,none'], acc / DOCS.length);
  assert.equal(r.results.mc['acc_norm,none'], accNorm / DOCS.length);
  assert.equal(typeof r.results.mc['acc_stderr,none'], 'number');
  assert.deepEqual(Object.keys(r).sort(), ['config', 'configs', 'date', 'higher_is_better', 'n-samples', 'n-shot', 'results', 'samples', 'total_evaluation_time_seconds', 'versions']);
  assert.deepEqual(r['n-samples'].mc, { original: 4, effective: 4 });
  assert.deepEqual(r.higher_is_better.mc, { acc: true, acc_norm: true });
  const s = r.samples!.mc[1];
  assert.equal(s.doc_id, 1);
  assert.deepEqual(Object.keys(s.arguments), ['gen_args_0', 'gen_args_1', 'gen_args_2']);
  assert.deepEqual(s.arguments.gen_args_2, { arg_0: 'a bird sang in the', arg_1: ' sea water' });
  assert.equal(s.resps.length, 3);
  // the same again: identical numbers
  const again = evaluateTasks(model, tok, [task], { batchSize: 1 });
  assert.equal(again.results.mc['acc,none'], r.results.mc['acc,none']);
  assert.equal(again.results.mc['acc_stderr,none'], r.results.mc['acc_stderr,none']);
});

test('generate_until: greedy generations cut at `until`, filtered, exact match; --limit', async () => {
  const task = await loadTask(join(dir, 'gen.yaml'));
  const r = evaluateTasks(model, tok, [task], { logSamples: true, limit: 2 });
  assert.deepEqual(r['n-samples'].gen, { original: 4, effective: 2 });
  const samples = r.samples!.gen;
  assert.equal(samples.length, 2);
  for (const [i, s] of samples.entries()) {
    const ids = [tok.bosId!, ...tok.encode(DOCS[i].q, { addBos: false })];
    const [g] = generateTokens(model, tok, [ids], { maxTokens: 6, sampling: { temperature: 0 }, stopStrings: ['.'] });
    assert.deepEqual(s.resps, [[g.text]]);
    const word = /(\w+)/.exec(g.text)?.[1] ?? '[invalid]';
    assert.deepEqual(s.filtered_resps, [word]);
    assert.equal(s.filter, 'first-word');
    assert.equal(s.exact_match, Number(word === DOCS[i].choices[DOCS[i].label]));
  }
  assert.ok('exact_match,first-word' in r.results.gen);
});

test("the table is lm-eval's make_table; results.json and samples are written", () => {
  const table = makeTable({
    results: { gsm8k: { alias: 'gsm8k', 'exact_match,strict-match': 0.25, 'exact_match_stderr,strict-match': 0.0123456, 'exact_match,flexible-extract': 0.5, 'exact_match_stderr,flexible-extract': 'N/A' } },
    versions: { gsm8k: 3 }, 'n-shot': { gsm8k: 8 }, higher_is_better: { gsm8k: { exact_match: true } },
  });
  assert.equal(table, [
    '|Tasks|Version|     Filter     |n-shot|   Metric  |   |Value |   |Stderr|',
    '|-----|------:|----------------|-----:|-----------|---|-----:|---|-----:|',
    '|gsm8k|      3|flexible-extract|     8|exact_match|↑  |0.5000|±  |   N/A|',
    '|     |       |strict-match    |     8|exact_match|↑  |0.2500|±  |0.0123|',
    '',
  ].join('\n'));
  const out = join(dir, 'out');
  const paths = writeResults(out, { results: {}, versions: {}, 'n-shot': {}, configs: {}, higher_is_better: {}, 'n-samples': {}, config: {}, date: 0, total_evaluation_time_seconds: '0', samples: { 'a b': [] } });
  assert.deepEqual(paths, [join(out, 'results.json'), join(out, 'samples_a_b.jsonl')]);
  assert.equal((JSON.parse(readFileSync(paths[0], 'utf8')) as { samples?: unknown }).samples, undefined);
});
