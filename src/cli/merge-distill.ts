// `nomoat merge --method distill`: the adapters of a recipe (or --lora flags) distilled into one new adapter that
// answers each prompt file as base + its adapter and the general prompts as the base (src/train/distill-merge.ts).
// Writes OUT as a PEFT folder (adapter_config.json, adapter_model.safetensors) plus OUT/adapter.gguf.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readPromptFile } from '../lora/prompts.js';
import { DEFAULT_CALIBRATION } from '../lora/route.js';
import { DISTILL_MERGE_DEFAULTS, checkDistillMerge, distillMerge } from '../train/index.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { CliError, loadForCli, requireTokenizer } from './common.js';
import { type INPUT_FLAGS, loadAdapters } from './stack.js';
import type { Recipe } from '../lora/index.js';

export const DISTILL_MERGE_FLAGS = {
  prompts: { kind: 'list', metavar: 'FILE', help: 'distill: one prompt file per adapter, in order (JSONL prompts/conversations, or one prompt a line)' },
  general: { kind: 'string', metavar: 'FILE', help: 'distill: prompts answered as the base (default: assets/data/generic-chats.jsonl user turns)' },
  'general-count': { kind: 'int', metavar: 'N', help: 'distill: general prompts used (default: as many as all prompt files together)' },
  'general-prompt-tokens': { kind: 'boolean', help: 'distill: match the base on the general prompts\' own tokens too, not only on its replies (better on the skills bench)' },
  rank: { kind: 'int', short: 'r', metavar: 'R', help: 'distill: rank of the new adapter (≤ 32)', default: DISTILL_MERGE_DEFAULTS.rank },
  steps: { kind: 'int', metavar: 'N', help: 'distill: optimizer updates (default: 3 passes over the rows)' },
  lr: { kind: 'number', metavar: 'LR', help: 'distill: peak learning rate', default: 2e-3 },
  batch: { kind: 'int', short: 'b', metavar: 'N', help: 'distill: conversations per batch', default: 8 },
  'reply-tokens': { kind: 'int', metavar: 'N', help: 'distill: longest teacher reply (tokens)', default: DISTILL_MERGE_DEFAULTS.replyTokens },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'distill: seed of the new adapter and the data order', default: 0 },
  progress: { kind: 'string', metavar: 'MODE', help: 'distill: training progress, auto|bar|lines|none (a bar with loss, tokens/s and ETA on a terminal)', default: 'auto' },
} as const satisfies FlagSpecs;

/** Runs the distilled merge of `recipe`'s adapters; `f` holds the merge command's flags. */
export async function distillMergeCommand(recipe: Recipe, out: string, f: FlagValues<typeof DISTILL_MERGE_FLAGS & typeof INPUT_FLAGS> & { format?: string }): Promise<void> {
  if (f.format !== undefined && f.format !== 'peft') throw new UsageError('--method distill writes an adapter (a PEFT folder with adapter.gguf): use --format peft or leave --format out');
  if (recipe.merge !== undefined) throw new UsageError(`--method distill: the recipe already combines its adapters with "${recipe.merge.method}"; remove its "merge"`);
  const n = recipe.adapters.length;
  if (f.prompts.length !== n) throw new UsageError(`--method distill needs one --prompts FILE per adapter: ${n} adapter(s), ${f.prompts.length} prompt file(s)`);
  const rank = f.rank ?? DISTILL_MERGE_DEFAULTS.rank;
  if (!Number.isInteger(rank) || rank < 1 || rank > 32) throw new UsageError(`-r must be in [1, 32], got ${rank}`);
  const batch = f.batch ?? 8;
  if (batch < 1) throw new UsageError(`--batch must be positive, got ${batch}`);
  const replyTokens = f['reply-tokens'] ?? DISTILL_MERGE_DEFAULTS.replyTokens;
  if (replyTokens < 1) throw new UsageError(`--reply-tokens must be positive, got ${replyTokens}`);
  const { parseProgress } = await import('./finetune.js'); // only for --method distill: plain merges load no training CLI
  const progress = parseProgress(f.progress);
  const readAll = (p: string): string[] => {
    try {
      return readPromptFile(p);
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
  };
  const prompts = f.prompts.map(readAll); // before any model loads
  // as many general prompts as skill prompts: fewer and the merged adapter strays from the base on everyday prompts
  const count = f['general-count'] ?? prompts.reduce((a, p) => a + p.length, 0);
  if (count < 1) throw new UsageError(`--general-count must be positive, got ${count}`);
  const general = readAll(f.general ?? DEFAULT_CALIBRATION).slice(0, count);

  const loaded = loadForCli(recipe.base);
  const tokenizer = requireTokenizer(loaded);
  const model = loaded.model;
  const adapters = loadAdapters(recipe, model);
  const stack = adapters.map((adapter, i) => ({ adapter, scale: recipe.adapters[i].scale }));
  try {
    checkDistillMerge({ model, adapters: stack, prompts, general });
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  const seqLen = Math.min(256, model.config.maxPositionEmbeddings);
  const rowsTotal = prompts.reduce((s, p) => s + p.length, general.length);
  const steps = f.steps ?? Math.max(1, Math.ceil((3 * rowsTotal) / batch));
  if (steps < 1) throw new UsageError(`--steps must be positive, got ${steps}`);
  mkdirSync(out, { recursive: true });
  const cachePath = join(out, 'teacher-topk.bin');
  process.stderr.write(`nomoat merge: distilling ${n} adapter(s) into one of rank ${rank}: ${prompts.map((p) => p.length).join(' + ')} prompts + ${general.length} general; ${steps} steps of ${batch}\n`);
  const r = await distillMerge({
    model, tokenizer, adapters: stack, prompts, general, lora: { r: rank }, replyTokens, generalPromptTokens: f['general-prompt-tokens'], seqLen, batchSize: batch, seed: f.seed ?? 0, cachePath,
    train: { steps, lr: f.lr ?? 2e-3, schedule: 'cosine', outDir: null, progress, handleSigint: false },
    note: (m) => void process.stderr.write(`nomoat merge: ${m}\n`),
  });
  if (existsSync(cachePath)) rmSync(cachePath);
  const lo = await import('../lora/index.js');
  lo.savePeftAdapter(r.adapter, out, { baseModelNameOrPath: recipe.base });
  lo.saveGgufLora(r.adapter, join(out, 'adapter.gguf'), { name: 'nomoat distilled merge' });
  process.stderr.write(`nomoat merge: replies ${r.seconds.replies.toFixed(1)} s, teachers ${r.seconds.cache.toFixed(1)} s, training ${r.seconds.train.toFixed(1)} s (loss ${r.distill.result.loss.toFixed(4)})\n`);
  process.stdout.write(`wrote ${join(out, 'adapter_model.safetensors')} (PEFT), ${join(out, 'adapter.gguf')} (GGUF)\n`);
  for (const a of [...adapters, r.adapter]) a.dispose();
  model.dispose();
}
