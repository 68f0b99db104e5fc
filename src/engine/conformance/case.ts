// The shape of a conformance case: what a kernel's case generator returns (one generator per Backend method).

import type { Backend } from '../backend.js';
import { ReferenceBackend } from '../reference/index.js';
import { Scope, type Draw, type Output, type Tolerance } from './harness.js';

/** Runs one kernel call on a backend and reads back every output; compared with the f32 reference's. */
export interface CompareCase {
  kind: 'compare';
  /** Shape and options, e.g. 'M=3 N=17 K=65 transA batch=2'; printed on failure with the seed. */
  name: string;
  run: (s: Scope) => Record<string, Output>;
  /** One tolerance per output name returned by `run`. */
  tol: Record<string, Tolerance>;
}

/** A property the backend must have by itself (memory accounting, threads, inverse(rope(x)) = x). */
export interface PropertyCase {
  kind: 'property';
  name: string;
  /** Throws on violation; frees whatever it allocates. */
  check: (be: Backend) => void;
}

export type Case = CompareCase | PropertyCase;

/** Every method of the contract except the `name` field. */
export type KernelName = Exclude<keyof Backend, 'name'>;

export type CaseGenerator = (d: Draw) => Case[];

/**
 * Runs `fn` on a float64 reference and returns its outputs rounded to float32: the saved tensors a backward
 * kernel takes (lse, rstd, softmax output) are made once, so every backend's backward sees identical inputs.
 */
export function precompute<T extends Record<string, Float64Array>>(fn: (s: Scope) => T): T {
  const s = new Scope(new ReferenceBackend({ precision: 'f64' }));
  try {
    const out = fn(s);
    for (const v of Object.values(out)) for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]);
    return out;
  } finally {
    s.freeAll();
  }
}
