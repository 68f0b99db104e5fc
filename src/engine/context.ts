// Engine-wide state: the current backend, whether gradients are recorded, and the stack of lifetime scopes.
// Kept in one small module so that tensor.ts and autograd.ts share it without import cycles.

import type { Backend } from './backend.js';
import { defaultBackend } from './default.js';

interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

let current: Backend | null = null;
let gradEnabled = true;
const scopes: Set<Disposable>[] = [];

/** The backend new tensors are created on (chosen at first use by default.ts unless set). */
export function getBackend(): Backend {
  current ??= defaultBackend();
  return current;
}

export function setBackend(backend: Backend): void {
  current = backend;
}

/** Runs fn with another backend current, restoring the previous one afterwards. */
export function withBackend<T>(backend: Backend, fn: () => T): T {
  const prev = current;
  current = backend;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a tape (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Registers a newly created tensor with the innermost scope, if any. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top !== undefined) top.add(t);
}

/** Removes a tensor from the innermost scope that holds it, so it outlives that scope. */
export function untrack(t: Disposable): void {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const scope = scopes[i];
    if (scope !== undefined && scope.delete(t)) return;
  }
}

/** Moves a tensor from the innermost scope to its parent (used for the values a scope returns). */
function promote(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  const parent = scopes[scopes.length - 2];
  if (top === undefined || !top.delete(t)) return;
  if (parent !== undefined) parent.add(t);
}

function isDisposable(x: unknown): x is Disposable {
  return typeof x === 'object' && x !== null && 'dispose' in x && 'disposed' in x;
}

/** Tensors found in a returned value: a tensor, or arrays / plain objects holding tensors (one level deep each). */
function collect(value: unknown, out: Disposable[], depth = 0): void {
  if (isDisposable(value)) out.push(value);
  else if (depth < 3 && Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (depth < 3 && typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as Record<string, unknown>)) collect(v, out, depth + 1);
  }
}

/**
 * Runs fn in a lifetime scope: every tensor created inside and not returned is disposed when fn returns
 * (or throws). Returned tensors move to the enclosing scope. Like tf.tidy; native memory is not seen by the GC,
 * so this is how loops keep memory flat.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T | undefined;
  try {
    result = fn();
    const kept: Disposable[] = [];
    collect(result, kept);
    for (const t of kept) promote(t);
    return result;
  } finally {
    const scope = scopes.pop();
    if (scope !== undefined) for (const t of scope) if (!t.disposed) t.dispose();
  }
}
