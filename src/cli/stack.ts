// `nomoat stack`: several LoRA adapters (a recipe, or -m with --lora flags) written as ONE adapter, a PEFT folder or a
// GGUF LoRA. Without a combination method the result is exact: PEFT's "cat" (ranks add up) gives
// Σ scale_i·s_i·B_i·A_i, the unmerged stack; --method picks any of PEFT's add_weighted_adapter methods instead.
// Also the input handling that `nomoat merge` shares (recipe + flags → one validated Recipe).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  COMBINATION_TYPES, combineAdapters, loadAdapter, loadRecipe, parseRecipe, saveGgufLora, savePeftAdapter, type AdapterLoadOptions, type LoraAdapter,
  type Recipe, type RecipeAdapter, type RecipeMerge,
} from '../lora/index.js';
import type { LlamaModel } from '../models/llama.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { defineCommand } from './command.js';
import { CliError, LORA_FLAGS, THREAD_FLAG, loadForCli, setThreads } from './common.js';

/** Where the adapters come from and how they combine; every combination flag overrides the recipe's "merge". */
export const INPUT_FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'the base model (default: the recipe\'s "base")' },
  ...LORA_FLAGS,
  method: { kind: 'string', metavar: 'METHOD', help: `combine the adapters: ${COMBINATION_TYPES.join(', ')} (recipe merge.method)` },
  density: { kind: 'number', metavar: 'D', help: 'fraction kept by ties, dare_*, magnitude_prune* (merge.density)' },
  weights: { kind: 'string', metavar: 'W,W,…', help: 'combination weight per adapter, comma-separated (merge.weights; default: the scales)' },
  'majority-sign-method': { kind: 'string', metavar: 'M', help: 'ties/dare_ties sign election: total or frequency' },
  'svd-rank': { kind: 'int', metavar: 'R', help: 'rank of the *svd methods\' result (default: the largest input rank)' },
  'svd-clamp': { kind: 'number', metavar: 'Q', help: 'svd methods: clamp factors to ±quantile Q' },
  'merge-seed': { kind: 'int', metavar: 'N', help: 'seed of DARE\'s drop masks and the pruned-svd start (merge.seed)', default: 0 },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

const wrap = <T>(fn: () => T): T => {
  try {
    return fn();
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
};

/** The recipe file (optional) plus -m / --lora / --lora-scaled / combination flags, validated as one recipe. */
export function resolveInputs(recipePath: string | undefined, f: FlagValues<typeof INPUT_FLAGS>): Recipe {
  let base: string | undefined;
  let adapters: RecipeAdapter[] = [];
  let merge: Partial<RecipeMerge> | undefined;
  let source = 'command line';
  if (recipePath !== undefined) {
    if (!existsSync(recipePath)) throw new CliError(`recipe not found: ${recipePath}`);
    ({ base, adapters, merge } = wrap(() => loadRecipe(recipePath)));
    source = recipePath;
  }
  base = f.model ?? base;
  if (base === undefined) throw new UsageError('missing RECIPE or -m MODEL');
  adapters = [
    ...adapters,
    ...f.lora.map((p) => ({ path: resolve(p), scale: 1 })),
    ...f['lora-scaled'].map(([p, s]) => {
      const scale = Number(s);
      if (s.trim() === '' || !Number.isFinite(scale)) throw new UsageError(`--lora-scaled ${p} ${s}: SCALE must be a number`);
      return { path: resolve(p), scale };
    }),
  ];
  if (adapters.length === 0) throw new UsageError('no adapters: give a RECIPE or --lora / --lora-scaled flags');
  const over: Partial<Record<keyof RecipeMerge, unknown>> = {};
  if (f.method !== undefined) over.method = f.method;
  if (f.density !== undefined) over.density = f.density;
  if (f.weights !== undefined) {
    over.weights = f.weights.split(',').map((w) => {
      const v = Number(w);
      if (w.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--weights expects comma-separated numbers, got ${JSON.stringify(f.weights)}`);
      return v;
    });
  }
  if (f['majority-sign-method'] !== undefined) over.majority_sign_method = f['majority-sign-method'];
  if (f['svd-rank'] !== undefined) over.svd_rank = f['svd-rank'];
  if (f['svd-clamp'] !== undefined) over.svd_clamp = f['svd-clamp'];
  if (f['merge-seed'] !== undefined) over.seed = f['merge-seed'];
  if (Object.keys(over).length > 0) {
    if (over.method === undefined && merge?.method === undefined) throw new UsageError('combination options need --method (or a recipe with merge.method)');
    merge = { ...merge, ...over } as Partial<RecipeMerge>;
    source += ' (merge.* from the command line)';
  }
  return wrap(() => parseRecipe({ base, adapters, ...(merge !== undefined ? { merge } : {}) }, source));
}

/** Loads every adapter of the recipe for the model (not attached); warnings go to stderr. */
export function loadAdapters(recipe: Recipe, model: LlamaModel, opts: AdapterLoadOptions = {}): LoraAdapter[] {
  const out: LoraAdapter[] = [];
  try {
    for (const a of recipe.adapters) {
      if (!existsSync(a.path)) throw new CliError(`LoRA adapter not found: ${a.path} (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
      out.push(wrap(() => loadAdapter(a.path, model, { onWarning: (m) => void process.stderr.write(`warning: ${m}\n`), ...opts })));
    }
    return out;
  } catch (e) {
    for (const a of out) a.dispose();
    throw e;
  }
}

/** One adapter equal to the recipe: its "merge" method, or "cat" at the scales (exactly the unmerged stack). */
export function combineRecipe(adapters: readonly LoraAdapter[], recipe: Recipe, name: string): LoraAdapter {
  const scales = recipe.adapters.map((a) => a.scale);
  const m = recipe.merge;
  if (m === undefined) return wrap(() => combineAdapters(adapters, 'cat', { weights: scales, name }));
  return wrap(() =>
    combineAdapters(adapters, m.method, {
      weights: m.weights ?? scales, density: m.density, majoritySignMethod: m.majority_sign_method, svdRank: m.svd_rank, svdClamp: m.svd_clamp, seed: m.seed, name,
    }));
}

export type AdapterFormat = 'peft' | 'gguf';

/** Refuses to overwrite an existing output (a file, or a non-empty folder) without --force. */
export function checkOutput(out: string, force: boolean): void {
  if (force || !existsSync(out)) return;
  if (statSync(out).isDirectory() && readdirSync(out).length === 0) return;
  throw new CliError(`${out} exists; pass --force to overwrite it`);
}

/** Writes an adapter as a PEFT folder or a GGUF LoRA, tensors in f32 or f16. */
export function writeAdapter(adapter: LoraAdapter, out: string, format: AdapterFormat, outtype: string): void {
  if (outtype !== 'f32' && outtype !== 'f16') throw new UsageError(`adapters are written in f32 or f16; --outtype ${outtype} is for merged models (--format model)`);
  if (format === 'peft') savePeftAdapter(adapter, out, { dtype: outtype === 'f16' ? 'F16' : 'F32' });
  else saveGgufLora(adapter, out, { dtype: outtype, name: adapter.name });
}

/** What became of the inputs, for the one-line report on stderr. */
export function describe(recipe: Recipe, result: LoraAdapter): string {
  const method = recipe.merge?.method ?? 'cat (exact stack)';
  const ranks = [...new Set([...result.modules.values()].map((m) => m.r))].join('/');
  return `${recipe.adapters.length} adapter${recipe.adapters.length > 1 ? 's' : ''} → ${method}, rank ${ranks} over ${result.modules.size} modules`;
}

/** stack / merge --format peft|gguf: the recipe's adapters as one adapter file. */
export function stackToFile(recipe: Recipe, out: string, format: AdapterFormat, outtype: string, who: string): void {
  const loaded = loadForCli(recipe.base);
  const adapters = loadAdapters(recipe, loaded.model);
  const t0 = performance.now();
  const result = combineRecipe(adapters, recipe, `${who}(${adapters.map((a) => a.name).join(', ')})`);
  writeAdapter(result, out, format, outtype);
  process.stderr.write(`nomoat ${who}: ${describe(recipe, result)} → ${out} (${format}, ${outtype}) in ${Math.round(performance.now() - t0)} ms\n`);
  for (const a of [...adapters, result]) a.dispose();
  loaded.model.dispose();
}

const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'the adapter to write: a folder (PEFT) or a .gguf file' },
  format: { kind: 'string', metavar: 'FORMAT', help: 'peft or gguf (default: gguf when OUT ends in .gguf, else peft)' },
  outtype: { kind: 'string', metavar: 'TYPE', help: 'tensor type: f32 or f16', default: 'f32' },
  force: { kind: 'boolean', help: 'overwrite OUT if it exists' },
  ...INPUT_FLAGS,
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'stack',
  summary: 'stack LoRA adapters into one adapter file (PEFT or GGUF)',
  usage: '[RECIPE] -o OUT [--format peft|gguf] [--method METHOD …]',
  description:
    'Inputs: a recipe (JSON: {"base": MODEL, "adapters": [{"path": A, "scale": 1.0}, …], "merge"?: {"method": …}};\n' +
    'paths relative to the recipe) and/or -m MODEL with --lora / --lora-scaled (negative scales subtract).\n' +
    'Without a method the output is the exact stack: PEFT\'s "cat" (rank = sum of ranks), so applying it equals\n' +
    'applying every adapter at its scale. --method linear|svd|ties|dare_*|magnitude_prune*… uses PEFT\'s\n' +
    'add_weighted_adapter instead (weights default to the scales). The base is loaded to check every adapter against it.',
  flags: FLAGS,
  positionals: [{ name: 'recipe', help: 'a recipe JSON file', optional: true }],
  examples: [
    'nomoat stack stack.json -o ./stacked',
    'nomoat stack -m model.gguf --lora ./math --lora-scaled ./style 0.5 -o stacked.gguf',
    'nomoat stack stack.json --method ties --density 0.5 -o ./ties-merged',
    'nomoat stack stack.json --method svd --svd-rank 16 -o svd16.gguf --outtype f16',
  ],
  run({ flags: f, positionals: [recipePath] }) {
    const out = f.output;
    if (out === undefined) throw new UsageError('missing -o OUT');
    const format = f.format ?? (out.endsWith('.gguf') ? 'gguf' : 'peft');
    if (format !== 'peft' && format !== 'gguf') throw new UsageError(`--format must be peft or gguf, got ${JSON.stringify(format)}`);
    const outtype = f.outtype ?? 'f32';
    if (outtype !== 'f32' && outtype !== 'f16') throw new UsageError(`--outtype must be f32 or f16, got ${JSON.stringify(outtype)}`);
    const recipe = resolveInputs(recipePath, f);
    checkOutput(out, f.force);
    setThreads(f.threads);
    stackToFile(recipe, out, format, outtype, 'stack');
  },
});
