// Conformance cases for data movement, elementwise ops, reductions, swiglu and dropout.

import type { BinaryOp, UnaryOp } from '../backend.js';
import type { Case, CaseGenerator } from './case.js';
import { EXACT, maxAbs, type Draw } from './harness.js';

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A random shape of rank 1..maxRank whose total size stays under `budget`. */
function randomShape(d: Draw, maxRank: number, budget = 4096): number[] {
  const rank = d.int(1, maxRank);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(d.pick([1, 2, 3, 5, 7, 8, 17, 33]));
  while (size(shape) > budget) shape[shape.indexOf(Math.max(...shape))] = 3;
  return shape;
}

// ---- data movement -----------------------------------------------------------------------------------------

/** Strided gathers: permuted (transposed) views, stepped slices, broadcast (stride 0) dims, an offset. */
export const copyStridedCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  for (let c = 0; c < 24; c++) {
    const shape = randomShape(d, 4);
    // Lay a larger source out contiguously, then view it: permute its axes, step along some, broadcast others.
    const step = shape.map(() => (d.bool(0.3) ? 2 : 1));
    const srcShape = shape.map((n, i) => n * step[i]);
    const perm = d.permutation(srcShape.length);
    const permShape = perm.map((p) => srcShape[p]);
    const permStrides = contiguousStrides(permShape);
    const srcStrides = new Array<number>(shape.length);
    perm.forEach((p, i) => (srcStrides[p] = permStrides[i]));
    const strides = shape.map((_, i) => (d.bool(0.15) ? 0 : srcStrides[i] * step[i]));
    const offset = d.int(0, 5);
    const x = d.normal(offset + size(srcShape));
    const n = size(shape);
    cases.push({
      kind: 'compare',
      name: `shape=[${shape.join(',')}] strides=[${strides.join(',')}] offset=${offset}`,
      run: (s) => {
        const out = s.zeros(n);
        s.be.copyStrided(s.input(x), offset, shape, strides, out);
        return { out: s.read(out) };
      },
      tol: { out: EXACT },
    });
  }
  return cases;
};

export const fillCases: CaseGenerator = (d) =>
  [1, 3, 7, 17, 65, 257, 1000].map((n): Case => {
    const value = Math.fround(d.rng.normal() * 10);
    return {
      kind: 'compare',
      name: `n=${n} value=${value}`,
      run: (s) => {
        const out = s.input(d.normal(n));
        s.be.fill(out, value);
        return { out: s.read(out) };
      },
      tol: { out: EXACT },
    };
  });

// ---- elementwise -------------------------------------------------------------------------------------------

const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div'];

/** One binary case: a and b stored contiguously in their own shapes (1 on their broadcast axes). */
function binaryCase(d: Draw, op: BinaryOp, shape: number[], aBroadcast: boolean[], bBroadcast: boolean[]): Case {
  const aShape = shape.map((n, i) => (aBroadcast[i] ? 1 : n));
  const bShape = shape.map((n, i) => (bBroadcast[i] ? 1 : n));
  const aStrides = contiguousStrides(aShape).map((s, i) => (aBroadcast[i] ? 0 : s));
  const bStrides = contiguousStrides(bShape).map((s, i) => (bBroadcast[i] ? 0 : s));
  const a = d.normal(size(aShape));
  // Divisors kept away from 0 so that the quotient is well conditioned.
  const b = op === 'div' ? d.uniform(size(bShape), 0.5, 2).map((v) => (d.bool() ? v : -v)) : d.normal(size(bShape));
  const n = size(shape);
  return {
    kind: 'compare',
    name: `${op} shape=[${shape.join(',')}] aStrides=[${aStrides.join(',')}] bStrides=[${bStrides.join(',')}]`,
    run: (s) => {
      const out = s.zeros(n);
      s.be.binary(op, s.input(a), aStrides, s.input(b), bStrides, out, shape);
      return { out: s.read(out) };
    },
    // +, −, ×, ÷ of float32 values rounded once are exact in any order; the margin allows a reciprocal multiply.
    tol: { out: { rel: 1e-6, abs: 1e-7 * (op === 'add' || op === 'sub' ? maxAbs(a) + maxAbs(b) : 0) } },
  };
}

/** Every op with broadcasting on every axis, by a and by b, plus random shapes and patterns. */
export const binaryCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  for (const op of BINARY_OPS) {
    const shape = [d.pick([2, 3]), d.pick([5, 7]), d.pick([16, 17, 33])];
    const none = shape.map(() => false);
    cases.push(binaryCase(d, op, shape, none, none));
    for (let axis = 0; axis < shape.length; axis++) {
      const one = shape.map((_, i) => i === axis);
      cases.push(binaryCase(d, op, shape, one, none));
      cases.push(binaryCase(d, op, shape, none, one));
    }
    cases.push(binaryCase(d, op, shape, shape.map(() => true), none)); // scalar a
    for (let c = 0; c < 5; c++) {
      const s = randomShape(d, 4);
      cases.push(binaryCase(d, op, s, s.map(() => d.bool(0.3)), s.map(() => d.bool(0.3))));
    }
  }
  cases.push(binaryCase(d, 'mul', [1000], [false], [false]));
  return cases;
};

const UNARY_OPS: readonly UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'silu', 'relu', 'gelu'];

/** Inputs in each op's domain: log and sqrt get positives; relu keeps away from its kink at 0. */
function unaryInput(d: Draw, op: UnaryOp, n: number): Float64Array {
  switch (op) {
    case 'log':
    case 'sqrt':
      return d.uniform(n, 0.01, 10);
    case 'exp':
      return d.uniform(n, -10, 10);
    case 'relu':
      return d.uniform(n, 0.01, 4).map((v) => (d.bool() ? v : -v));
    default:
      return d.normal(n, 3);
  }
}

function unaryCases(backward: boolean): CaseGenerator {
  return (d) => {
    const cases: Case[] = [];
    for (const op of UNARY_OPS) {
      for (const n of [1, 3, 7, 8, 17, 33, 65, 257]) {
        const x = unaryInput(d, op, n);
        const dout = d.normal(n);
        // Transcendentals may be vectorized approximations: a few ulp relative, and an absolute floor for
        // silu/gelu, whose tails are differences of nearly equal terms.
        const tol = { rel: 1e-5, abs: 1e-6 * maxAbs(x) * (backward ? maxAbs(dout) : 1) };
        cases.push({
          kind: 'compare',
          name: `${op} n=${n}`,
          run: (s) => {
            const out = s.zeros(n);
            if (backward) s.be.unaryBackward(op, s.input(x), s.input(dout), out, n);
            else s.be.unary(op, s.input(x), out, n);
            return { out: s.read(out) };
          },
          tol: { out: tol },
        });
      }
    }
    return cases;
  };
}

export const unaryForwardCases = unaryCases(false);
export const unaryBackwardCases = unaryCases(true);

export const affineCases: CaseGenerator = (d) =>
  [1, 3, 7, 17, 33, 257].map((n): Case => {
    const x = d.normal(n);
    const alpha = Math.fround(d.rng.normal());
    const beta = Math.fround(d.rng.normal());
    return {
      kind: 'compare',
      name: `n=${n} alpha=${alpha} beta=${beta}`,
      run: (s) => {
        const out = s.zeros(n);
        s.be.affine(s.input(x), out, n, alpha, beta);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-6, abs: 1e-6 * (Math.abs(alpha) * maxAbs(x) + Math.abs(beta)) } },
    };
  });

export const axpyCases: CaseGenerator = (d) =>
  [1, 3, 7, 17, 33, 257].map((n): Case => {
    const x = d.normal(n);
    const y = d.normal(n);
    const alpha = Math.fround(d.rng.normal());
    return {
      kind: 'compare',
      name: `n=${n} alpha=${alpha}`,
      run: (s) => {
        const out = s.input(y);
        s.be.axpy(alpha, s.input(x), out, n);
        return { y: s.read(out) };
      },
      tol: { y: { rel: 1e-6, abs: 1e-6 * (Math.abs(alpha) * maxAbs(x) + maxAbs(y)) } },
    };
  });

// ---- reductions --------------------------------------------------------------------------------------------

/** Sums over every subset pattern of a rank-3 shape, plus random ranks. */
export const sumToCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  const shapes: number[][] = [];
  const base = [d.pick([3, 5]), d.pick([7, 17]), d.pick([8, 33])];
  for (let mask = 0; mask < 8; mask++) shapes.push(base); // every subset of reduced axes below
  for (let c = 0; c < 12; c++) shapes.push(randomShape(d, 4));
  shapes.forEach((inShape, idx) => {
    const outShape = inShape.map((n, i) => (idx < 8 ? ((idx >> i) & 1 ? 1 : n) : d.bool(0.5) ? 1 : n));
    const x = d.normal(size(inShape));
    const summed = size(inShape) / size(outShape);
    cases.push({
      kind: 'compare',
      name: `[${inShape.join(',')}] → [${outShape.join(',')}]`,
      run: (s) => {
        const out = s.zeros(size(outShape));
        s.be.sumTo(s.input(x), inShape, out, outShape);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-6, abs: 1e-6 * summed * maxAbs(x) } },
    });
  });
  cases.push(((): Case => {
    const x = d.normal(257 * 65);
    return {
      kind: 'compare',
      name: '[257,65] → [1,65]',
      run: (s) => {
        const out = s.zeros(65);
        s.be.sumTo(s.input(x), [257, 65], out, [1, 65]);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-6, abs: 1e-6 * 257 * maxAbs(x) } },
    };
  })());
  return cases;
};

// ---- swiglu ------------------------------------------------------------------------------------------------

const SWIGLU_SIZES = [1, 3, 7, 8, 17, 33, 65, 257, 1000];

export const swigluForwardCases: CaseGenerator = (d) =>
  SWIGLU_SIZES.map((n): Case => {
    const gate = d.normal(n, 3);
    const up = d.normal(n);
    return {
      kind: 'compare',
      name: `n=${n}`,
      run: (s) => {
        const out = s.zeros(n);
        s.be.swigluForward(s.input(gate), s.input(up), out, n);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-5, abs: 1e-6 * maxAbs(gate) * maxAbs(up) } },
    };
  });

export const swigluBackwardCases: CaseGenerator = (d) =>
  SWIGLU_SIZES.map((n): Case => {
    const gate = d.normal(n, 3);
    const up = d.normal(n);
    const dout = d.normal(n);
    const scale = maxAbs(dout) * (maxAbs(up) + maxAbs(gate));
    return {
      kind: 'compare',
      name: `n=${n}`,
      run: (s) => {
        const dgate = s.zeros(n);
        const dup = s.zeros(n);
        s.be.swigluBackward(s.input(gate), s.input(up), s.input(dout), dgate, dup, n);
        return { dgate: s.read(dgate), dup: s.read(dup) };
      },
      tol: { dgate: { rel: 1e-5, abs: 1e-6 * scale }, dup: { rel: 1e-5, abs: 1e-6 * scale } },
    };
  });

// ---- dropout -----------------------------------------------------------------------------------------------

/** Masks must be bit-identical on every backend (the counter-based hash of rng.ts), and so must x · mask. */
export const dropoutCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  for (const p of [0, 0.1, 0.5, 0.9]) {
    for (const n of [1, 7, 17, 65, 4097]) {
      const seed = d.pick([0, 1, 0xffffffff, d.int(0, 0x7fffffff)]);
      const x = d.normal(n);
      cases.push({
        kind: 'compare',
        name: `p=${p} n=${n} seed=${seed}`,
        run: (s) => {
          const out = s.zeros(n);
          const mask = s.zeros(n);
          s.be.dropoutForward(s.input(x), out, mask, n, p, seed);
          return { out: s.read(out), mask: s.read(mask) };
        },
        tol: { out: EXACT, mask: EXACT },
      });
    }
  }
  return cases;
};
