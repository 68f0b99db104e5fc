// `nomoat finetune` on a tens-of-MB JSONL (assets/data/generic-chats.jsonl repeated, 100k+ conversations) with a tiny
// model: training starts without loading the file, the eval set is --eval-size conversations (not a fraction of the
// file), the data order is a function of the seed, and bad lines are reported with file:line both where records are
// checked while indexing (the first 16 MiB) and where they are checked as they are read (past it).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import { readAll } from '../src/data/conversation-source.js';
import { DEFAULT_CHECK_BYTES, indexJsonl } from '../src/data/record-index.js';
import { trainingSet } from '../src/data/training-set.js';
import { HfTokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/index.js';
import { trainingCache } from '../src/train/finetune.js';
import { EXACT_COUNT_LIMIT, StreamLoader } from '../src/train/stream-rows.js';
import { writeTinyHfModel } from './finetune-cli-model.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const CHATS = readFileSync(join(process.cwd(), 'assets', 'data', 'generic-chats.jsonl'), 'utf8').trimEnd().split('\n');
const COPIES = 80; // 80 × 1500 chats, about 21 MB: past the 16 MiB checked while indexing
let dir = '';
let model = '';
let big = '';
let lines: string[] = [];

function nomoat(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stderr: r.stderr };
}
const fast = (): string[] => ['-m', model, '--batch', '2', '-c', '48', '--progress', 'none', '-t', '1'];
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-ft-scale-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  lines = Array.from({ length: COPIES }, () => CHATS).flat();
  big = join(dir, 'big.jsonl');
  writeFileSync(big, lines.join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a tens-of-MB file: training starts, and the eval set is --eval-size conversations, not a fraction of the file', () => {
  const n = lines.length;
  assert.ok(readFileSync(big).length > DEFAULT_CHECK_BYTES, 'the file reaches past the records checked while indexing');
  const out = join(dir, 'sized');
  const r = nomoat(['finetune', big, '-o', out, '--steps', '1', '--eval-size', '37', ...fast()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`; ${n - 37} training and 37 eval conversations`));
  assert.match(r.stderr, /an epoch is about \d+ rows, estimated from 1000 conversations/);
  assert.match(r.stderr, /checked as training reads them/);
  assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, 1);
  assert.ok(existsSync(join(out, 'adapter.gguf')));
  // the default caps --eval-split's 5 % (6000 here) at 200, drawing the eval records by number
  const { index } = indexJsonl(big);
  const set = trainingSet(index);
  assert.equal(set.eval.length, 200);
  assert.equal(set.train.size, n - 200);
  index.close();
  // --eval-data is capped the same way
  const e = nomoat(['finetune', big, '-o', join(dir, 'eval-data'), '--steps', '1', '--eval-data', big, '--eval-size', '5', ...fast()]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, new RegExp(`; ${n} training and 5 eval conversations`));
  assert.equal(nomoat(['finetune', big, '-o', join(dir, 'x'), '--eval-size', '-1', ...fast()]).status, 2);
});

test('the data order is a function of the seed: the same seed, the same batches (and steps); another seed, other batches', () => {
  const tok = HfTokenizer.fromDirectory(model);
  const { index } = indexJsonl(big);
  const batches = (seed: number): number[][] => {
    const set = trainingSet(index, { seed });
    const loader = new StreamLoader(trainingCache(tok, set.train), { mode: 'packed', seqLen: 48, batchSize: 2, seed });
    return Array.from({ length: 4 }, () => Array.from(loader.next().ids));
  };
  assert.deepEqual(batches(7), batches(7));
  assert.notDeepEqual(batches(7), batches(8));
  index.close();
  // end to end: two runs with one seed take the same steps (losses equal to the bit)
  const losses = (name: string): number[] => {
    const out = join(dir, name);
    const r = nomoat(['finetune', big, '-o', out, '--steps', '2', '-s', '7', '--eval-size', '0', ...fast()]);
    assert.equal(r.status, 0, r.stderr);
    return readMetrics(join(out, 'metrics.jsonl')).map((m) => m.loss);
  };
  const a = losses('seed-a');
  assert.equal(a.length, 2);
  assert.deepEqual(losses('seed-b'), a);
});

test('bad lines are reported with file:line, in the checked first MiBs and past them, before training starts', () => {
  const n = lines.length;
  // line 10: checked while indexing
  const early = join(dir, 'bad-early.jsonl');
  writeFileSync(early, [...lines.slice(0, 9), '{not json', ...lines.slice(9)].join('\n') + '\n');
  const r = nomoat(['finetune', early, '-o', join(dir, 'bad-early'), '--steps', '1', ...fast()]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${esc(early)}:10: invalid JSON`));
  assert.ok(!existsSync(join(dir, 'bad-early', 'metrics.jsonl')), 'nothing trained');

  // past 16 MiB, at a record the row count reads (the sample's last: record ⌊(m−1)·n/m⌋ with no eval split)
  const at = Math.floor(((EXACT_COUNT_LIMIT - 1) * n) / EXACT_COUNT_LIMIT);
  const late = join(dir, 'bad-late.jsonl');
  writeFileSync(late, [...lines.slice(0, at), '{"messages": [{"role": "robot", "content": "x"}]}', ...lines.slice(at + 1)].join('\n') + '\n');
  const { index } = indexJsonl(late);
  assert.ok(index.checkedRecords < at, 'the bad record is past those checked while indexing');
  const bad = readAll(index)[at];
  assert.ok('error' in bad && bad.where === `${late}:${at + 1}`, JSON.stringify(bad));
  index.close();
  const l = nomoat(['finetune', late, '-o', join(dir, 'bad-late'), '--steps', '1', '--eval-size', '0', ...fast()]);
  assert.equal(l.status, 1);
  assert.match(l.stderr, new RegExp(`${esc(late)}:${at + 1}: .*role.*\\n\\(fix this record, or pass --skip-bad-lines`));
  assert.ok(!existsSync(join(dir, 'bad-late', 'metrics.jsonl')), 'nothing trained');
  const s = nomoat(['finetune', late, '-o', join(dir, 'bad-late-skip'), '--steps', '1', '--eval-size', '0', '--skip-bad-lines', ...fast()]);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stderr, new RegExp(`skipped 1 bad record\\(s\\) met while reading the data \\(first: ${esc(late)}:${at + 1}: `));
});
