// The Tensor: a shape and strides over a reference-counted storage, with an explicit lifetime and an autograd node.
//
// f32 tensors hold a backend buffer (native memory or a JS typed array). The other dtypes (f16, bf16, q8_0, q4_0,
// q4_k, q6_k) hold raw bytes in ggml's layouts: they are frozen weights, read by the matmul that consumes them.
// Views (reshape, transpose, slice, expand) share storage; `contiguous()` copies only when the layout demands it.

import type { Backend, Buf } from './backend.js';
import { getBackend, track, untrack } from './context.js';
import { DTYPES, type DType } from './dtype.js';
import type { Node } from './autograd.js';

/** Shared memory behind one or more tensors. Freed when its last tensor is disposed. */
export class Storage {
  private refs = 1;
  constructor(
    readonly backend: Backend,
    /** f32 elements (null for byte-format dtypes) */
    readonly data: Buf | null,
    /** raw bytes for f16/bf16/quantized dtypes (null for f32) */
    readonly bytes: Uint8Array | null,
    /** whether `data` came from backend.alloc (and so must go back through backend.free) */
    private readonly owned: boolean,
  ) {}

  retain(): this {
    if (this.refs <= 0) throw new Error('use of a disposed tensor storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0 && this.owned && this.data !== null) this.backend.free(this.data);
  }

  get alive(): boolean {
    return this.refs > 0;
  }

  /** Whether exactly one tensor holds this storage (so writing in place cannot be seen elsewhere). */
  get exclusive(): boolean {
    return this.refs === 1;
  }
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] ?? 1;
  }
  return strides;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  requiresGrad = false;
  /** Accumulated gradient (leaf tensors that require grad); same shape, f32, contiguous. */
  grad: Tensor | null = null;
  /** The operation that produced this tensor, when recorded on the tape. */
  node: Node | null = null;
  /** Optional label for error messages and parameter dictionaries. */
  name = '';
  private _disposed = false;

  constructor(
    readonly storage: Storage,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    readonly dtype: DType,
  ) {
    track(this);
  }

  // ---- creation -----------------------------------------------------------------------------------------------

  /** A zero-filled f32 tensor on the current backend. */
  static zeros(shape: readonly number[], backend: Backend = getBackend()): Tensor {
    checkShape(shape);
    const data = backend.alloc(numel(shape));
    return new Tensor(new Storage(backend, data, null, true), [...shape], contiguousStrides(shape), 0, 'f32');
  }

  /**
   * An f32 tensor whose elements are unspecified (backend.allocUninit): only for the output of a kernel that writes
   * every element before anything reads it. Saves the zero fill of Tensor.zeros.
   */
  static empty(shape: readonly number[], backend: Backend = getBackend()): Tensor {
    checkShape(shape);
    const data = backend.allocUninit(numel(shape));
    return new Tensor(new Storage(backend, data, null, true), [...shape], contiguousStrides(shape), 0, 'f32');
  }

  static full(shape: readonly number[], value: number, backend: Backend = getBackend()): Tensor {
    if (value === 0) return Tensor.zeros(shape, backend);
    const t = Tensor.empty(shape, backend);
    backend.fill(t.data, value);
    return t;
  }

  /** An f32 tensor holding a copy of values. */
  static from(values: ArrayLike<number>, shape: readonly number[] = [values.length], backend: Backend = getBackend()): Tensor {
    if (numel(shape) !== values.length) throw new Error(`${values.length} values do not fill shape [${shape.join(', ')}]`);
    const t = Tensor.empty(shape, backend);
    t.data.set(values);
    return t;
  }

  /** A frozen tensor over raw bytes in a storage dtype (f16, bf16, q8_0, …); the bytes are not copied. */
  static fromBytes(bytes: Uint8Array, shape: readonly number[], dtype: Exclude<DType, 'f32'>, backend: Backend = getBackend()): Tensor {
    checkShape(shape);
    const info = DTYPES[dtype];
    const n = numel(shape);
    const last = shape[shape.length - 1] ?? 1;
    if (last % info.blockSize !== 0) throw new Error(`${dtype} rows must be a multiple of ${info.blockSize} elements, got ${last}`);
    const need = (n / info.blockSize) * info.blockBytes;
    if (bytes.byteLength !== need) throw new Error(`${dtype} tensor [${shape.join(', ')}] needs ${need} bytes, got ${bytes.byteLength}`);
    return new Tensor(new Storage(backend, null, bytes, false), [...shape], contiguousStrides(shape), 0, dtype);
  }

  // ---- properties ---------------------------------------------------------------------------------------------

  get backend(): Backend {
    return this.storage.backend;
  }

  get size(): number {
    return numel(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._disposed;
  }

  /** Whether elements are laid out row-major without gaps (offset may be non-zero). */
  get isContiguous(): boolean {
    let s = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i] ?? 1;
      if (d !== 1 && this.strides[i] !== s) return false;
      s *= d;
    }
    return true;
  }

  /**
   * The f32 elements of a contiguous tensor, as a view starting at its offset (length = size).
   * Throws for non-contiguous views or byte dtypes: call contiguous() first.
   */
  get data(): Buf {
    this.assertAlive();
    const d = this.storage.data;
    if (d === null) throw new Error(`tensor ${this.label()} holds ${this.dtype} bytes, not f32 elements`);
    if (!this.isContiguous) throw new Error(`tensor ${this.label()} is a non-contiguous view: call contiguous() first`);
    return this.offset === 0 && d.length === this.size ? d : d.subarray(this.offset, this.offset + this.size);
  }

  /** Raw bytes of a byte-format tensor (f16/bf16/quantized). */
  get bytes(): Uint8Array {
    this.assertAlive();
    if (this.storage.bytes === null) throw new Error(`tensor ${this.label()} is f32: use data`);
    return this.storage.bytes;
  }

  /** Copies the elements out as a plain Float32Array (any layout). */
  toArray(): Float32Array {
    this.assertAlive();
    const c = this.isContiguous ? this : this.contiguousCopy();
    const out = Float32Array.from(c.data);
    if (c !== this) c.dispose();
    return out;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs one element, tensor has shape [${this.shape.join(', ')}]`);
    this.assertAlive();
    const d = this.storage.data;
    if (d === null) throw new Error(`item() of ${this.dtype} tensor ${this.label()}`);
    return d[this.offset] ?? NaN; // read in the backend's precision (float64 for gradient checks)
  }

  label(): string {
    return `${this.name || '#' + this.id}[${this.shape.join(',')}]`;
  }

  // ---- views (no copy) ----------------------------------------------------------------------------------------

  /** A new tensor object sharing this storage. Views record no autograd node here; ops.ts wraps them. */
  view(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    this.assertAlive();
    return new Tensor(this.storage.retain(), [...shape], [...strides], offset, this.dtype);
  }

  /** Copies a strided f32 view into a fresh contiguous tensor (no autograd: ops.contiguous records one). */
  contiguousCopy(): Tensor {
    const out = Tensor.empty(this.shape, this.backend);
    const src = this.storage.data;
    if (src === null) throw new Error(`cannot copy ${this.dtype} tensor ${this.label()} elementwise`);
    this.backend.copyStrided(src, this.offset, this.shape, this.strides, out.data);
    return out;
  }

  // ---- lifetime -----------------------------------------------------------------------------------------------

  /** Frees this tensor's hold on its storage (and its gradient). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.storage.release();
    if (this.grad !== null) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this.node !== null) {
      this.node.releaseOutput();
      this.node = null;
    }
  }

  /** Exempts this tensor from the enclosing tidy() scopes (parameters, optimizer state, caches). */
  keep(): this {
    untrack(this);
    return this;
  }

  private assertAlive(): void {
    if (this._disposed) throw new Error(`use of disposed tensor ${this.label()}`);
  }
}
