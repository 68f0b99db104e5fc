// NativeBackend: the Backend contract (src/engine/backend.ts) implemented by the C addon — SIMD kernels chosen
// at run time, a persistent thread pool, native 64-byte-aligned memory. Float32 only: a Float64Array argument is
// a caller bug and throws.
import type { AdamWParams, AttentionParams, Backend, BinaryOp, Buf, MatmulParams, RopeMode, UnaryOp } from '../backend.js';
import type { DType } from '../dtype.js';
import { loadNativeAddon, type NativeAddon, type SimdLevel } from './addon.js';

function f32(buf: Buf, name: string): Float32Array {
  if (buf instanceof Float32Array) return buf;
  throw new TypeError(`NativeBackend: ${name} must be a Float32Array (the native backend computes in float32), got Float64Array`);
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  private readonly addon: NativeAddon;

  /** simd caps the kernel level; vnni: false keeps the AVX-512 level off the VNNI int8 dot (both process-wide). */
  constructor(options: { threads?: number; simd?: SimdLevel; vnni?: boolean } = {}) {
    this.addon = loadNativeAddon();
    if (options.simd !== undefined) this.addon.setSimd(options.simd);
    if (options.vnni !== undefined) this.addon.setVnni(options.vnni);
    if (options.threads !== undefined) this.addon.setThreads(options.threads);
  }

  /** The SIMD level in use ('avx512', 'avx2', 'neon' or 'scalar'); process-wide, like the thread count. */
  simdLevel(): SimdLevel {
    return this.addon.simdLevel();
  }
  setSimd(level: SimdLevel): void {
    this.addon.setSimd(level);
  }

  alloc(n: number): Buf {
    return this.addon.alloc(n);
  }
  allocUninit(n: number): Buf {
    return this.addon.allocUninit(n);
  }
  free(buf: Buf): void {
    this.addon.free(f32(buf, 'buf'));
  }
  liveBytes(): number {
    return this.addon.liveBytes();
  }
  setThreads(n: number): void {
    this.addon.setThreads(n);
  }
  getThreads(): number {
    return this.addon.getThreads();
  }

  copyStrided(x: Buf, offset: number, shape: readonly number[], strides: readonly number[], out: Buf): void {
    this.addon.copyStrided(f32(x, 'x'), offset, shape, strides, f32(out, 'out'));
  }
  fill(out: Buf, value: number): void {
    this.addon.fill(f32(out, 'out'), value);
  }

  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[], out: Buf, shape: readonly number[]): void {
    this.addon.binary(op, f32(a, 'a'), aStrides, f32(b, 'b'), bStrides, f32(out, 'out'), shape);
  }
  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void {
    this.addon.unary(op, f32(x, 'x'), f32(out, 'out'), n);
  }
  unaryBackward(op: UnaryOp, x: Buf, dout: Buf, dx: Buf, n: number): void {
    this.addon.unaryBackward(op, f32(x, 'x'), f32(dout, 'dout'), f32(dx, 'dx'), n);
  }
  affine(x: Buf, out: Buf, n: number, alpha: number, beta: number): void {
    this.addon.affine(f32(x, 'x'), f32(out, 'out'), n, alpha, beta);
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    this.addon.axpy(alpha, f32(x, 'x'), f32(y, 'y'), n);
  }

  sumTo(x: Buf, inShape: readonly number[], out: Buf, outShape: readonly number[]): void {
    this.addon.sumTo(f32(x, 'x'), inShape, f32(out, 'out'), outShape);
  }

  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
    this.addon.matmul(
      f32(a, 'a'), f32(b, 'b'), f32(c, 'c'), p.batch, p.M, p.N, p.K, p.transA, p.transB,
      p.strideA, p.strideB, p.strideC, p.offA, p.offB, p.offC, p.accumulate, p.rowwise === true,
    );
  }

  matmulQuant(x: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, out: Buf, M: number, N: number, K: number, inference = false): void {
    this.addon.matmulQuant(f32(x, 'x'), w, dtype, f32(out, 'out'), M, N, K, inference);
  }
  matmulQuantT(dy: Buf, w: Uint8Array, dtype: Exclude<DType, 'f32'>, dx: Buf, M: number, N: number, K: number): void {
    this.addon.matmulQuantT(f32(dy, 'dy'), w, dtype, f32(dx, 'dx'), M, N, K);
  }

  gatherQuant(table: Uint8Array, dtype: Exclude<DType, 'f32'>, ids: Int32Array, out: Buf, N: number, C: number): void {
    this.addon.gatherQuant(table, dtype, ids, f32(out, 'out'), N, C);
  }
  lowRankRows(x: Buf, rows: Int32Array, A: Buf, B: Buf, out: Buf, K: number, N: number, r: number, k: number): void {
    this.addon.lowRankRows(f32(x, 'x'), rows, f32(A, 'A'), f32(B, 'B'), f32(out, 'out'), K, N, r, k);
  }
  embeddingForward(table: Buf, ids: Int32Array, out: Buf, N: number, C: number): void {
    this.addon.embeddingForward(f32(table, 'table'), ids, f32(out, 'out'), N, C);
  }
  embeddingBackward(dout: Buf, ids: Int32Array, dtable: Buf, N: number, C: number): void {
    this.addon.embeddingBackward(f32(dout, 'dout'), ids, f32(dtable, 'dtable'), N, C);
  }

  rmsnormForward(x: Buf, w: Buf, out: Buf, rstd: Buf, N: number, C: number, eps: number): void {
    this.addon.rmsnormForward(f32(x, 'x'), f32(w, 'w'), f32(out, 'out'), f32(rstd, 'rstd'), N, C, eps);
  }
  rmsnormBackward(dout: Buf, x: Buf, w: Buf, rstd: Buf, dx: Buf, dw: Buf, N: number, C: number): void {
    this.addon.rmsnormBackward(f32(dout, 'dout'), f32(x, 'x'), f32(w, 'w'), f32(rstd, 'rstd'), f32(dx, 'dx'), f32(dw, 'dw'), N, C);
  }

  rope(x: Buf, out: Buf, B: number, T: number, H: number, D: number, positions: Int32Array, invFreq: Buf, mode: RopeMode, inverse: boolean): void {
    this.addon.rope(f32(x, 'x'), f32(out, 'out'), B, T, H, D, positions, f32(invFreq, 'invFreq'), mode, inverse);
  }

  attentionForward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, p: AttentionParams): void {
    this.addon.attentionForward(
      f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), f32(out, 'out'), f32(lse, 'lse'),
      p.B, p.Tq, p.Tk, p.H, p.G, p.D, p.scale, p.qOffset, p.causal,
    );
  }
  attentionBackward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, dout: Buf, dq: Buf, dk: Buf, dv: Buf, p: AttentionParams): void {
    this.addon.attentionBackward(
      f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), f32(out, 'out'), f32(lse, 'lse'), f32(dout, 'dout'),
      f32(dq, 'dq'), f32(dk, 'dk'), f32(dv, 'dv'),
      p.B, p.Tq, p.Tk, p.H, p.G, p.D, p.scale, p.qOffset, p.causal,
    );
  }

  swigluForward(gate: Buf, up: Buf, out: Buf, n: number): void {
    this.addon.swigluForward(f32(gate, 'gate'), f32(up, 'up'), f32(out, 'out'), n);
  }
  swigluBackward(gate: Buf, up: Buf, dout: Buf, dgate: Buf, dup: Buf, n: number): void {
    this.addon.swigluBackward(f32(gate, 'gate'), f32(up, 'up'), f32(dout, 'dout'), f32(dgate, 'dgate'), f32(dup, 'dup'), n);
  }

  softmaxForward(x: Buf, out: Buf, N: number, C: number): void {
    this.addon.softmaxForward(f32(x, 'x'), f32(out, 'out'), N, C);
  }
  softmaxBackward(y: Buf, dout: Buf, dx: Buf, N: number, C: number): void {
    this.addon.softmaxBackward(f32(y, 'y'), f32(dout, 'dout'), f32(dx, 'dx'), N, C);
  }

  crossEntropyForward(logits: Buf, targets: Int32Array, losses: Buf, lse: Buf, N: number, V: number, ignoreIndex: number): number {
    return this.addon.crossEntropyForward(f32(logits, 'logits'), targets, f32(losses, 'losses'), f32(lse, 'lse'), N, V, ignoreIndex);
  }
  crossEntropyBackward(logits: Buf, targets: Int32Array, lse: Buf, dloss: Buf, dlogits: Buf, N: number, V: number, ignoreIndex: number): void {
    this.addon.crossEntropyBackward(f32(logits, 'logits'), targets, f32(lse, 'lse'), f32(dloss, 'dloss'), f32(dlogits, 'dlogits'), N, V, ignoreIndex);
  }

  klDivForward(student: Buf, teacher: Buf, losses: Buf, N: number, V: number, temperature: number): void {
    this.addon.klDivForward(f32(student, 'student'), f32(teacher, 'teacher'), f32(losses, 'losses'), N, V, temperature);
  }
  klDivBackward(student: Buf, teacher: Buf, dloss: Buf, dstudent: Buf, N: number, V: number, temperature: number): void {
    this.addon.klDivBackward(f32(student, 'student'), f32(teacher, 'teacher'), f32(dloss, 'dloss'), f32(dstudent, 'dstudent'), N, V, temperature);
  }

  dropoutForward(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number): void {
    this.addon.dropoutForward(f32(x, 'x'), f32(out, 'out'), f32(mask, 'mask'), n, p, seed >>> 0);
  }

  adamw(param: Buf, grad: Buf, m: Buf, v: Buf, n: number, p: AdamWParams): void {
    this.addon.adamw(f32(param, 'param'), f32(grad, 'grad'), f32(m, 'm'), f32(v, 'v'), n, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step);
  }
  sumSquares(x: Buf, n: number): number {
    return this.addon.sumSquares(f32(x, 'x'), n);
  }
}
