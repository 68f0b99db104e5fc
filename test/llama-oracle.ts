// Shared setup for the tests that use llama.cpp (node-llama-cpp 3.21.1) as the oracle: a temp folder, the engine and
// llama.cpp pinned to the same thread count, and one rule for a llama.cpp that will not load (fail in CI, skip
// elsewhere with the reason).

import { after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { getBackend, noGrad, tidy } from '../src/engine/index.js';
import { KVCache } from '../src/models/kvcache.js';
import type { LlamaModel } from '../src/models/llama.js';

export interface Oracle {
  /** the temp folder for this file's GGUF files (removed after the tests) */
  readonly dir: string;
  /** llama.cpp, or null when it did not load (see `unavailable`) */
  readonly llama: Llama | null;
  /** Call first in each test: returns true when the test must stop (skipped); throws in CI. */
  unavailable(t: TestContext): boolean;
}

/** Registers before/after hooks for this test file and returns the oracle they fill in. */
export function useLlamaOracle(label: string, threads: number): Oracle {
  let dir = '';
  let llama: Llama | null = null;
  let error = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `nomoat-${label}-`));
    getBackend().setThreads(threads);
    try {
      llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
  });
  after(async () => {
    await llama?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    get llama() {
      return llama;
    },
    unavailable(t) {
      if (llama !== null) return false;
      const why = `node-llama-cpp did not load a prebuilt llama.cpp: ${error}`;
      // In CI the oracle must run: a llama.cpp that does not load fails the test instead of skipping it.
      if (process.env.CI === 'true') assert.fail(why);
      t.skip(why);
      return true;
    },
  };
}

/** Greedy tokens of one run and, per step, token → probability (ours: every token; llama.cpp: the list it returns). */
export interface Run {
  tokens: number[];
  probs: Map<number, number>[];
}

/**
 * Largest |p_ours − p_llama| over llama.cpp's top-5 tokens of every step. Throws when the runs have different lengths
 * or llama.cpp gave no probabilities for a step: an empty list would otherwise compare as a difference of 0.
 */
export function maxProbDiff(ours: Run, llama: Run): number {
  assert.equal(llama.probs.length, ours.probs.length, `llama.cpp gave probabilities for ${llama.probs.length} steps, nomoat for ${ours.probs.length}`);
  let worst = 0;
  ours.probs.forEach((pa, s) => {
    const top = [...(llama.probs[s] ?? [])].slice(0, 5);
    assert.ok(top.length > 0, `llama.cpp returned no probabilities at step ${s}`);
    for (const [id, p] of top) worst = Math.max(worst, Math.abs((pa.get(id) ?? 0) - p));
  });
  return worst;
}

/** The full distribution (float64 softmax) of one row of logits, and its argmax. */
function softmax(logits: Float32Array): { best: number; probs: Map<number, number> } {
  const max = logits.reduce((a, x) => Math.max(a, x), -Infinity);
  const e = Float64Array.from(logits, (x) => Math.exp(x - max));
  const sum = e.reduce((a, x) => a + x, 0);
  let best = 0;
  for (let i = 1; i < e.length; i++) if (e[i] > e[best]) best = i;
  return { best, probs: new Map(Array.from(e, (x, i) => [i, x / sum] as [number, number])) };
}

/**
 * nomoat's next-token distributions along a given continuation (teacher-forced): step s sees the prompt and
 * forced[0..s-1]. `tokens` holds nomoat's own argmax at each step, which may differ from forced[s].
 */
export function forcedOurs(model: LlamaModel, prompt: readonly number[], forced: readonly number[]): Run {
  return decodeOurs(model, prompt, forced.length, (_best, step) => forced[step]);
}

/** nomoat's greedy decoding of prompt ids for `steps` tokens, keeping each step's full distribution (float64 softmax). */
export function greedyOurs(model: LlamaModel, prompt: readonly number[], steps: number): Run {
  return decodeOurs(model, prompt, steps, (best) => best);
}

/** `steps` decode steps after the prompt, each step's argmax and distribution kept; `next` picks the token fed back. */
function decodeOurs(model: LlamaModel, prompt: readonly number[], steps: number, next: (best: number, step: number) => number): Run {
  const cache = new KVCache(model.config, 1, prompt.length + steps);
  const run: Run = { tokens: [], probs: [] };
  try {
    let input = Int32Array.from(prompt);
    for (let s = 0; s < steps; s++) {
      const { best, probs } = softmax(noGrad(() => tidy(() => model.forwardLast(input, 1, input.length, cache).toArray())));
      run.tokens.push(best);
      run.probs.push(probs);
      input = Int32Array.of(next(best, s));
    }
  } finally {
    cache.dispose();
  }
  return run;
}

/** A LoRA adapter for llama.cpp's context: a GGUF LoRA file and its scale (llama-cli's --lora-scaled FILE SCALE). */
export interface LlamaLora {
  filePath: string;
  scale: number;
}

/**
 * llama.cpp's greedy decoding of each prompt (ids) for `steps` tokens from a GGUF file, with an f32 KV cache as nomoat
 * keeps (llama.cpp's f16 default alone moves probabilities by ~3e-3) and without flash attention (its CPU kernel,
 * which the default "auto" turns on, moves probabilities by up to ~1e-3 once the cache holds more than 64 positions,
 * measured on an f32 file where everything else agrees to 1e-5); also llama.cpp's tokenization of `texts`. `lora`:
 * adapters loaded onto the context at their scales.
 */
export async function greedyLlama(l: Llama, path: string, prompts: readonly number[][], steps: number, threads: number, texts: readonly string[] = [], lora: readonly LlamaLora[] = []): Promise<{ runs: Run[]; tokenized: number[][] }> {
  const model = await l.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: 256, threads, sequences: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
    ...(lora.length > 0 ? { lora: { adapters: lora.map((a) => ({ ...a })) } } : {}),
  });
  const runs: Run[] = [];
  try {
    for (const prompt of prompts) {
      const seq = ctx.getSequence();
      const run: Run = { tokens: [], probs: [] };
      for await (const o of seq.evaluateWithMetadata(prompt as never[], { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
        run.tokens.push(o.token);
        run.probs.push(o.probabilities);
        if (run.tokens.length >= steps) break;
      }
      void seq.dispose(); // as before: the context is disposed (awaited) below
      runs.push(run);
    }
    return { runs, tokenized: texts.map((s) => model.tokenize(s, false) as number[]) };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}
