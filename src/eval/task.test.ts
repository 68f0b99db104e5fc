// Task files: field resolution as lm-eval does it, refusals by name, errors naming file:line and field, few-shot.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Rng } from '../engine/rng.js';
import { buildContext, contextText } from './fewshot.js';
import { docChoices, docTarget, docText, loadTask, targetText } from './task.js';
import { literalEval, renderTemplate, resolveDocTo } from './task-template.js';

const dir = mkdtempSync(join(tmpdir(), 'nomoat-task-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const DOCS = [
  { question: 'opposite of hot?', choices: ['cold', 'warm', 'big'], label: 0, answer: 'cold' },
  { question: 'opposite of up?', choices: ['left', 'down', 'in'], label: 1, answer: 'down' },
  { question: 'opposite of day?', choices: ['sun', 'moon', 'night'], label: 2, answer: 'night' },
  { question: 'opposite of wet?', choices: ['dry', 'damp', 'rain'], label: 0, answer: 'dry' },
];
write('mc.jsonl', DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');

test('doc_to_* resolution: a field name gives the raw value, a template renders, digits index the choices', () => {
  const doc = { question: 'q?', label: 2, choices: ['a', 'b', 'c'], n: '1' };
  const features = new Set(Object.keys(doc));
  assert.equal(resolveDocTo('target', 'label', doc, features, true), 2); // the int field itself
  assert.equal(resolveDocTo('target', '{{label}}', doc, features, true), 2); // rendered "2" → index (task has choices)
  assert.equal(resolveDocTo('target', '{{label}}', doc, features, false), '2'); // stays text without choices
  assert.deepEqual(resolveDocTo('choice', 'choices', doc, features, true), ['a', 'b', 'c']);
  assert.deepEqual(resolveDocTo('choice', '{{choices}}', doc, features, true), ['a', 'b', 'c']); // rendered list, literal_eval'ed
  assert.deepEqual(resolveDocTo('choice', ['x', 'y'], doc, features, true), ['x', 'y']);
  assert.equal(resolveDocTo('text', 'Q: {{question}}\nA:', doc, features, true), 'Q: q?\nA:');
  assert.equal(resolveDocTo('target', 3, doc, features, true), 3);
  assert.deepEqual(resolveDocTo('target', "{{ ['x', 'y'] }}", doc, features, false), ['x', 'y']); // "[...]" → a list
  // gsm8k-cot's target: the number after ####, or the few-shot sample's own target
  const cot = "{{answer.split('####')[-1].strip() if answer is defined else target}}";
  assert.equal(renderTemplate(cot, { answer: 'so 9 * 2 = 18\n#### 18' }), '18');
  assert.equal(renderTemplate(cot, { target: 'The answer is 6.' }), 'The answer is 6.');
  assert.equal(renderTemplate("{{ hint | default('none') }}", {}), 'none');
  assert.throws(() => renderTemplate('Q: {{question}}', { text: 'x' }), /missing field `question`/);
  assert.deepEqual(literalEval("['it''s', \"b\", 1, -2.5, True, None, ('t',)]".replace("''", "\\'")), ["it's", 'b', 1, -2.5, true, null, ['t']]);
  assert.throws(() => literalEval('[1, 2'), /cannot read/);
});

test('a task file loads, resolves its documents and builds lm-eval contexts', async () => {
  const p = write('mc.yaml', [
    'task: mc', 'dataset_path: mc.jsonl', 'output_type: multiple_choice', 'description: "Opposites.\\n\\n"',
    'doc_to_text: "Question: {{question}}\\nAnswer:"', 'doc_to_choice: "{{choices}}"', 'doc_to_target: label',
    'num_fewshot: 2', 'fewshot_config:', '  sampler: first_n', 'metadata:', '  version: 2.0', '',
  ].join('\n'));
  const t = await loadTask(p);
  assert.equal(t.name, 'mc');
  assert.equal(t.config.target_delimiter, ' ');
  assert.equal(t.config.fewshot_delimiter, '\n\n');
  assert.deepEqual(t.config.metric_list.map((m) => m.metric), ['acc', 'acc_norm']); // lm-eval's multiple_choice default
  const e = t.evalDocs.docs[2];
  assert.equal(e.where, `${join(dir, 'mc.jsonl')}:3`);
  assert.equal(docText(t, e, t.evalDocs), 'Question: opposite of day?\nAnswer:');
  assert.deepEqual(docChoices(t, e, t.evalDocs), ['sun', 'moon', 'night']);
  assert.equal(docTarget(t, e, t.evalDocs), 2);
  assert.equal(targetText(t, e, t.evalDocs), 'night');
  // first_n: the first two documents as examples (target = the labelled choice), the document itself last
  const ctx = contextText(buildContext(t, e, 2, new Rng(1)));
  assert.equal(ctx, 'Opposites.\n\nQuestion: opposite of hot?\nAnswer: cold\n\nQuestion: opposite of up?\nAnswer: down\n\nQuestion: opposite of day?\nAnswer:');
  // first_n never shows a document as its own example
  assert.ok(!contextText(buildContext(t, t.evalDocs.docs[0], 2, new Rng(1))).includes('Answer: cold'));
});

test('the default sampler is seeded and never picks the document itself', async () => {
  const p = write('gen.yaml', 'task: gen\ndataset_path: mc.jsonl\ndoc_to_text: "{{question}}"\ndoc_to_target: answer\nnum_fewshot: 3\n');
  const t = await loadTask(p);
  const contexts = (seed: number): string[] => {
    const rng = new Rng(seed);
    return t.evalDocs.docs.map((e) => contextText(buildContext(t, e, 3, rng)));
  };
  assert.deepEqual(contexts(5), contexts(5));
  t.evalDocs.docs.forEach((e, i) => {
    const c = contexts(5)[i];
    const shots = c.split('\n\n').slice(0, -1);
    assert.equal(shots.length, 3);
    assert.ok(!shots.some((s) => s.startsWith(String(e.doc.question))), `document ${i} is its own example: ${c}`);
  });
  assert.notDeepEqual([5, 6, 7, 8].map((s) => contexts(s).join('|')).filter((x, i, xs) => xs.indexOf(x) === i).length, 1);
});

test('unsupported fields are refused by name with their line; Python functions too', async () => {
  const p = write('bad.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\ndoc_to_target: answer\nprocess_results: foo\n');
  await assert.rejects(loadTask(p), (e: Error) => e.message === `task file ${p}:5: field \`process_results\` is not supported by nomoat`);
  const f = write('fn.yaml', 'task: x\ndataset_path: mc.jsonl\nprocess_docs: !function utils.process_docs\ndoc_to_text: question\ndoc_to_target: answer\n');
  await assert.rejects(loadTask(f), /fn\.yaml:3: field `process_docs` is a Python function \(!function utils\.process_docs\), which nomoat cannot run/);
  const m = write('metric.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\ndoc_to_target: answer\nmetric_list:\n  - metric: bleu\n');
  await assert.rejects(loadTask(m), /metric\.yaml:5: field `metric_list` : metric `bleu` is not supported by nomoat for generate_until/);
  const g = write('gen-kw.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\ndoc_to_target: answer\ngeneration_kwargs:\n  do_sample: true\n');
  await assert.rejects(loadTask(g), /gen-kw\.yaml:5: field `generation_kwargs` : do_sample must be false/);
  const s = write('sampler.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\ndoc_to_target: answer\nfewshot_config:\n  sampler: balanced\n');
  await assert.rejects(loadTask(s), /field `fewshot_config` : sampler must be default or first_n/);
  const x = write('regex.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\ndoc_to_target: answer\nfilter_list:\n  - name: f\n    filter:\n      - function: regex\n        regex_pattern: "(?x) a"\n');
  await assert.rejects(loadTask(x), /regex\.yaml:5: field `filter_list` : regex "\(\?x\) a": inline flag \(\?x\) is not supported/);
  const r = write('required.yaml', 'task: x\ndataset_path: mc.jsonl\ndoc_to_text: question\n');
  await assert.rejects(loadTask(r), /required\.yaml: field `doc_to_target` is required/);
});

test('a document missing a field the target needs fails naming file:line and the field', async () => {
  write('holes.jsonl', '{"question": "a?", "answer": "x"}\n\n{"question": "b?"}\n');
  const p = write('holes.yaml', 'task: holes\ndataset_path: holes.jsonl\ndoc_to_text: "{{question}}"\ndoc_to_target: "{{answer}}"\n');
  const t = await loadTask(p);
  assert.equal(docTarget(t, t.evalDocs.docs[0], t.evalDocs), 'x');
  assert.throws(() => docTarget(t, t.evalDocs.docs[1], t.evalDocs), (e: Error) => e.message === `${join(dir, 'holes.jsonl')}:3: doc_to_target needs field \`answer\`, which this document lacks`);
  // a plain field name that some documents lack: the same message
  const q = write('holes2.yaml', 'task: holes2\ndataset_path: holes.jsonl\ndoc_to_text: question\ndoc_to_target: answer\n');
  const t2 = await loadTask(q);
  assert.throws(() => docTarget(t2, t2.evalDocs.docs[1], t2.evalDocs), /holes\.jsonl:3: doc_to_target needs field `answer`/);
  // a bad JSON line names its line
  write('broken.jsonl', '{"question": "a?", "answer": "x"}\n{"question": \n');
  await assert.rejects(loadTask(write('broken.yaml', 'task: b\ndataset_path: broken.jsonl\ndoc_to_text: question\ndoc_to_target: answer\n')), /broken\.jsonl:2: not valid JSON/);
});

test("lm-eval's dataset_path: json with data_files per split; JSON task files", async () => {
  write('train.jsonl', '{"question": "t1?", "answer": "a1"}\n{"question": "t2?", "answer": "a2"}\n');
  const p = write('split.json', JSON.stringify({
    task: 'split', dataset_path: 'json', dataset_kwargs: { data_files: { test: 'mc.jsonl', train: 'train.jsonl' } },
    test_split: 'test', fewshot_split: 'train', doc_to_text: '{{question}}', doc_to_target: 'answer', num_fewshot: 2, fewshot_config: { sampler: 'first_n' },
  }));
  const t = await loadTask(p);
  assert.equal(t.evalDocs.docs.length, 4);
  assert.equal(t.fewshotDocs?.docs.length, 2);
  assert.equal(contextText(buildContext(t, t.evalDocs.docs[0], 2, new Rng(0))), 't1? a1\n\nt2? a2\n\nopposite of hot?');
  const missing = write('nosplit.yaml', 'task: n\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: train.jsonl\ndoc_to_text: question\ndoc_to_target: answer\n');
  await assert.rejects(loadTask(missing), /no data file for split `test` in dataset_kwargs\.data_files \(it has train\)/);
});

test("Parquet data (lm-eval's dataset_path: parquet): INT64 labels index the choices", async () => {
  const buf = parquetWriteBuffer({ columnData: [
    { name: 'question', data: ['opposite of hot?', 'opposite of up?'], type: 'STRING' },
    { name: 'label', data: [0n, 1n], type: 'INT64' },
    { name: 'choices', data: [['cold', 'warm'], ['left', 'down']] },
  ] });
  writeFileSync(join(dir, 'mc.parquet'), new Uint8Array(buf));
  const p = write('pq.yaml', 'task: pq\ndataset_path: parquet\ndataset_kwargs:\n  data_files: mc.parquet\noutput_type: multiple_choice\ndoc_to_text: question\ndoc_to_choice: choices\ndoc_to_target: label\n');
  const t = await loadTask(p);
  assert.equal(t.evalDocs.docs.length, 2);
  const e = t.evalDocs.docs[1];
  assert.equal(e.where, `${join(dir, 'mc.parquet')} row 1`);
  assert.equal(docTarget(t, e, t.evalDocs), 1);
  assert.equal(targetText(t, e, t.evalDocs), 'down');
});
