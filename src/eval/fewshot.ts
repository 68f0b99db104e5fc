// Few-shot contexts as lm-eval builds them:
//   context = description + Σ_examples (doc_to_text + target_delimiter + target + fewshot_delimiter) + doc_to_text
// Examples come from the few-shot split (or fewshot_config.samples): `first_n` takes the first n in order; the
// default sampler draws n without replacement from one seeded generator per task, used in document order (as
// lm-eval's task-level fewshot_rnd), so a run is reproducible; when the examples come from the evaluated split the
// document itself is never its own example.

import { Rng } from '../engine/rng.js';
import { docDescription, docText, targetText, TaskError, type DocEntry, type Task } from './task.js';

/** n distinct few-shot examples for `current` (drawn from rng for the default sampler). */
export function sampleFewshot(task: Task, n: number, current: DocEntry, rng: Rng): DocEntry[] {
  if (n === 0) return [];
  const pool = task.fewshotDocs;
  if (pool === null) throw new TaskError(`${task.source}: task ${task.name} asks for ${n} few-shot examples but has no few-shot source (fewshot_split or fewshot_config.samples)`);
  const sameSplit = pool === task.evalDocs;
  const available = pool.docs.length - (sameSplit ? 1 : 0);
  if (n > available) throw new TaskError(`${task.source}: task ${task.name} asks for ${n} few-shot examples but ${pool.file} has ${available}`);
  if (task.config.fewshot_config?.sampler === 'first_n') {
    return pool.docs.filter((d) => d !== current).slice(0, n);
  }
  // partial Fisher–Yates: the first k of a seeded shuffle (k = n + 1 when the document may be among them)
  const idx = pool.docs.map((_, i) => i);
  const k = Math.min(idx.length, sameSplit ? n + 1 : n);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(idx.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, k).map((i) => pool.docs[i]).filter((d) => d !== current).slice(0, n);
}

export interface Context {
  /** the description (rendered with the document) */
  description: string;
  /** the labelled examples, each followed by fewshot_delimiter */
  examples: string;
  /** doc_to_text of the document */
  question: string;
}

/** The pieces of a document's context; the plain-text context is description + examples + question. */
export function buildContext(task: Task, current: DocEntry, numFewshot: number, rng: Rng): Context {
  const c = task.config;
  const shots = sampleFewshot(task, numFewshot, current, rng);
  const pool = task.fewshotDocs;
  let examples = '';
  for (const s of shots) {
    if (pool === null) break;
    examples += docText(task, s, pool) + c.target_delimiter + targetText(task, s, pool) + c.fewshot_delimiter;
  }
  return { description: docDescription(task, current, task.evalDocs), examples, question: docText(task, current, task.evalDocs) };
}

export const contextText = (x: Context): string => x.description + x.examples + x.question;
