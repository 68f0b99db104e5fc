// Shared setup for the tests that use llama.cpp (node-llama-cpp 3.21.1) as the oracle: a temp folder, the engine and
// llama.cpp pinned to the same thread count, and one rule for a llama.cpp that will not load (fail in CI, skip
// elsewhere with the reason).

import { after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { getBackend } from '../src/engine/index.js';

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

/** Largest |p_ours − p_llama| over llama.cpp's top-5 tokens of every step. */
export function maxProbDiff(ours: Run, llama: Run): number {
  let worst = 0;
  ours.probs.forEach((pa, s) => {
    for (const [id, p] of [...(llama.probs[s] ?? new Map<number, number>())].slice(0, 5)) worst = Math.max(worst, Math.abs((pa.get(id) ?? 0) - p));
  });
  return worst;
}
