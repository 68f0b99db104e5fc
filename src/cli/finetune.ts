// `nomoat finetune`: trains a LoRA adapter on instruction data (Alpaca, ShareGPT or OpenAI messages JSONL) over a
// frozen base, or with --method dpo on preference pairs (DPO/IPO), and writes it as a PEFT folder plus a GGUF LoRA,
// with metrics.jsonl, loss.svg and checkpoints.
// Also the pieces `nomoat demo` shares: the bundled model's path and trainAdapter().
//
// Output folder (-o OUT), usable as `--lora OUT` (PEFT) or `--lora OUT/adapter.gguf` (llama.cpp too):
//   OUT/adapter_config.json, OUT/adapter_model.safetensors   PEFT LoRA
//   OUT/adapter.gguf                                          GGUF LoRA
//   OUT/metrics.jsonl, OUT/loss.svg, OUT/checkpoints/         training record; checkpoints serve --resume

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConversations, loadPreferencePairs, MAX_REPLAY_SHARE, trainEvalSplit, type Conversation, type LoadResult, type PairLoadResult } from '../data/index.js';
import { BadRecordError, readAll, type BadRecordHandler, type ConversationSource } from '../data/conversation-source.js';
import { ByteProgress } from '../data/progress.js';
import { DEFAULT_CHECK_BYTES } from '../data/record-index.js';
import { DEFAULT_EVAL_SIZE, evalCount, openDataset, trainingSet, type OpenedData } from '../data/training-set.js';
import { loadAdapter, LoraAdapter, saveGgufLora, savePeftAdapter, signTrainedAdapter, type LoraConfig } from '../lora/index.js';
import { LINEAR_MODULES, type LinearModule } from '../models/llama.js';
import type { LoadedModel } from '../models/load.js';
import type { Tokenizer } from '../tokenizer/index.js';
import {
  conversationExample, DPO_DEFAULTS, DPO_LOSS_TYPES, dpoFinetune, finetune, finetuneRows, pairRows, parseScheduleKind, TRAIN_DEFAULTS,
  readMetrics, type BatchMode, type DpoLossType, type FinetuneResult, type PreferenceLossConfig, type ProgressMode, type TrainConfig,
} from '../train/index.js';
import { trainingCache } from '../train/finetune.js';
import { countRows as countStreamRows, type ExampleCache } from '../train/stream-rows.js';
import { MAX_SIGNED_PROMPTS } from '../lora/signature.js';
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
export function droppedMessage(dropped: number, of: number, mode: BatchMode, seqLen: number, about = false): string | null {
  if (dropped === 0) return null;
  const a = about ? 'about ' : '';
  return mode === 'padded'
    ? `dropped ${a}${dropped} of ${of} training conversations whose whole reply falls past -c ${seqLen} (nothing to learn); a larger -c keeps them`
    : `dropped ${a}${dropped} packed rows holding only prompt tokens (conversations longer than -c ${seqLen}); a larger -c keeps their prompts with their replies`;
}

export interface TrainAdapterOptions {
  loaded: LoadedModel;
  tokenizer: Tokenizer;
  /** training conversations, in memory or read as training goes (an indexed file) */
  train: readonly Conversation[] | ConversationSource;
  eval: readonly Conversation[];
  /** the tokenized training conversations made so far (the row count's), reused */
  cache?: ExampleCache;
  /** a bad training record met while training: reported and skipped; absent: training stops naming file:line */
  onBadRecord?: BadRecordHandler;
  lora: Partial<LoraConfig>;
  /** start from this adapter (loaded, e.g. an SFT result) instead of a fresh one; `lora` is then unused */
  init?: LoraAdapter;
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
  const adapter = o.init ?? LoraAdapter.create(model, o.lora, { seed: o.seed, name: 'finetune' });
  const r = await finetune({
    model, adapter, tokenizer: o.tokenizer, conversations: o.train, evalConversations: o.eval, mode: o.mode, seqLen: o.seqLen,
    batchSize: o.batchSize, dataSeed: o.seed, train: o.config, ...(o.template !== undefined ? { template: o.template } : {}),
    ...(o.cache !== undefined ? { cache: o.cache } : {}), ...(o.onBadRecord !== undefined ? { onBadRecord: o.onBadRecord } : {}),
  });
  return { ...r, adapter, gguf: r.result.interrupted ? null : writeAdapter(o, adapter, signingSample(o.train), 'nomoat finetune') };
}

/** The conversations the routing signature is made from: all of an array, or MAX_SIGNED_PROMPTS spread evenly over a
 *  source (what signPrompts would sample anyway), its bad records left out. */
function signingSample(train: readonly Conversation[] | ConversationSource): readonly Conversation[] {
  if (Array.isArray(train)) return train as readonly Conversation[];
  const src = train as ConversationSource;
  const m = Math.min(src.size, MAX_SIGNED_PROMPTS);
  const out: Conversation[] = [];
  for (let j = 0; j < m; j++) {
    const r = src.read(Math.floor((j * src.size) / m));
    if (!('error' in r)) out.push(r.conversation);
  }
  return out;
}

/**
 * PEFT (with the base path, which finetune() and dpoFinetune() do not know) + GGUF into outDir, and the routing
 * signature of the conversations trained on; returns the GGUF path.
 */
function writeAdapter(o: Pick<TrainAdapterOptions, 'loaded' | 'tokenizer' | 'config'>, adapter: LoraAdapter, trained: readonly Conversation[], name: string): string {
  const out = o.config.outDir;
  savePeftAdapter(adapter, out, { baseModelNameOrPath: o.loaded.path });
  const gguf = join(out, 'adapter.gguf');
  saveGgufLora(adapter, gguf, { name });
  // The routing signature (--library), beside the files, not in them. The adapter is already written: a data set too
  // small to sign (fewer than 2 prompts) costs the signature, not the run.
  try {
    signTrainedAdapter(o.loaded.model, o.tokenizer, trained, [out, gguf]);
  } catch (e) {
    process.stderr.write(`nomoat finetune: no routing signature written (${e instanceof Error ? e.message : String(e)}); sign it later with \`nomoat adapter sign ${out} --prompts FILE\`\n`);
  }
  return gguf;
}

export interface TrainDpoOptions extends Omit<TrainAdapterOptions, 'train' | 'eval' | 'mode'> {
  train: PairLoadResult['pairs'];
  eval: PairLoadResult['pairs'];
  dpo: PreferenceLossConfig;
}

/**
 * Preference-tunes an adapter (fresh, or `init` continued from SFT: the adapter as it starts is the reference) on
 * pairs, and (unless interrupted) writes PEFT + GGUF into outDir.
 */
export async function trainDpoAdapter(o: TrainDpoOptions): Promise<TrainAdapterResult> {
  const { model } = o.loaded;
  const adapter = o.init ?? LoraAdapter.create(model, o.lora, { seed: o.seed, name: 'dpo' });
  const r = await dpoFinetune({
    model, adapter, tokenizer: o.tokenizer, pairs: o.train, evalPairs: o.eval, seqLen: o.seqLen, batchSize: o.batchSize, dpo: o.dpo,
    dataSeed: o.seed, train: o.config, ...(o.template !== undefined ? { template: o.template } : {}),
  });
  const chosen = o.train.map((p) => ({ messages: [...p.prompt, ...p.chosen] }));
  return { ...r, adapter, gguf: r.result.interrupted ? null : writeAdapter(o, adapter, chosen, 'nomoat finetune --method dpo') };
}

export const LORA_TRAIN_FLAGS = {
  'target-modules': { kind: 'string', metavar: 'LIST', help: `all-linear or a comma-separated list of ${LINEAR_MODULES.join(',')}`, default: 'q_proj,v_proj' },
  rank: { kind: 'int', short: 'r', metavar: 'R', help: 'LoRA rank', default: 8 },
  alpha: { kind: 'number', metavar: 'A', help: 'LoRA alpha (the update is scaled by alpha / rank)', default: 16 },
  dropout: { kind: 'number', metavar: 'P', help: 'LoRA dropout while training', default: 0 },
} as const satisfies FlagSpecs;

/** The optimizer, schedule, evaluation and checkpoint flags every training command shares (finetune, distill). */
export const OPTIMIZER_FLAGS = {
  lr: { kind: 'number', metavar: 'LR', help: 'peak learning rate', default: 5e-4 },
  epochs: { kind: 'number', metavar: 'N', help: 'passes over the training data (default 1 unless --steps)' },
  steps: { kind: 'int', metavar: 'N', help: 'optimizer updates (instead of --epochs)' },
  'grad-accum': { kind: 'int', metavar: 'N', help: 'micro-batches per update', default: 1 },
  warmup: { kind: 'int', metavar: 'N', help: 'warmup updates', default: 0 },
  schedule: { kind: 'string', metavar: 'S', help: 'constant|constant_with_warmup|linear|cosine', default: 'cosine' },
  'weight-decay': { kind: 'number', metavar: 'W', help: 'AdamW decoupled weight decay', default: 0 },
  'eval-split': { kind: 'number', metavar: 'F', help: 'fraction of DATA held out for evaluation', default: 0.05 },
  'eval-every': { kind: 'int', metavar: 'N', help: 'evaluate every N updates (and at the end)', default: 0 },
  'save-every': { kind: 'int', metavar: 'N', help: 'checkpoint every N updates (also at the end and on Ctrl-C)', default: 0 },
  resume: { kind: 'boolean', help: 'continue from the newest checkpoint in the output folder' },
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
  'eval-size': { kind: 'int', metavar: 'N', help: 'at most N held-out conversations or pairs (of --eval-split, or drawn from --eval-data)', default: DEFAULT_EVAL_SIZE },
  format: { kind: 'string', metavar: 'F', help: 'data format: auto|alpaca|sharegpt|openai', default: 'auto' },
  'skip-bad-lines': { kind: 'boolean', help: 'drop malformed records (and say how many) instead of refusing to start' },
  replay: { kind: 'string', metavar: 'FILE', help: 'general conversations mixed into training against forgetting (same formats as DATA)' },
  'replay-share': { kind: 'number', metavar: 'F', help: `share of the training conversations drawn from --replay, in [0, ${MAX_REPLAY_SHARE}]`, default: 0.5 },
  ...LORA_TRAIN_FLAGS,
  ...OPTIMIZER_FLAGS,
  batch: { kind: 'int', short: 'b', metavar: 'N', help: 'rows per micro-batch (dpo: pairs, two rows each)', default: 4 },
  'seq-len': { kind: 'int', short: 'c', metavar: 'N', help: 'tokens per row', default: 'min(512, model context)' },
  packing: { kind: 'string', metavar: 'MODE', help: 'packed (conversations fill whole rows) or padded (one per row)', default: 'packed' },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the adapter init, dropout, split and data order', default: 0 },
  'chat-template': { kind: 'string', metavar: 'FILE', help: 'a Jinja chat template (default: the tokenizer\'s)' },
  'init-adapter': { kind: 'string', metavar: 'DIR', help: 'continue training this adapter (PEFT folder or .gguf) instead of a fresh one; with dpo it is also the reference' },
  method: { kind: 'string', metavar: 'M', help: 'sft (instruction data) or dpo (preference pairs)', default: 'sft' },
  beta: { kind: 'number', metavar: 'B', help: 'dpo: β, how strongly the policy is held to the reference', default: DPO_DEFAULTS.beta },
  'loss-type': { kind: 'string', metavar: 'L', help: 'dpo: sigmoid (DPO) or ipo (on per-token average log-probs)', default: DPO_DEFAULTS.lossType },
  'rpo-alpha': { kind: 'number', metavar: 'A', help: 'dpo: weight of the chosen replies\' NLL added to the loss (TRL\'s rpo_alpha)', default: 0 },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none', default: 'auto' },
  handoff: { kind: 'string', metavar: 'DIR', help: 'write this run for a GPU machine (data, train.py for transformers + peft, accelerate configs) instead of training' },
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

/** Opens a dataset for streaming (JSONL indexed with a progress bar past a second; .json read), loader errors (which
 *  name file:line) as CLI errors. */
export async function openData(path: string, format: string, skip: boolean, progress: ProgressMode, what = 'data file'): Promise<OpenedData> {
  if (!existsSync(path)) throw new CliError(`${what} not found: ${path}`);
  if (!['auto', 'alpaca', 'sharegpt', 'openai'].includes(format)) throw new UsageError(`--format must be auto|alpaca|sharegpt|openai, got ${format}`);
  const t0 = performance.now();
  let bar: ByteProgress | null = null;
  let shown = 0;
  const onBytes = (bytes: number): void => {
    if (bar === null && performance.now() - t0 < 1000) return; // a bar only for a pass that takes more than a second
    bar ??= new ByteProgress(`indexing ${path}`, statSync(path).size, { mode: progress === 'bar' ? 'bar' : progress === 'auto' ? 'auto' : 'none' });
    bar.add(bytes - shown);
    shown = bytes;
  };
  try {
    const d = await openDataset(path, { format: format as 'auto', skip, onBytes });
    const s = (performance.now() - t0) / 1000;
    if (s > 1 && progress !== 'none') process.stderr.write(`nomoat: indexed ${d.source.size} records of ${path} (${(statSync(path).size / 1e6).toFixed(1)} MB) in ${s.toFixed(1)}s\n`);
    return d;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new CliError(`${msg}${skip ? '' : '\n(fix these records, or pass --skip-bad-lines to train without them)'}`);
  } finally {
    (bar as ByteProgress | null)?.end();
  }
}

/** Counts and reports the bad records met while training reads the data (--skip-bad-lines), or none (stop). */
function badRecords(skip: boolean): { handler: BadRecordHandler; count: number; first: string } {
  const b = { handler: null as BadRecordHandler, count: 0, first: '' };
  if (skip) {
    b.handler = (where, error) => {
      if (b.count++ === 0) b.first = `${where}: ${error}`;
    };
  }
  return b;
}

/** Runs f, turning a bad record met while reading (file:line) into a CLI error that says how to go on. */
function dataOrCliError<T>(f: () => T, skip: boolean): T {
  const wrap = (e: unknown): never => {
    if (e instanceof BadRecordError) throw new CliError(`${e.message}${skip ? '' : '\n(fix this record, or pass --skip-bad-lines to train without it)'}`);
    throw e;
  };
  try {
    const r = f();
    return r instanceof Promise ? (r.catch(wrap) as T) : r;
  } catch (e) {
    return wrap(e);
  }
}

/** Every good conversation of a source, in memory. */
function conversationsOf(src: ConversationSource, onBad: BadRecordHandler): Conversation[] {
  const out: Conversation[] = [];
  for (const r of readAll(src)) {
    if (!('error' in r)) out.push(r.conversation);
    else if (onBad === null) throw new BadRecordError(r.where, r.error);
    else onBad(r.where, r.error);
  }
  return out;
}

type Flags = FlagValues<typeof FLAGS>;

/** The flags only one method reads: given with the other, they would be silently ignored. */
const DPO_ONLY = ['beta', 'loss-type', 'rpo-alpha'] as const;
const SFT_ONLY = ['format', 'replay', 'replay-share', 'packing'] as const;

/** What both methods share after reading their data: the model, template, row length and batch shape. */
interface Setup {
  loaded: LoadedModel;
  tokenizer: Tokenizer;
  template: string | undefined;
  seqLen: number;
  batch: number;
  accum: number;
  threads: number;
  /** the adapter to continue (--init-adapter), loaded onto the base */
  init: LoraAdapter | undefined;
}

function setup(f: Flags, seed: number): Setup {
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
  let init: LoraAdapter | undefined;
  const from = f['init-adapter'];
  if (from !== undefined) {
    if (!existsSync(from)) throw new CliError(`--init-adapter ${from}: not found`);
    try {
      init = loadAdapter(from, loaded.model, { seed, name: from });
    } catch (e) {
      throw new CliError(`--init-adapter ${from}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { loaded, tokenizer, template, seqLen, batch, accum, threads, init };
}

/** --steps, or --epochs (default 1) over `units` training rows or pairs. */
function stepsOf(f: Flags, units: number, batch: number, accum: number): number {
  let steps = f.steps;
  if (steps === undefined) {
    const epochs = f.epochs ?? 1;
    if (!(epochs > 0)) throw new UsageError(`--epochs must be > 0, got ${epochs}`);
    steps = Math.max(1, Math.ceil((epochs * units) / (batch * accum)));
  }
  if (steps < 1) throw new UsageError(`--steps must be positive, got ${steps}`);
  return steps;
}

function trainConfig(f: Flags, steps: number, accum: number, out: string): Partial<TrainConfig> & { steps: number; outDir: string } {
  return {
    steps, lr: f.lr ?? 5e-4, schedule: tryUsage(() => parseScheduleKind(f.schedule ?? 'cosine')), warmupSteps: f.warmup ?? 0,
    weightDecay: f['weight-decay'] ?? 0, gradAccum: accum, evalEvery: f['eval-every'] ?? 0, saveEvery: f['save-every'] ?? 0, outDir: out,
    resume: f.resume, progress: parseProgress(f.progress), logEvery: TRAIN_DEFAULTS.logEvery,
  };
}

function evalSizeOf(f: Flags): number {
  const n = f['eval-size'] ?? DEFAULT_EVAL_SIZE;
  if (n < 0) throw new UsageError(`--eval-size must be ≥ 0, got ${n}`);
  return n;
}

function evalSplitOf(f: Flags): number {
  const evalSplit = f['eval-split'] ?? 0.05;
  if (!(evalSplit >= 0 && evalSplit < 1)) throw new UsageError(`--eval-split must be in [0, 1), got ${evalSplit}`);
  return evalSplit;
}

/** The end of a run, either method: interrupted (exit 130, how to resume) or where the adapter went. */
function report(r: TrainAdapterResult, steps: number, out: string, model: string, extra = ''): number | undefined {
  const res = r.result;
  if (res.interrupted) {
    process.stderr.write(`nomoat: stopped at step ${res.step}/${steps}; checkpoint ${res.checkpoint ?? '(none)'}\n  continue with the same command and --resume\n`);
    return 130;
  }
  const ev = res.evalLoss !== null ? `, eval loss ${res.evalLoss.toFixed(4)}` : '';
  process.stderr.write(`nomoat: done: ${res.step} steps, loss ${res.loss.toFixed(4)}${ev}${extra}\n`);
  process.stdout.write(`wrote ${join(out, 'adapter_model.safetensors')} (PEFT), ${r.gguf ?? ''} (GGUF), ${join(out, 'metrics.jsonl')}, ${join(out, 'loss.svg')}\n`);
  process.stdout.write(`try it: nomoat chat -m ${model} --lora ${out}\n`);
  return undefined;
}

/** Reads preference pairs, turning loader errors (which name file:line) into CLI errors. */
export async function readPairs(path: string, skip: boolean, what = 'pairs file'): Promise<PairLoadResult> {
  if (!existsSync(path)) throw new CliError(`${what} not found: ${path}`);
  try {
    return await loadPreferencePairs(path, { skip });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new CliError(`${msg}${skip ? '' : '\n(fix these records, or pass --skip-bad-lines to train without them)'}`);
  }
}

/** `--method dpo`: preference pairs → DPO/IPO on a LoRA adapter (fresh, or --init-adapter, which is the reference). */
async function runDpo(f: Flags, data: string, out: string): Promise<number | undefined> {
  for (const k of SFT_ONLY) if (f[k] !== undefined) throw new UsageError(`--${k} is for --method sft (dpo reads preference pairs, one pair per padded row)`);
  const lossType = f['loss-type'] ?? DPO_DEFAULTS.lossType;
  if (!(DPO_LOSS_TYPES as readonly string[]).includes(lossType)) throw new UsageError(`--loss-type must be ${DPO_LOSS_TYPES.join('|')}, got ${lossType}`);
  const dpo: PreferenceLossConfig = { beta: f.beta ?? DPO_DEFAULTS.beta, lossType: lossType as DpoLossType, rpoAlpha: f['rpo-alpha'] ?? 0 };
  if (!(dpo.beta > 0)) throw new UsageError(`--beta must be > 0, got ${dpo.beta}`);
  if (!(dpo.rpoAlpha >= 0)) throw new UsageError(`--rpo-alpha must be ≥ 0, got ${dpo.rpoAlpha}`);
  const evalSplit = evalSplitOf(f);
  const seed = f.seed ?? 0;

  // data first: a bad pair must stop us before the model loads. DPO stays in memory (unlike SFT, which streams): it
  // computes every pair's reference log-probs before the first step, so it reads every pair anyway.
  const skip = f['skip-bad-lines'];
  const evalSize = evalSizeOf(f);
  const pairs = await readPairs(data, skip);
  const evalPairs = f['eval-data'] !== undefined ? await readPairs(f['eval-data'], skip, 'eval pairs file') : null;
  for (const d of [pairs, evalPairs]) {
    if (d !== null && d.skipped.length > 0) process.stderr.write(`nomoat: skipped ${d.skipped.length} bad pair(s) of ${d.file} (first: ${d.skipped[0].where}: ${d.skipped[0].message})\n`);
  }
  const split = evalPairs !== null
    ? { train: pairs.pairs, eval: trainEvalSplit(evalPairs.pairs, { evalCount: Math.min(evalPairs.pairs.length, evalSize), seed }).eval }
    : trainEvalSplit(pairs.pairs, { evalCount: evalCount(pairs.pairs.length, evalSplit, evalSize), seed });
  if (split.train.length === 0) throw new CliError(`${pairs.file}: nothing left to train on after the eval split`);

  const s = setup(f, seed);
  const lora = s.init === undefined ? loraFrom(f, { targets: 'q_proj,v_proj', r: 8, alpha: 16 }) : {};
  const rows = pairRows(s.tokenizer, split.train, s.seqLen, s.template);
  if (rows.dropped > 0) process.stderr.write(`nomoat: dropped ${rows.dropped} of ${split.train.length} training pairs whose chosen or rejected reply falls wholly past -c ${s.seqLen}; a larger -c keeps them\n`);
  if (rows.rows.length === 0) throw new CliError(`${pairs.file}: no pair has reply tokens within -c ${s.seqLen}`);
  const steps = stepsOf(f, rows.rows.length, s.batch, s.accum);
  const cfg = s.loaded.model.config;
  const adapterDesc = s.init !== undefined ? `continuing ${f['init-adapter'] ?? ''} (also the reference)` : `fresh LoRA r ${lora.r} alpha ${lora.loraAlpha} on ${String(lora.targetModules)} (reference: the base)`;
  process.stderr.write(
    `nomoat: ${s.loaded.path} (${cfg.numLayers} layers, C ${cfg.hiddenSize}) on ${s.threads} thread(s); ${rows.rows.length} training and ` +
      `${split.eval.length} eval pairs; ${adapterDesc}; ${dpo.lossType} β ${dpo.beta}${dpo.rpoAlpha > 0 ? ` rpo α ${dpo.rpoAlpha}` : ''}; ` +
      `${steps} steps of ${s.batch}×${s.accum} pairs of ≤${s.seqLen} tokens; computing reference log-probs…\n`,
  );
  const r = await trainDpoAdapter({
    loaded: s.loaded, tokenizer: s.tokenizer, train: split.train, eval: split.eval, lora, seed, seqLen: s.seqLen, batchSize: s.batch, dpo,
    ...(s.init !== undefined ? { init: s.init } : {}), ...(s.template !== undefined ? { template: s.template } : {}),
    config: trainConfig(f, steps, s.accum, out),
  });
  const last = r.result.history.length > 0 ? readLastMetric(out, 'rewards/accuracies') : null;
  return report(r, steps, out, s.loaded.path, last !== null ? `, rewards/accuracies ${last.toFixed(3)}` : '');
}

/** The newest value of a key in OUT/metrics.jsonl (null when absent). */
function readLastMetric(out: string, key: string): number | null {
  try {
    const recs = readMetrics(join(out, 'metrics.jsonl'));
    for (let i = recs.length - 1; i >= 0; i--) {
      const v = recs[i][key];
      if (typeof v === 'number') return v;
    }
  } catch {
    // no metrics file (outDir unwritable was already reported by training): nothing to add to the summary
  }
  return null;
}

export const command = defineCommand({
  name: 'finetune',
  summary: 'fine-tune a LoRA adapter on instruction data, or on preference pairs with --method dpo (PEFT + GGUF output)',
  usage: 'DATA -o DIR [-m MODEL] [--method sft|dpo] [options]',
  description:
    'DATA is JSONL (or a .json array) of Alpaca {instruction, input, output}, ShareGPT {conversations} or OpenAI\n' +
    '{messages} records. Conversations are rendered with the model\'s chat template; loss is on assistant replies only.\n' +
    'A malformed record stops training before it starts, naming file:line (--skip-bad-lines drops them instead).\n' +
    'Ctrl-C finishes the current step and saves a checkpoint; run the same command with --resume to continue.\n' +
    '--replay FILE mixes general conversations into the training set (not the eval set), so that an adapter also\n' +
    'learns what to leave alone: one trained only on its task answers every prompt as if it were that task. For the\n' +
    'bundled model, assets/data/generic-chats.jsonl holds chats like those it was pretrained on.\n' +
    '--init-adapter DIR continues training an existing adapter (its rank and targets; -r/--alpha/--target-modules\n' +
    'do not apply).\n' +
    '\n' +
    '--method dpo: DATA holds preference pairs in TRL\'s formats: {prompt, chosen, rejected} as strings, or as message\n' +
    'lists (prompt: the conversation so far, chosen/rejected: assistant turns; what `nomoat eval arena --pairs` writes),\n' +
    'or {chosen, rejected} whole conversations sharing their prompt, or Anthropic HH transcripts ("\\n\\nHuman: …\n' +
    '\\n\\nAssistant: …"); .jsonl, .jsonl.gz or .json. Each pair is a chosen and a rejected row through one forward;\n' +
    'the loss is DPO\'s −log σ(β·((π_c − ref_c) − (π_r − ref_r))) on the replies\' summed log-probs (--loss-type ipo:\n' +
    '(h − 1/(2β))² on per-token averages). The reference is the adapter as training starts, computed once for every\n' +
    'pair before the first step (no second copy of the model): a fresh adapter makes it the base; --init-adapter\n' +
    'SFT_DIR makes it the SFT model, the usual recipe (SFT, then DPO from it). --batch counts pairs. metrics.jsonl\n' +
    'gets TRL\'s rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected\n' +
    '(eval_ versions on the held-out pairs).\n' +
    'Writes DIR/adapter_config.json + adapter_model.safetensors (PEFT), DIR/adapter.gguf, metrics.jsonl, loss.svg.',
  flags: FLAGS,
  positionals: [{ name: 'data', help: 'training data (.jsonl or .json); with --method dpo, preference pairs (.jsonl, .jsonl.gz, .json)' }],
  examples: [
    'nomoat finetune data.jsonl -o my-adapter',
    'nomoat finetune alpaca.json -m qwen2.5-0.5b-instruct/ --target-modules all-linear -r 16 --alpha 32 --epochs 2 -o out',
    'nomoat finetune chats.jsonl -m model.gguf --steps 500 --lr 1e-3 --batch 8 -c 256 --eval-every 50 --save-every 100 -o out',
    'nomoat finetune chats.jsonl -o out --resume',
    'nomoat finetune assets/data/demo.jsonl --replay assets/data/generic-chats.jsonl --replay-share 0.5 -o out',
    'nomoat finetune pairs.jsonl --method dpo --init-adapter sft-out --beta 0.1 --lr 5e-5 --steps 200 -o dpo-out',
    'nomoat finetune hh-rlhf.jsonl.gz --method dpo --loss-type ipo --skip-bad-lines -c 512 -o dpo-out',
    'nomoat chat -m assets/default-model --lora out',
  ],
  async run({ flags: f, positionals }) {
    const out = f.output ?? (f.handoff !== undefined ? join(f.handoff, 'output') : undefined);
    if (out === undefined) throw new UsageError('missing -o DIR (where the adapter is written)');
    if (f.handoff !== undefined && (f.method === 'dpo' || f.resume)) throw new UsageError('--handoff writes an SFT run for another machine (not --method dpo, not --resume)');
    if (f.steps !== undefined && f.epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
    const method = f.method ?? 'sft';
    if (method !== 'sft' && method !== 'dpo') throw new UsageError(`--method must be sft or dpo, got ${method}`);
    if (f['init-adapter'] !== undefined) {
      for (const k of ['target-modules', 'rank', 'alpha', 'dropout'] as const) if (f[k] !== undefined) throw new UsageError(`--${k} does not apply with --init-adapter (the adapter keeps its own)`);
    }
    if (method === 'dpo') return runDpo(f, positionals[0], out);
    for (const k of DPO_ONLY) if (f[k] !== undefined) throw new UsageError(`--${k} is for --method dpo`);
    const lora = loraFrom(f, { targets: 'q_proj,v_proj', r: 8, alpha: 16 });
    const mode = f.packing ?? 'packed';
    if (mode !== 'packed' && mode !== 'padded') throw new UsageError(`--packing must be packed or padded, got ${mode}`);
    tryUsage(() => parseScheduleKind(f.schedule ?? 'cosine'));
    parseProgress(f.progress);
    const evalSplit = evalSplitOf(f);
    const seed = f.seed ?? 0;
    const replayShare = f['replay-share'] ?? 0.5;
    if (f.replay === undefined && f['replay-share'] !== undefined) throw new UsageError('--replay-share needs --replay FILE (the conversations to mix in)');
    if (!(replayShare >= 0 && replayShare <= MAX_REPLAY_SHARE)) throw new UsageError(`--replay-share must be in [0, ${MAX_REPLAY_SHARE}], got ${replayShare}`);

    // data first: a bad record must stop us before the model loads. DATA is indexed, not loaded: training reads
    // its conversations a batch at a time, so the first step comes in seconds and memory stays flat in its size.
    const skip = f['skip-bad-lines'];
    const evalSize = evalSizeOf(f);
    const progress = parseProgress(f.progress);
    const data = await openData(positionals[0], f.format ?? 'auto', skip, progress);
    const evalData = f['eval-data'] !== undefined ? await openData(f['eval-data'], f.format ?? 'auto', skip, progress) : null;
    const replayData = f.replay !== undefined ? await openData(f.replay, 'auto', skip, progress, 'replay file') : null;
    for (const d of [data, evalData, replayData]) {
      if (d !== null && d.skipped.length > 0) process.stderr.write(`nomoat: skipped ${d.skipped.length} bad record(s) of ${d.file} (first: ${d.skipped[0].where}: ${d.skipped[0].message})\n`);
    }
    const bad = badRecords(skip);
    const set = dataOrCliError(() => trainingSet(data.source, {
      evalFraction: evalSplit, evalSize, seed, onBad: bad.handler,
      ...(evalData !== null ? { evalSource: evalData.source } : {}), ...(replayData !== null ? { replay: { source: replayData.source, share: replayShare } } : {}),
    }), skip);
    if (set.fromData === 0) throw new CliError(`${data.file}: nothing left to train on after the eval split`);
    const train = set.train;

    const s = setup(f, seed);
    const { loaded, tokenizer, template, seqLen, batch, accum } = s;
    const cfg = loaded.model.config;
    const cache = trainingCache(tokenizer, train, { ...(template !== undefined ? { template } : {}), onBadRecord: bad.handler });
    const rows = dataOrCliError(() => countStreamRows(cache, mode, seqLen), skip);
    const dropped = droppedMessage(rows.dropped, mode === 'padded' ? train.size : rows.rows + rows.dropped, mode, seqLen, !rows.exact);
    if (dropped !== null) process.stderr.write(`nomoat: ${dropped}${rows.exact ? '' : ` (estimated from ${rows.sampled} conversations)`}\n`);
    if (rows.rows === 0) throw new CliError(`${data.file}: no conversation${rows.exact ? '' : ` of ${rows.sampled} sampled`} has a reply token within -c ${seqLen}`);
    const steps = stepsOf(f, rows.rows, batch, accum);
    const loraDesc = s.init !== undefined ? `continuing ${f['init-adapter'] ?? ''}` : `LoRA r ${lora.r} alpha ${lora.loraAlpha} on ${String(lora.targetModules)}`;
    const unchecked = [data, replayData].filter((d) => d !== null && d.unchecked > 0).map((d) => d!.file);
    process.stderr.write(
      `nomoat: ${loaded.path} (${cfg.numLayers} layers, C ${cfg.hiddenSize}) on ${s.threads} thread(s); ${set.fromData} training ` +
        `${set.replayed > 0 || replayData !== null ? `(+ ${set.replayed} replayed from ${replayData!.file}) ` : ''}and ` +
        `${set.eval.length} eval conversations (${data.format}); ${loraDesc}; ` +
        `${steps} steps of ${batch}×${accum} rows of ≤${seqLen} tokens (${mode}${rows.exact ? '' : `; an epoch is about ${rows.rows} rows, estimated from ${rows.sampled} conversations`})\n` +
        (unchecked.length > 0 ? `nomoat: records past the first ${DEFAULT_CHECK_BYTES >> 20} MiB of ${unchecked.join(', ')} are checked as training reads them (\`nomoat data validate\` checks a whole file first)\n` : ''),
    );

    if (f.handoff !== undefined) {
      const h = (await import('../handoff/index.js')).writeTrainHandoff({
        // the hand-off folder holds the data as one file: every training conversation is read here
        dir: f.handoff, loaded, tokenizer, train: dataOrCliError(() => conversationsOf(train, bad.handler), skip), eval: set.eval, lora, seed, mode, seqLen,
        batchSize: batch, config: trainConfig(f, steps, accum, out),
        ...(s.init !== undefined ? { init: s.init } : {}), ...(template !== undefined ? { template } : {}),
      });
      process.stdout.write(`wrote ${h.files.length} files to ${h.dir}; on a GPU machine, in that folder:
  ${h.command}
`);
      return undefined;
    }
    const r = await dataOrCliError(() => trainAdapter({
      loaded, tokenizer, train, eval: set.eval, cache, lora, seed, mode, seqLen, batchSize: batch, onBadRecord: bad.handler,
      ...(s.init !== undefined ? { init: s.init } : {}), ...(template !== undefined ? { template } : {}),
      config: trainConfig(f, steps, accum, out),
    }), skip);
    if (bad.count > 0) process.stderr.write(`nomoat: skipped ${bad.count} bad record(s) met while reading the data (first: ${bad.first})\n`);
    return report(r, steps, out, loaded.path);
  },
});

/** Runs f, turning what it throws into a usage error (exit status 2): for parsers of flag values. */
export function tryUsage<T>(f: () => T): T {
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
