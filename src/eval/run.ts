// Runs tasks against a model as lm-eval's evaluator does: every task's documents become requests (one loglikelihood
// per choice of a multiple-choice question, one generation per generate_until document), the requests of all tasks
// are batched by the model (loglikelihoods() groups choices sharing a context; generations of equal prompt length
// share a batch), then each document's responses go through the task's filters and metrics, and each metric is
// averaged with a bootstrap standard error.
//
// Tokenization follows lm-eval's HFLM: trailing whitespace of the context moves to the continuation, the pair is
// encoded whole and the context's tokens cut off its front, and BOS goes in front of the context when the tokenizer
// has one (EOS when it has no BOS and the context is empty). Generation is greedy and stops at the task's `until`
// strings or an end-of-sequence token; a prompt too long for the model keeps its last tokens (max_gen_toks left free).

import { createHash } from 'node:crypto';
import { Rng } from '../engine/rng.js';
import { generateTokens } from '../models/generate.js';
import type { LlamaModel } from '../models/llama.js';
import { chatPromptIds, renderChat } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { buildContext, contextText, type Context } from './fewshot.js';
import { bootstrapStderr, chooseAnswer, exactMatch, mean, regexFilter, type ExactMatchOptions } from './metrics.js';
import { loglikelihoods, type LoglikelihoodRequest, type LoglikelihoodResult } from './score.js';
import { docChoices, docTarget, TaskError, targetText, type DocEntry, type FilterConfig, type MetricName, type Task, type TaskConfig } from './task.js';
import type { Doc, Resolved } from './task-template.js';

export interface EvaluateOptions {
  /** overrides every task's num_fewshot (lm-eval's --num_fewshot) */
  numFewshot?: number;
  /** the first N documents of each task; a fraction < 1 takes that share (rounded up), as lm-eval's --limit */
  limit?: number;
  /** sequences per forward (default 8) */
  batchSize?: number;
  /** seed of the few-shot sampler and of the bootstrap (default 1234, lm-eval's fewshot seed) */
  seed?: number;
  /** contexts as a user turn of the tokenizer's chat template (lm-eval's --apply_chat_template) */
  applyChatTemplate?: boolean;
  /** keep every document's requests, responses and metrics (lm-eval's --log_samples) */
  logSamples?: boolean;
  /** what results.json's `config` says about the model (path, adapters…) */
  modelInfo?: Record<string, unknown>;
  /** called as requests complete: `phase` is 'loglikelihood' or 'generate_until' */
  onProgress?: (done: number, total: number, phase: string) => void;
}

/** One line of samples_<task>.jsonl (lm-eval's per-document log), one per filter. */
export interface SampleRecord {
  doc_id: number;
  doc: Doc;
  target: Resolved;
  arguments: Record<string, Record<string, unknown>>;
  resps: unknown[][];
  filtered_resps: unknown[];
  filter: string;
  metrics: string[];
  doc_hash: string;
  prompt_hash: string;
  target_hash: string;
  [metric: string]: unknown;
}

/** lm-eval's results object (results.json). */
export interface EvalResults {
  results: Record<string, Record<string, string | number>>;
  versions: Record<string, number | string | null>;
  'n-shot': Record<string, number>;
  configs: Record<string, TaskConfig | Record<string, unknown>>;
  higher_is_better: Record<string, Record<string, boolean>>;
  'n-samples': Record<string, { original: number; effective: number }>;
  config: Record<string, unknown>;
  date: number;
  total_evaluation_time_seconds: string;
  /** per task, when logSamples is set (written to samples_<task>.jsonl, not to results.json) */
  samples?: Record<string, SampleRecord[]>;
}

/** A document in flight: its context, its requests and what they returned. */
interface Pending {
  entry: DocEntry;
  id: number;
  ctx: string;
  /** indices into the shared loglikelihood request list (multiple_choice: one per choice) */
  ll: number[];
  /** continuation strings of the loglikelihood requests, for the sample log */
  conts: string[];
  /** index into the shared generation list */
  gen: number;
  choices: string[] | null;
  target: Resolved;
}

interface GenRequest {
  ids: number[];
  until: string[];
  maxTokens: number;
  text: string;
}

const sha = (x: unknown): string => createHash('sha256').update(typeof x === 'string' ? x : JSON.stringify(x)).digest('hex');

/** lm-eval's _encode_pair: (context ids with BOS/EOS prefix, continuation ids). */
export function encodePair(tokenizer: Tokenizer, context: string, continuation: string, chat: boolean): { context: number[]; continuation: number[] } {
  let ctx = context;
  let cont = continuation;
  const n = ctx.length - ctx.trimEnd().length;
  if (n > 0) {
    cont = ctx.slice(ctx.length - n) + cont;
    ctx = ctx.slice(0, ctx.length - n);
  }
  const enc = (s: string): number[] => tokenizer.encode(s, { addBos: false, parseSpecial: chat });
  const whole = enc(ctx + cont);
  const ctxIds = enc(ctx);
  return { context: [...prefixIds(tokenizer, ctx, ctxIds.length === 0, chat), ...ctxIds], continuation: whole.slice(ctxIds.length) };
}

/** The token(s) in front of a context: BOS when the tokenizer has one (unless a chat template already wrote it). */
function prefixIds(tokenizer: Tokenizer, text: string, empty: boolean, chat: boolean): number[] {
  const bos = tokenizer.bosId;
  if (bos !== null) {
    if (chat) {
      const bosText = tokenizer.idToToken(bos) ?? '';
      return tokenizer.addBosByDefault && !(bosText !== '' && text.startsWith(bosText)) ? [bos] : [];
    }
    return [bos];
  }
  if (empty && tokenizer.eosId !== null) return [tokenizer.eosId];
  return [];
}

/** The context of a chat task: description as the system turn, examples and question as one user turn (lm-eval's
 *  apply_chat_template without fewshot_as_multiturn), rendered with the generation prompt. */
function chatContext(tokenizer: Tokenizer, task: Task, c: Context): string {
  const template = tokenizer.chatTemplate;
  if (template === null) throw new TaskError(`task ${task.name} needs a chat template, and the model's tokenizer has none`);
  const tokenText = (id: number | null): string => (id === null ? '' : (tokenizer.idToToken(id) ?? ''));
  const messages = [...(c.description !== '' ? [{ role: 'system', content: c.description }] : []), { role: 'user', content: c.examples + c.question }];
  return renderChat(template, messages, { addGenerationPrompt: true, bosToken: tokenText(tokenizer.bosId), eosToken: tokenText(tokenizer.eosId) });
}

function chatIds(tokenizer: Tokenizer, task: Task, c: Context): number[] {
  const template = tokenizer.chatTemplate;
  if (template === null) throw new TaskError(`task ${task.name} needs a chat template, and the model's tokenizer has none`);
  const messages = [...(c.description !== '' ? [{ role: 'system', content: c.description }] : []), { role: 'user', content: c.examples + c.question }];
  return chatPromptIds(tokenizer, template, messages);
}

/** How many documents --limit keeps. */
export function limitCount(n: number, limit: number | undefined): number {
  if (limit === undefined) return n;
  if (!(limit > 0)) throw new Error(`limit must be positive, got ${limit}`);
  return Math.min(n, limit < 1 ? Math.ceil(n * limit) : Math.floor(limit));
}

/** Applies one filter pipeline to a document's responses (lm-eval's FilterEnsemble over one instance). */
export function applyFilter(f: FilterConfig, resps: readonly string[]): string[] {
  let out = [...resps];
  for (const step of f.filter) {
    switch (step.function) {
      case 'regex': out = out.map((r) => regexFilter(r, step)); break;
      case 'take_first': out = out.slice(0, 1); break;
      case 'lowercase': out = out.map((r) => r.toLowerCase()); break;
      case 'uppercase': out = out.map((r) => r.toUpperCase()); break;
      case 'remove_whitespace': out = out.map((r) => r.trimStart()); break;
    }
  }
  return out;
}

/** Evaluates tasks; see EvalResults for the shape (lm-eval's). */
export function evaluateTasks(model: LlamaModel, tokenizer: Tokenizer, tasks: readonly Task[], opts: EvaluateOptions = {}): EvalResults {
  const t0 = performance.now();
  const seed = opts.seed ?? 1234;
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  const names = new Set<string>();
  for (const t of tasks) {
    if (names.has(t.name)) throw new Error(`task ${t.name} is given twice`);
    names.add(t.name);
  }
  const maxPos = model.config.maxPositionEmbeddings;

  // 1. requests
  const llRequests: LoglikelihoodRequest[] = [];
  const genRequests: GenRequest[] = [];
  const pending = tasks.map((task) => {
    const c = task.config;
    const shots = opts.numFewshot ?? c.num_fewshot;
    const chat = task.chat === true || opts.applyChatTemplate === true;
    const rng = new Rng(seed);
    const docs = task.evalDocs.docs.slice(0, limitCount(task.evalDocs.docs.length, opts.limit));
    return docs.map((entry, id): Pending => {
      const cx = buildContext(task, entry, shots, rng);
      const ctx = chat ? chatContext(tokenizer, task, cx) : contextText(cx);
      const p: Pending = { entry, id, ctx, ll: [], conts: [], gen: -1, choices: null, target: docTarget(task, entry, task.evalDocs) }; // a bad target fails now, not after the model ran
      const addLL = (cont: string): void => {
        const pair = encodePair(tokenizer, ctx, cont, chat);
        if (pair.continuation.length === 0) throw new TaskError(`${entry.where}: the continuation ${JSON.stringify(cont)} encodes to no tokens`);
        p.ll.push(llRequests.length);
        p.conts.push(cont);
        llRequests.push(pair);
      };
      if (c.output_type === 'multiple_choice') {
        p.choices = docChoices(task, entry, task.evalDocs);
        goldIndices(task, entry, p.target, p.choices);
        // with a chat template the assistant turn starts the answer: no delimiter (as lm-eval)
        const delim = chat ? '' : c.target_delimiter;
        for (const choice of p.choices) addLL(delim + choice);
      } else if (c.output_type === 'loglikelihood') {
        addLL(targetText(task, entry, task.evalDocs)); // lm-eval: (ctx, doc_to_target), no delimiter
      } else {
        const g = c.generation_kwargs ?? { until: [], max_gen_toks: 256, do_sample: false };
        const maxTokens = Math.min(g.max_gen_toks, maxPos - 1);
        let ids = chat ? chatIds(tokenizer, task, cx) : [...prefixIds(tokenizer, ctx, ctx === '', false), ...tokenizer.encode(ctx, { addBos: false })];
        if (ids.length + maxTokens > maxPos) ids = ids.slice(ids.length - (maxPos - maxTokens)); // lm-eval keeps the end
        p.gen = genRequests.length;
        genRequests.push({ ids, until: g.until, maxTokens, text: ctx });
      }
      return p;
    });
  });

  // 2. the model: every task's loglikelihood requests in one call, then the generations
  const report = opts.onProgress;
  const llResults: LoglikelihoodResult[] = llRequests.length === 0 ? [] : loglikelihoods(model, llRequests, { batchSize, onProgress: report && ((d, n) => report(d, n, 'loglikelihood')) });
  const genTexts = generateAll(model, tokenizer, genRequests, batchSize, report && ((d, n) => report(d, n, 'generate_until')));

  // 3. metrics
  const out: EvalResults = {
    results: {}, versions: {}, 'n-shot': {}, configs: {}, higher_is_better: {}, 'n-samples': {},
    config: {
      ...opts.modelInfo, batch_size: batchSize, limit: opts.limit ?? null, num_fewshot: opts.numFewshot ?? null, bootstrap_iters: 1000,
      random_seed: seed, fewshot_seed: seed, apply_chat_template: opts.applyChatTemplate === true, gen_kwargs: null,
    },
    date: Date.now() / 1000,
    total_evaluation_time_seconds: '',
    ...(opts.logSamples === true ? { samples: {} } : {}),
  };
  tasks.forEach((task, k) => {
    const c = task.config;
    const perFilter = scoreTask(task, pending[k], llResults, genTexts);
    const res: Record<string, string | number> = { alias: c.task_alias ?? task.name };
    for (const [filter, values] of perFilter.metrics) {
      for (const [metric, xs] of values) {
        res[`${metric},${filter}`] = mean(xs);
        const se = bootstrapStderr(xs, seed);
        res[`${metric}_stderr,${filter}`] = Number.isFinite(se) ? se : 'N/A';
      }
    }
    out.results[task.name] = res;
    out.versions[task.name] = (c.metadata?.version) ?? null;
    out['n-shot'][task.name] = opts.numFewshot ?? c.num_fewshot;
    out.configs[task.name] = { ...c, num_fewshot: opts.numFewshot ?? c.num_fewshot };
    out.higher_is_better[task.name] = Object.fromEntries(c.metric_list.map((m) => [m.metric, m.higher_is_better]));
    out['n-samples'][task.name] = { original: task.evalDocs.docs.length, effective: pending[k].length };
    if (out.samples !== undefined) out.samples[task.name] = perFilter.samples;
  });
  out.total_evaluation_time_seconds = String((performance.now() - t0) / 1000);
  return out;
}

/** Greedy generations of every request, prompts of equal length batched batchSize at a time; texts in order. */
function generateAll(model: LlamaModel, tokenizer: Tokenizer, reqs: readonly GenRequest[], batchSize: number, report?: (done: number, total: number) => void): string[] {
  const out = new Array<string>(reqs.length).fill('');
  const groups = new Map<string, number[]>();
  reqs.forEach((r, i) => {
    const key = `${r.ids.length}|${r.maxTokens}|${JSON.stringify(r.until)}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  let done = 0;
  for (const idx of groups.values()) {
    for (let s = 0; s < idx.length; s += batchSize) {
      const part = idx.slice(s, s + batchSize);
      const r0 = reqs[part[0]];
      const gens = generateTokens(model, tokenizer, part.map((i) => reqs[i].ids), { maxTokens: r0.maxTokens, sampling: { temperature: 0 }, stopStrings: r0.until });
      gens.forEach((g, j) => (out[part[j]] = g.text));
      done += part.length;
      report?.(done, reqs.length);
    }
  }
  return out;
}

/** Per filter, per metric, the value of every document; and the sample log. */
function scoreTask(task: Task, docs: readonly Pending[], ll: readonly LoglikelihoodResult[], gens: readonly string[]): { metrics: Map<string, Map<MetricName, number[]>>; samples: SampleRecord[] } {
  const c = task.config;
  const metrics = new Map<string, Map<MetricName, number[]>>();
  const samples: SampleRecord[] = [];
  const push = (filter: string, m: MetricName, v: number): void => {
    const f = metrics.get(filter) ?? new Map<MetricName, number[]>();
    metrics.set(filter, f);
    const xs = f.get(m) ?? [];
    f.set(m, xs);
    xs.push(v);
  };
  for (const p of docs) {
    const target = p.target;
    const base = { doc_id: p.id, doc: p.entry.doc, target };
    const hashes = { doc_hash: sha(p.entry.doc), prompt_hash: sha(p.ctx), target_hash: sha(String(target)) };
    if (c.output_type !== 'generate_until') {
      const rs = p.ll.map((i) => ll[i]);
      const values: Partial<Record<MetricName, number>> = {};
      if (c.output_type === 'multiple_choice') {
        const choices = p.choices ?? [];
        const golds = goldIndices(task, p.entry, target, choices);
        const { pred, predNorm } = chooseAnswer(rs.map((r) => r.logprob), choices);
        for (const m of c.metric_list) {
          values[m.metric] = m.metric === 'acc' ? Number(golds.includes(pred))
            : m.metric === 'exact_match' ? Number(golds.some((g) => rs[g].greedy))
            : Number(golds.includes(predNorm)); // acc_norm and acc_bytes: per byte (see chooseAnswer)
        }
      } else {
        for (const m of c.metric_list) values[m.metric] = Number(rs[0].greedy);
      }
      for (const [m, v] of Object.entries(values) as [MetricName, number][]) push('none', m, v);
      samples.push({
        ...base,
        arguments: Object.fromEntries(p.conts.map((cont, i) => [`gen_args_${i}`, { arg_0: p.ctx, arg_1: cont }])),
        resps: rs.map((r) => [[r.logprob, r.greedy]]), filtered_resps: rs.map((r) => [r.logprob, r.greedy]),
        filter: 'none', metrics: Object.keys(values), ...hashes, ...values,
      });
      continue;
    }
    const resp = gens[p.gen];
    const golds = generationGolds(task, p.entry, target);
    const g = c.generation_kwargs;
    for (const f of c.filter_list) {
      const filtered = applyFilter(f, [resp]);
      const pred = filtered[0] ?? '';
      const values: Partial<Record<MetricName, number>> = {};
      for (const m of c.metric_list) {
        const opts: ExactMatchOptions = m;
        values[m.metric] = Number(golds.some((gold) => (task.check !== undefined ? task.check(pred, gold, p.entry.doc) : exactMatch(pred, gold, opts) === 1)));
      }
      for (const [m, v] of Object.entries(values) as [MetricName, number][]) push(f.name, m, v);
      samples.push({
        ...base,
        arguments: { gen_args_0: { arg_0: p.ctx, arg_1: { until: g?.until ?? [], max_gen_toks: g?.max_gen_toks ?? 256, do_sample: false } } },
        resps: [[resp]], filtered_resps: filtered, filter: f.name, metrics: Object.keys(values), ...hashes, ...values,
      });
    }
  }
  return { metrics, samples };
}

/** The index (or indices) of the right choice: an int target indexes the choices, a text target must be one. */
function goldIndices(task: Task, e: DocEntry, target: Resolved, choices: readonly string[]): number[] {
  const one = (t: unknown): number => {
    const i = typeof t === 'number' ? t : choices.indexOf(String(t));
    if (!Number.isInteger(i) || i < 0 || i >= choices.length) throw new TaskError(`${e.where}: doc_to_target ${JSON.stringify(t)} is not one of the ${choices.length} choices ${JSON.stringify(choices)} (task ${task.name})`);
    return i;
  };
  return Array.isArray(target) ? target.map(one) : [one(target)];
}

/** The acceptable answers of a generation: a choice when the task has choices, every entry of a list target. */
function generationGolds(task: Task, e: DocEntry, target: Resolved): string[] {
  if (task.config.doc_to_choice !== undefined && task.config.doc_to_choice !== null) return [targetText(task, e, task.evalDocs)];
  return Array.isArray(target) ? target.map(String) : [String(target)];
}
