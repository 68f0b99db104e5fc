// `nomoat data synth`: synthetic instruction data. Self-Instruct / Alpaca generation from seed tasks, or (--prompts)
// best-of-n answering of given prompts for distillation and rejection sampling; a model run here (-m, --lora) or an
// OpenAI-compatible endpoint; n seeded samples scored by a verifier, the top k kept; Alpaca JSONL out, each record
// with its provenance; written atomically (Ctrl-C leaves nothing half-written). The library is src/eval/synth.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSeconds } from '../data/progress.js';
import type { RecordSink } from '../data/sink.js';
import { EndpointChat, LocalChat } from '../eval/judge-chat.js';
import { readJudgePrompts } from '../eval/judge-data.js';
import { EndpointSource, LocalSource, type SampleSource, type SourceInfo } from '../eval/synth/best-of-n.js';
import { FILTER_DEFAULTS, readSeedTasks } from '../eval/synth/self-instruct.js';
import {
  answerItems, newAnswerStats, newSelfInstructStats, readPromptItems, selfInstruct, type AnswerOptions, type AnswerStats, type GeneratedTask, type SynthRecord,
} from '../eval/synth/synth.js';
import { answerVerifier, jsVerifier, judgeVerifier, nllVerifier, regexVerifier, type Verifier } from '../eval/synth/verify.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { defineCommand } from './command.js';
import { CliError, LORA_FLAGS, THREAD_FLAG, applyLoraFlags, loadForCli, requireTokenizer, setThreads } from './common.js';
import { requireOutput, withSinks } from './data-common.js';

const SHARED = process.env.NOMOAT_SHARED_DATA ?? fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const DEFAULT_SEEDS = join(SHARED, 'instruct', 'self-instruct-seed_tasks.jsonl');
const DEFAULT_JUDGE_PROMPTS = join(SHARED, 'eval', 'mt_bench-judge_prompts.jsonl');

const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'Alpaca JSONL of the kept examples, each with a "provenance" field' },
  prompts: { kind: 'string', metavar: 'FILE', help: 'answer these prompts (JSONL) best-of-n instead of generating tasks' },
  'prompt-field': { kind: 'string', metavar: 'NAME', help: 'the field holding each prompt (default: prompt, instruction (+ input) or question)' },
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'generate with a model run here (GGUF, HF folder, llama2.c .bin)' },
  ...LORA_FLAGS,
  endpoint: { kind: 'string', metavar: 'URL', help: 'generate through an OpenAI-compatible endpoint (…/v1) instead' },
  'endpoint-model': { kind: 'string', metavar: 'NAME', help: 'the model name at --endpoint' },
  'api-key-env': { kind: 'string', metavar: 'VAR', help: 'environment variable holding the endpoint\'s API key', default: 'OPENAI_API_KEY' },
  timeout: { kind: 'number', metavar: 'S', help: 'seconds an endpoint may take per request', default: 600 },
  retries: { kind: 'int', metavar: 'N', help: 'retries of an endpoint\'s 429 / 5xx / failed connection', default: 5 },
  parallel: { kind: 'int', short: 'j', metavar: 'N', help: 'endpoint requests in flight at once (the n samples of a prompt)', default: 1 },
  temp: { kind: 'number', metavar: 'T', help: 'sampling temperature (> 0 when --n > 1)', default: 1 },
  'top-p': { kind: 'number', metavar: 'P', help: 'nucleus sampling; 1 = off', default: 1 },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'base seed: prompt j\'s sample i uses seed + j·n + i; request r of Self-Instruct seed + r', default: 0 },
  'max-tokens': { kind: 'int', metavar: 'N', help: 'most tokens of an answer', default: 512 },
  'ctx-size': { kind: 'int', short: 'c', metavar: 'N', help: 'context of the model run here (default: its own)' },
  // Self-Instruct
  'seed-tasks': { kind: 'string', metavar: 'FILE', help: 'seed tasks (Self-Instruct\'s seed_tasks.jsonl or Alpaca records)', default: 'the shared Self-Instruct seeds' },
  'num-instructions': { kind: 'int', metavar: 'N', help: 'Self-Instruct: tasks to keep', default: 20 },
  'prompt-instructions': { kind: 'int', metavar: 'K', help: 'Self-Instruct: seed tasks shown per request', default: 3 },
  'prompt-header': { kind: 'string', metavar: 'FILE', help: 'Self-Instruct: the prompt\'s text before the examples ({count} = --per-request), replacing the Alpaca-style requirements' },
  'per-request': { kind: 'int', metavar: 'N', help: 'Self-Instruct: tasks each request asks for', default: 20 },
  'max-requests': { kind: 'int', metavar: 'N', help: 'Self-Instruct: give up after N requests', default: '2 × --num-instructions' },
  'gen-max-tokens': { kind: 'int', metavar: 'N', help: 'Self-Instruct: most tokens of a generation reply', default: 1536 },
  'max-similarity': { kind: 'number', metavar: 'X', help: 'Self-Instruct: keep a task only when its ROUGE-L F to every seed and kept task is below X', default: FILTER_DEFAULTS.maxSimilarity },
  'min-words': { kind: 'int', metavar: 'N', help: 'Self-Instruct: an instruction needs more than N words', default: FILTER_DEFAULTS.minWords },
  'max-words': { kind: 'int', metavar: 'N', help: 'Self-Instruct: an instruction has at most N words', default: FILTER_DEFAULTS.maxWords },
  rejected: { kind: 'string', metavar: 'FILE', help: 'Self-Instruct: JSONL of the dropped tasks with the rule and nearest instruction' },
  // best-of-n
  n: { kind: 'int', metavar: 'N', help: 'samples per prompt (best-of-n; needs a verifier when > 1)', default: 1 },
  keep: { kind: 'int', metavar: 'K', help: 'keep the K best samples of each prompt', default: 1 },
  'min-score': { kind: 'number', metavar: 'X', help: 'keep only samples scoring at least X (rejection sampling)' },
  'verify-answer': { kind: 'string', metavar: 'FIELD', help: 'score 1 when the reply\'s final answer equals the record\'s FIELD (GSM8K "####" understood), else 0' },
  'verify-regex': { kind: 'string', metavar: 'RE', help: 'score 1 when the reply matches RE (JavaScript syntax), else 0' },
  'verify-js': { kind: 'string', metavar: 'FILE', help: 'score by FILE\'s default export (record, reply) => number | boolean' },
  'verify-nll': { kind: 'boolean', help: 'score by minus the mean NLL per token of the reply under --score-model (default: -m with its adapters)' },
  'score-model': { kind: 'string', metavar: 'MODEL', help: '--verify-nll: the scoring model' },
  'score-lora': { kind: 'list', metavar: 'FILE', help: '--verify-nll: an adapter of --score-model at scale 1' },
  'score-lora-scaled': { kind: 'pairs', metavar: ['FILE', 'SCALE'], help: '--verify-nll: an adapter of --score-model at SCALE' },
  'verify-judge': { kind: 'boolean', help: 'score 1–10 by an LLM judge (MT-bench single grading): --judge or --judge-url' },
  judge: { kind: 'string', metavar: 'MODEL', help: '--verify-judge: a judge model run here' },
  'judge-url': { kind: 'string', metavar: 'URL', help: '--verify-judge: a judge endpoint (…/v1)' },
  'judge-model': { kind: 'string', metavar: 'NAME', help: '--verify-judge: the judge\'s model name at --judge-url' },
  'judge-prompts': { kind: 'string', metavar: 'FILE', help: '--verify-judge: FastChat\'s judge_prompts.jsonl', default: 'the shared copy' },
  ...THREAD_FLAG,
  quiet: { kind: 'boolean', short: 'q', help: 'no progress bar and no summary on stderr' },
} as const satisfies FlagSpecs;

type Flags = FlagValues<typeof FLAGS>;

/** A count-based progress bar on a terminal: done/total, rate per minute, ETA. */
class CountProgress {
  private readonly t0 = performance.now();
  private drawn = false;
  private last = -Infinity;
  constructor(private readonly label: string, private readonly on: boolean) {}

  update(done: number, total: number, extra = ''): void {
    if (!this.on) return;
    const now = performance.now();
    if (now - this.last < 200 && done < total) return;
    this.last = now;
    const s = Math.max(1e-3, (now - this.t0) / 1000);
    const rate = done / s;
    const width = 24, filled = Math.round((width * Math.min(done, total)) / Math.max(1, total));
    const bar = '='.repeat(filled) + (filled < width ? '>' + ' '.repeat(width - filled - 1) : '');
    const eta = rate > 0 ? formatSeconds((total - done) / rate) : '?';
    process.stderr.write(`\r\x1b[K${this.label} [${bar}] ${done}/${total} ${(rate * 60).toFixed(1)}/min ETA ${eta}${extra}`);
    this.drawn = true;
  }

  end(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}

const positive = (flag: string, v: number | undefined): void => {
  if (v !== undefined && !(v >= 1)) throw new UsageError(`${flag} must be ≥ 1, got ${v}`);
};

/** Runs f, turning a library error (file:line: field: what) into a CliError. */
function read<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

function adaptersOf(lora: readonly string[], scaled: readonly [string, string][]): { path: string; scale: number }[] {
  return [...lora.map((path) => ({ path, scale: 1 })), ...scaled.map(([path, s]) => ({ path, scale: Number(s) }))];
}

/** The sample source, and the model run here (for --verify-nll's default). */
async function openSource(f: Flags): Promise<{ source: SampleSource; local: LocalSource | null; chat: LocalChat | null }> {
  const temperature = f.temp ?? 1;
  if (f.endpoint !== undefined) {
    if (f['endpoint-model'] === undefined) throw new UsageError('--endpoint needs --endpoint-model NAME (the model name at the endpoint)');
    if (f.lora.length > 0 || f['lora-scaled'].length > 0) throw new UsageError('--lora / --lora-scaled apply to a model run here (-m), not to --endpoint');
    const timeout = f.timeout ?? 600;
    if (!(timeout > 0)) throw new UsageError(`--timeout must be > 0 seconds, got ${timeout}`);
    const envName = f['api-key-env'] ?? 'OPENAI_API_KEY';
    const client = new EndpointChat({
      url: f.endpoint, model: f['endpoint-model'], apiKey: process.env[envName], timeoutMs: timeout * 1000, retries: f.retries ?? 5,
      log: (line) => void process.stderr.write(`\nnomoat data synth: ${line}\n`),
    });
    const info: SourceInfo = { model: f['endpoint-model'], adapters: [], endpoint: f.endpoint, temperature };
    return { source: new EndpointSource(info, client, f['top-p'] ?? 1, f.parallel ?? 1), local: null, chat: null };
  }
  const path = f.model;
  if (path === undefined) throw new UsageError('missing the generator: -m MODEL (run here) or --endpoint URL --endpoint-model NAME');
  const loaded = loadForCli(path);
  const tokenizer = requireTokenizer(loaded);
  await applyLoraFlags(loaded.model, f);
  const ctx = f['ctx-size'] ?? loaded.model.config.maxPositionEmbeddings;
  const chat = tokenizer.chatTemplate !== null ? new LocalChat(path, loaded.model, tokenizer, tokenizer.chatTemplate, ctx) : null;
  const info: SourceInfo = { model: path, adapters: adaptersOf(f.lora, f['lora-scaled']), temperature };
  const local = new LocalSource(info, loaded.model, tokenizer, chat !== null ? (m) => chat.promptIds(m) : null, { temperature, topP: f['top-p'] ?? 1 }, ctx);
  return { source: local, local, chat };
}

/** The verifier the flags name (at most one), or null. */
async function openVerifier(f: Flags, local: LocalSource | null): Promise<Verifier | null> {
  const given = (['verify-answer', 'verify-regex', 'verify-js', 'verify-nll', 'verify-judge'] as const).filter((k) => f[k] !== undefined && f[k] !== false);
  if (given.length > 1) throw new UsageError(`give one verifier, got ${given.map((g) => `--${g}`).join(' and ')}`);
  if (f['verify-answer'] !== undefined) return answerVerifier(f['verify-answer']);
  if (f['verify-regex'] !== undefined) {
    const re = f['verify-regex'];
    try {
      return regexVerifier(re);
    } catch (e) {
      throw new UsageError(`--verify-regex ${JSON.stringify(re)}: ${(e as Error).message}`);
    }
  }
  if (f['verify-js'] !== undefined) {
    const file = f['verify-js'];
    if (!existsSync(file)) throw new CliError(`--verify-js: ${file} not found`);
    try {
      return await jsVerifier(file);
    } catch (e) {
      throw new CliError(`--verify-js: ${(e as Error).message}`);
    }
  }
  if (f['verify-nll']) {
    if (f['score-model'] === undefined) {
      if (local === null) throw new UsageError('--verify-nll with --endpoint needs --score-model MODEL (a model run here to score with)');
      if (f['score-lora'].length > 0 || f['score-lora-scaled'].length > 0) throw new UsageError('--score-lora / --score-lora-scaled need --score-model');
      return nllVerifier(local.info.model, local.model, local.tokenizer, local.chat ? null : (m) => local.ids(m));
    }
    const path = f['score-model'];
    const loaded = loadForCli(path);
    const tokenizer = requireTokenizer(loaded);
    await applyLoraFlags(loaded.model, { lora: f['score-lora'], 'lora-scaled': f['score-lora-scaled'] });
    const name = [path, ...adaptersOf(f['score-lora'], f['score-lora-scaled']).map((a) => `${a.path}@${a.scale}`)].join('+');
    return nllVerifier(name, loaded.model, tokenizer, tokenizer.chatTemplate !== null ? null : (m) => tokenizer.encode(m.map((x) => x.content).join('\n\n')));
  }
  if (f['verify-judge']) {
    const pPath = f['judge-prompts'] ?? DEFAULT_JUDGE_PROMPTS;
    if (!existsSync(pPath)) throw new CliError(`judge prompts not found: ${pPath}${f['judge-prompts'] === undefined ? ' (the shared data beside the clone; or pass --judge-prompts FILE)' : ''}`);
    const prompts = read(() => readJudgePrompts(pPath));
    if (f.judge !== undefined && f['judge-url'] !== undefined) throw new UsageError('give either --judge MODEL or --judge-url URL, not both');
    if (f['judge-url'] !== undefined) {
      if (f['judge-model'] === undefined) throw new UsageError('--judge-url needs --judge-model NAME');
      const judge = new EndpointChat({ url: f['judge-url'], model: f['judge-model'], apiKey: process.env[f['api-key-env'] ?? 'OPENAI_API_KEY'], timeoutMs: (f.timeout ?? 600) * 1000, retries: f.retries ?? 5 });
      return judgeVerifier(judge, prompts);
    }
    if (f.judge === undefined) throw new UsageError('--verify-judge needs the judge: --judge MODEL (run here) or --judge-url URL --judge-model NAME');
    const loaded = loadForCli(f.judge);
    const tokenizer = requireTokenizer(loaded);
    if (tokenizer.chatTemplate === null) throw new CliError(`${f.judge}: the tokenizer has no chat template, which the judge's prompts need`);
    return judgeVerifier(new LocalChat(f.judge, loaded.model, tokenizer, tokenizer.chatTemplate), prompts);
  }
  for (const k of ['score-model', 'judge', 'judge-url', 'judge-model'] as const) {
    if (f[k] !== undefined) throw new UsageError(`--${k} belongs to ${k === 'score-model' ? '--verify-nll' : '--verify-judge'}, which is not given`);
  }
  return null;
}

function checkFlags(f: Flags, hasVerifier: boolean): void {
  for (const k of ['n', 'keep', 'num-instructions', 'prompt-instructions', 'per-request', 'max-requests', 'max-tokens', 'gen-max-tokens', 'parallel', 'ctx-size'] as const) positive(`--${k}`, f[k]);
  const n = f.n ?? 1, keep = f.keep ?? 1, temp = f.temp ?? 1;
  if (!(temp >= 0)) throw new UsageError(`--temp must be ≥ 0, got ${temp}`);
  const topP = f['top-p'] ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`);
  if (keep > n) throw new UsageError(`--keep ${keep} is more than --n ${n} samples`);
  if (n > 1 && !hasVerifier) throw new UsageError('--n > 1 needs a verifier to rank the samples: --verify-answer, --verify-regex, --verify-js, --verify-nll or --verify-judge');
  if (n > 1 && temp === 0) throw new UsageError('--n > 1 needs --temp > 0: at temperature 0 every sample is the same');
  if (f['min-score'] !== undefined && !hasVerifier) throw new UsageError('--min-score needs a verifier');
  const sim = f['max-similarity'] ?? FILTER_DEFAULTS.maxSimilarity;
  if (!(sim > 0 && sim <= 1)) throw new UsageError(`--max-similarity must be in (0, 1], got ${sim}`);
  if (f['min-words'] !== undefined && f['min-words'] < 0) throw new UsageError(`--min-words must be ≥ 0, got ${f['min-words']}`);
  if (f.prompts !== undefined) {
    for (const k of ['seed-tasks', 'num-instructions', 'prompt-instructions', 'prompt-header', 'per-request', 'max-requests', 'gen-max-tokens', 'max-similarity', 'rejected'] as const) {
      if (f[k] !== undefined) throw new UsageError(`--${k} is a Self-Instruct flag; --prompts answers the given prompts instead`);
    }
  } else if (f['prompt-field'] !== undefined) throw new UsageError('--prompt-field needs --prompts FILE');
}

function readHeader(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`--prompt-header: cannot read ${path}: ${(e as Error).message}`);
  }
  if (text.trim() === '') throw new CliError(`--prompt-header: ${path} is empty`);
  return text;
}

function write(sink: RecordSink, r: SynthRecord): void {
  sink.writeObject({ instruction: r.instruction, input: r.input, output: r.output, provenance: r.provenance });
}

function failureNote(what: string, failed: number, failures: readonly string[]): string {
  return failed > 0 ? `\nnote: ${failed} ${what} could not be run:\n${failures.map((s) => `  ${s}`).join('\n')}` : '';
}

export const command = defineCommand({
  name: 'data synth',
  summary: 'synthesize instruction data: Self-Instruct from seed tasks, or best-of-n answers to prompts (--prompts), with provenance',
  usage: '(-m MODEL [--lora FILE]… | --endpoint URL --endpoint-model NAME) -o OUT [--prompts FILE] [--n N --keep K --verify-…] [options]',
  description: [
    'Self-Instruct (default): each request shows --prompt-instructions seed tasks and asks for --per-request more (the',
    'Alpaca prompt); the numbered reply is parsed into instruction / input / output, and a task is dropped when its',
    'instruction has ≤ 3 or > 150 words, names a blacklisted thing (image, graph, picture, file, map, draw, plot, go',
    'to, video, audio, music, flowchart, diagram), starts with "Write a program", punctuation or a non-ASCII letter,',
    'or is too close to a seed or kept task (ROUGE-L F ≥ --max-similarity on word tokens). Runs until',
    '--num-instructions are kept or --max-requests are spent.',
    '--prompts FILE answers each prompt instead (distillation, rejection sampling). Either way, with --n N each prompt',
    '(or generated task) is answered N times at --temp, each sample seeded, scored by the verifier, and the best',
    '--keep K are written (--min-score drops those below a score). A generated task without an output is answered',
    'once. Output: Alpaca JSONL {instruction, input, output, provenance: {model, adapters, endpoint?, temperature,',
    'seed, sample, n, score, verifier, source}}; `data validate` and `finetune` ignore the extra field. Endpoints get',
    'the API key from $OPENAI_API_KEY (or --api-key-env VAR); the file is written atomically.',
  ].join('\n'),
  flags: FLAGS,
  examples: [
    'nomoat data synth -m model.gguf -o tasks.jsonl --num-instructions 100',
    'nomoat data synth --endpoint https://api.openai.com/v1 --endpoint-model gpt-4o-mini -o alpaca.jsonl --seed-tasks seed_tasks.jsonl',
    'nomoat data synth -m model.gguf --lora ./math --prompts gsm8k.jsonl --n 8 --keep 1 --verify-answer answer --min-score 1 -o distill.jsonl',
    'nomoat data synth --endpoint http://127.0.0.1:8080/v1 --endpoint-model tiny --prompts p.jsonl --n 4 --verify-js check.mjs -o best.jsonl',
    'nomoat data synth -m model.gguf --prompts p.jsonl --n 4 --keep 2 --verify-nll --score-model judge.gguf -o best.jsonl',
  ],
  async run({ flags: f }) {
    const out = requireOutput(f.output);
    const quiet = f.quiet === true;
    setThreads(f.threads);
    // cheap checks before any model loads
    const anyVerifier = ['verify-answer', 'verify-regex', 'verify-js'].some((k) => f[k as 'verify-js'] !== undefined) || f['verify-nll'] === true || f['verify-judge'] === true;
    checkFlags(f, anyVerifier);
    if (f.model !== undefined && f.endpoint !== undefined) throw new UsageError('give either -m MODEL or --endpoint URL, not both');
    const items = f.prompts !== undefined ? read(() => readPromptItems(f.prompts!, f['prompt-field'])) : null;
    const seedsPath = f['seed-tasks'] ?? DEFAULT_SEEDS;
    if (items === null && !existsSync(seedsPath)) throw new CliError(`seed tasks not found: ${seedsPath}${f['seed-tasks'] === undefined ? ' (the shared data beside the clone; or pass --seed-tasks FILE)' : ''}`);
    const seeds = items === null ? read(() => readSeedTasks(seedsPath)) : [];

    const { source, local } = await openSource(f);
    const verifier = await openVerifier(f, local);
    const n = f.n ?? 1;
    const answer: AnswerOptions = { n, keep: f.keep ?? 1, minScore: f['min-score'], maxTokens: f['max-tokens'] ?? 512, verifier, seed: f.seed ?? 0 };
    const aStats = newAnswerStats();
    const bar = new CountProgress(items !== null ? 'answering' : 'self-instruct', !quiet && process.stderr.isTTY === true);
    const sinks = [{ path: out, format: 'same' as const }, ...(f.rejected !== undefined ? [{ path: f.rejected, format: 'same' as const }] : [])];

    let summaryLine: string;
    try {
      summaryLine = await withSinks(sinks, async ([sink, rejected]) => {
        if (items !== null) {
          answer.onItem = (done, total) => bar.update(done, total, ` kept ${aStats.kept}`);
          for await (const r of answerItems(items, source, answer, aStats)) write(sink, r);
          if (sink.count === 0) throw new CliError(`no sample was kept (of ${aStats.prompts} prompts)${failureNote('prompt(s)', aStats.failed, aStats.failures)}${aStats.empty > 0 ? `\n${aStats.empty} prompt(s) had no sample with a score${answer.minScore !== undefined ? ` of at least ${answer.minScore}` : ''}` : ''}`);
          return `kept ${aStats.kept} answers to ${aStats.prompts} prompts (best ${answer.keep} of ${n}${verifier !== null ? ` by ${verifier.name}` : ''}) → ${out}${aStats.empty > 0 ? `; ${aStats.empty} prompt(s) kept none` : ''}${failureNote('prompt(s)', aStats.failed, aStats.failures)}`;
        }
        return await runSelfInstruct(f, source, seeds, answer, aStats, sink, rejected, bar, out);
      });
    } finally {
      bar.end();
    }
    if (!quiet) process.stderr.write(`${summaryLine}\n`);
  },
});

async function runSelfInstruct(f: Flags, source: SampleSource, seeds: ReturnType<typeof readSeedTasks>, answer: AnswerOptions, aStats: AnswerStats, sink: RecordSink, rejected: RecordSink | undefined, bar: CountProgress, out: string): Promise<string> {
  const count = f['num-instructions'] ?? 20;
  const maxRequests = f['max-requests'] ?? 2 * count;
  const sStats = newSelfInstructStats();
  const gen = selfInstruct(source, {
    seeds, count, shown: f['prompt-instructions'] ?? 3, header: f['prompt-header'] !== undefined ? readHeader(f['prompt-header']) : undefined, perRequest: f['per-request'] ?? 20, maxRequests, maxTokens: f['gen-max-tokens'] ?? 1536, seed: f.seed ?? 0,
    filter: { ...FILTER_DEFAULTS, maxSimilarity: f['max-similarity'] ?? FILTER_DEFAULTS.maxSimilarity, minWords: f['min-words'] ?? FILTER_DEFAULTS.minWords, maxWords: f['max-words'] ?? FILTER_DEFAULTS.maxWords },
    onRequest: (r, kept) => bar.update(kept, count, ` (request ${r}/${maxRequests})`),
    onRejected: (task, rule, similarity, nearest, where) => rejected?.writeObject({ where, rule, similarity, nearest, ...task }),
  }, sStats);
  // a task is answered when best-of-n is asked for, or when the reply gave it no output
  const reanswer = answer.n > 1 || answer.verifier !== null;
  let j = 0;
  for await (const t of gen) {
    if (!reanswer && t.task.output !== '') {
      write(sink, { ...t.task, provenance: t.provenance });
      continue;
    }
    const one: GeneratedTask[] = [t];
    // each task's samples get seeds of their own, after the generation requests' (seed + r)
    const opts = { ...answer, seed: answer.seed + maxRequests + j * answer.n };
    j++;
    for await (const r of answerItems(one, source, opts, aStats)) write(sink, r);
  }
  if (sink.count === 0) throw new CliError(`no task was kept${sStats.kept > 0 ? ' with an answer' : ''}: ${sStats.requests} request(s), ${sStats.parsed} task(s) parsed, ${[...sStats.byRule].map(([k, v]) => `${k} ${v}`).join(', ') || 'none dropped'}${failureNote('request(s)', sStats.failed, sStats.failures)}`);
  const rules = [...sStats.byRule].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    `kept ${sStats.kept} of ${sStats.parsed} parsed tasks from ${sStats.requests} request(s) → ${out} (${sink.count} records)`,
    ...(rules !== '' ? [`dropped: ${rules}`] : []),
    ...(sStats.unparsed > 0 ? [`${sStats.unparsed} piece(s) of replies held no task or were cut by the token limit`] : []),
    ...(sStats.kept < count ? [`note: ${count} tasks were asked for; ${sStats.requests} request(s) gave ${sStats.kept} (raise --max-requests, or use a stronger model)`] : []),
    ...(aStats.prompts > 0 ? [`answered ${aStats.prompts} task(s), kept ${aStats.kept} answer(s)${aStats.empty > 0 ? `; ${aStats.empty} kept none` : ''}`] : []),
  ];
  return lines.join('\n') + failureNote('request(s)', sStats.failed, sStats.failures) + failureNote('task(s)', aStats.failed, aStats.failures);
}
