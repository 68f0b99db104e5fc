// Movement ops: reshape, transpose, slice, contiguous. Views share storage; their gradients move back the same way.

import { record } from '../autograd.js';
import { contiguousStrides, numel, Tensor } from '../tensor.js';

/** Resolves one -1 entry in a target shape. */
function resolveShape(size: number, shape: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = numel(out.filter((_, i) => i !== free));
    out[free] = rest === 0 ? 0 : size / rest;
  }
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`cannot reshape ${size} elements to [${shape.join(', ')}]`);
  }
  return out;
}

/** A strided copy into a fresh contiguous tensor; gradient passes through unchanged. */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x;
  const out = x.contiguousCopy();
  return record('contiguous', out, [x], [], (_n, g) => [g.view(g.shape, g.strides, g.offset)]);
}

/** Same elements, new shape (a view when x is contiguous, else a copy first). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = resolveShape(x.size, shape);
  const src = contiguous(x);
  const out = src.view(target, contiguousStrides(target), src.offset);
  const inShape = x.shape;
  return record('reshape', out, [src], [], (_n, g) => [g.view(inShape, contiguousStrides(inShape), g.offset)]);
}

function normDim(d: number, ndim: number): number {
  const r = d < 0 ? d + ndim : d;
  if (r < 0 || r >= ndim) throw new Error(`dimension ${d} out of range for ${ndim}-d tensor`);
  return r;
}

/** Swaps two dimensions (a view: no data moves). */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normDim(d0, x.ndim);
  const b = normDim(d1, x.ndim);
  const shape = [...x.shape];
  const strides = [...x.strides];
  [shape[a], shape[b]] = [shape[b], shape[a]];
  [strides[a], strides[b]] = [strides[b], strides[a]];
  const out = x.view(shape, strides, x.offset);
  return record('transpose', out, [x], [], (_n, g) => [transposeView(g, a, b)]);
}

function transposeView(g: Tensor, a: number, b: number): Tensor {
  const shape = [...g.shape];
  const strides = [...g.strides];
  [shape[a], shape[b]] = [shape[b], shape[a]];
  [strides[a], strides[b]] = [strides[b], strides[a]];
  return g.view(shape, strides, g.offset);
}

/** Elements start..end-1 along dim (a view). */
export function slice(x: Tensor, dim: number, start: number, end: number): Tensor {
  const d = normDim(dim, x.ndim);
  const n = x.shape[d];
  if (!(0 <= start && start <= end && end <= n)) throw new Error(`slice [${start}, ${end}) out of range for dim ${d} of size ${n}`);
  const shape = [...x.shape];
  shape[d] = end - start;
  const out = x.view(shape, x.strides, x.offset + start * x.strides[d]);
  const inShape = x.shape;
  return record('slice', out, [x], [], (_n, g) => {
    // Scatter g into zeros of the input's shape: outer × (rows of the slice × inner) contiguous chunks.
    const gx = Tensor.zeros(inShape, g.backend);
    const outer = numel(inShape.slice(0, d));
    const inner = numel(inShape.slice(d + 1));
    const chunk = (end - start) * inner;
    const gd = g.data;
    const xd = gx.data;
    for (let o = 0; o < outer; o++) xd.set(gd.subarray(o * chunk, (o + 1) * chunk), o * n * inner + start * inner);
    return [gx];
  });
}
