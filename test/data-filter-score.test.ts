// `nomoat data filter` with the model-based score, run for real on the bundled base (assets/default-model): replies
// the base knows are kept over corrupted ones, an adapter trained on a seed by `nomoat finetune` changes what is kept
// (the score does use --score-lora), the --explain and --scores files, the rules still run first, and flag errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = process.cwd();
const BIN = join(ROOT, 'bin', 'nomoat.js');
const SKIP = existsSync(join(ROOT, 'assets', 'default-model', 'config.json')) ? {} : { skip: 'assets/default-model absent' };
const MODEL_FREE = ['--no-gopher-quality', '--no-gopher-repetition', '--no-fineweb'];
let dir = '';
const p = (name: string): string => join(dir, name);
const chat = (u: string, a: string): unknown => ({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });
const jsonl = (records: readonly unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const lines = (file: string): Record<string, unknown>[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

function nomoat(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000, cwd: dir });
  return { status: r.status, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-score-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

// good (the base's own kind of chat) then corrupted, alternating
const PAIRS: [string, string, string][] = [
  ['what color is the sky?', 'blue', 'kq zzv'],
  ['thank you', 'you are welcome!', 'welcome are you!'],
  ['repeat after me: the dog ran to the park.', 'the dog ran to the park.', 'xylophone quartz'],
  ['what is the first word? the cat was happy.', 'the', 'zebra'],
];

test('--keep-best keeps the replies the base knows; --explain and --scores say why', SKIP, () => {
  writeFileSync(p('mixed.jsonl'), jsonl(PAIRS.flatMap(([u, good, bad]) => [chat(u, good), chat(u, bad)])));
  const r = nomoat('data', 'filter', 'mixed.jsonl', '-o', 'kept.jsonl', ...MODEL_FREE, '--keep-best', '0.5', '--explain', 'removed.jsonl', '--scores', 'scores.jsonl', '-b', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /kept 4 of 8 records → kept\.jsonl; removed by model_score 4; 8 scored by loss, --keep-best kept ≤ \d/);
  assert.deepEqual(lines(p('kept.jsonl')), PAIRS.map(([u, good]) => chat(u, good)));
  const scores = lines(p('scores.jsonl'));
  assert.deepEqual(scores.map((s) => s.where), PAIRS.flatMap((_, k) => [`mixed.jsonl:${2 * k + 1}`, `mixed.jsonl:${2 * k + 2}`]));
  const removed = lines(p('removed.jsonl'));
  const bound = Math.max(...scores.filter((_, i) => i % 2 === 0).map((s) => s.score as number));
  assert.deepEqual(removed.map((e) => [e.where, e.rule, e.score_by, e.threshold]), PAIRS.map((_, k) => [`mixed.jsonl:${2 * k + 2}`, 'model_score', 'loss', bound]));
  removed.forEach((e, k) => {
    assert.equal(e.value, scores[2 * k + 1].score);
    assert.deepEqual(e.record, chat(PAIRS[k][0], PAIRS[k][2]));
  });
  // --max-score: the same records go, the bound is the flag's
  const m = nomoat('data', 'filter', 'mixed.jsonl', '-o', 'kept2.jsonl', ...MODEL_FREE, '--max-score', String(bound + 1e-9), '--explain', 'removed2.jsonl', '-q');
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(lines(p('kept2.jsonl')), lines(p('kept.jsonl')));
  assert.deepEqual(lines(p('removed2.jsonl')).map((e) => e.threshold), PAIRS.map(() => bound + 1e-9));
});

test('the model-free rules run first: what they remove is not scored and is explained by its rule', SKIP, () => {
  writeFileSync(p('rules.jsonl'), jsonl([chat('thank you', 'you are welcome!'), chat('hi', 'x'.repeat(300)), chat('what color is the sky?', 'kq zzv')]));
  const r = nomoat('data', 'filter', 'rules.jsonl', '-o', 'k.jsonl', ...MODEL_FREE, '--max-chars', '200', '--keep-best', '0.5', '--explain', 'ex.jsonl', '--scores', 's.jsonl');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(p('k.jsonl')), [chat('thank you', 'you are welcome!')]);
  assert.deepEqual(lines(p('ex.jsonl')).map((e) => [e.where, e.rule]), [['rules.jsonl:2', 'max_chars'], ['rules.jsonl:3', 'model_score']]);
  assert.deepEqual(lines(p('s.jsonl')).map((s) => s.where), ['rules.jsonl:1', 'rules.jsonl:3']);
});

test('--score-lora: an adapter trained on a seed by `nomoat finetune` makes the seed\'s reply the one kept', SKIP, () => {
  // a made-up fact: the base has no preference between the two replies; the seed teaches one
  const seed = Array.from({ length: 16 }, () => chat('what is the secret word?', 'banana'));
  writeFileSync(p('seed.jsonl'), jsonl(seed));
  const ft = nomoat('finetune', 'seed.jsonl', '-o', 'seed-adapter', '--steps', '30', '--lr', '5e-3', '-b', '4', '--eval-split', '0', '--progress', 'none');
  assert.equal(ft.status, 0, ft.stderr);
  writeFileSync(p('facts.jsonl'), jsonl([chat('what is the secret word?', 'garden'), chat('what is the secret word?', 'banana')]));
  const base = nomoat('data', 'filter', 'facts.jsonl', '-o', 'b.jsonl', ...MODEL_FREE, '--keep-best', '0.5', '--scores', 'bs.jsonl', '-q');
  assert.equal(base.status, 0, base.stderr);
  const tuned = nomoat('data', 'filter', 'facts.jsonl', '-o', 't.jsonl', ...MODEL_FREE, '--keep-best', '0.5', '--score-lora', 'seed-adapter', '--scores', 'ts.jsonl', '-q');
  assert.equal(tuned.status, 0, tuned.stderr);
  assert.deepEqual(lines(p('t.jsonl')), [chat('what is the secret word?', 'banana')]);
  const [bs, ts] = [lines(p('bs.jsonl')), lines(p('ts.jsonl'))].map((l) => l.map((s) => s.score as number));
  assert.ok(ts[1] < bs[1] / 4, `the adapter makes the seed's reply likely: ${ts[1]} vs ${bs[1]} under the base`);
});

test('--score-groups: the share is kept within each group of similar prompts, not over the whole file', SKIP, () => {
  // two kinds of prompt (one prompt each: two points in feature space, two groups whatever k-means' start): the
  // base's own kind of chat, and a sum it never learned (every reply scored worse, right or not)
  const easy = ['you are welcome!', 'you are welcome.', 'welcome!', 'no problem!', 'kq zzv', 'welcome are you!', 'zebra', 'the'].map((a) => chat('thank you', a));
  const sums = ['4', '5', 'four', '22', 'nine hundred', 'xylophone quartz', '2', 'blue'].map((a) => chat('2 + 2 =', a));
  writeFileSync(p('two-kinds.jsonl'), jsonl([...easy, ...sums]));
  const isSum = (r: unknown): boolean => JSON.stringify(r).includes(' + ');
  const run = (out: string, more: string[]): Record<string, unknown>[] => {
    const r = nomoat('data', 'filter', 'two-kinds.jsonl', '-o', out, ...MODEL_FREE, '--keep-best', '0.5', '--scores', `${out}.scores`, '--explain', `${out}.removed`, ...more, '-q');
    assert.equal(r.status, 0, r.stderr);
    return lines(p(out));
  };
  const scores = (out: string): number[] => lines(p(`${out}.scores`)).map((x) => x.score as number);
  const global = run('global.jsonl', []);
  const s = scores('global.jsonl');
  assert.ok(Math.max(...s.slice(0, 8)) < Math.min(...s.slice(8)) || global.filter(isSum).length < 4, 'ranked over the file, the sums lose their share');
  const grouped = run('grouped.jsonl', ['--score-groups', '2']);
  assert.deepEqual(scores('grouped.jsonl'), s);
  // in each group, its best half by score (ties by file order)
  const best = (from: number): unknown[] => s.slice(from, from + 8).map((v, i) => [v, from + i]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).slice(0, 4).map(([, i]) => i).sort((x, y) => x - y).map((i) => [...easy, ...sums][i]);
  assert.deepEqual(grouped, [...best(0), ...best(8)]);
  // a removed record's threshold is the worst score its own group kept
  const bound = (from: number): number => Math.max(...s.slice(from, from + 8).sort((x, y) => x - y).slice(0, 4));
  for (const e of lines(p('grouped.jsonl.removed'))) assert.equal(e.threshold, bound(isSum(e.record) ? 8 : 0));
});

test('flag and input errors name the flag or the record; nothing is written', SKIP, () => {
  writeFileSync(p('in.jsonl'), jsonl([chat('thank you', 'you are welcome!')]));
  writeFileSync(p('text.jsonl'), jsonl([{ text: 'the sun was warm.' }]));
  const cases: [string[], number, RegExp][] = [
    [['--score-lora', 'a'], 2, /nothing uses the score: add --keep-best FRACTION, --max-score X or --scores FILE/],
    [['--keep-best', '0'], 2, /--keep-best must be a share in \(0, 1\], got 0/],
    [['--keep-best', '0.5', '--score-by', 'perplexity'], 2, /--score-by must be loss\|ifd\|margin, got "perplexity"/],
    [['--keep-best', '0.5', '-b', '0'], 2, /--batch-size must be positive, got 0/],
    [['--max-score', '3', '--score-groups', '4'], 2, /--score-groups sets the groups --keep-best ranks within: add --keep-best FRACTION/],
    [['--keep-best', '0.5', '--score-groups', '0'], 2, /--score-groups must be an integer in \[1, 65535\], got 0/],
    [['--keep-best', '0.5', '--score-lora', 'x,nothere'], 1, /--score-lora x: not found \(a PEFT folder/],
    [['--keep-best', '0.5', '--score-model', 'nothere.gguf'], 1, /model not found: nothere\.gguf/],
  ];
  for (const [flags, status, msg] of cases) {
    const r = nomoat('data', 'filter', 'in.jsonl', '-o', 'out.jsonl', ...flags);
    assert.equal(r.status, status, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  const ifd = nomoat('data', 'filter', 'text.jsonl', '-o', 'out.jsonl', '--score-by', 'ifd', '--keep-best', '0.5', ...MODEL_FREE);
  assert.equal(ifd.status, 1);
  assert.match(ifd.stderr, /text\.jsonl:1: \(record\): --score-by ifd needs chats/);
  assert.equal(existsSync(p('out.jsonl')), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});
