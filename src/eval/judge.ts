// LLM-as-judge on MT-bench, following FastChat's llm_judge (gen_model_answer, gen_judgment, show_result): answers
// of the models under test, single-answer grading (1–10) and pairwise comparison in both orders, judgments in
// gen_judgment.py's record shapes, result tables, and pairwise verdicts as a battle log for `eval arena`.

import { randomUUID } from 'node:crypto';
import type { ChatMessage } from '../tokenizer/chat.js';
import type { ArenaMessage } from './arena.js';
import { MatchError, type ChatBackend } from './judge-chat.js';
import { ERROR_OUTPUT, NEED_REF_CATS, formatTemplate, type JudgePrompt, type ModelAnswer, type Question } from './judge-data.js';
import { combineGames, gameWinner, parsePairVerdict, parseRating, type PairOutcome, type PairWinner } from './judge-parse.js';

/** gen_judgment.py's single-grading record. */
export interface SingleJudgment {
  question_id: number | string;
  model: string;
  /** [judge model, prompt name] */
  judge: [string, string];
  user_prompt: string;
  judgment: string;
  /** 1–10, or -1 when the judgment holds no rating (or the call failed) */
  score: number;
  turn: number;
  tstamp: number;
}

/** gen_judgment.py's pairwise record: game 1 shows model_1 as A, game 2 shows model_2 as A. */
export interface PairJudgment {
  question_id: number | string;
  model_1: string;
  model_2: string;
  g1_winner: PairWinner;
  g2_winner: PairWinner;
  judge: [string, string];
  g1_user_prompt: string;
  g1_judgment: string;
  g2_user_prompt: string;
  g2_judgment: string;
  turn: number;
  tstamp: number;
}

/** Answers by model id, then by String(question_id). */
export type AnswerSets = Map<string, Map<string, ModelAnswer>>;

export interface JudgeOptions {
  judge: ChatBackend;
  prompts: ReadonlyMap<string, JudgePrompt>;
  /** most tokens of a judgment (FastChat: 2048) */
  maxTokens?: number;
  /** reference answers by String(question_id), where the question file has none (FastChat's reference_answer/gpt-4.jsonl) */
  references?: ReadonlyMap<string, string[]>;
  /** called after each judge call */
  onProgress?: (done: number, total: number) => void;
  /** matches judged at once (default 1): an endpoint serves several; a model run here computes one at a time anyway */
  parallel?: number;
  /** Unix seconds (default: now) */
  now?: () => number;
}

/** What a run counted besides its judgments. */
export interface JudgeStats {
  /** judge calls made */
  calls: number;
  /** judgments with no verdict in them */
  unparseable: number;
  /** calls that failed (recorded as "$ERROR$") */
  errors: number;
  /** matches not played: an answer missing, or too few turns */
  missing: number;
  /** matches of a reference category without a reference answer (judged with the general prompt) */
  noReference: number;
  /** the first few failures, for the report */
  errorSamples: string[];
}

const nowSeconds = (): number => Date.now() / 1000;
const key = (q: Question): string => String(q.question_id);

function newStats(): JudgeStats {
  return { calls: 0, unparseable: 0, errors: 0, missing: 0, noReference: 0, errorSamples: [] };
}

/** The judge prompt for a question and turn (make_judge_single / make_judge_pairwise), with its reference. */
export function pickPrompt(kind: 'single' | 'pairwise', q: Question, multiTurn: boolean, o: JudgeOptions, stats?: JudgeStats): { prompt: JudgePrompt; ref: string[] | null } {
  const refCat = NEED_REF_CATS.includes(q.category);
  const ref = refCat ? (q.reference ?? o.references?.get(key(q)) ?? null) : null;
  if (refCat && ref === null && stats !== undefined) stats.noReference++;
  const base = kind === 'single' ? (ref !== null ? 'single-math-v1' : 'single-v1') : ref !== null ? 'pair-math-v1' : 'pair-v2';
  const name = multiTurn ? `${base}-multi-turn` : base;
  const prompt = o.prompts.get(name);
  if (prompt === undefined) throw new Error(`the judge prompts have no "${name}" (FastChat's judge_prompts.jsonl has it)`);
  return { prompt, ref };
}

/** The template's fields for one answer (single) or two (pairwise), as run_judge_single / run_judge_pair fill them. */
function fields(q: Question, ref: string[] | null, answers: Record<string, string[]>): Record<string, string> {
  const v: Record<string, string> = { question: q.turns[0], question_1: q.turns[0], question_2: q.turns[1] ?? '' };
  if (ref !== null) {
    v.ref_answer_1 = ref[0] ?? '';
    v.ref_answer_2 = ref[1] ?? '';
  }
  for (const [name, turns] of Object.entries(answers)) {
    v[name] = turns[0] ?? '';
    v[`${name}_1`] = turns[0] ?? '';
    v[`${name}_2`] = turns[1] ?? '';
  }
  return v;
}

/** One judge call; a MatchError becomes FastChat's "$ERROR$" judgment (counted), anything else stops the run. */
async function ask(o: JudgeOptions, prompt: JudgePrompt, userPrompt: string, stats: JudgeStats): Promise<string> {
  const messages: ChatMessage[] = [{ role: 'system', content: prompt.system_prompt }, { role: 'user', content: userPrompt }];
  stats.calls++;
  try {
    return await o.judge.complete(messages, o.maxTokens ?? 2048);
  } catch (e) {
    if (!(e instanceof MatchError)) throw e;
    stats.errors++;
    if (stats.errorSamples.length < 5) stats.errorSamples.push(e.message);
    return `${ERROR_OUTPUT} ${e.message}`;
  }
}

/** fn over items with at most n in flight, results in item order; the first failure stops new items and is thrown. */
export async function pooled<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return out;
}

/** The (question, turn) pairs to judge: turn 1 of every question, turn 2 of the two-turn ones (as FastChat). */
function turnsOf(questions: readonly Question[]): { q: Question; multiTurn: boolean }[] {
  return [...questions.map((q) => ({ q, multiTurn: false })), ...questions.filter((q) => q.turns.length === 2).map((q) => ({ q, multiTurn: true }))];
}

/** The answer's turns when it has enough of them for the match, else null. */
function answerTurns(a: ModelAnswer | undefined, multiTurn: boolean): string[] | null {
  const t = a?.choices[0]?.turns;
  return t !== undefined && t.length >= (multiTurn ? 2 : 1) ? t : null;
}

/** Single-answer grading of every model's answers (play_a_match_single). */
export async function judgeSingle(questions: readonly Question[], answers: AnswerSets, o: JudgeOptions): Promise<{ judgments: SingleJudgment[]; stats: JudgeStats }> {
  const stats = newStats();
  const now = o.now ?? nowSeconds;
  const matches: { q: Question; multiTurn: boolean; model: string; turns: string[] }[] = [];
  for (const { q, multiTurn } of turnsOf(questions)) {
    for (const [model, set] of answers) {
      const turns = answerTurns(set.get(key(q)), multiTurn);
      if (turns === null) stats.missing++;
      else matches.push({ q, multiTurn, model, turns });
    }
  }
  let done = 0;
  const judgments = await pooled(matches, o.parallel ?? 1, async (m): Promise<SingleJudgment> => {
    const { prompt, ref } = pickPrompt('single', m.q, m.multiTurn, o, stats);
    if (prompt.output_format !== '[[rating]]') throw new Error(`judge prompt ${prompt.name}: output_format ${JSON.stringify(prompt.output_format)} is not "[[rating]]"`);
    const userPrompt = formatTemplate(prompt.prompt_template, fields(m.q, ref, { answer: m.turns }));
    const judgment = await ask(o, prompt, userPrompt, stats);
    const score = judgment.startsWith(ERROR_OUTPUT) ? -1 : parseRating(judgment);
    if (score === -1 && !judgment.startsWith(ERROR_OUTPUT)) stats.unparseable++;
    o.onProgress?.(++done, matches.length);
    return { question_id: m.q.question_id, model: m.model, judge: [o.judge.name, prompt.name], user_prompt: userPrompt, judgment, score, turn: m.multiTurn ? 2 : 1, tstamp: now() };
  });
  return { judgments, stats };
}

/** Pairwise comparison of each pair of models, both orders (play_a_match_pair). */
export async function judgePairwise(questions: readonly Question[], answers: AnswerSets, pairs: readonly [string, string][], o: JudgeOptions): Promise<{ judgments: PairJudgment[]; stats: JudgeStats }> {
  const stats = newStats();
  const now = o.now ?? nowSeconds;
  const matches: { q: Question; multiTurn: boolean; m1: string; m2: string; t1: string[]; t2: string[] }[] = [];
  for (const { q, multiTurn } of turnsOf(questions)) {
    for (const [m1, m2] of pairs) {
      const t1 = answerTurns(answers.get(m1)?.get(key(q)), multiTurn);
      const t2 = answerTurns(answers.get(m2)?.get(key(q)), multiTurn);
      if (t1 === null || t2 === null) stats.missing++;
      else matches.push({ q, multiTurn, m1, m2, t1, t2 });
    }
  }
  let done = 0;
  const verdict = (judgment: string): ReturnType<typeof parsePairVerdict> => {
    if (judgment.startsWith(ERROR_OUTPUT)) return 'error';
    const v = parsePairVerdict(judgment);
    if (v === 'error') stats.unparseable++;
    return v;
  };
  const judgments = await pooled(matches, o.parallel ?? 1, async (m): Promise<PairJudgment> => {
    const { prompt, ref } = pickPrompt('pairwise', m.q, m.multiTurn, o, stats);
    if (prompt.output_format !== '[[A]]') throw new Error(`judge prompt ${prompt.name}: output_format ${JSON.stringify(prompt.output_format)} is not "[[A]]"`);
    const p1 = formatTemplate(prompt.prompt_template, fields(m.q, ref, { answer_a: m.t1, answer_b: m.t2 }));
    const j1 = await ask(o, prompt, p1, stats);
    o.onProgress?.(++done, 2 * matches.length);
    const p2 = formatTemplate(prompt.prompt_template, fields(m.q, ref, { answer_a: m.t2, answer_b: m.t1 }));
    const j2 = await ask(o, prompt, p2, stats);
    o.onProgress?.(++done, 2 * matches.length);
    return {
      question_id: m.q.question_id, model_1: m.m1, model_2: m.m2,
      g1_winner: gameWinner(verdict(j1), 1), g2_winner: gameWinner(verdict(j2), 2),
      judge: [o.judge.name, prompt.name], g1_user_prompt: p1, g1_judgment: j1, g2_user_prompt: p2, g2_judgment: j2,
      turn: m.multiTurn ? 2 : 1, tstamp: now(),
    };
  });
  return { judgments, stats };
}

/** The pairs to compare: every model against the baseline, or every pair of models (FastChat's pairwise-baseline
 *  and pairwise-all modes). */
export function comparisonPairs(models: readonly string[], baseline: string | null): [string, string][] {
  if (baseline !== null) return models.filter((m) => m !== baseline).map((m): [string, string] => [m, baseline]);
  const out: [string, string][] = [];
  for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) out.push([models[i], models[j]]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// answers

export interface AnswerOptions {
  /** most tokens per turn (FastChat's --max-new-token: 1024) */
  maxTokens?: number;
  /** questions answered at once (default 1) */
  parallel?: number;
  onProgress?: (done: number, total: number) => void;
  now?: () => number;
}

/**
 * The model's answers to every question, turn by turn in one conversation (gen_model_answer.py), decoded greedily.
 * A turn that fails (its prompt does not fit the context, the endpoint refuses it) reads "$ERROR$" and is counted.
 */
export async function generateAnswers(questions: readonly Question[], backend: ChatBackend, modelId: string, o: AnswerOptions = {}): Promise<{ answers: ModelAnswer[]; errors: number; errorSamples: string[] }> {
  let errors = 0;
  let done = 0;
  const errorSamples: string[] = [];
  const answers = await pooled(questions, o.parallel ?? 1, async (q): Promise<ModelAnswer> => {
    const messages: ChatMessage[] = [];
    const turns: string[] = [];
    for (const t of q.turns) {
      messages.push({ role: 'user', content: t });
      let reply: string;
      try {
        reply = (await backend.complete(messages, o.maxTokens ?? 1024)).trim();
      } catch (e) {
        if (!(e instanceof MatchError)) throw e;
        errors++;
        if (errorSamples.length < 5) errorSamples.push(`question ${String(q.question_id)}: ${e.message}`);
        reply = ERROR_OUTPUT;
      }
      turns.push(reply);
      messages.push({ role: 'assistant', content: reply });
    }
    o.onProgress?.(++done, questions.length);
    return { question_id: q.question_id, answer_id: randomUUID(), model_id: modelId, choices: [{ index: 0, turns }], tstamp: (o.now ?? nowSeconds)() };
  });
  return { answers, errors, errorSamples };
}

// ---------------------------------------------------------------------------------------------------------------
// results (show_result.py)

export interface SingleRow {
  model: string;
  /** mean score over both turns, judgments with a score only */
  score: number;
  turn1: number;
  turn2: number;
  judged: number;
  unparseable: number;
  byCategory: Map<string, number>;
}

const mean = (xs: readonly number[]): number => (xs.length > 0 ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

/** Mean score per model, per turn and per category (scores of -1 left out, as show_result.py does). */
export function singleResults(judgments: readonly SingleJudgment[], questions: readonly Question[]): SingleRow[] {
  const cat = new Map(questions.map((q) => [key(q), q.category]));
  const models = [...new Set(judgments.map((j) => j.model))];
  const rows = models.map((model): SingleRow => {
    const mine = judgments.filter((j) => j.model === model);
    const ok = mine.filter((j) => j.score !== -1);
    const byCategory = new Map<string, number>();
    for (const c of [...new Set(ok.map((j) => cat.get(String(j.question_id)) ?? 'general'))].sort()) {
      byCategory.set(c, mean(ok.filter((j) => (cat.get(String(j.question_id)) ?? 'general') === c).map((j) => j.score)));
    }
    return {
      model, score: mean(ok.map((j) => j.score)), turn1: mean(ok.filter((j) => j.turn === 1).map((j) => j.score)),
      turn2: mean(ok.filter((j) => j.turn === 2).map((j) => j.score)), judged: mine.length, unparseable: mine.length - ok.length, byCategory,
    };
  });
  return rows.sort((a, b) => (Number.isNaN(a.score) ? 1 : 0) - (Number.isNaN(b.score) ? 1 : 0) || b.score - a.score);
}

export interface PairRow {
  model: string;
  win: number;
  loss: number;
  tie: number;
  /** the two games disagreed (counted as a tie in the win rates, as FastChat does) */
  inconsistent: number;
  /** a game without a verdict: left out of the rates */
  error: number;
  /** win / (win + loss + tie + inconsistent) */
  winRate: number;
  /** (win + ½(tie + inconsistent)) / (win + loss + tie + inconsistent) */
  adjustedWinRate: number;
}

/** The outcome of a pairwise record. */
export function outcome(j: PairJudgment): PairOutcome {
  return combineGames(j.g1_winner, j.g2_winner);
}

/** Win/loss/tie/inconsistent per model over its matches. */
export function pairResults(judgments: readonly PairJudgment[]): PairRow[] {
  const rows = new Map<string, PairRow>();
  const row = (m: string): PairRow => {
    let r = rows.get(m);
    if (r === undefined) rows.set(m, (r = { model: m, win: 0, loss: 0, tie: 0, inconsistent: 0, error: 0, winRate: 0, adjustedWinRate: 0 }));
    return r;
  };
  for (const j of judgments) {
    const [a, b] = [row(j.model_1), row(j.model_2)];
    const o = outcome(j);
    if (o === 'model_1') [a.win, b.loss] = [a.win + 1, b.loss + 1];
    else if (o === 'model_2') [b.win, a.loss] = [b.win + 1, a.loss + 1];
    else if (o === 'tie') [a.tie, b.tie] = [a.tie + 1, b.tie + 1];
    else if (o === 'inconsistent') [a.inconsistent, b.inconsistent] = [a.inconsistent + 1, b.inconsistent + 1];
    else [a.error, b.error] = [a.error + 1, b.error + 1];
  }
  for (const r of rows.values()) {
    const n = r.win + r.loss + r.tie + r.inconsistent;
    r.winRate = n > 0 ? r.win / n : NaN;
    r.adjustedWinRate = n > 0 ? (r.win + (r.tie + r.inconsistent) / 2) / n : NaN;
  }
  return [...rows.values()].sort((x, y) => (Number.isNaN(x.adjustedWinRate) ? 1 : 0) - (Number.isNaN(y.adjustedWinRate) ? 1 : 0) || y.adjustedWinRate - x.adjustedWinRate);
}

const num = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : '—');
const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The single-grading tables: per model, then per category. */
export function singleTable(rows: readonly SingleRow[]): string {
  const out = ['| model | score | turn 1 | turn 2 | judged | unparseable |', '|:---|---:|---:|---:|---:|---:|'];
  for (const r of rows) out.push(`| ${cell(r.model)} | ${num(r.score, 2)} | ${num(r.turn1, 2)} | ${num(r.turn2, 2)} | ${r.judged} | ${r.unparseable} |`);
  const cats = [...new Set(rows.flatMap((r) => [...r.byCategory.keys()]))].sort();
  if (cats.length > 0) {
    out.push('', `| model | ${cats.map(cell).join(' | ')} |`, `|:---|${cats.map(() => '---:').join('|')}|`);
    for (const r of rows) out.push(`| ${cell(r.model)} | ${cats.map((c) => num(r.byCategory.get(c) ?? NaN, 2)).join(' | ')} |`);
  }
  return out.join('\n') + '\n';
}

/** The pairwise table. */
export function pairTable(rows: readonly PairRow[]): string {
  const out = ['| model | win | loss | tie | inconsistent | error | win rate | adjusted win rate |', '|:---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of rows) out.push(`| ${cell(r.model)} | ${r.win} | ${r.loss} | ${r.tie} | ${r.inconsistent} | ${r.error} | ${num(r.winRate, 3)} | ${num(r.adjustedWinRate, 3)} |`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------------------
// battles

/** A pairwise verdict as a line of the battle log (FastChat's battle shape, as the web arena's votes). */
export interface JudgeBattle {
  question_id: number | string;
  model_a: string;
  model_b: string;
  winner: 'model_a' | 'model_b' | 'tie';
  /** the judge model and its prompt, e.g. "gpt-4/pair-v2" */
  judge: string;
  conversation_a: ArenaMessage[];
  conversation_b: ArenaMessage[];
  turn: number;
  anony: false;
  tstamp: number;
  /** nomoat's: how the two games went */
  g1_winner: PairWinner;
  g2_winner: PairWinner;
}

/** The conversation up to the judged turn: the question's user turns interleaved with the answer's. */
function conversationOf(q: Question | undefined, a: ModelAnswer | undefined, turn: number): ArenaMessage[] {
  const out: ArenaMessage[] = [];
  for (let t = 0; t < turn; t++) out.push({ role: 'user', content: q?.turns[t] ?? '' }, { role: 'assistant', content: a?.choices[0]?.turns[t] ?? '' });
  return out;
}

/** Pairwise judgments → battles; a match whose games disagree is a tie, one with a game without verdict is left out. */
export function judgeBattles(judgments: readonly PairJudgment[], questions: readonly Question[], answers: AnswerSets): { battles: JudgeBattle[]; dropped: number } {
  const qs = new Map(questions.map((q) => [key(q), q]));
  const battles: JudgeBattle[] = [];
  let dropped = 0;
  for (const j of judgments) {
    const o = outcome(j);
    if (o === 'error') {
      dropped++;
      continue;
    }
    const q = qs.get(String(j.question_id));
    battles.push({
      question_id: j.question_id, model_a: j.model_1, model_b: j.model_2,
      winner: o === 'model_1' ? 'model_a' : o === 'model_2' ? 'model_b' : 'tie',
      judge: `${j.judge[0]}/${j.judge[1]}`,
      conversation_a: conversationOf(q, answers.get(j.model_1)?.get(String(j.question_id)), j.turn),
      conversation_b: conversationOf(q, answers.get(j.model_2)?.get(String(j.question_id)), j.turn),
      turn: j.turn, anony: false, tstamp: j.tstamp, g1_winner: j.g1_winner, g2_winner: j.g2_winner,
    });
  }
  return { battles, dropped };
}
