// `nomoat eval arena` run for real on a small battle log: the Markdown table, the JSON report (Bradley–Terry
// against the closed form), the SVG, DPO pairs, counted skips with file:line, --strict, and the web arena's votes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { battleRecord } from '../src/serve/arena.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
let log = '';

const nomoat = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

const conv = (q: string, a: string): { role: string; content: string }[] => [{ role: 'user', content: q }, { role: 'assistant', content: a }];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-arena-'));
  log = join(dir, 'votes.jsonl');
  // big beats small 4 times, ties once and loses once (tie = half a win: 4.5 of 6), and one malformed line (line 2)
  const lines = [
    JSON.stringify({ question_id: 'q1', model_a: 'big', model_b: 'small', winner: 'model_a', judge: 'me', conversation_a: conv('2+2?', '4'), conversation_b: conv('2+2?', '5'), turn: 1, tstamp: 1 }),
    JSON.stringify({ model_a: 'big', model_b: 'small', winner: 'big' }),
    JSON.stringify({ model_a: 'small', model_b: 'big', winner: 'model_b' }),
    JSON.stringify({ model_a: 'big', model_b: 'small', winner: 'model_b', conversation_a: conv('hi', 'hey'), conversation_b: conv('hi', 'hello!') }),
    JSON.stringify({ model_a: 'small', model_b: 'big', winner: 'model_b' }),
    JSON.stringify({ model_a: 'small', model_b: 'big', winner: 'tie', conversation_a: conv('x', 'a'), conversation_b: conv('x', 'b') }),
    JSON.stringify({ model_a: 'small', model_b: 'big', winner: 'model_b' }),
  ];
  writeFileSync(log, lines.join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('eval arena: table, JSON, SVG and pairs from a log; a malformed line is a counted skip naming file:line', () => {
  const [svg, json, pairs] = ['r.svg', 'r.json', 'p.jsonl'].map((n) => join(dir, n));
  const r = nomoat(['eval', 'arena', log, '--svg', svg, '--json', json, '--pairs', pairs, '--rounds', '100', '--seed', '5']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], '| rank | model | rating | 95% CI | Elo (online) | battles | win rate |');
  // big: 4 wins, 1 tie, 1 loss of 6 → win rate 75 %
  assert.match(lines[2], /^\| 1 \| big \| \d+ \| \+\d+ \/ -\d+ \| \d+ \| 6 \| 75\.0% \|$/);
  assert.match(lines[3], /^\| \d \| small \| \d+ \| .* \| 6 \| 25\.0% \|$/);
  assert.match(r.stdout, /note: 6 battles, 2 models; the mean rating is 1000; 100 bootstrap rounds \(seed 5\); Elo K=4/);
  assert.match(r.stderr, new RegExp(`skipped 1 malformed line\\(s\\):\\n  ${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: winner: "big" is not one of`));

  const rep = JSON.parse(readFileSync(json, 'utf8')) as { models: { model: string; rating: number; ci_lo: number; ci_hi: number; battles: number }[]; skipped: { where: string }[]; anchor: unknown };
  const [big, small] = rep.models;
  // 4.5 of 6 (a tie is half a win each way) → 400·log10(4.5 / 1.5) apart, around a mean of 1000
  assert.ok(Math.abs(big.rating - small.rating - 400 * Math.log10(3)) < 1e-6, `${big.rating} - ${small.rating}`);
  assert.ok(Math.abs((big.rating + small.rating) / 2 - 1000) < 1e-9);
  assert.ok(big.ci_lo <= big.rating && big.rating <= big.ci_hi);
  assert.deepEqual(rep.anchor, { mean: 1000 });
  assert.equal(rep.skipped[0].where, `${log}:2`);

  const picture = readFileSync(svg, 'utf8');
  assert.match(picture, /^<svg /);
  assert.equal(picture.match(/<circle class="rating"/g)?.length, 2);
  assert.ok(picture.indexOf('>big</text>') < picture.indexOf('>small</text>'));

  const prefs = readFileSync(pairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual(prefs, [
    { prompt: [{ role: 'user', content: '2+2?' }], chosen: [{ role: 'assistant', content: '4' }], rejected: [{ role: 'assistant', content: '5' }] },
    { prompt: [{ role: 'user', content: 'hi' }], chosen: [{ role: 'assistant', content: 'hello!' }], rejected: [{ role: 'assistant', content: 'hey' }] },
  ]);
  assert.match(r.stderr, /2 preference pair\(s\) → .*p\.jsonl \(skipped: 3 no conversations, 1 tie\)/);

  // the same seed gives the same intervals
  const again = nomoat(['eval', 'arena', log, '--rounds', '100', '--seed', '5']);
  assert.equal(again.stdout, r.stdout);
});

test('eval arena: --strict turns skips into an error; --anchor pins a model; no battles is an error', () => {
  const strict = nomoat(['eval', 'arena', log, '--strict']);
  assert.equal(strict.status, 1);
  assert.match(strict.stderr, /1 malformed battle line\(s\):\n .*votes\.jsonl:2: winner/);
  const anchored = nomoat(['eval', 'arena', log, '--anchor', 'small', '--rounds', '20']);
  assert.equal(anchored.status, 0, anchored.stderr);
  assert.match(anchored.stdout, /\| small \| 1000 \|/);
  assert.match(anchored.stdout, /\| big \| 1191 \|/); // 1000 + 400·log10(3) = 1190.85
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '\n');
  const none = nomoat(['eval', 'arena', empty]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no battles in/);
  const missing = nomoat(['eval', 'arena', join(dir, 'nope.jsonl')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read the battle log .*nope\.jsonl/);
  const help = nomoat(['eval', 'arena', '--help']);
  assert.match(help.stdout, /Usage: nomoat eval arena FILE\.\.\. /);
  assert.match(help.stdout, /Examples:\n {2}nomoat eval arena /);
});

test("eval arena reads the web arena's votes file as written (battleRecord), pairs included", () => {
  const votes = join(dir, 'web-votes.jsonl');
  const base = { model: 'tiny', adapters: [] };
  const tuned = { model: 'tiny', adapters: [{ name: 'math', scale: 0.5 }] };
  const rows = [
    battleRecord({ prompt: '12+30=', config_a: base, config_b: tuned, reply_a: '40', reply_b: '42', vote: 'b', judge: 'u1' }, 'v1', 1_000),
    battleRecord({ prompt: 'hi', config_a: tuned, config_b: base, reply_a: 'hello', reply_b: '...', vote: 'both_bad' }, 'v2', 2_000),
    battleRecord({ prompt: '1+1=', config_a: tuned, config_b: base, reply_a: '2', reply_b: '3', vote: 'a' }, 'v3', 3_000),
    battleRecord({ prompt: '2+2=', config_a: base, config_b: tuned, reply_a: '4', reply_b: '5', vote: 'a' }, 'v4', 4_000),
  ];
  writeFileSync(votes, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const pairs = join(dir, 'web-pairs.jsonl');
  const r = nomoat(['eval', 'arena', votes, '--rounds', '20', '--pairs', pairs, '--strict']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| tiny\+math@0\.5 \| \d+ \| .* \| 4 \| 62\.5% \|/); // 2 wins, 1 tie (both bad), 1 loss
  const prefs = readFileSync(pairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { chosen: { content: string }[] });
  assert.deepEqual(prefs.map((p) => p.chosen[0].content), ['42', '2', '4']);
});
