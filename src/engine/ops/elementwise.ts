// Elementwise ops with NumPy broadcasting, unary functions, and reductions (sumTo, sum, mean).
// Broadcast inputs are read through stride-0 dimensions: nothing is expanded in memory.

import type { BinaryOp, Buf, UnaryOp } from '../backend.js';
import { record } from '../autograd.js';
import { numel, Tensor } from '../tensor.js';
import { reshape } from './movement.js';

/** The f32 buffer of x starting at its offset (any layout; strides describe it). */
export function base(x: Tensor): Buf {
  const d = x.storage.data;
  if (d === null) throw new Error(`${x.label()}: ${x.dtype} tensors are frozen weights, usable only as matmul operands`);
  return x.offset === 0 ? d : d.subarray(x.offset);
}

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read x as if it had `shape` (x's shape broadcasts to it): 0 on broadcast dims. */
export function broadcastStrides(x: Tensor, shape: readonly number[]): number[] {
  const n = shape.length;
  const out = new Array<number>(n).fill(0);
  for (let i = 0; i < x.ndim; i++) {
    const j = n - x.ndim + i;
    out[j] = x.shape[i] === 1 && shape[j] !== 1 ? 0 : x.strides[i];
  }
  return out;
}

/** Sums g (contiguous, shape `from`) down to `to` (a shape that broadcasts to `from`). */
export function sumToShape(g: Tensor, to: readonly number[]): Tensor {
  if (to.length === g.ndim && to.every((d, i) => d === g.shape[i])) return g.view(g.shape, g.strides, g.offset);
  const padded = [...new Array<number>(g.ndim - to.length).fill(1), ...to];
  const out = Tensor.empty(to, g.backend);
  g.backend.sumTo(g.data, g.shape, out.data, padded);
  return out;
}

/** g broadcast back up to `shape` (a contiguous copy). */
function expandTo(g: Tensor, shape: readonly number[]): Tensor {
  const out = Tensor.empty(shape, g.backend);
  g.backend.copyStrided(base(g), 0, shape, broadcastStrides(g, shape), out.data);
  return out;
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = Tensor.empty(shape, a.backend);
  a.backend.binary(op, base(a), broadcastStrides(a, shape), base(b), broadcastStrides(b, shape), out.data, shape);
  return out;
}

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw(op, a, b);
  return record(op, out, [a, b], op === 'mul' || op === 'div' ? [a, b] : [], (node, g, needs) => {
    const [as, bs] = [a.shape, b.shape];
    switch (op) {
      case 'add':
        return [needs[0] ? sumToShape(g, as) : null, needs[1] ? sumToShape(g, bs) : null];
      case 'sub': {
        let gb: Tensor | null = null;
        if (needs[1]) {
          const s = sumToShape(g, bs);
          gb = scaleRaw(s, -1);
          s.dispose();
        }
        return [needs[0] ? sumToShape(g, as) : null, gb];
      }
      case 'mul': {
        const [sa, sb] = [node.get(0), node.get(1)];
        return [needs[0] ? reduced(binaryRaw('mul', g, sb), as) : null, needs[1] ? reduced(binaryRaw('mul', g, sa), bs) : null];
      }
      case 'div': {
        const [sa, sb] = [node.get(0), node.get(1)];
        const ga = needs[0] ? reduced(binaryRaw('div', g, sb), as) : null;
        let gb: Tensor | null = null;
        if (needs[1]) {
          // d(a/b)/db = −a/b²
          const q = binaryRaw('div', sa, sb);
          const q2 = binaryRaw('div', q, sb);
          const t = binaryRaw('mul', g, q2);
          gb = reduced(scaleInPlace(t, -1), bs);
          q.dispose();
          q2.dispose();
        }
        return [ga, gb];
      }
    }
  });
}

/** sumToShape that disposes its temporary input. */
function reduced(t: Tensor, to: readonly number[]): Tensor {
  const r = sumToShape(t, to);
  t.dispose();
  return r;
}

function scaleInPlace(t: Tensor, s: number): Tensor {
  t.backend.affine(t.data, t.data, t.size, s, 0);
  return t;
}

function scaleRaw(x: Tensor, s: number, shift = 0): Tensor {
  const src = x.isContiguous ? x : x.contiguousCopy();
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.affine(src.data, out.data, x.size, s, shift);
  if (src !== x) src.dispose();
  return out;
}

export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);

/** alpha * x + beta. */
export function affine(x: Tensor, alpha: number, beta = 0): Tensor {
  const out = scaleRaw(x, alpha, beta);
  return record('affine', out, [x], [], (_n, g) => [scaleRaw(g, alpha)]);
}

export const scale = (x: Tensor, s: number): Tensor => affine(x, s, 0);

export function unary(op: UnaryOp, x: Tensor): Tensor {
  const src = x.isContiguous ? x : x.contiguousCopy();
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.unary(op, src.data, out.data, x.size);
  if (src !== x) src.dispose();
  return record(op, out, [x], [x], (node, g) => {
    const xs = node.get(0);
    const xc = xs.isContiguous ? xs : xs.contiguousCopy();
    const gx = Tensor.empty(x.shape, x.backend);
    x.backend.unaryBackward(op, xc.data, g.data, gx.data, x.size);
    if (xc !== xs) xc.dispose();
    return [gx];
  });
}

export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const neg = (x: Tensor): Tensor => unary('neg', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const gelu = (x: Tensor): Tensor => unary('gelu', x);

/** Sum down to `shape` (same rank as x, 1 on reduced dims; or a shape x broadcasts from). */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  const src = x.isContiguous ? x : x.contiguousCopy();
  const out = sumToShape(src, shape);
  if (src !== x) src.dispose();
  const inShape = x.shape;
  return record('sumTo', out, [x], [], (_n, g) => [expandTo(g, inShape)]);
}

/** Sum over the given axes (all when omitted). */
export function sum(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + x.ndim : a));
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const s = sumTo(x, kept);
  if (keepDims) return s;
  return reshape(s, x.shape.filter((_, i) => !ax.includes(i)));
}

export function mean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const ax = axes ?? x.shape.map((_, i) => i);
  const count = numel(ax.map((a) => x.shape[a < 0 ? a + x.ndim : a]));
  return scale(sum(x, axes, keepDims), 1 / count);
}
