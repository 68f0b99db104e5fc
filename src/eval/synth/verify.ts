// Verifiers for best-of-n: each scores the n replies to one prompt, higher is better, null where it has no score
// (a judgment without a rating, an empty reply under the NLL score). Five kinds:
// - answer: the reply's final answer equals a field of the input record (GSM8K's "#### 72" understood);
// - regex: 1 when the reply matches, else 0;
// - js: a module whose default export (record, reply) => number | boolean (or a promise of one) decides;
// - nll: minus the mean negative log-likelihood per token of the reply under a model (with its adapters), after the
//   prompt in its chat template (response-score.ts, as `data filter --score-model`): the likeliest reply wins;
// - judge: FastChat's single-answer grading (1–10) through src/eval/judge.ts, by a local model or an endpoint.

import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { LlamaModel } from '../../models/llama.js';
import type { ChatMessage } from '../../tokenizer/chat.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import type { Message } from '../../data/types.js';
import type { ChatBackend } from '../judge-chat.js';
import type { JudgePrompt, ModelAnswer, Question } from '../judge-data.js';
import { judgeSingle } from '../judge.js';
import { responseScores } from '../response-score.js';
import { loglikelihoods } from '../score.js';

/** One prompt to answer: the chat sent to the model and the record it came from. */
export interface SynthItem {
  /** "file:line" of the prompt, or "self-instruct:R.I" (request R, task I) */
  where: string;
  messages: ChatMessage[];
  /** the input record (prompts mode) or the generated task {instruction, input, output} */
  record: Record<string, unknown>;
  /** a generated task's bookkeeping, carried into its answer's provenance */
  meta?: { similarity: number; task_seed: number };
}

export interface Verifier {
  /** how provenance names it, e.g. "regex:^\\d+$" */
  readonly name: string;
  score(item: SynthItem, replies: readonly string[]): Promise<(number | null)[]>;
}

// ---------------------------------------------------------------------------------------------------------------
// answer

/** The number in s with separators removed ("1,234.50" → 1234.5), or null. */
function asNumber(s: string): number | null {
  const t = s.trim().replace(/^\$/, '').replace(/,/g, '').replace(/\.$/, '');
  return /^-?\d+(?:\.\d+)?$/u.test(t) ? Number(t) : null;
}

/** The final answer of a reference or reply: after the last "####" when there is one (GSM8K), else all of it. */
export function finalAnswer(s: string): string {
  const at = s.lastIndexOf('####');
  return (at >= 0 ? s.slice(at + 4) : s).trim();
}

const norm = (s: string): string => s.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.!]+$/u, '');

/**
 * 1 when the reply gives the expected answer, else 0: a numeric answer equals the reply's final number ("####" part,
 * else the last number in it); any other answer equals (case and spacing aside) the reply's final answer or its
 * last non-empty line.
 */
export function answerMatches(expected: string, reply: string): number {
  const want = finalAnswer(expected);
  const got = finalAnswer(reply);
  const n = asNumber(want);
  if (n !== null) {
    const nums = got.replace(/(\d),(\d{3})/g, '$1$2').match(/-?\d+(?:\.\d+)?/gu);
    return nums !== null && Number(nums[nums.length - 1]) === n ? 1 : 0;
  }
  const lines = got.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return norm(got) === norm(want) || (lines.length > 0 && norm(lines[lines.length - 1]) === norm(want)) ? 1 : 0;
}

/** Scores against record[field]; a record without the field (or with a non-scalar) is an error naming it. */
export function answerVerifier(field: string): Verifier {
  return {
    name: `answer:${field}`,
    score(item, replies) {
      const v = item.record[field];
      if (typeof v !== 'string' && typeof v !== 'number') {
        return Promise.reject(new Error(`${item.where}: ${field}: ${v === undefined ? 'missing (the field --verify-answer names)' : 'must be a string or a number'}`));
      }
      return Promise.resolve(replies.map((r) => answerMatches(String(v), r)));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// regex

/** 1 when the reply matches the pattern (JavaScript syntax, Unicode mode), else 0. Throws on a bad pattern. */
export function regexVerifier(pattern: string): Verifier {
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'u');
  } catch (e) {
    throw new Error(`not a valid regular expression: ${(e as Error).message}`);
  }
  return { name: `regex:${pattern}`, score: (_item, replies) => Promise.resolve(replies.map((r) => (re.test(r) ? 1 : 0))) };
}

// ---------------------------------------------------------------------------------------------------------------
// js

type JsCheck = (record: Record<string, unknown>, reply: string) => unknown;

/** Loads FILE's default export (record, reply) => number | boolean; true is 1, false 0. */
export async function jsVerifier(file: string): Promise<Verifier> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (e) {
    throw new Error(`cannot load ${file}: ${(e as Error).message}`);
  }
  if (typeof mod.default !== 'function') throw new Error(`${file}: has no default export function (record, reply) => number | boolean`);
  const fn = mod.default as JsCheck;
  return {
    name: `js:${file}`,
    async score(item, replies) {
      const out: number[] = [];
      for (const r of replies) {
        const v = await fn(item.record, r);
        if (typeof v === 'boolean') out.push(v ? 1 : 0);
        else if (typeof v === 'number' && Number.isFinite(v)) out.push(v);
        else throw new Error(`${file}: returned ${typeof v === 'number' ? String(v) : typeof v} for ${item.where}; it must return a finite number or a boolean`);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// nll

/**
 * Minus the mean NLL per token of each reply under model (adapters attached by the caller). With a chat template the
 * reply is scored as the assistant turn after the prompt by responseScores (the score `data filter --score-model`
 * uses: the reply's tokens and its end-of-turn marker); a model without one scores the reply's tokens after the raw
 * prompt (`rawPrompt`). An empty reply has no score.
 */
export function nllVerifier(name: string, model: LlamaModel, tokenizer: Tokenizer, rawPrompt: ((messages: readonly ChatMessage[]) => number[]) | null): Verifier {
  return {
    name: `nll:${name}`,
    score(item, replies) {
      const out: (number | null)[] = replies.map(() => null);
      const asked = replies.map((r, i) => ({ r, i })).filter((x) => x.r.trim() !== '');
      if (rawPrompt === null) {
        const messages = item.messages.map((m): Message => ({ role: m.role as Message['role'], content: m.content }));
        const nll = responseScores(model, tokenizer, asked.map((x) => ({ conversation: { messages: [...messages, { role: 'assistant', content: x.r }] } })));
        asked.forEach((x, j) => (out[x.i] = Number.isNaN(nll[j]) ? null : -nll[j]));
        return Promise.resolve(out);
      }
      const context = rawPrompt(item.messages);
      const conts = asked.map((x) => tokenizer.encode(x.r, { addBos: false, parseSpecial: false }));
      const res = loglikelihoods(model, conts.map((c) => ({ context, continuation: c })));
      asked.forEach((x, j) => (out[x.i] = res[j].logprob / conts[j].length));
      return Promise.resolve(out);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// judge

/** FastChat single-answer grading of each reply by judge (prompt "single-v1"); a reply without a rating has no score. */
export function judgeVerifier(judge: ChatBackend, prompts: ReadonlyMap<string, JudgePrompt>, maxTokens = 2048): Verifier {
  return {
    name: `judge:${judge.name}`,
    async score(item, replies) {
      const user = [...item.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const q: Question = { question_id: item.where, category: 'general', turns: [user] };
      const answers = new Map(replies.map((r, i): [string, Map<string, ModelAnswer>] => [`sample-${i}`, new Map([[item.where, { question_id: item.where, answer_id: `${item.where}#${i}`, model_id: `sample-${i}`, choices: [{ index: 0, turns: [r] }], tstamp: 0 }]])]));
      const { judgments } = await judgeSingle([q], answers, { judge, prompts, maxTokens });
      const by = new Map(judgments.map((j) => [j.model, j.score]));
      return replies.map((_, i) => {
        const s = by.get(`sample-${i}`);
        return s === undefined || s < 0 ? null : s;
      });
    },
  };
}
