// `nomoat merge`: LoRA adapters folded into the base weights (W ← W + scale·s·B·A per module) and the merged model
// written as a Hugging Face folder or a GGUF file in f32/f16/bf16/q8_0/q4_0; --unmerge subtracts them again. With
// --format peft|gguf it writes the combined adapter instead (as `nomoat stack` does).

import type { DType } from '../engine/dtype.js';
import { LoraAdapter, mergeAdapter } from '../lora/index.js';
import { OUT_TYPES, hfDtypeOf, saveGguf, saveHfFolder, type OutType } from '../models/convert.js';
import type { LlamaModel } from '../models/llama.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, setThreads } from './common.js';
import { DISTILL_MERGE_FLAGS, distillMergeCommand } from './merge-distill.js';
import { INPUT_FLAGS, checkOutput, combineRecipe, describe, loadAdapters, resolveInputs, stackToFile } from './stack.js';

const FORMATS = ['model', 'peft', 'gguf'] as const;
type Format = (typeof FORMATS)[number];

const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'a .gguf file or a folder (Hugging Face model, or PEFT adapter)' },
  format: { kind: 'string', metavar: 'FORMAT', help: 'model (merged weights), peft or gguf (one combined adapter)', default: 'model' },
  outtype: { kind: 'string', metavar: 'TYPE', help: `weight type: auto, ${OUT_TYPES.join(', ')} (HF folders: f32, f16, bf16; adapters: f32, f16)`, default: 'auto' },
  unmerge: { kind: 'boolean', help: 'subtract the adapters from -m MODEL, a model they were merged into (last first)' },
  force: { kind: 'boolean', help: 'overwrite OUT if it exists' },
  ...INPUT_FLAGS,
  ...DISTILL_MERGE_FLAGS,
} as const satisfies FlagSpecs;

/** auto: the precision the base's 2-D weights have (bf16 stays bf16, q8_0 stays q8_0; types nomoat cannot write,
 *  and block types in a Hugging Face folder → f16). */
function autoType(model: LlamaModel, hf: boolean): OutType {
  const counts = new Map<DType, number>();
  for (const [, t] of model.namedTensors()) if (t.shape.length === 2) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + t.size);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'f32';
  const t: OutType = (OUT_TYPES as readonly string[]).includes(top) ? (top as OutType) : 'f16'; // read-only types: f16
  return hf && hfDtypeOf(t) === null ? 'f16' : t;
}

/** A copy without the recorded base: unmerging applies adapters to a merged model, whose fingerprint differs. */
const unchecked = (a: LoraAdapter): LoraAdapter => new LoraAdapter(a.config, a.base, null, a.moduleData(), { name: a.name });

export const command = defineCommand({
  name: 'merge',
  summary: 'merge LoRA adapters into the base model (or combine them into one adapter)',
  usage: '[RECIPE] -o OUT [--format model|peft|gguf] [--outtype TYPE] [--method METHOD …]',
  description:
    'Inputs as for `nomoat stack`: a recipe and/or -m MODEL with --lora / --lora-scaled. Each adapter is merged into\n' +
    'the base at its scale, in order (PEFT merge_and_unload; non-finite results are refused). With a method\n' +
    '(recipe "merge" or --method) the adapters are first combined into one, which is merged at scale 1.\n' +
    'OUT ending in .gguf is written as GGUF (llama.cpp runs it), anything else as a Hugging Face folder. --outtype\n' +
    'q8_0/q4_0 re-quantizes the merged weights (GGUF only); auto keeps the base\'s precision.\n' +
    '--unmerge: -m names a merged model; the same adapters are subtracted (last first), restoring the base up to\n' +
    'rounding (exactly the base only when both were written in f32). The adapters cannot be checked against a merged\n' +
    'model: give the ones that were merged.',
  flags: FLAGS,
  positionals: [{ name: 'recipe', help: 'a recipe JSON file', optional: true }],
  examples: [
    'nomoat merge stack.json -o merged.gguf --outtype q8_0',
    'nomoat merge -m ./base-hf --lora ./math --lora-scaled ./style 0.5 -o ./merged-hf --outtype f16',
    'nomoat merge stack.json --method dare_ties --density 0.5 --merge-seed 1 -o ./dare-merged',
    'nomoat merge stack.json --format gguf --method svd -o combined-lora.gguf',
    'nomoat merge --lora ./math --lora ./style -m base.gguf --method distill --prompts math.jsonl --prompts style.txt -o ./fused',
    'nomoat merge stack.json --unmerge -m merged.gguf -o restored.gguf --outtype f32',
  ],
  async run({ flags: f, positionals: [recipePath] }) {
    const out = f.output;
    if (out === undefined) throw new UsageError('missing -o OUT');
    if (f.method === 'distill') {
      const recipe = resolveInputs(recipePath, { ...f, method: undefined });
      checkOutput(out, f.force);
      setThreads(f.threads);
      return distillMergeCommand(recipe, out, f);
    }
    if (f.prompts.length > 0) throw new UsageError('--prompts is for --method distill');
    const format = f.format ?? 'model';
    if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be ${FORMATS.join(', ')}; got ${JSON.stringify(format)}`);
    const want = f.outtype ?? 'auto';
    if (want !== 'auto' && !(OUT_TYPES as readonly string[]).includes(want)) throw new UsageError(`--outtype must be auto, ${OUT_TYPES.join(', ')}; got ${JSON.stringify(want)}`);
    if (f.unmerge && f.model === undefined) throw new UsageError('--unmerge needs -m MODEL: the model the adapters were merged into');
    const recipe = resolveInputs(recipePath, f);
    checkOutput(out, f.force);
    setThreads(f.threads);
    if ((format as Format) !== 'model') {
      if (f.unmerge) throw new UsageError('--unmerge writes a model: use --format model');
      stackToFile(recipe, out, format as 'peft' | 'gguf', want === 'auto' ? 'f32' : want, 'merge');
      return;
    }
    const toGguf = out.endsWith('.gguf');
    if (!toGguf && want !== 'auto' && hfDtypeOf(want as OutType) === null) throw new UsageError(`Hugging Face folders hold f32/f16/bf16 safetensors; --outtype ${want} needs a .gguf OUT`);

    const loaded = loadForCli(recipe.base);
    const model = loaded.model;
    const type: OutType = want === 'auto' ? autoType(model, !toGguf) : (want as OutType);
    const t0 = performance.now();
    const adapters = loadAdapters(recipe, model, f.unmerge ? { ignoreFingerprint: true, onWarning: () => {} } : {});
    const combined = recipe.merge !== undefined ? combineRecipe(adapters, recipe, `merge(${adapters.map((a) => a.name).join(', ')})`) : null;
    const parts = combined !== null ? [{ adapter: combined, scale: 1 }] : adapters.map((adapter, i) => ({ adapter, scale: recipe.adapters[i].scale }));
    const applied = f.unmerge ? [...parts].reverse().map((p) => ({ adapter: unchecked(p.adapter), scale: -p.scale })) : parts;
    try {
      for (const p of applied) mergeAdapter(model, p.adapter, { scale: p.scale });
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
    if (toGguf) saveGguf(model, loaded.tokenizer, out, { dtype: type });
    else saveHfFolder(model, loaded.tokenizer, out, { dtype: hfDtypeOf(type) ?? 'F32' });
    const what = combined !== null ? describe(recipe, combined) : `${parts.length} adapter${parts.length > 1 ? 's' : ''} at scales ${parts.map((p) => p.scale).join(', ')}`;
    process.stderr.write(`nomoat merge: ${f.unmerge ? 'unmerged' : 'merged'} ${what} → ${out} (${toGguf ? 'gguf' : 'hf'}, ${type}) in ${Math.round(performance.now() - t0)} ms\n`);
    for (const a of new Set([...adapters, ...parts.map((p) => p.adapter), ...applied.map((p) => p.adapter)])) a.dispose();
    model.dispose();
  },
});
