// MT-bench's files in FastChat's shapes (fastchat/llm_judge): questions (question_id, category, turns, reference?),
// judge prompts (name, type, system_prompt, prompt_template, output_format…) and model answers (question_id,
// answer_id, model_id, choices: [{index, turns}], tstamp). Readers fail with file:line: field; the prompt
// templates are filled as Python's str.format fills them.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface Question {
  question_id: number | string;
  category: string;
  turns: string[];
  /** reference answers, one per turn (MT-bench has them for math, reasoning, coding and a few more) */
  reference?: string[];
}

export interface JudgePrompt {
  name: string;
  type: 'single' | 'pairwise';
  system_prompt: string;
  prompt_template: string;
  description?: string;
  category?: string;
  /** "[[rating]]" for single grading, "[[A]]" for pairwise */
  output_format: string;
}

export interface ModelAnswer {
  question_id: number | string;
  answer_id: string;
  model_id: string;
  choices: { index: number; turns: string[] }[];
  tstamp: number;
}

/** FastChat's NEED_REF_CATS: categories judged against a reference answer with the *-math-* prompts. */
export const NEED_REF_CATS: readonly string[] = ['math', 'reasoning', 'coding'];

/** What a failed call or generation leaves in place of text (FastChat's API_ERROR_OUTPUT). */
export const ERROR_OUTPUT = '$ERROR$';

/** Reads JSON lines, calling each(obj, where) for each non-blank line; a line that is not a JSON object throws. */
function readJsonl(path: string, each: (o: Record<string, unknown>, where: string) => void): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${where}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: not a JSON object`);
    each(v as Record<string, unknown>, where);
  });
}

const isId = (v: unknown): v is number | string => typeof v === 'number' || (typeof v === 'string' && v !== '');
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function need(cond: boolean, where: string, field: string, what: string): void {
  if (!cond) throw new Error(`${where}: ${field}: ${what}`);
}

/** Reads a question file (MT-bench's, Vicuna-bench's or any of that shape). */
export function readQuestions(path: string): Question[] {
  const out: Question[] = [];
  const seen = new Set<string>();
  readJsonl(path, (o, where) => {
    need(isId(o.question_id), where, 'question_id', 'missing (a number or a string)');
    need(isStrings(o.turns) && o.turns.length > 0, where, 'turns', 'must be a non-empty array of strings');
    need(o.category === undefined || typeof o.category === 'string', where, 'category', 'must be a string');
    need(o.reference === undefined || isStrings(o.reference), where, 'reference', 'must be an array of strings');
    const key = String(o.question_id);
    need(!seen.has(key), where, 'question_id', `${key} appears twice`);
    seen.add(key);
    const q: Question = { question_id: o.question_id as number | string, category: (o.category as string | undefined) ?? 'general', turns: o.turns as string[] };
    if (o.reference !== undefined) q.reference = o.reference as string[];
    out.push(q);
  });
  return out;
}

/** Reads FastChat's judge_prompts.jsonl, by name. */
export function readJudgePrompts(path: string): Map<string, JudgePrompt> {
  const out = new Map<string, JudgePrompt>();
  readJsonl(path, (o, where) => {
    for (const k of ['name', 'system_prompt', 'prompt_template', 'output_format'] as const) need(typeof o[k] === 'string', where, k, 'missing (a string)');
    need(o.type === 'single' || o.type === 'pairwise', where, 'type', `must be "single" or "pairwise", got ${JSON.stringify(o.type)}`);
    out.set(o.name as string, o as unknown as JudgePrompt);
  });
  return out;
}

/**
 * Reads model answers: a FastChat model_answer file holds one model's answers, but any mix is accepted, grouped by
 * model_id (or, where a line has none, the file's name without .jsonl, as FastChat names its files).
 */
export function readAnswers(path: string): Map<string, Map<string, ModelAnswer>> {
  const byModel = new Map<string, Map<string, ModelAnswer>>();
  const fallback = basename(path).replace(/\.jsonl$/, '');
  readJsonl(path, (o, where) => {
    need(isId(o.question_id), where, 'question_id', 'missing (a number or a string)');
    need(Array.isArray(o.choices) && o.choices.length > 0, where, 'choices', 'must be a non-empty array');
    const c0 = (o.choices as unknown[])[0] as { turns?: unknown } | null;
    need(typeof c0 === 'object' && c0 !== null && isStrings(c0.turns), where, 'choices[0].turns', 'must be an array of strings');
    need(o.model_id === undefined || (typeof o.model_id === 'string' && o.model_id !== ''), where, 'model_id', 'must be a non-empty string');
    const a: ModelAnswer = {
      question_id: o.question_id as number | string,
      answer_id: typeof o.answer_id === 'string' ? o.answer_id : '',
      model_id: (o.model_id as string | undefined) ?? fallback,
      choices: (o.choices as { index?: number; turns: string[] }[]).map((c, i) => ({ index: c.index ?? i, turns: c.turns })),
      tstamp: typeof o.tstamp === 'number' ? o.tstamp : 0,
    };
    let m = byModel.get(a.model_id);
    if (m === undefined) byModel.set(a.model_id, (m = new Map<string, ModelAnswer>()));
    m.set(String(a.question_id), a); // a later answer to the same question replaces the earlier, as FastChat's loader does
  });
  return byModel;
}

/** Python's str.format with named fields only: {name} is replaced, {{ and }} are literal braces; a name not given
 *  is an error (Python raises KeyError). */
export function formatTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const v = name === undefined ? undefined : values[name];
    if (v === undefined) throw new Error(`judge prompt template: no value for {${name ?? ''}}`);
    return v;
  });
}
