// Loads the C addon (build/Release/nomoat_native.node) and types its exports. The addon's argument order follows
// backend.ts, with parameter objects flattened into positional numbers (see native/src/addon_*.c).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type SimdLevel = 'scalar' | 'neon' | 'avx2' | 'avx512';

/** The raw addon. Buffers must be Float32Array (Int32Array for ids); lengths are checked in C. */
export interface NativeAddon {
  alloc(n: number): Float32Array;
  /** Like alloc, without the zero fill: a recycled block keeps whatever its last user wrote. */
  allocUninit(n: number): Float32Array;
  free(buf: Float32Array): void;
  liveBytes(): number;
  /** Bytes of alloc() buffers that the GC reclaimed because nobody called free(). */
  gcFreedBytes(): number;
  /** The freed-block cache behind alloc: allocs it served / had to pass to the system, blocks it gave back to the
   *  system (over its cap: live peak + 1 GB), bytes it holds now. */
  blockCacheStats(): { hits: number; misses: number; dropped: number; cachedBytes: number };
  simdLevel(): SimdLevel;
  /** The best level this CPU supports (setSimd may only go lower). */
  bestSimdLevel(): SimdLevel;
  setSimd(level: SimdLevel): void;
  /** Whether the AVX-512 level may take the VNNI int8 dot where the CPU has it (on unless NOMOAT_NO_VNNI=1);
   *  off, it takes the AVX-512BW dot, so tests reach both on a VNNI CPU. Process-wide, like setSimd. */
  setVnni(allowed: boolean): void;
  vnniAllowed(): boolean;
  /** The int8 table the quantized products take now: the SIMD level's name, or 'avx512-vnni'. */
  quantKernels(): 'scalar' | 'neon' | 'avx2' | 'avx512' | 'avx512-vnni';
  setThreads(n: number): void;
  getThreads(): number;
  /** GFLOP/s of a register-only FMA loop at the current SIMD level on `threads` threads. */
  peakFlops(threads: number): number;
  /** memcpy bandwidth in GB/s (bytes read + written) over a buffer of `bytes`. */
  copyBandwidth(threads: number, bytes: number): number;
  /** The dropout hash of src/engine/rng.ts `hashIndex`, computed in C. */
  hashIndex(seed: number, index: number): number;

  copyStrided(x: Float32Array, offset: number, shape: readonly number[], strides: readonly number[], out: Float32Array): void;
  fill(out: Float32Array, value: number): void;
  binary(op: string, a: Float32Array, aStrides: readonly number[], b: Float32Array, bStrides: readonly number[], out: Float32Array, shape: readonly number[]): void;
  unary(op: string, x: Float32Array, out: Float32Array, n: number): void;
  unaryBackward(op: string, x: Float32Array, dout: Float32Array, dx: Float32Array, n: number): void;
  affine(x: Float32Array, out: Float32Array, n: number, alpha: number, beta: number): void;
  axpy(alpha: number, x: Float32Array, y: Float32Array, n: number): void;
  sumTo(x: Float32Array, inShape: readonly number[], out: Float32Array, outShape: readonly number[]): void;
  matmul(
    a: Float32Array, b: Float32Array, c: Float32Array, batch: number, M: number, N: number, K: number,
    transA: boolean, transB: boolean, strideA: number, strideB: number, strideC: number,
    offA: number, offB: number, offC: number, accumulate: boolean, rowwise: boolean,
  ): void;
  /** out[M, N] = x[M, K] · dequant(w)[N, K]ᵀ, w in a byte dtype (ggml layouts). */
  matmulQuant(x: Float32Array, w: Uint8Array, dtype: string, out: Float32Array, M: number, N: number, K: number, inference: boolean): void;
  /** dx[M, K] = dy[M, N] · dequant(w)[N, K]. */
  matmulQuantT(dy: Float32Array, w: Uint8Array, dtype: string, dx: Float32Array, M: number, N: number, K: number): void;
  /** out[N, C] = dequant(table)[ids[n], :], table a Uint8Array [V, C] in a byte dtype. */
  gatherQuant(table: Uint8Array, dtype: string, ids: Int32Array, out: Float32Array, N: number, C: number): void;
  /** out[rows[i]] += (k · x[rows[i]] · Aᵀ) · Bᵀ */
  lowRankRows(x: Float32Array, rows: Int32Array, A: Float32Array, B: Float32Array, out: Float32Array, K: number, N: number, r: number, k: number): void;
  embeddingForward(table: Float32Array, ids: Int32Array, out: Float32Array, N: number, C: number): void;
  embeddingBackward(dout: Float32Array, ids: Int32Array, dtable: Float32Array, N: number, C: number): void;
  rmsnormForward(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array, N: number, C: number, eps: number): void;
  rmsnormBackward(dout: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array, N: number, C: number): void;
  rope(x: Float32Array, out: Float32Array, B: number, T: number, H: number, D: number, positions: Int32Array, invFreq: Float32Array, mode: string, inverse: boolean): void;
  attentionForward(
    q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    B: number, Tq: number, Tk: number, H: number, G: number, D: number, scale: number, qOffset: number, causal: boolean,
  ): void;
  attentionBackward(
    q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, dout: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array,
    B: number, Tq: number, Tk: number, H: number, G: number, D: number, scale: number, qOffset: number, causal: boolean,
  ): void;
  swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void;
  swigluBackward(gate: Float32Array, up: Float32Array, dout: Float32Array, dgate: Float32Array, dup: Float32Array, n: number): void;
  softmaxForward(x: Float32Array, out: Float32Array, N: number, C: number): void;
  softmaxBackward(y: Float32Array, dout: Float32Array, dx: Float32Array, N: number, C: number): void;
  crossEntropyForward(logits: Float32Array, targets: Int32Array, losses: Float32Array, lse: Float32Array, N: number, V: number, ignoreIndex: number): number;
  crossEntropyBackward(logits: Float32Array, targets: Int32Array, lse: Float32Array, dloss: Float32Array, dlogits: Float32Array, N: number, V: number, ignoreIndex: number): void;
  klDivForward(student: Float32Array, teacher: Float32Array, losses: Float32Array, N: number, V: number, temperature: number): void;
  klDivBackward(student: Float32Array, teacher: Float32Array, dloss: Float32Array, dstudent: Float32Array, N: number, V: number, temperature: number): void;
  dropoutForward(x: Float32Array, out: Float32Array, mask: Float32Array, n: number, p: number, seed: number): void;
  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  sumSquares(x: Float32Array, n: number): number;
}

const ADDON_PATH = join('build', 'Release', 'nomoat_native.node');

/** The package root: the nearest folder above this file holding package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`nomoat: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws with the fix (build it) when the compiled file is missing. */
export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  const file = join(root, ADDON_PATH);
  if (!existsSync(file)) {
    throw new Error(
      `nomoat: the native addon ${file} is missing. Build it with \`npm ci\` (installs and builds) or ` +
        '`npm run build` (node-gyp rebuild + tsc); it needs a C compiler and Python for node-gyp.',
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeAddon;
  return cached;
}

/** Whether the addon file exists (tests and callers that can fall back to the reference backend use this). */
export function nativeAddonAvailable(): boolean {
  try {
    return existsSync(join(packageRoot(), ADDON_PATH));
  } catch {
    return false;
  }
}
