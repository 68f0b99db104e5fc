// The cross-backend conformance suite, hono-style: runConformance(() => new SomeBackend(), 'label') registers one
// test per Backend method that runs that method's cases on the backend and on the float32 reference and compares.
//
// Tolerances (element passes when |got − want| ≤ abs + rel·|want| + ofMax·max|want|; details beside each case):
// - exact: fill, copyStrided, embeddingForward, dropout (mask and output bit-identical: the shared hash),
//   cross-entropy's returned count.
// - +, −, ×, ÷ (binary, affine, axpy): rel 1e-6 (plus 1e-6 of the operands' size where terms can cancel).
// - unary ops and their derivatives, swiglu: rel 1e-5 (vectorized exp/tanh), abs 1e-6 · input scale.
// - sums (sumTo, embeddingBackward): abs 1e-6 · (terms summed) · max|x|.
// - matmul: |err| ≤ 1e-6 · K · max|a| · max|b| (+ 1e-6 · max|C₀| when accumulating), rel 1e-6.
// - rmsnorm, softmax, attention out/lse, cross-entropy, KL: rel 1e-5 (1e-6 for CE) with an absolute floor
//   scaled by the inputs (max|v| for attention, max|logit| + log V for the log-sum-exps, T² for KL).
// - backward kernels whose results are cancelling sums (rmsnorm dx, attention dq/dk/dv): 1e-5 / 2e-5 of the
//   largest element of that gradient.
// - rope: abs (2e-6 + 1.2e-7 · max angle) · max|x| (a float32 angle p·θ is off by ~p·θ·6e-8 rad).
// - adamw: rel 1e-6 on m, v; param within 1e-5 of the step size; sumSquares (double accumulation): rel 1e-9.
// Every case also checks that the backend's liveBytes() is back where it was after the case frees its buffers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend } from '../backend.js';
import { ReferenceBackend } from '../reference/index.js';
import type { Case, KernelName } from './case.js';
import { CASES } from './cases.js';
import { Draw, kernelSeed, mismatches, Scope, type Output } from './harness.js';

/** Base seed: NOMOAT_SEED from the environment to explore, else a fixed one so that runs are reproducible. */
export function baseSeed(): number {
  const env = process.env.NOMOAT_SEED;
  if (env === undefined || env === '') return 20250601;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`NOMOAT_SEED must be an integer, got '${env}'`);
  return n >>> 0;
}

export const KERNELS = Object.keys(CASES) as KernelName[];

/** Runs one kernel call through a scope on `be`, checking the scope leaves no bytes behind. */
function runOn(be: Backend, run: (s: Scope) => Record<string, Output>): Record<string, Output> {
  const before = be.liveBytes();
  const s = new Scope(be);
  try {
    return run(s);
  } finally {
    s.freeAll();
    const after = be.liveBytes();
    if (after !== before) throw new Error(`liveBytes ${before} before the case, ${after} after freeing everything`);
  }
}

/** Whether a backend stores float64 (the reference in f64 mode). */
function storesFloat64(be: Backend): boolean {
  const probe = be.alloc(1);
  const f64 = probe instanceof Float64Array;
  be.free(probe);
  return f64;
}

/**
 * '' when `be` agrees with `oracle` on case `c`, else what went wrong. A float64 backend cannot match float32
 * rounding bit for bit, so against one every tolerance gets at least one float32 ulp of relative slack
 * (2⁻²³): "exact" then means "exact up to the float32 store".
 */
export function runCase(c: Case, be: Backend, oracle: Backend, cacheKey?: string): string {
  try {
    if (c.kind === 'property') {
      c.check(be);
      return '';
    }
    const slack = storesFloat64(be) ? 2 ** -23 : 0;
    let want = cacheKey === undefined ? undefined : oracleCache.get(cacheKey);
    if (want === undefined) {
      want = runOn(oracle, c.run);
      if (cacheKey !== undefined) oracleCache.set(cacheKey, want);
    }
    const got = runOn(be, c.run);
    const problems: string[] = [];
    for (const [name, w] of Object.entries(want)) {
      const tol = c.tol[name];
      if (tol === undefined) throw new Error(`case defines no tolerance for output '${name}'`);
      const diff = mismatches(got[name], w, { ...tol, rel: Math.max(tol.rel, slack) });
      if (diff !== '') problems.push(`${name}: ${diff}`);
    }
    return problems.join(' | ');
  } catch (e) {
    return `threw ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * The oracle's outputs, cached by kernel, seed and case index: cases are regenerated identically from the seed,
 * so a second backend (or SIMD level) checked in the same process reuses the reference's results.
 */
const oracleCache = new Map<string, Record<string, Output>>();

/** Runs every case of one kernel; returns the failures as 'case name: problem' lines. */
export function checkKernel(kernel: KernelName, be: Backend, seed: number): { cases: number; failures: string[] } {
  const oracle = new ReferenceBackend({ precision: 'f32' });
  const cases = CASES[kernel](new Draw(kernelSeed(seed, kernel)));
  const failures: string[] = [];
  for (const [i, c] of cases.entries()) {
    const problem = runCase(c, be, oracle, `${kernel}/${seed}/${i}`);
    if (problem !== '') failures.push(`${c.name}: ${problem}`);
  }
  return { cases: cases.length, failures };
}

export interface ConformanceOptions {
  /** Base seed of the random cases (default: baseSeed()). */
  seed?: number;
}

/** Registers (node:test) one test per Backend method comparing `makeBackend()`'s results with the f32 reference. */
export function runConformance(makeBackend: () => Backend, label: string, options: ConformanceOptions = {}): void {
  const seed = options.seed ?? baseSeed();
  void describe(`conformance: ${label} vs reference-f32`, () => {
    for (const kernel of KERNELS) {
      void test(kernel, () => {
        // A fresh backend per test: process-wide settings (a native SIMD level, threads) are applied again.
        const { cases, failures } = checkKernel(kernel, makeBackend(), seed);
        const shown = failures.slice(0, 6).join('\n  ');
        assert.equal(failures.length, 0, `${label} ${kernel}: ${failures.length} of ${cases} cases fail (seed ${seed}, rerun with NOMOAT_SEED=${seed}):\n  ${shown}`);
      });
    }
  });
}
