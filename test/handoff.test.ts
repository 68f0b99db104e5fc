// nomoat finetune --handoff DIR, run for real on a tiny model folder: train.py is valid Python; the dataset reads back
// through src/data's loader and `nomoat data validate`; handoff.json carries the flags' hyperparameters; train.py's
// own row building (run by python3, no torch needed) gives nomoat's rows for the same ids and masks; the GPU check
// script compiles.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { loadConversations } from '../src/data/index.js';
import { finetuneRows } from '../src/train/index.js';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let model = '';
let data = '';
let hand = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function python(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('python3', args, { encoding: 'utf8', timeout: 60_000, ...(input !== undefined ? { input } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FLAGS = ['--steps', '7', '--lr', '2e-4', '--schedule', 'linear', '--warmup', '2', '-b', '3', '--grad-accum', '2', '--weight-decay', '0.01', '-c', '40', '-s', '5', '-r', '4', '--alpha', '12', '--dropout', '0.1', '--target-modules', 'q_proj,k_proj,down_proj', '--eval-split', '0.25', '-t', '1'];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-handoff-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  data = join(dir, 'data.jsonl');
  writeFileSync(data, skillJsonl(skillExamples(24)));
  hand = join(dir, 'hand');
  const r = nomoat(['finetune', data, '-m', model, '--handoff', hand, ...FLAGS]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /accelerate launch --config_file accelerate\/single_gpu\.yaml train\.py/);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the hand-off folder: train.py compiles, accelerate configs for 1 GPU, DDP, ZeRO-2/3 and FSDP, a README with the launch line, no training done', () => {
  const c = python(['-m', 'py_compile', join(hand, 'train.py')]);
  assert.equal(c.status, 0, c.stderr);
  const yaml = (n: string): string => readFileSync(join(hand, 'accelerate', n), 'utf8');
  assert.match(yaml('single_gpu.yaml'), /^distributed_type: 'NO'$/m);
  assert.match(yaml('multi_gpu.yaml'), /^distributed_type: MULTI_GPU$/m);
  assert.match(yaml('deepspeed_zero2.yaml'), /zero_stage: 2/);
  assert.match(yaml('deepspeed_zero3.yaml'), /zero_stage: 3/);
  assert.match(yaml('fsdp.yaml'), /fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer/);
  assert.match(readFileSync(join(hand, 'README.md'), 'utf8'), /accelerate launch --config_file accelerate\/deepspeed_zero3\.yaml/);
  assert.ok(!existsSync(join(hand, 'output')), 'nothing was trained here');
  assert.ok(!existsSync(join(hand, 'base')), 'an HF base is referenced, not copied');
});

test('handoff.json carries the flags: hyperparameters, LoRA settings, masking, the base and its fingerprint', () => {
  const h = JSON.parse(readFileSync(join(hand, 'handoff.json'), 'utf8')) as Record<string, Record<string, unknown>> & { base_model: string };
  assert.equal(h.base_model, model);
  assert.deepEqual(h.lora, { r: 4, lora_alpha: 12, lora_dropout: 0.1, use_rslora: false, target_modules: ['q_proj', 'k_proj', 'down_proj'], layers_to_transform: null });
  const t = h.training;
  assert.deepEqual(
    [t.steps, t.lr, t.schedule, t.warmup_steps, t.batch_size, t.grad_accum, t.weight_decay, t.max_grad_norm, t.seq_len, t.packing, t.seed],
    [7, 2e-4, 'linear', 2, 3, 2, 0.01, 1, 40, 'packed', 5],
  );
  assert.equal(t.loss, 'assistant tokens only');
  assert.equal((h.base_fingerprint as { arch: string }).arch, 'llama');
  assert.equal(readFileSync(join(hand, 'chat_template.jinja'), 'utf8'), (JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8')) as { chat_template: string }).chat_template);
});

test('the dataset round-trips: src/data reads the OpenAI messages back, nomoat data validate passes, the split is nomoat\'s', async () => {
  const train = await loadConversations(join(hand, 'data/train.jsonl'));
  const ev = await loadConversations(join(hand, 'data/eval.jsonl'));
  assert.equal(train.format, 'openai');
  assert.equal(train.conversations.length + ev.conversations.length, 24);
  assert.equal(ev.conversations.length, 6, '--eval-split 0.25 of 24');
  const orig = await loadConversations(data);
  const key = (c: { messages: unknown[] }): string => JSON.stringify(c.messages);
  const all = new Set(orig.conversations.map(key));
  for (const c of [...train.conversations, ...ev.conversations]) assert.ok(all.has(key(c)), 'every written conversation is one of the data\'s, unchanged');
  const v = nomoat(['data', 'validate', join(hand, 'data/train.jsonl'), join(hand, 'data/eval.jsonl')]);
  assert.equal(v.status, 0, v.stdout + v.stderr);
});

test('train.py builds nomoat\'s rows (packed and padded) from the same ids and masks, and its token check refuses a mismatch', () => {
  const check = JSON.parse(readFileSync(join(hand, 'token-check.json'), 'utf8')) as { examples: { ids: number[]; mask: number[] }[] };
  assert.ok(check.examples.length > 0 && check.examples.every((e) => e.mask.includes(1) && e.mask.includes(0)), 'masks mark assistant tokens only');
  const code = `
import json, sys
sys.path.insert(0, ${JSON.stringify(hand)})
import train
ex = [(e["ids"], e["mask"]) for e in json.load(sys.stdin)["examples"]]
print(json.dumps({"packed": train.packed_rows(ex, 40, 0), "padded": train.padded_rows(ex, 40)}))
`;
  const r = python(['-c', code], JSON.stringify(check));
  assert.equal(r.status, 0, r.stderr);
  const py = JSON.parse(r.stdout) as Record<'packed' | 'padded', { input_ids: number[]; labels: number[] }[]>;
  const examples = check.examples.map((e) => ({ ids: e.ids, mask: Uint8Array.from(e.mask) }));
  for (const mode of ['packed', 'padded'] as const) {
    const ours = finetuneRows(examples, mode, 40, 0).rows;
    const theirs = py[mode].filter((row) => row.labels.some((l) => l !== -100));
    assert.equal(theirs.length, ours.length, `${mode}: row count`);
    ours.forEach((row, i) => {
      assert.deepEqual(theirs[i].input_ids, Array.from(row.ids), `${mode} row ${i}: ids`);
      assert.deepEqual(theirs[i].labels, Array.from(row.labels), `${mode} row ${i}: labels`);
    });
  }
  // the token check compares ids and masks and exits naming the conversation
  const bad = `
import sys
sys.path.insert(0, ${JSON.stringify(hand)})
import train, json, pathlib
class Fake:
    def __call__(self, messages):
        return [1, 2, 3], [0, 1, 1]
train.check_tokens(Fake(), pathlib.Path(${JSON.stringify(join(hand, 'token-check.json'))}))
`;
  const b = python(['-c', bad]);
  assert.notEqual(b.status, 0);
  assert.match(b.stderr, /token check: conversation 0 tokenizes differently from nomoat/);
});

test('--handoff is refused with --method dpo; an existing folder is not overwritten; the GPU check script compiles', () => {
  const r = nomoat(['finetune', data, '-m', model, '--handoff', join(dir, 'h2'), '--method', 'dpo', '-t', '1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--handoff writes an SFT run/);
  const again = nomoat(['finetune', data, '-m', model, '--handoff', hand, '-t', '1', '--steps', '1']);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /exists/);
  // compiled into the temp folder: no __pycache__ left in the repository
  const c = python(['-c', 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)', join(process.cwd(), 'scripts', 'gpu-handoff-check.py'), join(dir, 'check.pyc')]);
  assert.equal(c.status, 0, c.stderr);
});
