// Conformance plumbing: seeded random inputs, a scope that allocates and frees a case's buffers on one backend,
// and the tolerance check that compares a backend's outputs with the reference's.

import type { Backend, Buf } from '../backend.js';
import { Rng } from '../rng.js';

// ---- random inputs -----------------------------------------------------------------------------------------

/** Sizes every shape is drawn from: tiny and odd ones (remainders of every SIMD width), then a few larger. */
export const SMALL_SIZES = [1, 2, 3, 5, 7, 8, 16, 17, 33, 65] as const;
export const LARGE_SIZES = [129, 257] as const;

/** Seeded draws for one kernel's cases. Every value drawn is representable in float32, so the f32 and f64
 *  backends receive identical inputs. */
export class Draw {
  readonly rng: Rng;
  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + this.rng.int(hi - lo + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)];
  }
  /** A random permutation of 0..n−1 (Fisher–Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
  bool(pTrue = 0.5): boolean {
    return this.rng.next() < pTrue;
  }
  size(): number {
    return this.pick(SMALL_SIZES);
  }
  /** n normal values · scale, rounded to float32. */
  normal(n: number, scale = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.fround(this.rng.normal() * scale);
    return out;
  }
  /** n values uniform in [lo, hi), rounded to float32. */
  uniform(n: number, lo: number, hi: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * this.rng.next());
    return out;
  }
  ints(n: number, lo: number, hi: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(lo, hi);
    return out;
  }
}

/** Seed of one kernel's cases: the run's base seed mixed with the kernel's name, so each kernel reproduces alone. */
export function kernelSeed(base: number, kernel: string): number {
  let h = base >>> 0;
  for (let i = 0; i < kernel.length; i++) h = Math.imul(h ^ kernel.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
}

// ---- buffers on a backend ----------------------------------------------------------------------------------

/** Allocates a case's buffers on one backend and frees them all afterwards. */
export class Scope {
  private readonly bufs: Buf[] = [];
  constructor(readonly be: Backend) {}
  /** A backend buffer holding `values`. */
  input(values: ArrayLike<number>): Buf {
    const b = this.zeros(values.length);
    for (let i = 0; i < values.length; i++) b[i] = values[i];
    return b;
  }
  zeros(n: number): Buf {
    const b = this.be.alloc(n);
    this.bufs.push(b);
    return b;
  }
  /** A float64 copy of a buffer (read before the scope frees it). */
  read(b: Buf): Float64Array {
    return Float64Array.from(b);
  }
  freeAll(): void {
    for (const b of this.bufs) this.be.free(b);
    this.bufs.length = 0;
  }
}

// ---- tolerances --------------------------------------------------------------------------------------------

/**
 * Element i passes when |got − want| ≤ abs + rel · |want_i| + ofMax · max_j |want_j|.
 * `ofMax` serves outputs whose elements are sums with cancellation (gradients), where the error follows the
 * size of the terms rather than of the result. All zero means exact equality (NaN equals NaN).
 */
export interface Tolerance {
  rel: number;
  abs: number;
  ofMax?: number;
}

export const EXACT: Tolerance = { rel: 0, abs: 0 };

/** An output of a case: values read back from the backend, or a scalar a kernel returned. */
export type Output = Float64Array | number;

/** The first few mismatches between two outputs, or '' when they agree within `tol`. */
export function mismatches(got: Output, want: Output, tol: Tolerance, limit = 3): string {
  const g = typeof got === 'number' ? [got] : got;
  const w = typeof want === 'number' ? [want] : want;
  if (g.length !== w.length) return `length ${g.length}, want ${w.length}`;
  const bound0 = tol.abs + (tol.ofMax ?? 0) * maxAbs(w);
  const lines: string[] = [];
  let count = 0;
  for (let i = 0; i < w.length; i++) {
    const a = g[i];
    const b = w[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    const err = Math.abs(a - b);
    const bound = bound0 + tol.rel * Math.abs(b);
    if (a === b || err <= bound) continue;
    count++;
    if (lines.length < limit) lines.push(`[${i}] got ${a}, want ${b} (|err| ${err.toExponential(2)} > ${bound.toExponential(2)})`);
  }
  return count === 0 ? '' : `${count}/${w.length} elements differ: ${lines.join('; ')}`;
}
