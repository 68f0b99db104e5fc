// `nomoat eval judge`: MT-bench with an LLM as judge, following FastChat's llm_judge — answers of the model under
// test (a model nomoat runs with its adapters, or an OpenAI-compatible endpoint) or existing answer files, graded
// 1–10 or compared pairwise in both orders by a judge (a local model or an endpoint), with FastChat's files and
// tables, and pairwise verdicts as a battle log for `eval arena`.

import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { defineCommand } from './command.js';
import { CliError, LORA_FLAGS, THREAD_FLAG, applyLoraFlags, loadForCli, requireTokenizer, setThreads } from './common.js';
import { RECIPE_FLAG, applyRecipeFlag, readRecipeFlag } from './recipe.js';
import { formatDuration } from '../train/metrics.js';
import { toJsonl, writeTextAtomic } from '../eval/arena.js';
import { EndpointChat, LocalChat, type ChatBackend } from '../eval/judge-chat.js';
import { readAnswers, readJudgePrompts, readQuestions, type ModelAnswer, type Question } from '../eval/judge-data.js';
import {
  comparisonPairs, generateAnswers, judgeBattles, judgePairwise, judgeSingle, pairResults, pairTable, singleResults, singleTable,
  type AnswerSets, type JudgeOptions, type JudgeStats,
} from '../eval/judge.js';

const SHARED_EVAL = join(process.env.NOMOAT_SHARED_DATA ?? fileURLToPath(new URL('../../../../shared/data', import.meta.url)), 'eval');
const DEFAULT_QUESTIONS = join(SHARED_EVAL, 'mt_bench-question.jsonl');
const DEFAULT_PROMPTS = join(SHARED_EVAL, 'mt_bench-judge_prompts.jsonl');

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'the model under test: a model file or folder, or with --model-url the endpoint\'s model name' },
  'model-id': { kind: 'string', metavar: 'NAME', help: 'its name in answers and tables (default: the model\'s name + its adapters)' },
  'model-url': { kind: 'string', metavar: 'URL', help: 'answer through an OpenAI-compatible endpoint (…/v1) instead of running -m here' },
  'model-api-key': { kind: 'string', metavar: 'KEY', help: 'API key of --model-url (default: $OPENAI_API_KEY)' },
  ...LORA_FLAGS,
  ...RECIPE_FLAG,
  questions: { kind: 'string', metavar: 'FILE', help: 'question file in MT-bench\'s shape (default: the shared MT-bench questions)' },
  'judge-prompts': { kind: 'string', metavar: 'FILE', help: 'FastChat\'s judge_prompts.jsonl (default: the shared copy)' },
  'reference-answers': { kind: 'string', metavar: 'FILE', help: 'reference answers (model_answer shape) for questions whose file has none' },
  answers: { kind: 'list', metavar: 'FILE', help: 'existing answers (FastChat model_answer JSONL), grouped by model_id' },
  mode: { kind: 'string', metavar: 'MODE', help: 'single (grade 1–10) or pairwise (compare in both orders)', default: 'single' },
  'baseline-answers': { kind: 'string', metavar: 'FILE', help: 'pairwise: compare every model with these answers (default: every pair of models)' },
  judge: { kind: 'string', metavar: 'MODEL', help: 'judge with a model run here (a model file or folder)' },
  'judge-lora': { kind: 'list', metavar: 'FILE', help: 'apply a LoRA adapter to the --judge model at scale 1' },
  'judge-lora-scaled': { kind: 'pairs', metavar: ['FILE', 'SCALE'], help: 'apply a LoRA adapter to the --judge model at SCALE' },
  'judge-url': { kind: 'string', metavar: 'URL', help: 'judge through an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1' },
  'judge-model': { kind: 'string', metavar: 'NAME', help: 'the judge\'s model name at --judge-url' },
  'judge-api-key': { kind: 'string', metavar: 'KEY', help: 'API key of --judge-url (default: $OPENAI_API_KEY)' },
  'judge-max-tokens': { kind: 'int', metavar: 'N', help: 'most tokens of a judgment', default: 2048 },
  'max-new-tokens': { kind: 'int', metavar: 'N', help: 'most tokens of an answer turn', default: 1024 },
  'ctx-size': { kind: 'int', short: 'c', metavar: 'N', help: 'context of the models run here (default: each model\'s own)' },
  timeout: { kind: 'number', metavar: 'S', help: 'seconds an endpoint may take per request', default: 600 },
  parallel: { kind: 'int', short: 'j', metavar: 'N', help: 'requests in flight at once to an endpoint (answers and judgments)', default: 1 },
  retries: { kind: 'int', metavar: 'N', help: 'retries of an endpoint\'s 429 / 5xx / failed connection, with doubling backoff', default: 5 },
  limit: { kind: 'int', metavar: 'N', help: 'only the first N questions' },
  out: { kind: 'string', short: 'o', metavar: 'DIR', help: 'write model_answer/<model>.jsonl, model_judgment/<judge>_single.jsonl (or _pair.jsonl) and results.md' },
  battles: { kind: 'string', metavar: 'FILE', help: 'pairwise: write the verdicts as a battle log for `nomoat eval arena`' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

type Flags = FlagValues<typeof FLAGS>;

/** A progress line on stderr: a bar with rate and ETA on a terminal, a line per tenth otherwise. */
function progress(label: string): { update: (done: number, total: number) => void; end: () => void } {
  const t0 = performance.now();
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  let drawn = false;
  return {
    update(done, total) {
      const s = (performance.now() - t0) / 1000;
      const rate = done / Math.max(s, 1e-9);
      const eta = formatDuration((total - done) / Math.max(rate, 1e-9));
      const text = `${label} ${done}/${total} | ${(rate * 60).toFixed(1)}/min | ETA ${eta}`;
      if (tty) {
        const width = 24;
        const filled = Math.round((width * done) / Math.max(1, total));
        process.stderr.write(`\r\x1b[K${text.replace(`${done}/${total}`, `${done}/${total} [${'='.repeat(filled)}${' '.repeat(width - filled)}]`)}`);
        drawn = true;
      } else {
        const tenth = Math.floor((10 * done) / Math.max(1, total));
        if (tenth !== lastTenth || done === total) process.stderr.write(text + '\n');
        lastTenth = tenth;
      }
    },
    end() {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Runs a reader, turning its error (file:line: field) into a CliError. */
function read<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new CliError(errText(e));
  }
}

function localChat(path: string, f: Flags, name: string): LocalChat {
  const loaded = loadForCli(path);
  const tokenizer = requireTokenizer(loaded);
  if (tokenizer.chatTemplate === null) throw new CliError(`${path}: the tokenizer has no chat template, which the judge's and the answers' prompts need`);
  return new LocalChat(name, loaded.model, tokenizer, tokenizer.chatTemplate, f['ctx-size']);
}

function endpoint(url: string, model: string | undefined, key: string | undefined, f: Flags, what: string): EndpointChat {
  if (model === undefined) throw new UsageError(`${what} needs the endpoint's model name`);
  const timeout = f.timeout ?? 600;
  if (!(timeout > 0)) throw new UsageError(`--timeout must be > 0 seconds, got ${timeout}`);
  return new EndpointChat({
    url, model, apiKey: key ?? process.env.OPENAI_API_KEY, timeoutMs: timeout * 1000, retries: f.retries ?? 5,
    log: (line) => void process.stderr.write(`nomoat eval judge: ${line}\n`),
  });
}

/** A model's default name: its file or folder name and its adapters, as the arena names stacks (tiny+math@0.5). */
function stackName(base: string, lora: readonly string[], scaled: readonly [string, string][], recipe?: string): string {
  const name = (p: string): string => basename(p.replace(/\/+$/, '')).replace(/\.(gguf|bin|safetensors|json)$/, '');
  return [name(base), ...lora.map((p) => `${name(p)}@1`), ...scaled.map(([p, s]) => `${name(p)}@${s}`), ...(recipe !== undefined ? [name(recipe)] : [])].join('+');
}

/** The judge run here, with its adapters. */
async function localJudge(f: Flags, path: string): Promise<LocalChat> {
  const chat = localChat(path, f, stackName(path, f['judge-lora'], f['judge-lora-scaled']));
  await applyLoraFlags(chat.model, { lora: f['judge-lora'], 'lora-scaled': f['judge-lora-scaled'] });
  return chat;
}

/** The answers of -m: generated here or through --model-url. */
async function answersOfModel(f: Flags, questions: readonly Question[]): Promise<{ id: string; answers: ModelAnswer[] } | null> {
  const recipe = await readRecipeFlag(f.recipe);
  const base = f.model ?? recipe?.base;
  if (base === undefined) return null;
  const id = f['model-id'] ?? (f['model-url'] !== undefined ? base : stackName(base, f.lora, f['lora-scaled'], f.recipe));
  let backend: ChatBackend;
  if (f['model-url'] !== undefined) {
    if (f.lora.length > 0 || f['lora-scaled'].length > 0 || recipe !== null) throw new UsageError('--lora / --lora-scaled / --recipe apply to a model run here, not to --model-url');
    backend = endpoint(f['model-url'], base, f['model-api-key'], f, '--model-url');
  } else {
    const chat = localChat(base, f, id);
    await applyLoraFlags(chat.model, f);
    await applyRecipeFlag(chat.model, recipe);
    backend = chat;
  }
  const bar = progress(`answers of ${id}`);
  const res = await generateAnswers(questions, backend, id, { maxTokens: f['max-new-tokens'] ?? 1024, parallel: f.parallel ?? 1, onProgress: bar.update });
  bar.end();
  if (res.errors > 0) process.stderr.write(`nomoat eval judge: ${res.errors} answer turn(s) failed and read "$ERROR$":\n${res.errorSamples.map((s) => `  ${s}`).join('\n')}\n`);
  return { id, answers: res.answers };
}

function statsLines(s: JudgeStats): string {
  const lines = [`${s.calls} judge call(s); ${s.unparseable} judgment(s) without a verdict; ${s.errors} failed call(s)`];
  if (s.missing > 0) lines.push(`${s.missing} match(es) not played: an answer missing or with too few turns`);
  if (s.noReference > 0) lines.push(`${s.noReference} match(es) of a reference category had no reference answer and were judged with the general prompt`);
  return lines.map((l) => `note: ${l}`).join('\n') + (s.errorSamples.length > 0 ? '\n' + s.errorSamples.map((e) => `  ${e}`).join('\n') : '') + '\n';
}

const fileName = (s: string): string => s.replace(/[^A-Za-z0-9._@+-]+/g, '_');

export const command = defineCommand({
  name: 'eval judge',
  summary: 'LLM-as-judge: MT-bench single-answer grading and pairwise comparison',
  usage: '[-m MODEL [--lora FILE]…] [--answers FILE…] (--judge MODEL | --judge-url URL --judge-model NAME) [options]',
  description:
    "Follows FastChat's llm_judge. The model under test (-m, with its adapters or recipe; or an endpoint with\n" +
    '--model-url) answers every question turn by turn, greedily; --answers adds existing answer files (FastChat\n' +
    "model_answer JSONL). The judge gets FastChat's prompts: single-v1 / single-math-v1 (math, reasoning and coding\n" +
    'questions, with the reference answer) and their multi-turn variants for turn 2; pair-v2 / pair-math-v1 likewise.\n' +
    'Single mode reads "[[rating]]" (or "[rating]"); pairwise mode plays each match in both orders and a verdict\n' +
    'stands only when the swapped game agrees (else "inconsistent", a tie). Judgments without a verdict and failed\n' +
    'calls are counted, never fatal. Endpoints get POST {url}/chat/completions at temperature 0; 429 and 5xx are\n' +
    'retried with doubling backoff; a 400 (e.g. a prompt too long) fails that match only.',
  flags: FLAGS,
  examples: [
    'nomoat eval judge -m model.gguf --judge-url https://api.openai.com/v1 --judge-model gpt-4 --out mt-bench',
    'nomoat eval judge -m base.gguf --lora ./adapter --mode pairwise --baseline-answers base.jsonl --judge ./judge-model --battles b.jsonl',
    'nomoat eval judge --answers a.jsonl --answers b.jsonl --mode pairwise --judge-url http://127.0.0.1:8080/v1 --judge-model judge',
    'nomoat eval judge -m tiny --model-url http://127.0.0.1:8080/v1 --judge ./judge --questions vicuna_bench-question.jsonl --limit 10',
  ],
  async run({ flags: f }) {
    const mode = f.mode ?? 'single';
    if (mode !== 'single' && mode !== 'pairwise') throw new UsageError(`--mode must be single or pairwise, got ${mode}`);
    if (f.judge !== undefined && f['judge-url'] !== undefined) throw new UsageError('give either --judge MODEL or --judge-url URL, not both');
    if (f['judge-url'] !== undefined && (f['judge-lora'].length > 0 || f['judge-lora-scaled'].length > 0)) throw new UsageError('--judge-lora / --judge-lora-scaled apply to a --judge model run here, not to --judge-url');
    if (f.judge === undefined && f['judge-url'] === undefined) throw new UsageError('missing the judge: --judge MODEL (run here) or --judge-url URL --judge-model NAME');
    if (f.battles !== undefined && mode !== 'pairwise') throw new UsageError('--battles needs --mode pairwise (battles come from pairwise verdicts)');
    if (f['baseline-answers'] !== undefined && mode !== 'pairwise') throw new UsageError('--baseline-answers needs --mode pairwise');
    if (f.parallel !== undefined && f.parallel < 1) throw new UsageError(`--parallel must be ≥ 1, got ${f.parallel}`);
    if (f.limit !== undefined && f.limit < 1) throw new UsageError(`--limit must be ≥ 1, got ${f.limit}`);
    for (const [flag, v] of [['--judge-max-tokens', f['judge-max-tokens']], ['--max-new-tokens', f['max-new-tokens']]] as const) {
      if (v !== undefined && v < 1) throw new UsageError(`${flag} must be ≥ 1, got ${v}`);
    }
    setThreads(f.threads);

    const qPath = f.questions ?? DEFAULT_QUESTIONS;
    const pPath = f['judge-prompts'] ?? DEFAULT_PROMPTS;
    for (const [what, p] of [['questions', qPath], ['judge prompts', pPath]]) {
      if (!existsSync(p)) throw new CliError(`${what} not found: ${p}${p === DEFAULT_QUESTIONS || p === DEFAULT_PROMPTS ? ' (the shared data beside the clone; or pass the file)' : ''}`);
    }
    const allQuestions = read(() => readQuestions(qPath));
    const questions = f.limit !== undefined ? allQuestions.slice(0, f.limit) : allQuestions;
    const prompts = read(() => readJudgePrompts(pPath));
    const references = new Map<string, string[]>();
    if (f['reference-answers'] !== undefined) {
      const path = f['reference-answers'];
      for (const set of read(() => readAnswers(path)).values()) for (const [q, a] of set) references.set(q, a.choices[0].turns);
    }

    // the answers: existing files, the baseline, then the model under test
    const answers: AnswerSets = new Map();
    const add = (sets: AnswerSets, from: string): void => {
      for (const [m, set] of sets) {
        if (answers.has(m)) throw new CliError(`${from}: answers of ${m} were given twice`);
        answers.set(m, set);
      }
    };
    for (const p of f.answers) add(read(() => readAnswers(p)), p);
    let baseline: string | null = null;
    if (f['baseline-answers'] !== undefined) {
      const path = f['baseline-answers'];
      const sets = read(() => readAnswers(path));
      if (sets.size !== 1) throw new CliError(`${path}: the baseline file must hold one model's answers, it holds ${sets.size} (${[...sets.keys()].join(', ')})`);
      add(sets, path);
      baseline = [...sets.keys()][0];
    }
    const judge: ChatBackend = f['judge-url'] !== undefined
      ? endpoint(f['judge-url'], f['judge-model'], f['judge-api-key'], f, '--judge-url')
      : await localJudge(f, f.judge ?? '');
    const mine = await answersOfModel(f, questions);
    if (mine !== null) {
      add(new Map([[mine.id, new Map(mine.answers.map((a) => [String(a.question_id), a]))]]), '-m');
      if (f.out !== undefined) {
        mkdirSync(join(f.out, 'model_answer'), { recursive: true });
        writeTextAtomic(join(f.out, 'model_answer', `${fileName(mine.id)}.jsonl`), toJsonl(mine.answers));
      }
    }
    if (answers.size === 0) throw new UsageError('nothing to judge: give -m MODEL (answers are generated) and/or --answers FILE');
    const models = [...answers.keys()];
    if (mode === 'pairwise' && models.length < 2) throw new UsageError(`pairwise needs two models, got ${models.join(', ')}: add --answers or --baseline-answers`);

    const bar = progress(`judging (${judge.name})`);
    const opts: JudgeOptions = { judge, prompts, references, maxTokens: f['judge-max-tokens'] ?? 2048, parallel: f.parallel ?? 1, onProgress: bar.update };
    let table: string;
    let records: unknown[];
    let stats: JudgeStats;
    try {
      if (mode === 'single') {
        const r = await judgeSingle(questions, answers, opts);
        [records, stats] = [r.judgments, r.stats];
        table = singleTable(singleResults(r.judgments, questions));
      } else {
        const r = await judgePairwise(questions, answers, comparisonPairs(models, baseline), opts);
        [records, stats] = [r.judgments, r.stats];
        table = pairTable(pairResults(r.judgments));
        if (f.battles !== undefined) {
          const { battles, dropped } = judgeBattles(r.judgments, questions, answers);
          writeTextAtomic(f.battles, toJsonl(battles));
          process.stderr.write(`nomoat eval judge: ${battles.length} battle(s) → ${f.battles}${dropped > 0 ? ` (${dropped} match(es) without a verdict left out)` : ''}\n`);
        }
      }
    } catch (e) {
      bar.end();
      throw new CliError(errText(e));
    }
    bar.end();
    const report = `${table}\n${statsLines(stats)}`;
    process.stdout.write(report);
    if (f.out !== undefined) {
      mkdirSync(join(f.out, 'model_judgment'), { recursive: true });
      writeTextAtomic(join(f.out, 'model_judgment', `${fileName(judge.name)}_${mode === 'single' ? 'single' : 'pair'}.jsonl`), toJsonl(records));
      writeTextAtomic(join(f.out, 'results.md'), report);
    }
  },
});
