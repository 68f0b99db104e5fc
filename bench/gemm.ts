// GEMM benchmark: the three products of a linear layer (forward y = x·Wᵀ, backward dX = dY·W, dW = dYᵀ·X) for
// M = 4096 tokens and every (K, N) in {576, 1536, 2048}², on one thread and on all cores, against numpy's matmul
// (OpenBLAS) on the same shapes and transposes in the same run, and against the addon's FMA peak; then the skinny
// products of a rank-16 LoRA adapter (gemm_lora.ts).
import { loadNativeAddon } from '../src/engine/native/addon.js';
import { PY_OPENBLAS_CORE, bestTime, emit, runPython, threadCounts } from './common.js';
import { runLoraGemmLines } from './gemm_lora.js';

const M = 4096;
// Both sides: the best of REPS timed runs after WARMUP untimed ones (each product takes 10–200 ms; with 2 the
// 2-thread rows moved by ±3 % from run to run, so one shape or another read just under 1.0)
const REPS = 5, WARMUP = 1;
const SIZES = [576, 1536, 2048] as const;

type Product = 'fwd' | 'dX' | 'dW';
interface Shape { K: number; N: number; product: Product }

function shapes(): Shape[] {
  const out: Shape[] = [];
  for (const K of SIZES) for (const N of SIZES) for (const product of ['fwd', 'dX', 'dW'] as const) out.push({ K, N, product });
  return out;
}

/** GEMM dims of a product of the layer x[M, K], W[N, K], y[M, N]. */
function dims(s: Shape): { m: number; n: number; k: number; transA: boolean; transB: boolean } {
  if (s.product === 'fwd') return { m: M, n: s.N, k: s.K, transA: false, transB: true }; // y = x·Wᵀ
  if (s.product === 'dX') return { m: M, n: s.K, k: s.N, transA: false, transB: false }; // dX = dY·W
  return { m: s.N, n: s.K, k: M, transA: true, transB: false }; // dW = dYᵀ·X
}

const PY_SCRIPT = (list: Shape[]): string => `
import json, time
import numpy as np
${PY_OPENBLAS_CORE}
M = ${M}
rng = np.random.default_rng(0)
out = {}
for K, N, product in ${JSON.stringify(list.map((s) => [s.K, s.N, s.product]))}:
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    dy = rng.standard_normal((M, N), dtype=np.float32)
    f = {'fwd': lambda: x @ w.T, 'dX': lambda: dy @ w, 'dW': lambda: dy.T @ x}[product]
    for _ in range(${WARMUP}):
        f()
    best = 1e9
    for _ in range(${REPS}):
        t = time.perf_counter(); f(); best = min(best, time.perf_counter() - t)
    out[f'{K}_{N}_{product}'] = 2.0 * M * N * K / best / 1e9
print(json.dumps({'gflops': out, 'core': corename()}))
`;

export function runGemmBench(): void {
  const addon = loadNativeAddon();
  const list = shapes();
  const threadsBefore = addon.getThreads();
  for (const threads of threadCounts()) {
    addon.setThreads(threads);
    const peak = addon.peakFlops(threads);
    const numpy = runPython<{ gflops: Record<string, number>; core: string }>(PY_SCRIPT(list), threads);
    for (const s of list) {
      const d = dims(s);
      const a = addon.alloc(d.m * d.k), b = addon.alloc(d.k * d.n), c = addon.alloc(d.m * d.n);
      for (let i = 0; i < a.length; i++) a[i] = Math.sin(i) * 0.5;
      for (let i = 0; i < b.length; i++) b[i] = Math.cos(i) * 0.5;
      const t = bestTime(() => addon.matmul(a, b, c, 1, d.m, d.n, d.k, d.transA, d.transB, 0, 0, 0, 0, 0, 0, false, false), REPS, WARMUP);
      addon.free(a);
      addon.free(b);
      addon.free(c);
      const ours = (2 * d.m * d.n * d.k) / t / 1e9;
      const peer = numpy.gflops[`${s.K}_${s.N}_${s.product}`] ?? NaN;
      emit({
        bench: 'gemm', metric: `M${M}_K${s.K}_N${s.N}_${s.product}_t${threads}`, unit: 'GFLOP/s', ours, peer,
        peer_name: `numpy (OpenBLAS ${numpy.core})`, higher_is_better: true, peak_fraction: ours / peak, peak_gflops: peak,
        note: `simd=${addon.simdLevel()}, both sides best of ${REPS} after ${WARMUP} warm-up`,
      });
    }
    runLoraGemmLines(addon, threads, peak);
  }
  addon.setThreads(threadsBefore);
}
