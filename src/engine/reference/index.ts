// The reference backend: every kernel of the Backend contract in plain TypeScript, written to be read (the oracle
// the native backend is checked against), in float32 like the native one or in float64 for gradient checks.

import type { AdamWParams, AttentionParams, Backend, BinaryOp, Buf, MatmulParams, RopeMode, UnaryOp } from '../backend.js';
import type { DType } from '../dtype.js';
import { attentionBackward, attentionForward } from './attention.js';
import { needCount } from './check.js';
import * as ew from './elementwise.js';
import { crossEntropyBackward, crossEntropyForward, klDivBackward, klDivForward } from './losses.js';
import { matmul } from './matmul.js';
import * as rows from './norms.js';
import { adamw, sumSquares } from './optim.js';
import * as quant from './quant.js';

export type Precision = 'f32' | 'f64';

export interface ReferenceOptions {
  /** Element type of `alloc`'d buffers. 'f32' (default) matches the native backend; 'f64' keeps every stored
   *  value in double, for finite-difference gradient checks. Sums are kept in double in both. */
  precision?: Precision;
}

export class ReferenceBackend implements Backend {
  readonly name: string;
  readonly precision: Precision;
  /** Buffers handed out by alloc and not yet freed (membership only; the byte count is kept beside it). */
  private readonly live = new WeakSet<Buf>();
  private bytes = 0;

  constructor(options: ReferenceOptions = {}) {
    this.precision = options.precision ?? 'f32';
    this.name = `reference-${this.precision}`;
  }

  alloc(n: number): Buf {
    needCount('alloc', 'n', n);
    const buf = this.precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
    this.live.add(buf);
    this.bytes += buf.byteLength;
    return buf;
  }

  /**
   * Poisoned with NaN rather than left at zero: an op that reads part of an "uninitialized" output its kernel did
   * not write shows up as NaN in every conformance and gradient check run on this backend.
   */
  allocUninit(n: number): Buf {
    const buf = this.alloc(n);
    buf.fill(NaN);
    return buf;
  }

  /**
   * Forgets the buffer and detaches its ArrayBuffer (length becomes 0), as the native backend does, so that a
   * use after free shows up here too. Freeing a buffer this backend did not hand out, or freeing twice, throws.
   */
  free(buf: Buf): void {
    if (!this.live.has(buf)) throw new Error(`${this.name} free: buffer was not allocated by this backend or was already freed`);
    this.live.delete(buf);
    this.bytes -= buf.byteLength;
    const storage = buf.buffer;
    if (storage instanceof ArrayBuffer) structuredClone(storage, { transfer: [storage] }); // detaches it
  }

  liveBytes(): number {
    return this.bytes;
  }

  /** The reference is single-threaded: the request is validated and ignored, getThreads() stays 1. */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name} setThreads: n must be an integer ≥ 1, got ${n}`);
  }

  getThreads(): number {
    return 1;
  }

  // ---- data movement -------------------------------------------------------------------------------------------
  copyStrided(x: Buf, offset: number, shape: readonly number[], strides: readonly number[], out: Buf): void {
    ew.copyStrided(x, offset, shape, strides, out);
  }
  fill(out: Buf, value: number): void {
    ew.fill(out, value);
  }

  // ---- elementwise ---------------------------------------------------------------------------------------------
  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[], out: Buf, shape: readonly number[]): void {
    ew.binary(op, a, aStrides, b, bStrides, out, shape);
  }
  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void {
    ew.unary(op, x, out, n);
  }
  unaryBackward(op: UnaryOp, x: Buf, dout: Buf, dx: Buf, n: number): void {
    ew.unaryBackward(op, x, dout, dx, n);
  }
  affine(x: Buf, out: Buf, n: number, alpha: number, beta: number): void {
    ew.affine(x, out, n, alpha, beta);
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    ew.axpy(alpha, x, y, n);
  }

  // ---- reductions ----------------------------------------------------------------------------------------------
  sumTo(x: Buf, inShape: readonly number[], out: Buf, outShape: readonly number[]): void {
    ew.sumTo(x, inShape, out, outShape);
  }

  // ---- matmul --------------------------------------------------------------------------------------------------
  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
    matmul(a, b, c, p);
  }
  /** Frozen byte-dtype weight products (reference/quant.ts): one weight row dequantized at a time. */
  matmulQuant(x: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, out: Buf, M: number, N: number, K: number, inference = false): void {
    quant.matmulQuant(x, w, dtype, out, M, N, K, inference);
  }
  matmulQuantT(dy: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, dx: Buf, M: number, N: number, K: number): void {
    quant.matmulQuantT(dy, w, dtype, dx, M, N, K);
  }

  // ---- model ops -----------------------------------------------------------------------------------------------
  gatherQuant(table: Uint8Array, dtype: Exclude<DType, 'f32'>, ids: Int32Array, out: Buf, N: number, C: number): void {
    quant.gatherQuant(table, dtype, ids, out, N, C);
  }
  lowRankRows(x: Buf, rows: Int32Array, A: Buf, B: Buf, out: Buf, K: number, N: number, r: number, k: number): void {
    rows.forEach((row, i) => {
      if (!(row >= 0 && (row + 1) * K <= x.length && (row + 1) * N <= out.length)) throw new Error(`lowRankRows: rows[${i}] = ${row} is outside x and out`);
      const h = new Float64Array(r);
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let c = 0; c < K; c++) s += x[row * K + c] * A[j * K + c];
        h[j] = s * k;
      }
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let j = 0; j < r; j++) s += h[j] * B[n * r + j];
        out[row * N + n] += s;
      }
    });
  }
  embeddingForward(table: Buf, ids: Int32Array, out: Buf, N: number, C: number): void {
    rows.embeddingForward(table, ids, out, N, C);
  }
  embeddingBackward(dout: Buf, ids: Int32Array, dtable: Buf, N: number, C: number): void {
    rows.embeddingBackward(dout, ids, dtable, N, C);
  }
  rmsnormForward(x: Buf, w: Buf, out: Buf, rstd: Buf, N: number, C: number, eps: number): void {
    rows.rmsnormForward(x, w, out, rstd, N, C, eps);
  }
  rmsnormBackward(dout: Buf, x: Buf, w: Buf, rstd: Buf, dx: Buf, dw: Buf, N: number, C: number): void {
    rows.rmsnormBackward(dout, x, w, rstd, dx, dw, N, C);
  }
  rope(x: Buf, out: Buf, B: number, T: number, H: number, D: number, positions: Int32Array, invFreq: Buf, mode: RopeMode, inverse: boolean): void {
    rows.rope(x, out, B, T, H, D, positions, invFreq, mode, inverse);
  }
  attentionForward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, p: AttentionParams): void {
    attentionForward(q, k, v, out, lse, p);
  }
  attentionBackward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, dout: Buf, dq: Buf, dk: Buf, dv: Buf, p: AttentionParams): void {
    attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, p);
  }
  swigluForward(gate: Buf, up: Buf, out: Buf, n: number): void {
    ew.swigluForward(gate, up, out, n);
  }
  swigluBackward(gate: Buf, up: Buf, dout: Buf, dgate: Buf, dup: Buf, n: number): void {
    ew.swigluBackward(gate, up, dout, dgate, dup, n);
  }
  softmaxForward(x: Buf, out: Buf, N: number, C: number): void {
    rows.softmaxForward(x, out, N, C);
  }
  softmaxBackward(y: Buf, dout: Buf, dx: Buf, N: number, C: number): void {
    rows.softmaxBackward(y, dout, dx, N, C);
  }
  crossEntropyForward(logits: Buf, targets: Int32Array, losses: Buf, lse: Buf, N: number, V: number, ignoreIndex: number): number {
    return crossEntropyForward(logits, targets, losses, lse, N, V, ignoreIndex);
  }
  crossEntropyBackward(logits: Buf, targets: Int32Array, lse: Buf, dloss: Buf, dlogits: Buf, N: number, V: number, ignoreIndex: number): void {
    crossEntropyBackward(logits, targets, lse, dloss, dlogits, N, V, ignoreIndex);
  }
  klDivForward(student: Buf, teacher: Buf, losses: Buf, N: number, V: number, temperature: number): void {
    klDivForward(student, teacher, losses, N, V, temperature);
  }
  klDivBackward(student: Buf, teacher: Buf, dloss: Buf, dstudent: Buf, N: number, V: number, temperature: number): void {
    klDivBackward(student, teacher, dloss, dstudent, N, V, temperature);
  }
  dropoutForward(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number): void {
    ew.dropoutForward(x, out, mask, n, p, seed);
  }

  // ---- optimizer -----------------------------------------------------------------------------------------------
  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, n: number, p: AdamWParams): void {
    adamw(param, grad, m, v, n, p);
  }
  sumSquares(x: Buf, n: number): number {
    return sumSquares(x, n);
  }
}
