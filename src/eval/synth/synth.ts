// The two pipelines of `nomoat data synth`, as library calls a script can compose:
// - selfInstruct: prompt a model with k sampled seed tasks, parse the tasks it writes, screen them (rules and
//   ROUGE-L similarity), until enough are kept or the requests run out; each kept task is an Alpaca record;
// - answerItems: best-of-n answers to prompts (a file's, or the generated tasks'), the top k kept per prompt.
// Both yield Alpaca records with a "provenance" field; the caller writes them (atomically) and shows progress.
//
// Why src/eval/synth: generation needs models (above src/models), the verifiers reuse src/eval's judge, its endpoint
// client and its loglikelihood scorer, and src/data (below models) must not import them; the CLI sits on top.

import { readFileSync } from 'node:fs';
import { Rng } from '../../engine/rng.js';
import { MatchError } from '../judge-chat.js';
import { bestOfN, taskPrompt, type BestOfNOptions, type Provenance, type SampleSource } from './best-of-n.js';
import { SimilarityPool } from './rouge.js';
import { encodePrompt, parseReply, sampleSeeds, screen, type FilterOptions, type Task } from './self-instruct.js';
import type { SynthItem } from './verify.js';

/** What `data synth` writes: an Alpaca record and where it came from. */
export interface SynthRecord {
  instruction: string;
  input: string;
  output: string;
  provenance: Provenance & { similarity?: number; task_seed?: number };
}

// ---------------------------------------------------------------------------------------------------------------
// prompts

/**
 * The prompts of a JSONL file: `field` when given, else the first of "prompt", "instruction" (+ "input", Alpaca),
 * "question" (GSM8K). Errors name file:line and the field.
 */
export function readPromptItems(path: string, field?: string): SynthItem[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the prompts ${path}: ${(e as Error).message}`);
  }
  const items: SynthItem[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: (record): not JSON: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: (record): expected a JSON object`);
    const rec = v as Record<string, unknown>;
    const name = field ?? ['prompt', 'instruction', 'question'].find((k) => k in rec);
    if (name === undefined) throw new Error(`${where}: (record): no "prompt", "instruction" or "question" field (or name the field with --prompt-field)`);
    const p = rec[name];
    if (typeof p !== 'string' || p.trim() === '') throw new Error(`${where}: ${name}: ${p === undefined ? 'missing' : 'must be a non-empty string'}`);
    const input = name === 'instruction' && typeof rec.input === 'string' ? rec.input : '';
    items.push({ where, messages: [{ role: 'user', content: taskPrompt(p, input) }], record: rec });
  });
  if (items.length === 0) throw new Error(`${path}: no prompts`);
  return items;
}

/** The instruction and input an answered item's record is written with. */
function fieldsOf(item: SynthItem): { instruction: string; input: string } {
  const r = item.record;
  if (typeof r.instruction === 'string') return { instruction: r.instruction, input: typeof r.input === 'string' ? r.input : '' };
  return { instruction: item.messages[item.messages.length - 1].content, input: '' };
}

export interface AnswerOptions extends BestOfNOptions {
  /** the seed of prompt 0's sample 0 */
  seed: number;
  /** called after each prompt with the records it kept */
  onItem?: (done: number, total: number, kept: number) => void;
}

export interface AnswerStats {
  prompts: number;
  kept: number;
  /** prompts none of whose samples scored (or reached --min-score) */
  empty: number;
  /** prompts the model could not run (too long for its context, refused by the endpoint) */
  failed: number;
  failures: string[];
}

/** Best-of-n answers to each item, yielded in item order. */
export async function* answerItems(items: readonly SynthItem[], source: SampleSource, o: AnswerOptions, stats: AnswerStats): AsyncGenerator<SynthRecord> {
  for (let j = 0; j < items.length; j++) {
    const item = items[j];
    stats.prompts++;
    let kept = 0;
    try {
      const res = await bestOfN(item, source, o.seed + j * o.n, o);
      for (const k of res.kept) {
        kept++;
        yield { ...fieldsOf(item), output: k.text, provenance: { ...k.provenance, ...item.meta } };
      }
      if (res.kept.length === 0) stats.empty++;
    } catch (e) {
      if (!(e instanceof MatchError)) throw e;
      stats.failed++;
      if (stats.failures.length < 5) stats.failures.push(`${item.where}: ${e.message}`);
    }
    stats.kept += kept;
    o.onItem?.(j + 1, items.length, kept);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Self-Instruct

export interface SelfInstructOptions {
  seeds: readonly Task[];
  /** tasks to keep */
  count: number;
  /** seed tasks shown per request (Alpaca: 3) */
  shown: number;
  /** the list length the prompt asks for (Alpaca: 20) */
  perRequest: number;
  /** the prompt's text before the examples (default: DEFAULT_HEADER, after Alpaca's) */
  header?: string;
  /** requests at most, so a model that writes no usable task cannot loop forever */
  maxRequests: number;
  maxTokens: number;
  seed: number;
  filter: FilterOptions;
  /** called after each request */
  onRequest?: (requests: number, kept: number) => void;
  /** called with each dropped task and the rule that dropped it */
  onRejected?: (task: Task, rule: string, similarity: number, nearest: string | null, where: string) => void;
}

export interface SelfInstructStats {
  requests: number;
  parsed: number;
  /** pieces of replies that held no task, or were cut by the token limit */
  unparsed: number;
  kept: number;
  /** dropped tasks by rule */
  byRule: Map<string, number>;
  failed: number;
  failures: string[];
}

/** A kept task: an item to answer (its record is the task), and its provenance as generated. */
export interface GeneratedTask extends SynthItem {
  task: Task;
  provenance: Provenance & { similarity: number };
}

/**
 * Self-Instruct: requests until `count` tasks pass the screen or `maxRequests` are spent; request r samples its seed
 * tasks with a generator seeded (seed + r) and decodes with seed + r. Yields each kept task as it is screened.
 */
export async function* selfInstruct(source: SampleSource, o: SelfInstructOptions, stats: SelfInstructStats): AsyncGenerator<GeneratedTask> {
  const pool = new SimilarityPool(o.seeds.map((t) => t.instruction));
  for (let r = 0; r < o.maxRequests && stats.kept < o.count; r++) {
    const examples = sampleSeeds(o.seeds, o.shown, new Rng(o.seed + r));
    const prompt = encodePrompt(examples, o.perRequest, o.header);
    const seed = o.seed + r;
    stats.requests++;
    let reply;
    try {
      // a completion stops where the list would go past perRequest (Alpaca stops at "20.")
      [reply] = await source.sample([{ role: 'user', content: prompt }], 1, seed, o.maxTokens, [`\n${o.perRequest + 1}. `, `${o.perRequest + 1}. Instruction`]);
    } catch (e) {
      if (!(e instanceof MatchError)) throw e;
      stats.failed++;
      if (stats.failures.length < 5) stats.failures.push(`request ${r}: ${e.message}`);
      o.onRequest?.(stats.requests, stats.kept);
      continue;
    }
    const parsed = parseReply(reply.text, { ...(source.chat ? {} : { continues: examples.length + 1 }), truncated: reply.truncated });
    stats.parsed += parsed.tasks.length;
    stats.unparsed += parsed.dropped;
    for (let i = 0; i < parsed.tasks.length && stats.kept < o.count; i++) {
      const task = parsed.tasks[i];
      const where = `self-instruct:${r}.${i}`;
      const v = screen(task, pool, o.filter);
      if (v.rule !== null) {
        stats.byRule.set(v.rule, (stats.byRule.get(v.rule) ?? 0) + 1);
        o.onRejected?.(task, v.rule, v.similarity, v.nearest, where);
        continue;
      }
      stats.kept++;
      const { info } = source;
      yield {
        where,
        messages: [{ role: 'user', content: taskPrompt(task.instruction, task.input) }],
        record: { ...task },
        meta: { similarity: v.similarity, task_seed: seed },
        task,
        provenance: {
          model: info.model, adapters: info.adapters, ...(info.endpoint !== undefined ? { endpoint: info.endpoint } : {}), temperature: info.temperature,
          seed, sample: 0, n: 1, score: null, verifier: null, source: where, similarity: v.similarity,
        },
      };
    }
    o.onRequest?.(stats.requests, stats.kept);
  }
}

export function newSelfInstructStats(): SelfInstructStats {
  return { requests: 0, parsed: 0, unparsed: 0, kept: 0, byRule: new Map(), failed: 0, failures: [] };
}

export function newAnswerStats(): AnswerStats {
  return { prompts: 0, kept: 0, empty: 0, failed: 0, failures: [] };
}
