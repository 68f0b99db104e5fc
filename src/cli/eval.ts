// `nomoat eval`: lm-evaluation-harness-style evaluation of a model (with adapters or a recipe) on built-in tasks,
// task files (lm-eval's YAML vocabulary) and the perplexity of a text file. Prints lm-eval's results table on
// stdout; --output-path writes results.json (lm-eval's shape) and, with --log-samples, samples_<task>.jsonl.

import type { EvalResults, EvaluateOptions } from '../eval/run.js';
import type { Task } from '../eval/task.js';
import { formatDuration } from '../train/metrics.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, LORA_FLAGS, THREAD_FLAG, applyLoraFlags, loadForCli, requireTokenizer, setThreads } from './common.js';
import { RECIPE_FLAG, applyRecipeFlag, readRecipeFlag } from './recipe.js';

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'GGUF file, Hugging Face folder or llama2.c .bin' },
  tasks: { kind: 'string', metavar: 'LIST', help: 'comma-separated built-in task names, task files (.yaml/.json) and `perplexity`' },
  'num-fewshot': { kind: 'int', metavar: 'N', help: 'few-shot examples per document, for every task (default: each task\'s num_fewshot)' },
  limit: { kind: 'number', metavar: 'N', help: 'the first N documents of each task (N < 1: that share of them)' },
  'batch-size': { kind: 'int', short: 'b', metavar: 'N', help: 'sequences per forward', default: 8 },
  'output-path': { kind: 'string', short: 'o', metavar: 'DIR', help: 'write DIR/results.json (and the samples with --log-samples)' },
  'log-samples': { kind: 'boolean', help: 'also write every document\'s prompt, responses and metrics to DIR/samples_<task>.jsonl' },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the few-shot sampler and the bootstrap stderr', default: 1234 },
  'apply-chat-template': { kind: 'boolean', help: 'give every context as a user turn of the model\'s chat template' },
  'ppl-file': { kind: 'string', metavar: 'FILE', help: 'the text file of the `perplexity` task' },
  ctx: { kind: 'int', metavar: 'N', help: 'perplexity window length in tokens', default: 'the model\'s context' },
  stride: { kind: 'int', metavar: 'N', help: 'perplexity: tokens between window starts', default: 'ctx / 2' },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none (progress on stderr)', default: 'auto' },
  tokenizer: { kind: 'string', metavar: 'FILE', help: 'tokenizer.bin for a llama2.c checkpoint (default: beside it)' },
  ...THREAD_FLAG,
  ...LORA_FLAGS,
  ...RECIPE_FLAG,
} as const satisfies FlagSpecs;

/** Requests done / total with rate and ETA on stderr: one redrawn line on a terminal, a line per 10 % otherwise. */
class EvalProgress {
  private phase = '';
  /** when the current phase began: the previous phase's last report (its first report comes after a whole batch) */
  private start = performance.now();
  private last = this.start;
  private lastTenth = -1;
  private drawn = false;

  constructor(private readonly mode: 'bar' | 'lines' | 'none') {}

  update(done: number, total: number, phase: string): void {
    if (this.mode === 'none') return;
    if (phase !== this.phase) {
      this.end();
      this.phase = phase;
      this.start = this.last;
      this.lastTenth = -1;
    }
    this.last = performance.now();
    const s = (this.last - this.start) / 1000;
    const rate = s > 0 ? done / s : 0;
    const eta = rate > 0 ? (total - done) / rate : NaN;
    const text = `${phase} ${done}/${total} | ${rate.toFixed(1)} req/s | ETA ${formatDuration(eta)}`;
    if (this.mode === 'bar') {
      const width = 24;
      const filled = Math.round((width * done) / Math.max(1, total));
      const bar = '='.repeat(filled) + (filled < width ? '>' + ' '.repeat(width - filled - 1) : '');
      process.stderr.write(`\r\x1b[K[${bar}] ${text}`);
      this.drawn = true;
    } else {
      const tenth = Math.floor((10 * done) / Math.max(1, total));
      if (tenth !== this.lastTenth) process.stderr.write(`${text}\n`);
      this.lastTenth = tenth;
    }
  }

  end(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

function progressMode(s: string | undefined): 'bar' | 'lines' | 'none' {
  const m = s ?? 'auto';
  if (m === 'auto') return process.stderr.isTTY === true ? 'bar' : 'lines';
  if (m === 'bar' || m === 'lines' || m === 'none') return m;
  throw new UsageError(`--progress must be auto, bar, lines or none, got ${m}`);
}

export const command = defineCommand({
  name: 'eval',
  summary: 'evaluate a model and its adapters: perplexity and lm-evaluation-harness-style tasks',
  usage: '-m MODEL --tasks LIST [options]',
  description:
    'Runs tasks the way lm-evaluation-harness does and prints its results table (Tasks|Version|Filter|n-shot|Metric|\n' +
    'Value|Stderr). Greedy decoding; standard errors by a seeded 1000-round bootstrap; the same command gives the same\n' +
    'numbers every time.\n\n' +
    'Tasks: skills (the demo\'s four skills, held-out prompts, chat template), skills-hard (the benchmark skills),\n' +
    'gsm8k (lm-eval\'s gsm8k-cot, 8-shot; needs eval/gsm8k-test.jsonl in ../shared/data or $NOMOAT_SHARED_DATA),\n' +
    'gsm8k-plain (lm-eval\'s 5-shot gsm8k; also instruct/gsm8k-train.jsonl), opposites-mc (a multiple-choice example,\n' +
    'assets/eval/opposites-mc.yaml), any task file in lm-eval\'s YAML/JSON vocabulary (task, dataset_path to a local\n' +
    'JSONL/JSON/Parquet file, doc_to_text, doc_to_target, doc_to_choice, num_fewshot, fewshot_config, output_type\n' +
    'loglikelihood|multiple_choice|generate_until, generation_kwargs, metric_list acc|acc_norm|exact_match, filter_list;\n' +
    'a field nomoat does not implement is refused by name), and `perplexity` of the text in --ppl-file (rolling\n' +
    'windows of --ctx tokens moved by --stride; token, word and byte perplexity, bits per byte).\n\n' +
    'acc_norm divides each choice\'s log-likelihood by its length in UTF-8 bytes (lm-eval\'s acc_norm uses characters).',
  flags: FLAGS,
  examples: [
    'nomoat eval -m assets/default-model --tasks skills',
    'nomoat eval -m assets/default-model --lora nomoat-demo/adapter --tasks skills,opposites-mc -o results/',
    'nomoat eval -m model.gguf --tasks gsm8k --limit 50 --batch-size 4 --log-samples -o results/',
    'nomoat eval -m model.gguf --tasks my-task.yaml --num-fewshot 3 --seed 7',
    'nomoat eval -m model.gguf --tasks perplexity --ppl-file wiki.test.raw --ctx 512 --stride 256',
    'nomoat eval --recipe stack.json --tasks skills,skills-hard',
  ],
  async run({ flags: f }) {
    if (f.tasks === undefined || f.tasks.trim() === '') throw new UsageError('missing --tasks LIST (e.g. --tasks skills,gsm8k,my-task.yaml or --tasks perplexity --ppl-file FILE)');
    const specs = f.tasks.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (new Set(specs).size !== specs.length) throw new UsageError(`--tasks names a task twice: ${f.tasks}`);
    const wantsPpl = specs.includes('perplexity');
    if (wantsPpl && f['ppl-file'] === undefined) throw new UsageError('the perplexity task needs --ppl-file FILE (the text to score)');
    if (!wantsPpl && (f['ppl-file'] !== undefined || f.ctx !== undefined || f.stride !== undefined)) throw new UsageError('--ppl-file, --ctx and --stride belong to the perplexity task: add perplexity to --tasks');
    if (f['num-fewshot'] !== undefined && f['num-fewshot'] < 0) throw new UsageError(`--num-fewshot must be ≥ 0, got ${f['num-fewshot']}`);
    if (f.limit !== undefined && !(f.limit > 0)) throw new UsageError(`--limit must be positive, got ${f.limit}`);
    if (f.limit !== undefined && f.limit >= 1 && !Number.isInteger(f.limit)) throw new UsageError(`--limit must be a whole number of documents or a share below 1, got ${f.limit}`);
    const batchSize = f['batch-size'] ?? 8;
    if (batchSize < 1) throw new UsageError(`--batch-size must be positive, got ${batchSize}`);
    if (f['log-samples'] && f['output-path'] === undefined) throw new UsageError('--log-samples writes files: give --output-path DIR');
    const mode = progressMode(f.progress);

    const { resolveTask } = await import('../eval/builtin.js');
    const { TaskError } = await import('../eval/task.js');
    // task and data problems, and requests the model cannot take (too long for its context), are the user's to fix
    const cliError = (e: unknown): never => {
      if (e instanceof TaskError) throw new CliError(e.message);
      if (e instanceof Error && /^(loglikelihoods|perplexity|generate):/.test(e.message)) throw new CliError(e.message);
      throw e;
    };
    // tasks first: a bad task file fails before the model loads
    const tasks: Task[] = [];
    for (const s of specs.filter((x) => x !== 'perplexity')) tasks.push(await resolveTask(s).catch(cliError));

    const threads = setThreads(f.threads);
    const recipe = await readRecipeFlag(f.recipe);
    const loaded = loadForCli(f.model ?? recipe?.base, f.tokenizer);
    const tokenizer = requireTokenizer(loaded);
    await applyLoraFlags(loaded.model, f);
    await applyRecipeFlag(loaded.model, recipe);
    const adapters = [...f.lora.map((p) => ({ path: p, scale: 1 })), ...f['lora-scaled'].map(([p, s]) => ({ path: p, scale: Number(s) }))];

    const { evaluateTasks } = await import('../eval/run.js');
    const progress = new EvalProgress(mode);
    const opts: EvaluateOptions = {
      batchSize, seed: f.seed ?? 1234, logSamples: f['log-samples'], applyChatTemplate: f['apply-chat-template'],
      ...(f['num-fewshot'] !== undefined ? { numFewshot: f['num-fewshot'] } : {}),
      ...(f.limit !== undefined ? { limit: f.limit } : {}),
      modelInfo: { model: loaded.path, model_format: loaded.format, adapters, recipe: f.recipe ?? null, threads },
      onProgress: (d, n, phase) => progress.update(d, n, phase),
    };
    let results: EvalResults;
    try {
      results = evaluateTasks(loaded.model, tokenizer, tasks, opts);
      if (wantsPpl) {
        const { perplexityTask, addPerplexity } = await import('../eval/run-perplexity.js');
        const p = perplexityTask(loaded.model, tokenizer, f['ppl-file'] as string, {
          ...(f.ctx !== undefined ? { ctx: f.ctx } : {}), ...(f.stride !== undefined ? { stride: f.stride } : {}), batchSize,
          onProgress: (d, n) => progress.update(d, n, 'perplexity windows'),
        });
        addPerplexity(results, p);
      }
    } catch (e) {
      progress.end();
      return cliError(e);
    }
    progress.end();

    const { makeTable, writeResults } = await import('../eval/results.js');
    const adapterText = adapters.map((a) => `${a.path}${a.scale !== 1 ? `@${a.scale}` : ''}`).join(' ');
    process.stdout.write(
      `nomoat (model=${loaded.path}${adapterText !== '' ? `, lora=${adapterText}` : ''}${f.recipe !== undefined ? `, recipe=${f.recipe}` : ''}), ` +
      `limit: ${f.limit ?? 'None'}, num_fewshot: ${f['num-fewshot'] ?? 'None'}, batch_size: ${batchSize}\n`,
    );
    process.stdout.write(makeTable(results));
    if (f['output-path'] !== undefined) {
      const paths = writeResults(f['output-path'], results);
      process.stderr.write(`nomoat eval: wrote ${paths.join(', ')}\n`);
    }
  },
});
