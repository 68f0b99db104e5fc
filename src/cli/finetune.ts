// `nomoat finetune`: trains a LoRA adapter on instruction data (Alpaca, ShareGPT or OpenAI messages JSONL) over a
// frozen base and writes it as a PEFT folder plus a GGUF LoRA, with metrics.jsonl, loss.svg and checkpoints.
// Also the pieces `nomoat demo` shares: the bundled model's path and trainAdapter().
//
// Output folder (-o OUT), usable as `--lora OUT` (PEFT) or `--lora OUT/adapter.gguf` (llama.cpp too):
//   OUT/adapter_config.json, OUT/adapter_model.safetensors   PEFT LoRA
//   OUT/adapter.gguf                                          GGUF LoRA
//   OUT/metrics.jsonl, OUT/loss.svg, OUT/checkpoints/         training record; checkpoints serve --resume

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConversations, MAX_REPLAY_SHARE, mixReplay, trainEvalSplit, type Conversation, type LoadResult } from '../data/index.js';
import { LoraAdapter, saveGgufLora, savePeftAdapter, type LoraConfig } from '../lora/index.js';
import { LINEAR_MODULES, type LinearModule } from '../models/llama.js';
import type { LoadedModel } from '../models/load.js';
import type { Tokenizer } from '../tokenizer/index.js';
import {
  conversationExample, finetune, finetuneRows, parseScheduleKind, TRAIN_DEFAULTS, type BatchMode, type FinetuneResult,
  type ProgressMode, type TrainConfig,
} from '../train/index.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, requireTokenizer, setThreads, THREAD_FLAG } from './common.js';

/** The bundled base model (a package-relative path, so `nomoat demo` works from any folder). */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../../assets/default-model', import.meta.url));

export function defaultModelOr(path: string | undefined): string {
  if (path !== undefined) return path;
  if (!existsSync(join(DEFAULT_MODEL, 'config.json'))) throw new CliError(`no -m MODEL given and the bundled model is missing (${DEFAULT_MODEL}); see assets/NOTICE.md to rebuild it`);
  return DEFAULT_MODEL;
}

/** "q_proj,v_proj" or "all-linear" → LoraConfig.targetModules. */
export function parseTargets(s: string): LoraConfig['targetModules'] {
  if (s === 'all-linear') return 'all-linear';
  const list = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const bad = list.find((m) => !(LINEAR_MODULES as readonly string[]).includes(m));
  if (bad !== undefined || list.length === 0) throw new UsageError(`--target-modules takes all-linear or a comma-separated list of ${LINEAR_MODULES.join(',')}; got ${JSON.stringify(bad ?? s)}`);
  return list as LinearModule[];
}

/** Training rows the conversations make (what one epoch is), and the rows left out for having no trained token. */
export function rowStats(tokenizer: Tokenizer, convs: readonly Conversation[], mode: BatchMode, seqLen: number, template?: string): { rows: number; dropped: number } {
  const r = finetuneRows(convs.map((c) => conversationExample(tokenizer, c, template)), mode, seqLen);
  return { rows: r.rows.length, dropped: r.dropped };
}

/** Training rows the conversations make (what one epoch is). */
export function countRows(tokenizer: Tokenizer, convs: readonly Conversation[], mode: BatchMode, seqLen: number, template?: string): number {
  return rowStats(tokenizer, convs, mode, seqLen, template).rows;
}

/** What finetuneRows dropped, in the user's terms (null when nothing was). */
export function droppedMessage(dropped: number, of: number, mode: BatchMode, seqLen: number): string | null {
  if (dropped === 0) return null;
  return mode === 'padded'
    ? `dropped ${dropped} of ${of} training conversations whose whole reply falls past -c ${seqLen} (nothing to learn); a larger -c keeps them`
    : `dropped ${dropped} packed rows holding only prompt tokens (conversations longer than -c ${seqLen}); a larger -c keeps their prompts with their replies`;
}

export interface TrainAdapterOptions {
  loaded: LoadedModel;
  tokenizer: Tokenizer;
  train: readonly Conversation[];
  eval: readonly Conversation[];
  lora: Partial<LoraConfig>;
  seed: number; // adapter initialization, dropout and data order
  mode: BatchMode;
  seqLen: number;
  batchSize: number;
  template?: string;
  config: Partial<TrainConfig> & { steps: number; outDir: string };
}

export interface TrainAdapterResult extends FinetuneResult {
  adapter: LoraAdapter;
  /** the GGUF LoRA written beside the PEFT files (null when interrupted) */
  gguf: string | null;
}

/** Creates an adapter over the loaded base, trains it, and (unless interrupted) writes PEFT + GGUF into outDir. */
export async function trainAdapter(o: TrainAdapterOptions): Promise<TrainAdapterResult> {
  const { model } = o.loaded;
  const adapter = LoraAdapter.create(model, o.lora, { seed: o.seed, name: 'finetune' });
  const r = await finetune({
    model, adapter, tokenizer: o.tokenizer, conversations: o.train, evalConversations: o.eval, mode: o.mode, seqLen: o.seqLen,
    batchSize: o.batchSize, dataSeed: o.seed, train: o.config, ...(o.template !== undefined ? { template: o.template } : {}),
  });
  let gguf: string | null = null;
  if (!r.result.interrupted) {
    const out = o.config.outDir;
    savePeftAdapter(adapter, out, { baseModelNameOrPath: o.loaded.path }); // finetune() wrote it without the base path
    gguf = join(out, 'adapter.gguf');
    saveGgufLora(adapter, gguf, { name: 'nomoat finetune' });
  }
  return { ...r, adapter, gguf };
}

export const LORA_TRAIN_FLAGS = {
  'target-modules': { kind: 'string', metavar: 'LIST', help: `all-linear or a comma-separated list of ${LINEAR_MODULES.join(',')}`, default: 'q_proj,v_proj' },
  rank: { kind: 'int', short: 'r', metavar: 'R', help: 'LoRA rank', default: 8 },
  alpha: { kind: 'number', metavar: 'A', help: 'LoRA alpha (the update is scaled by alpha / rank)', default: 16 },
  dropout: { kind: 'number', metavar: 'P', help: 'LoRA dropout while training', default: 0 },
} as const satisfies FlagSpecs;

export function loraFrom(f: FlagValues<typeof LORA_TRAIN_FLAGS>, defaults: { targets: string; r: number; alpha: number }): Partial<LoraConfig> {
  const c = { targetModules: parseTargets(f['target-modules'] ?? defaults.targets), r: f.rank ?? defaults.r, loraAlpha: f.alpha ?? defaults.alpha, loraDropout: f.dropout ?? 0 };
  if (!Number.isInteger(c.r) || c.r < 1) throw new UsageError(`-r must be a positive integer, got ${c.r}`);
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${c.loraDropout}`);
  return c;
}

export function parseProgress(s: string | undefined): ProgressMode {
  const v = s ?? 'auto';
  if (!['auto', 'bar', 'lines', 'none'].includes(v)) throw new UsageError(`--progress must be auto|bar|lines|none, got ${v}`);
  return v as ProgressMode;
}

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'base model: Hugging Face folder or GGUF (default: the bundled model)' },
  output: { kind: 'string', short: 'o', metavar: 'DIR', help: 'output folder (adapter, metrics.jsonl, loss.svg, checkpoints/)' },
  'eval-data': { kind: 'string', metavar: 'FILE', help: 'held-out data (default: --eval-split of DATA)' },
  format: { kind: 'string', metavar: 'F', help: 'data format: auto|alpaca|sharegpt|openai', default: 'auto' },
  'skip-bad-lines': { kind: 'boolean', help: 'drop malformed records (and say how many) instead of refusing to start' },
  replay: { kind: 'string', metavar: 'FILE', help: 'general conversations mixed into training against forgetting (same formats as DATA)' },
  'replay-share': { kind: 'number', metavar: 'F', help: `share of the training conversations drawn from --replay, in [0, ${MAX_REPLAY_SHARE}]`, default: 0.5 },
  ...LORA_TRAIN_FLAGS,
  lr: { kind: 'number', metavar: 'LR', help: 'peak learning rate', default: 5e-4 },
  epochs: { kind: 'number', metavar: 'N', help: 'passes over the training data (default 1 unless --steps)' },
  steps: { kind: 'int', metavar: 'N', help: 'optimizer updates (instead of --epochs)' },
  batch: { kind: 'int', short: 'b', metavar: 'N', help: 'rows per micro-batch', default: 4 },
  'seq-len': { kind: 'int', short: 'c', metavar: 'N', help: 'tokens per row', default: 'min(512, model context)' },
  'grad-accum': { kind: 'int', metavar: 'N', help: 'micro-batches per update', default: 1 },
  packing: { kind: 'string', metavar: 'MODE', help: 'packed (conversations fill whole rows) or padded (one per row)', default: 'packed' },
  warmup: { kind: 'int', metavar: 'N', help: 'warmup updates', default: 0 },
  schedule: { kind: 'string', metavar: 'S', help: 'constant|constant_with_warmup|linear|cosine', default: 'cosine' },
  'weight-decay': { kind: 'number', metavar: 'W', help: 'AdamW decoupled weight decay', default: 0 },
  'eval-split': { kind: 'number', metavar: 'F', help: 'fraction of DATA held out for evaluation', default: 0.05 },
  'eval-every': { kind: 'int', metavar: 'N', help: 'evaluate every N updates (and at the end)', default: 0 },
  'save-every': { kind: 'int', metavar: 'N', help: 'checkpoint every N updates (also at the end and on Ctrl-C)', default: 0 },
  resume: { kind: 'boolean', help: 'continue from the newest checkpoint in the output folder' },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the adapter init, dropout, split and data order', default: 0 },
  'chat-template': { kind: 'string', metavar: 'FILE', help: 'a Jinja chat template (default: the tokenizer\'s)' },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none', default: 'auto' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

/** Reads a dataset, turning loader errors (which name file:line) into CLI errors. */
export async function readData(path: string, format: string, skip: boolean, what = 'data file'): Promise<LoadResult> {
  if (!existsSync(path)) throw new CliError(`${what} not found: ${path}`);
  if (!['auto', 'alpaca', 'sharegpt', 'openai'].includes(format)) throw new UsageError(`--format must be auto|alpaca|sharegpt|openai, got ${format}`);
  try {
    return await loadConversations(path, { format: format as 'auto', skip });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new CliError(`${msg}${skip ? '' : '\n(fix these records, or pass --skip-bad-lines to train without them)'}`);
  }
}

export const command = defineCommand({
  name: 'finetune',
  summary: 'fine-tune a LoRA adapter on instruction data (PEFT + GGUF output)',
  usage: 'DATA -o DIR [-m MODEL] [options]',
  description:
    'DATA is JSONL (or a .json array) of Alpaca {instruction, input, output}, ShareGPT {conversations} or OpenAI\n' +
    '{messages} records. Conversations are rendered with the model\'s chat template; loss is on assistant replies only.\n' +
    'A malformed record stops training before it starts, naming file:line (--skip-bad-lines drops them instead).\n' +
    'Ctrl-C finishes the current step and saves a checkpoint; run the same command with --resume to continue.\n' +
    '--replay FILE mixes general conversations into the training set (not the eval set), so that an adapter also\n' +
    'learns what to leave alone: one trained only on its task answers every prompt as if it were that task. For the\n' +
    'bundled model, assets/data/generic-chats.jsonl holds chats like those it was pretrained on.\n' +
    'Writes DIR/adapter_config.json + adapter_model.safetensors (PEFT), DIR/adapter.gguf, metrics.jsonl, loss.svg.',
  flags: FLAGS,
  positionals: [{ name: 'data', help: 'training data (.jsonl or .json)' }],
  examples: [
    'nomoat finetune data.jsonl -o my-adapter',
    'nomoat finetune alpaca.json -m qwen2.5-0.5b-instruct/ --target-modules all-linear -r 16 --alpha 32 --epochs 2 -o out',
    'nomoat finetune chats.jsonl -m model.gguf --steps 500 --lr 1e-3 --batch 8 -c 256 --eval-every 50 --save-every 100 -o out',
    'nomoat finetune chats.jsonl -o out --resume',
    'nomoat finetune assets/data/demo.jsonl --replay assets/data/generic-chats.jsonl --replay-share 0.5 -o out',
    'nomoat chat -m assets/default-model --lora out',
  ],
  async run({ flags: f, positionals }) {
    const out = f.output;
    if (out === undefined) throw new UsageError('missing -o DIR (where the adapter is written)');
    if (f.steps !== undefined && f.epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
    const lora = loraFrom(f, { targets: 'q_proj,v_proj', r: 8, alpha: 16 });
    const mode = f.packing ?? 'packed';
    if (mode !== 'packed' && mode !== 'padded') throw new UsageError(`--packing must be packed or padded, got ${mode}`);
    const schedule = tryUsage(() => parseScheduleKind(f.schedule ?? 'cosine'));
    const progress = parseProgress(f.progress);
    const evalSplit = f['eval-split'] ?? 0.05;
    if (!(evalSplit >= 0 && evalSplit < 1)) throw new UsageError(`--eval-split must be in [0, 1), got ${evalSplit}`);
    const seed = f.seed ?? 0;
    const replayShare = f['replay-share'] ?? 0.5;
    if (f.replay === undefined && f['replay-share'] !== undefined) throw new UsageError('--replay-share needs --replay FILE (the conversations to mix in)');
    if (!(replayShare >= 0 && replayShare <= MAX_REPLAY_SHARE)) throw new UsageError(`--replay-share must be in [0, ${MAX_REPLAY_SHARE}], got ${replayShare}`);

    // data first: a bad record must stop us before the model loads
    const skip = f['skip-bad-lines'];
    const data = await readData(positionals[0], f.format ?? 'auto', skip);
    const evalData = f['eval-data'] !== undefined ? await readData(f['eval-data'], f.format ?? 'auto', skip) : null;
    const replayData = f.replay !== undefined ? await readData(f.replay, 'auto', skip, 'replay file') : null;
    for (const d of [data, evalData, replayData]) {
      if (d !== null && d.skipped.length > 0) process.stderr.write(`nomoat: skipped ${d.skipped.length} bad record(s) of ${d.file} (first: ${d.skipped[0].where}: ${d.skipped[0].message})\n`);
    }
    const split = evalData !== null ? { train: data.conversations, eval: evalData.conversations } : trainEvalSplit(data.conversations, { evalFraction: evalSplit, seed });
    if (split.train.length === 0) throw new CliError(`${data.file}: nothing left to train on after the eval split`);
    if (replayData !== null && replayData.conversations.length === 0) throw new CliError(`${replayData.file}: no conversations to replay`);
    const mixed = replayData === null ? null : mixReplay(split.train, replayData.conversations, replayShare, seed);
    const train = mixed?.items ?? split.train;

    const threads = setThreads(f.threads);
    const loaded = loadForCli(defaultModelOr(f.model));
    const tokenizer = requireTokenizer(loaded);
    const template = f['chat-template'] !== undefined ? readTemplateFile(f['chat-template']) : undefined;
    if (template === undefined && tokenizer.chatTemplate === null) throw new CliError(`${loaded.path}: the tokenizer has no chat template; pass --chat-template FILE`);
    const cfg = loaded.model.config;
    const seqLen = f['seq-len'] ?? Math.min(512, cfg.maxPositionEmbeddings);
    if (seqLen < 2 || seqLen > cfg.maxPositionEmbeddings) throw new UsageError(`-c must be in [2, ${cfg.maxPositionEmbeddings}] (the model's context), got ${seqLen}`);
    const batch = f.batch ?? 4;
    const accum = f['grad-accum'] ?? 1;
    if (batch < 1 || accum < 1) throw new UsageError('--batch and --grad-accum must be positive');

    const rows = rowStats(tokenizer, train, mode, seqLen, template);
    const dropped = droppedMessage(rows.dropped, mode === 'padded' ? train.length : rows.rows + rows.dropped, mode, seqLen);
    if (dropped !== null) process.stderr.write(`nomoat: ${dropped}\n`);
    if (rows.rows === 0) throw new CliError(`${data.file}: no conversation has a reply token within -c ${seqLen}`);
    let steps = f.steps;
    if (steps === undefined) {
      const epochs = f.epochs ?? 1;
      if (!(epochs > 0)) throw new UsageError(`--epochs must be > 0, got ${epochs}`);
      steps = Math.max(1, Math.ceil((epochs * rows.rows) / (batch * accum)));
    }
    if (steps < 1) throw new UsageError(`--steps must be positive, got ${steps}`);
    process.stderr.write(
      `nomoat: ${loaded.path} (${cfg.numLayers} layers, C ${cfg.hiddenSize}) on ${threads} thread(s); ${split.train.length} training ` +
        `${mixed !== null ? `(+ ${mixed.replayed} replayed from ${replayData!.file}) ` : ''}and ` +
        `${split.eval.length} eval conversations (${data.format}); LoRA r ${lora.r} alpha ${lora.loraAlpha} on ${String(lora.targetModules)}; ` +
        `${steps} steps of ${batch}×${accum} rows of ≤${seqLen} tokens (${mode})\n`,
    );

    const r = await trainAdapter({
      loaded, tokenizer, train, eval: split.eval, lora, seed, mode, seqLen, batchSize: batch,
      ...(template !== undefined ? { template } : {}),
      config: {
        steps, lr: f.lr ?? 5e-4, schedule, warmupSteps: f.warmup ?? 0, weightDecay: f['weight-decay'] ?? 0, gradAccum: accum,
        evalEvery: f['eval-every'] ?? 0, saveEvery: f['save-every'] ?? 0, outDir: out, resume: f.resume, progress,
        logEvery: TRAIN_DEFAULTS.logEvery,
      },
    });
    const res = r.result;
    if (res.interrupted) {
      process.stderr.write(`nomoat: stopped at step ${res.step}/${steps}; checkpoint ${res.checkpoint ?? '(none)'}\n  continue with the same command and --resume\n`);
      return 130;
    }
    const ev = res.evalLoss !== null ? `, eval loss ${res.evalLoss.toFixed(4)}` : '';
    process.stderr.write(`nomoat: done: ${res.step} steps, loss ${res.loss.toFixed(4)}${ev}\n`);
    process.stdout.write(`wrote ${join(out, 'adapter_model.safetensors')} (PEFT), ${r.gguf ?? ''} (GGUF), ${join(out, 'metrics.jsonl')}, ${join(out, 'loss.svg')}\n`);
    process.stdout.write(`try it: nomoat chat -m ${loaded.path} --lora ${out}\n`);
  },
});

function tryUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

function readTemplateFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the chat template ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
