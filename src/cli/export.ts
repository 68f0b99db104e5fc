// `nomoat export`: a model, an adapter or a recipe written for vLLM, llama.cpp, Ollama or Transformers + PEFT, with a
// README holding the exact command (src/handoff/export.ts); refusals name the field the engine cannot take.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { readGguf } from '../formats/gguf.js';
import { EXPORT_TARGETS, exportFor, ExportRefusal, type ExportAdapter, type ExportTarget } from '../handoff/index.js';
import { loadAdapter, loadRecipe, loadRecipeStack, PEFT_CONFIG_FILE, type LoraAdapter } from '../lora/index.js';
import { hfDtypeOf, OUT_TYPES, type OutType } from '../models/convert.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, LORA_FLAGS, loadForCli, setThreads, THREAD_FLAG } from './common.js';

const FLAGS = {
  for: { kind: 'string', metavar: 'ENGINE', help: `the engine: ${EXPORT_TARGETS.join(', ')}` },
  out: { kind: 'string', short: 'o', metavar: 'DIR', help: 'the folder to write (refused if it exists, unless --force)' },
  model: { kind: 'string', short: 'm', metavar: 'BASE', help: 'the base model of an ADAPTER (default: its base_model_name_or_path), or overriding a recipe\'s "base"' },
  ...LORA_FLAGS,
  outtype: { kind: 'string', metavar: 'TYPE', help: 'weight type of the base: f32, f16, bf16 (vllm, peft; default f32), or q8_0, q4_0 too (llama.cpp, ollama; default f16)' },
  'base-name': { kind: 'string', metavar: 'ID', help: 'base_model_name_or_path written into PEFT adapters, e.g. the hub id (default: the exported base folder)' },
  name: { kind: 'string', metavar: 'NAME', help: 'ollama: the model name for `ollama create` (default: the folder name)' },
  force: { kind: 'boolean', help: 'replace DIR if it exists' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

/** An adapter name engines accept, from a path. */
function nameOf(path: string): string {
  const n = basename(path.replace(/[\\/]+$/, '')).replace(/\.gguf$/, '').replace(/^adapter_config\.json$/, 'adapter');
  const clean = n.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return clean === '' ? 'adapter' : clean;
}

type Input = { kind: 'recipe' } | { kind: 'adapter'; base: string | undefined } | { kind: 'model' };

/** What INPUT is: a recipe (.json file), an adapter (PEFT folder, GGUF LoRA) or a model. */
function classify(input: string): Input {
  if (!existsSync(input)) throw new CliError(`${input}: not found`);
  if (statSync(input).isFile() && input.endsWith('.json')) return input.endsWith(PEFT_CONFIG_FILE) ? adapterInput(resolve(input, '..')) : { kind: 'recipe' };
  if (statSync(input).isDirectory() && existsSync(`${input}/${PEFT_CONFIG_FILE}`)) return adapterInput(input);
  if (input.endsWith('.gguf')) {
    const f = readGguf(input);
    try {
      if (f.metadata.get('general.type') === 'adapter') return { kind: 'adapter', base: undefined };
    } finally {
      f.source.close?.();
    }
  }
  return { kind: 'model' };
}

function adapterInput(dir: string): Input {
  const cfg = JSON.parse(readFileSync(`${dir}/${PEFT_CONFIG_FILE}`, 'utf8')) as { base_model_name_or_path?: unknown };
  const b = cfg.base_model_name_or_path;
  return { kind: 'adapter', base: typeof b === 'string' && existsSync(b) ? b : undefined };
}

const wrap = <T>(fn: () => T): T => {
  try {
    return fn();
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
};

export const command = defineCommand({
  name: 'export',
  summary: 'write a model, adapter or recipe for vLLM, llama.cpp, Ollama or Transformers + PEFT, with the command to run it',
  usage: 'MODEL|ADAPTER|RECIPE --for vllm|llama.cpp|ollama|peft -o DIR [options]',
  description:
    'vllm: DIR/base (Hugging Face folder) + DIR/adapters/NAME (PEFT) and `vllm serve … --enable-lora --lora-modules NAME=…\n' +
    '--max-lora-rank R`. peft: the same folders and expected-logits.json (nomoat\'s next-token logits, for\n' +
    'scripts/gpu-handoff-check.py). llama.cpp: DIR/model.gguf + DIR/NAME.gguf and `llama-server -m … --lora …`\n' +
    '(--lora-scaled for a scale). ollama: DIR/model.gguf, DIR/adapter.gguf and a Modelfile (TEMPLATE translated when the\n' +
    'chat template is ChatML, Llama-3, Llama-2 or Zephyr, proved on probe conversations; else the GGUF\'s own) and\n' +
    '`ollama create NAME -f Modelfile`. Each folder has a README.md with the command.\n' +
    'Refused, naming the field: for vLLM a rank over 512, per-module ranks or alphas (rank_pattern, alpha_pattern),\n' +
    'modules_to_save, DoRA; for vLLM, PEFT and Ollama a stack of several adapters (combine it first: recipe "merge":\n' +
    '{"method": "cat"} is exact). A scale other than 1 is folded into lora_alpha (llama.cpp: --lora-scaled).',
  flags: FLAGS,
  positionals: [{ name: 'input', help: 'a model (GGUF, HF folder), an adapter (PEFT folder, GGUF LoRA; base from -m) or a recipe .json' }],
  examples: [
    'nomoat export my-adapter -m assets/default-model --for vllm -o out-vllm',
    'nomoat export recipe.json --for llama.cpp -o out-llama',
    'nomoat export model.gguf --lora-scaled style.gguf 0.7 --for ollama -o out-ollama --name my-model',
    'nomoat export my-adapter --for peft -o out-peft --base-name HuggingFaceTB/SmolLM2-135M',
  ],
  run({ flags: f, positionals: [input] }) {
    const target = f.for;
    if (target === undefined || !(EXPORT_TARGETS as readonly string[]).includes(target)) throw new UsageError(`--for must be one of ${EXPORT_TARGETS.join(', ')}${target !== undefined ? `, got ${JSON.stringify(target)}` : ''}`);
    const out = f.out;
    if (out === undefined) throw new UsageError('missing -o DIR (the folder to write)');
    const gguf = target === 'llama.cpp' || target === 'ollama';
    const outtype = f.outtype;
    if (outtype !== undefined && !(OUT_TYPES as readonly string[]).includes(outtype)) throw new UsageError(`--outtype must be one of ${OUT_TYPES.join(', ')}`);
    const hfDtype = outtype === undefined ? 'F32' : hfDtypeOf(outtype as OutType);
    if (!gguf && hfDtype === null) throw new UsageError(`--outtype ${outtype ?? ''} is a GGUF type; --for ${target} writes safetensors (f32, f16, bf16)`);
    setThreads(f.threads);

    const what = classify(input);
    let basePath: string | undefined = f.model;
    let recipe: ReturnType<typeof loadRecipe> | undefined;
    if (what.kind === 'recipe') {
      recipe = wrap(() => loadRecipe(input));
      if (recipe.route !== undefined) throw new CliError(`${input}: route is "${recipe.route.mode}": a routed library picks adapters per prompt, which no engine reproduces; export the adapters one by one`);
      basePath ??= recipe.base;
    } else if (what.kind === 'adapter') {
      basePath ??= what.base;
      if (basePath === undefined) throw new UsageError(`${input} is an adapter: give its base with -m BASE (its base_model_name_or_path is not a local path)`);
    } else basePath = input;
    if ((f.lora.length > 0 || f['lora-scaled'].length > 0) && what.kind !== 'model') throw new UsageError('--lora / --lora-scaled go with a MODEL input (a recipe lists its adapters, an ADAPTER is one)');

    const loaded = loadForCli(basePath);
    const { model } = loaded;
    const owned: LoraAdapter[] = [];
    try {
      const adapters: ExportAdapter[] = [];
      const add = (adapter: LoraAdapter, name: string, scale: number): void => {
        owned.push(adapter);
        let n = name, i = 2;
        while (adapters.some((a) => a.name === n)) n = `${name}-${i++}`;
        adapters.push({ adapter, name: n, scale });
      };
      if (recipe !== undefined) {
        const r = recipe;
        const stack = wrap(() => loadRecipeStack(model, r));
        if (r.merge !== undefined) add(stack[0].adapter, nameOf(input).replace(/\.json$/, ''), 1);
        else stack.forEach((s, i) => add(s.adapter, nameOf(r.adapters[i].path), s.scale));
      } else if (what.kind === 'adapter') add(wrap(() => loadAdapter(input, model)), nameOf(input), 1);
      for (const p of f.lora) add(wrap(() => loadAdapter(p, model)), nameOf(p), 1);
      for (const [p, s] of f['lora-scaled']) {
        const scale = Number(s);
        if (s.trim() === '' || !Number.isFinite(scale)) throw new UsageError(`--lora-scaled ${p} ${s}: SCALE must be a number`);
        add(wrap(() => loadAdapter(p, model)), nameOf(p), scale);
      }
      const t0 = performance.now();
      let r;
      try {
        r = exportFor({
          target: target as ExportTarget, out, model, tokenizer: loaded.tokenizer, adapters,
          ...(hfDtype !== null && !gguf ? { hfDtype } : {}), ...(gguf && outtype !== undefined ? { ggufType: outtype as OutType } : {}),
          ...(f['base-name'] !== undefined ? { baseName: f['base-name'] } : {}), ...(f.name !== undefined ? { modelName: f.name } : {}), force: f.force,
        });
      } catch (e) {
        if (e instanceof ExportRefusal) throw new CliError(e.message);
        throw new CliError(e instanceof Error ? e.message : String(e));
      }
      process.stderr.write(`nomoat export: ${r.files.length} files in ${out} (${Math.round(performance.now() - t0)} ms); see ${out}/README.md\n`);
      process.stdout.write(`${r.command}\n`);
    } finally {
      for (const a of owned) a.dispose();
      model.dispose();
    }
  },
});
