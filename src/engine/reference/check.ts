// Argument checks shared by the reference kernels: the oracle fails loudly on a caller's shape bug
// instead of reading past the data (a typed array read out of range silently yields undefined → NaN).

import type { Buf } from '../backend.js';

/** Throws unless `buf` holds at least `n` elements. */
export function needLength(kernel: string, arg: string, buf: ArrayLike<number>, n: number): void {
  if (buf.length < n) {
    throw new RangeError(`reference ${kernel}: ${arg} has ${buf.length} elements, needs at least ${n}`);
  }
}

/** Throws unless `n` is a non-negative integer. */
export function needCount(kernel: string, arg: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`reference ${kernel}: ${arg} must be a non-negative integer, got ${n}`);
  }
}

/** Number of elements of a shape (1 for rank 0). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** A float64 scratch buffer: intermediate sums are kept in double whatever the backend's precision. */
export function scratch(n: number): Float64Array {
  return new Float64Array(n);
}

/** Copies a float64 scratch into an output buffer (rounding to f32 if the output is a Float32Array). */
export function store(from: Float64Array, to: Buf, n: number): void {
  for (let i = 0; i < n; i++) to[i] = from[i];
}
