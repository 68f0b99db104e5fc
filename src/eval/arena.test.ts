// Battle logs: bad lines are counted skips with file:line, the leaderboard's columns, DPO pairs from decisive
// battles only, and the SVG's dots and interval bars.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaderboard, leaderboardMarkdown, parseBattles, preferencePairs } from './arena.js';
import { ratingsSvg } from './chart.js';

const conv = (q: string, a: string): { role: string; content: string }[] => [{ role: 'user', content: q }, { role: 'assistant', content: a }];

test('parseBattles: malformed lines are skipped with their line numbers and reasons; blank lines ignored', () => {
  const text = [
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'model_a', conversation_a: conv('q', 'good'), conversation_b: conv('q', 'bad'), turn: 1, question_id: 7 }),
    '{not json',
    '',
    JSON.stringify({ model_a: 'x', winner: 'tie' }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'A' }),
    JSON.stringify([1, 2]),
    JSON.stringify({ model_a: 'x', model_b: 'x', winner: 'tie' }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'tie (bothbad)' }),
  ].join('\n');
  const log = parseBattles(text, 'votes.jsonl');
  assert.equal(log.battles.length, 2);
  assert.deepEqual(log.battles.map((b) => b.source), ['votes.jsonl:1', 'votes.jsonl:8']);
  assert.equal(log.battles[0].question_id, 7);
  assert.deepEqual(log.skips.map((s) => s.where), ['votes.jsonl:2', 'votes.jsonl:4', 'votes.jsonl:5', 'votes.jsonl:6', 'votes.jsonl:7']);
  assert.match(log.skips[0].reason, /not JSON/);
  assert.match(log.skips[1].reason, /^model_b: missing/);
  assert.match(log.skips[2].reason, /^winner: "A" is not one of "model_a", "model_b", "tie", "tie \(bothbad\)"/);
  assert.match(log.skips[3].reason, /not a JSON object/);
  assert.match(log.skips[4].reason, /same model/);
});

test('leaderboard: sorted by rating, ranks by interval overlap, win rates with half ties, Markdown columns', () => {
  const lines: string[] = [];
  const add = (a: string, b: string, w: string, n: number): void => {
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ model_a: a, model_b: b, winner: w }));
  };
  add('strong', 'weak', 'model_a', 30);
  add('strong', 'weak', 'model_b', 2);
  add('mid', 'weak', 'model_a', 6);
  add('mid', 'weak', 'tie', 2);
  add('mid', 'weak', 'model_b', 4);
  add('strong', 'mid', 'model_a', 8);
  add('strong', 'mid', 'model_b', 4);
  const { battles } = parseBattles(lines.join('\n'), 'f');
  const res = leaderboard(battles, { rounds: 100, seed: 3 });
  assert.deepEqual(res.rows.map((r) => r.model), ['strong', 'mid', 'weak']);
  assert.equal(res.rows[0].rank, 1);
  const mid = res.rows[1];
  assert.equal(mid.battles, 24);
  assert.equal(mid.winRate, (6 + 1 + 4) / 24);
  assert.ok(mid.ci.lo <= mid.rating && mid.rating <= mid.ci.hi);
  // deterministic for a seed
  assert.deepEqual(leaderboard(battles, { rounds: 100, seed: 3 }).rows, res.rows);
  const md = leaderboardMarkdown(res.rows).split('\n');
  assert.equal(md[0], '| rank | model | rating | 95% CI | Elo (online) | battles | win rate |');
  assert.match(md[2], /^\| 1 \| strong \| \d+ \| \+\d+ \/ -\d+ \| \d+ \| 44 \| \d+\.\d% \|$/);
});

test('preferencePairs: decisive battles with a shared prompt become {prompt, chosen, rejected}; the rest are counted', () => {
  const { battles } = parseBattles([
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'model_b', conversation_a: conv('q1', 'a1'), conversation_b: conv('q1', 'b1') }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'tie', conversation_a: conv('q2', 'a2'), conversation_b: conv('q2', 'b2') }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'model_a' }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'model_a', conversation_a: [...conv('q', 'a'), ...conv('q2', 'a2')], conversation_b: [...conv('q', 'b'), ...conv('q2', 'b2')] }),
    JSON.stringify({ model_a: 'x', model_b: 'y', winner: 'model_a', conversation_a: [{ role: 'system', content: 's' }, ...conv('q3', 'a3')], conversation_b: [{ role: 'system', content: 's' }, ...conv('q3', 'b3')] }),
  ].join('\n'), 'f');
  const { pairs, skipped } = preferencePairs(battles);
  assert.deepEqual(pairs, [
    { prompt: [{ role: 'user', content: 'q1' }], chosen: [{ role: 'assistant', content: 'b1' }], rejected: [{ role: 'assistant', content: 'a1' }] },
    { prompt: [{ role: 'system', content: 's' }, { role: 'user', content: 'q3' }], chosen: [{ role: 'assistant', content: 'a3' }], rejected: [{ role: 'assistant', content: 'b3' }] },
  ]);
  assert.deepEqual(skipped, { tie: 1, 'no conversations': 1, 'the two conversations differ before the final replies': 1 });
});

test('ratingsSvg: one dot and one interval bar per model, best first, names escaped', () => {
  const svg = ratingsSvg([
    { model: 'b<&>', rating: 950, ci: { lo: 900, hi: 1000 } },
    { model: 'a', rating: 1050, ci: { lo: 1000, hi: 1100 } },
  ]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<circle class="rating"/g)?.length, 2);
  assert.equal(svg.match(/<line class="ci"/g)?.length, 2);
  assert.ok(svg.indexOf('>a</text>') < svg.indexOf('>b&lt;&amp;&gt;</text>'), 'sorted best first, escaped');
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});

test("parseBattles: FastChat's clean_battle JSON array, places named file[index]", () => {
  const log = parseBattles(JSON.stringify([{ model_a: 'x', model_b: 'y', winner: 'tie' }, { model_a: 'x', winner: 'tie' }]), 'clean_battle.json');
  assert.deepEqual(log.battles.map((b) => b.source), ['clean_battle.json[0]']);
  assert.deepEqual(log.skips, [{ where: 'clean_battle.json[1]', reason: 'model_b: missing or not a non-empty string' }]);
  assert.throws(() => parseBattles('[{"model_a": ', 'bad.json'), /bad\.json: starts with "\[" but is not a JSON array/);
});
