// Pieces shared by the commands: model loading with errors that say what to do, threads, the sampling flags
// (llama.cpp's names and defaults), LoRA flags, and the timing line printed on stderr.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { getBackend } from '../engine/index.js';
import { resolveModelPath } from '../hub/resolve.js';
import type { LlamaModel } from '../models/llama.js';
import { detectFormat, loadLlama2c, loadModel, type LoadedModel } from '../models/load.js';
import { SAMPLING_DEFAULTS, type SamplingConfig } from '../models/sampling.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';

/** A failure the user can fix (bad input file, missing tokenizer…): printed without a stack, exit status 1. */
export class CliError extends Error {}

export const MODEL_KINDS = 'a GGUF file (.gguf), a Hugging Face model folder (config.json + model.safetensors), a llama2.c checkpoint (.bin) or hf://OWNER/REPO[:QUANT] (the Hugging Face Hub)';

/** Loads a model for a command, timing it; `tokenizer` overrides the tokenizer of a llama2.c checkpoint. */
export function loadForCli(spec: string | undefined, tokenizerPath?: string): LoadedModel & { loadMs: number } {
  if (spec === undefined) throw new UsageError(`missing -m MODEL (${MODEL_KINDS})`);
  const path = modelPathOf(spec);
  if (!existsSync(path)) throw new CliError(`model not found: ${path}\n  -m takes ${MODEL_KINDS}; \`nomoat convert --help\` converts between them.`);
  if (tokenizerPath !== undefined && !existsSync(tokenizerPath)) throw new CliError(`tokenizer not found: ${tokenizerPath}`);
  const t0 = performance.now();
  const loaded = tokenizerPath !== undefined && detectFormat(path) === 'llama2c' ? loadLlama2c(path, tokenizerPath) : loadModel(path);
  return { ...loaded, loadMs: performance.now() - t0 };
}

/** A model argument as a local path: `hf://…` from the Hugging Face cache (downloaded on first use), else unchanged. */
export function modelPathOf(spec: string): string {
  try {
    return resolveModelPath(spec);
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

/** The tokenizer of a loaded model, or an error telling how to provide one. */
export function requireTokenizer(m: LoadedModel): Tokenizer {
  if (m.tokenizer !== null) return m.tokenizer;
  const hint = m.format === 'llama2c' ? 'pass --tokenizer tokenizer.bin (llama2.c tokenizer)' : m.format === 'hf' ? 'add tokenizer.json to the folder' : 'the GGUF file has no tokenizer.ggml.* metadata';
  throw new CliError(`${m.path}: no tokenizer found; ${hint}`);
}

/** Applies -t (default: every available core) to the engine's backend. */
export function setThreads(n: number | undefined): number {
  const threads = n ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`-t expects a positive number of threads, got ${threads}`);
  getBackend().setThreads(threads);
  return getBackend().getThreads();
}

export const THREAD_FLAG = { threads: { kind: 'int', short: 't', metavar: 'N', help: 'CPU threads (default: all cores)' } } as const satisfies FlagSpecs;

export const SAMPLING_FLAGS = {
  temp: { kind: 'number', metavar: 'T', help: 'temperature; 0 = greedy', default: SAMPLING_DEFAULTS.temperature },
  'top-k': { kind: 'int', metavar: 'N', help: 'keep the N most likely tokens; 0 = off', default: SAMPLING_DEFAULTS.topK },
  'top-p': { kind: 'number', metavar: 'P', help: 'nucleus sampling; 1 = off', default: SAMPLING_DEFAULTS.topP },
  'min-p': { kind: 'number', metavar: 'P', help: 'drop tokens below P × the top probability; 0 = off', default: SAMPLING_DEFAULTS.minP },
  'repeat-penalty': { kind: 'number', metavar: 'X', help: 'penalize recent tokens; 1 = off', default: SAMPLING_DEFAULTS.repeatPenalty },
  'repeat-last-n': { kind: 'int', metavar: 'N', help: 'how many recent tokens the penalty sees', default: SAMPLING_DEFAULTS.repeatLastN },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'sampling seed; -1 = random', default: -1 },
} as const satisfies FlagSpecs;

/** The sampler configuration from the sampling flags. */
export function samplingFrom(f: FlagValues<typeof SAMPLING_FLAGS>): SamplingConfig {
  const seed = f.seed === undefined || f.seed < 0 ? Math.floor(Math.random() * 2 ** 31) : f.seed;
  const c: SamplingConfig = {
    temperature: f.temp ?? SAMPLING_DEFAULTS.temperature,
    topK: f['top-k'] ?? SAMPLING_DEFAULTS.topK,
    topP: f['top-p'] ?? SAMPLING_DEFAULTS.topP,
    minP: f['min-p'] ?? SAMPLING_DEFAULTS.minP,
    repeatPenalty: f['repeat-penalty'] ?? SAMPLING_DEFAULTS.repeatPenalty,
    repeatLastN: f['repeat-last-n'] ?? SAMPLING_DEFAULTS.repeatLastN,
    seed,
  };
  if (c.temperature < 0) throw new UsageError(`--temp must be ≥ 0, got ${c.temperature}`);
  if (c.topP <= 0 || c.topP > 1) throw new UsageError(`--top-p must be in (0, 1], got ${c.topP}`);
  if (c.minP < 0 || c.minP >= 1) throw new UsageError(`--min-p must be in [0, 1), got ${c.minP}`);
  if (c.topK < 0) throw new UsageError(`--top-k must be ≥ 0, got ${c.topK}`);
  if (c.repeatPenalty <= 0) throw new UsageError(`--repeat-penalty must be > 0, got ${c.repeatPenalty}`);
  return c;
}

export const LORA_FLAGS = {
  lora: { kind: 'list', metavar: 'FILE', help: 'apply a LoRA adapter (PEFT folder or .gguf) at scale 1' },
  'lora-scaled': { kind: 'pairs', metavar: ['FILE', 'SCALE'], help: 'apply a LoRA adapter at SCALE' },
} as const satisfies FlagSpecs;

/** Loads and attaches the adapters named by --lora / --lora-scaled (src/lora loads only when asked for). */
export async function applyLoraFlags(model: LlamaModel, f: FlagValues<typeof LORA_FLAGS>): Promise<number> {
  const wanted: [string, number][] = [
    ...f.lora.map((p): [string, number] => [p, 1]),
    ...f['lora-scaled'].map(([p, s]): [string, number] => {
      const scale = Number(s);
      if (!Number.isFinite(scale)) throw new UsageError(`--lora-scaled ${p} ${s}: SCALE must be a number`);
      return [p, scale];
    }),
  ];
  if (wanted.length === 0) return 0;
  const lora = await import('../lora/index.js');
  for (const [path, scale] of wanted) {
    if (!existsSync(path)) throw new CliError(`LoRA adapter not found: ${path} (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
    lora.loadAdapter(path, model).attach(model, { scale });
  }
  return wanted.length;
}

export interface Timings {
  load_ms: number;
  prompt_tokens: number;
  prompt_ms: number;
  prompt_tokens_per_s: number;
  generated_tokens: number;
  generation_ms: number;
  generation_tokens_per_s: number;
}

/** Wraps a model so the first forward (the prompt) and the rest (one token each) are timed apart. */
export function timedModel(model: LlamaModel): { model: LlamaModel; timings: () => { promptMs: number; genMs: number; steps: number } } {
  let promptMs = 0;
  let genMs = 0;
  let calls = 0;
  const timed = Object.create(model) as LlamaModel;
  timed.forwardLast = (ids, B, T, cache) => {
    const t0 = performance.now();
    const out = model.forwardLast(ids, B, T, cache);
    const dt = performance.now() - t0;
    if (calls++ === 0) promptMs += dt;
    else genMs += dt;
    return out;
  };
  return { model: timed, timings: () => ({ promptMs, genMs, steps: calls }) };
}

/** Timings of one generation: `generated` output tokens; `genRuns` one-token forwards after the prompt took `genMs`. */
export function makeTimings(loadMs: number, promptTokens: number, promptMs: number, generated: number, genRuns: number, genMs: number): Timings {
  const rate = (n: number, ms: number): number => (ms > 0 ? Math.round((n / ms) * 1e4) / 10 : 0);
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    load_ms: r1(loadMs), prompt_tokens: promptTokens, prompt_ms: r1(promptMs), prompt_tokens_per_s: rate(promptTokens, promptMs),
    generated_tokens: generated, generation_ms: r1(genMs), generation_tokens_per_s: rate(genRuns, genMs),
  };
}

/** The one-line performance report (stderr), in the spirit of llama.cpp's eval-time lines. */
export function timingLine(t: Timings): string {
  return `nomoat: load ${t.load_ms} ms | prompt ${t.prompt_tokens} tokens in ${t.prompt_ms} ms (${t.prompt_tokens_per_s} tok/s) | ` +
    `generated ${t.generated_tokens} tokens in ${t.generation_ms} ms (${t.generation_tokens_per_s} tok/s)`;
}
