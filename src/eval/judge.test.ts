// The judging flow on the real MT-bench files: the prompt chosen per question and turn, its fields filled as
// FastChat fills them, records in gen_judgment.py's shapes, counts of unparseable and failed verdicts, the two-game
// rule end to end, result tables and battles. The judge here is a scripted ChatBackend: the verdicts must be
// chosen to test the bookkeeping (the real judges run in test/eval-judge.test.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChatMessage } from '../tokenizer/chat.js';
import { MatchError, type ChatBackend } from './judge-chat.js';
import { formatTemplate, readAnswers, readJudgePrompts, readQuestions, type ModelAnswer } from './judge-data.js';
import { comparisonPairs, generateAnswers, pooled, judgeBattles, judgePairwise, judgeSingle, pairResults, pairTable, singleResults, singleTable, type AnswerSets } from './judge.js';

const DATA = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..', 'shared', 'data', 'eval');
const prompts = readJudgePrompts(join(DATA, 'mt_bench-judge_prompts.jsonl'));
const questions = readQuestions(join(DATA, 'mt_bench-question.jsonl'));

/** A chat model that answers by a rule over the last message it is shown, and records what it saw. */
class ScriptedJudge implements ChatBackend {
  readonly name = 'scripted';
  seen: ChatMessage[][] = [];
  constructor(private readonly reply: (user: string, system: string) => string) {}
  complete(messages: readonly ChatMessage[]): Promise<string> {
    this.seen.push([...messages]);
    const r = this.reply(messages[messages.length - 1]?.content ?? '', messages[0]?.content ?? '');
    return r === 'THROW' ? Promise.reject(new MatchError('too long')) : Promise.resolve(r);
  }
}

const answer = (model: string, qid: number, turns: string[]): ModelAnswer => ({ question_id: qid, answer_id: `${model}-${qid}`, model_id: model, choices: [{ index: 0, turns }], tstamp: 0 });
function sets(...all: ModelAnswer[]): AnswerSets {
  const out: AnswerSets = new Map();
  for (const a of all) {
    if (!out.has(a.model_id)) out.set(a.model_id, new Map());
    out.get(a.model_id)?.set(String(a.question_id), a);
  }
  return out;
}

test('the MT-bench files load: 80 questions, 8 judge prompts; the template fills like str.format', () => {
  assert.equal(questions.length, 80);
  assert.equal(prompts.size, 8);
  assert.equal(formatTemplate('{a} {{x}} {b_1}', { a: '1', b_1: '2' }), '1 {x} 2');
  assert.throws(() => formatTemplate('{missing}', {}), /no value for \{missing\}/);
});

test('bad question and answer lines fail with file:line: field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-judge-'));
  const q = join(dir, 'q.jsonl');
  writeFileSync(q, '{"question_id": 1, "turns": ["hi"]}\n\n{"question_id": 2, "turns": "hi"}\n');
  assert.throws(() => readQuestions(q), new RegExp(`${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: turns: must be a non-empty array of strings`));
  writeFileSync(q, '{"question_id": 1, "turns": ["hi"]}\n{"question_id": 1, "turns": ["again"]}\n');
  assert.throws(() => readQuestions(q), /q\.jsonl:2: question_id: 1 appears twice/);
  const a = join(dir, 'm.jsonl');
  writeFileSync(a, '{"question_id": 1, "choices": [{"index": 0, "turns": ["x"]}]}\n{"question_id": 2, "choices": [{"turns": [1]}]}\n');
  assert.throws(() => readAnswers(a), /m\.jsonl:2: choices\[0\]\.turns: must be an array of strings/);
  writeFileSync(a, '{"question_id": 1, "choices": [{"index": 0, "turns": ["x"]}]}\n');
  assert.deepEqual([...readAnswers(a).keys()], ['m']); // no model_id: the file's name, as FastChat names them
});

test('single grading: prompts by category and turn, references filled, unparseable and failed verdicts counted', async () => {
  const q81 = questions.find((q) => q.question_id === 81); // writing, two turns
  const q111 = questions.find((q) => q.question_id === 111); // math, with a reference
  assert.ok(q81 !== undefined && q111 !== undefined && q111.reference !== undefined);
  const judge = new ScriptedJudge((user) => (user.includes('Hawaii') ? (user.includes('### User') ? 'THROW' : 'Good. Rating: [[8]]') : 'I cannot decide.'));
  const answers = sets(answer('m', 81, ['aloha', 'A rewrite']), answer('m', 111, ['12', 'more']), answer('m', 999, ['stray']));
  const { judgments, stats } = await judgeSingle([q81, q111], answers, { judge, prompts, now: () => 5 });
  assert.deepEqual(judgments.map((j) => [j.question_id, j.turn, j.judge[1], j.score]), [
    [81, 1, 'single-v1', 8],
    [111, 1, 'single-math-v1', -1],
    [81, 2, 'single-v1-multi-turn', -1],
    [111, 2, 'single-math-v1-multi-turn', -1],
  ]);
  assert.deepEqual({ calls: stats.calls, unparseable: stats.unparseable, errors: stats.errors, missing: stats.missing }, { calls: 4, unparseable: 2, errors: 1, missing: 0 });
  assert.match(judgments[2].judgment, /^\$ERROR\$ too long/);
  // the fields went where FastChat puts them: the reference answer in the math prompt, both turns in multi-turn
  assert.ok(judgments[1].user_prompt.includes(q111.reference[0]) && judgments[1].user_prompt.includes('[The Start of Assistant\'s Answer]\n12\n'));
  assert.ok(judgments[3].user_prompt.includes(q111.reference[1]) && judgments[3].user_prompt.includes('more'));
  assert.equal(judge.seen[0][0].content, prompts.get('single-v1')?.system_prompt);
  assert.deepEqual(Object.keys(judgments[0]), ['question_id', 'model', 'judge', 'user_prompt', 'judgment', 'score', 'turn', 'tstamp']);
  const rows = singleResults(judgments, [q81, q111]);
  assert.equal(rows[0].score, 8);
  assert.equal(rows[0].unparseable, 3);
  assert.match(singleTable(rows), /\| m \| 8\.00 \| 8\.00 \| — \| 4 \| 3 \|/);
  // a model without the answer: a counted miss, not a crash
  const miss = await judgeSingle([q81], sets(answer('m', 111, ['x'])), { judge, prompts });
  assert.equal(miss.stats.missing, 2);
});

test('pairwise: both orders; agreeing games stand, disagreeing ones are inconsistent (a tie in battles)', async () => {
  const q = questions.filter((x) => x.turns.length === 2).slice(0, 3);
  // a judge that prefers the answer "good" wherever it is shown on question 1; always says [[A]] on question 2
  // (position bias); and writes no verdict on question 3
  const judge = new ScriptedJudge((user) => {
    if (user.includes(q[0].turns[0])) return /Assistant A's Answer\]\ngood/.test(user) || /### Assistant A:\ngood/.test(user) ? '[[A]]' : '[[B]]';
    if (user.includes(q[1].turns[0])) return 'Verdict: [[A]]';
    return 'Both are fine.';
  });
  const answers = sets(
    ...q.map((x) => answer('x', x.question_id as number, ['good', 'good'])),
    ...q.map((x) => answer('y', x.question_id as number, ['bad', 'bad'])),
  );
  const pairs = comparisonPairs(['x', 'y'], 'y');
  assert.deepEqual(pairs, [['x', 'y']]);
  const { judgments, stats } = await judgePairwise(q, answers, pairs, { judge, prompts, now: () => 1 });
  assert.equal(stats.calls, 12);
  assert.equal(stats.unparseable, 4);
  const t1 = judgments.filter((j) => j.turn === 1);
  assert.deepEqual(t1.map((j) => [j.g1_winner, j.g2_winner]), [['model_1', 'model_1'], ['model_1', 'model_2'], ['error', 'error']]);
  assert.equal(t1[0].judge[1], q[0].reference !== undefined && ['math', 'reasoning', 'coding'].includes(q[0].category) ? 'pair-math-v1' : 'pair-v2');
  assert.ok(t1[0].g2_user_prompt.indexOf('bad') < t1[0].g2_user_prompt.indexOf('good'), 'game 2 shows model_2 first');
  const rows = pairResults(judgments);
  const x = rows.find((r) => r.model === 'x');
  assert.deepEqual(x && [x.win, x.loss, x.tie, x.inconsistent, x.error], [2, 0, 0, 2, 2]);
  assert.equal(x?.adjustedWinRate, 0.75);
  assert.match(pairTable(rows), /\| x \| 2 \| 0 \| 0 \| 2 \| 2 \| 0\.500 \| 0\.750 \|/);
  const { battles, dropped } = judgeBattles(judgments, q, answers);
  assert.equal(dropped, 2);
  assert.deepEqual(battles.map((b) => [b.winner, b.turn]), [['model_a', 1], ['tie', 1], ['model_a', 2], ['tie', 2]]);
  assert.deepEqual(battles[0].conversation_a, [{ role: 'user', content: q[0].turns[0] }, { role: 'assistant', content: 'good' }]);
  assert.equal(battles[2].conversation_b.length, 4);
  assert.equal(battles[0].judge, 'scripted/' + t1[0].judge[1]);
});

test('generateAnswers: FastChat model_answer records, turn by turn in one conversation; failed turns counted', async () => {
  const backend = new ScriptedJudge((user) => (user === 'second' ? 'THROW' : `re: ${user}`));
  const { answers, errors } = await generateAnswers([{ question_id: 1, category: 'x', turns: ['first', 'second'] }], backend, 'tiny', { now: () => 3 });
  assert.equal(errors, 1);
  assert.deepEqual(answers[0].choices, [{ index: 0, turns: ['re: first', '$ERROR$'] }]);
  assert.deepEqual(Object.keys(answers[0]), ['question_id', 'answer_id', 'model_id', 'choices', 'tstamp']);
  assert.equal(answers[0].model_id, 'tiny');
});

test('pooled: at most n in flight, results in item order, the first failure thrown', async () => {
  let inFlight = 0;
  let most = 0;
  const out = await pooled([30, 5, 20, 1, 10], 2, async (ms) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, ms));
    inFlight--;
    return ms * 2;
  });
  assert.deepEqual(out, [60, 10, 40, 2, 20]);
  assert.equal(most, 2);
  let started = 0;
  await assert.rejects(pooled([1, 2, 3, 4], 1, (x) => {
    started++;
    return x === 2 ? Promise.reject(new Error('boom')) : Promise.resolve(x);
  }), /boom/);
  assert.equal(started, 2, 'nothing starts after a failure');
});

test('pairwise with parallel judging gives the same records in the same order', async () => {
  const q = questions.filter((x) => x.turns.length === 2).slice(0, 4);
  const judge = new ScriptedJudge((user) => (user.length % 3 === 0 ? '[[A]]' : user.length % 3 === 1 ? '[[B]]' : '[[C]]'));
  const answers = sets(...q.map((x) => answer('x', x.question_id as number, ['one', 'two'])), ...q.map((x) => answer('y', x.question_id as number, ['three', 'four!'])));
  const strip = (r: Awaited<ReturnType<typeof judgePairwise>>): unknown => r.judgments.map((j) => [j.question_id, j.turn, j.g1_winner, j.g2_winner]);
  const one = await judgePairwise(q, answers, [['x', 'y']], { judge, prompts, now: () => 1 });
  const four = await judgePairwise(q, answers, [['x', 'y']], { judge, prompts, now: () => 1, parallel: 4 });
  assert.deepEqual(strip(four), strip(one));
  assert.equal(four.stats.calls, 16);
});
