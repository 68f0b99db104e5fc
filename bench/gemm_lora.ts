// GEMM benchmark, LoRA lines: the six skinny products of a rank-16 adapter on one linear (T = 1024 tokens, in 576,
// out 1536), as lowrank.ts issues them, on one thread and on all cores, against numpy (OpenBLAS) on the same
// shapes and transposes in the same run. One side of each product is 16 wide, so packing and tiling dominate here.
import type { NativeAddon } from '../src/engine/native/addon.js';
import { PY_OPENBLAS_CORE, bestTime, emit, runPython } from './common.js';

const T = 1024, IN = 576, OUT = 1536, R = 16;
// Both sides: the best of REPS timed runs after WARMUP untimed ones (the products take ~0.1–1 ms, so one run is noise)
const REPS = 20, WARMUP = 3;

/** op(A)[m, k] · op(B)[k, n]; A is [k, m] when transA, B is [n, k] when transB. */
interface Skinny { name: string; m: number; n: number; k: number; transA: boolean; transB: boolean }

const SKINNY: Skinny[] = [
  { name: 'hAt', m: T, n: R, k: IN, transA: false, transB: true }, // t = h·Aᵀ
  { name: 'tBt', m: T, n: OUT, k: R, transA: false, transB: true }, // y += t·Bᵀ
  { name: 'gB', m: T, n: R, k: OUT, transA: false, transB: false }, // u = g·B
  { name: 'uA', m: T, n: IN, k: R, transA: false, transB: false }, // dh += u·A
  { name: 'dA', m: R, n: IN, k: T, transA: true, transB: false }, // dA = uᵀ·h
  { name: 'dB', m: OUT, n: R, k: T, transA: true, transB: false }, // dB = gᵀ·t
];

const PY_SCRIPT = `
import json, time
import numpy as np
${PY_OPENBLAS_CORE}
rng = np.random.default_rng(0)
out = {}
for name, m, n, k, ta, tb in ${JSON.stringify(SKINNY.map((s) => [s.name, s.m, s.n, s.k, Number(s.transA), Number(s.transB)]))}:
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    f = lambda: (a.T if ta else a) @ (b.T if tb else b)
    for _ in range(${WARMUP}):
        f()
    best = 1e9
    for _ in range(${REPS}):
        t = time.perf_counter(); f(); best = min(best, time.perf_counter() - t)
    out[name] = 2.0 * m * n * k / best / 1e9
print(json.dumps({'gflops': out, 'core': corename()}))
`;

/** Emits one line per skinny product at the addon's current thread count. */
export function runLoraGemmLines(addon: NativeAddon, threads: number, peak: number): void {
  const numpy = runPython<{ gflops: Record<string, number>; core: string }>(PY_SCRIPT, threads);
  for (const s of SKINNY) {
    const a = addon.alloc(s.m * s.k), b = addon.alloc(s.k * s.n), c = addon.alloc(s.m * s.n);
    for (let i = 0; i < a.length; i++) a[i] = Math.sin(i) * 0.5;
    for (let i = 0; i < b.length; i++) b[i] = Math.cos(i) * 0.5;
    const t = bestTime(() => addon.matmul(a, b, c, 1, s.m, s.n, s.k, s.transA, s.transB, 0, 0, 0, 0, 0, 0, false, false), REPS, WARMUP);
    addon.free(a);
    addon.free(b);
    addon.free(c);
    const ours = (2 * s.m * s.n * s.k) / t / 1e9;
    emit({
      bench: 'gemm', metric: `lora_r${R}_T${T}_in${IN}_out${OUT}_${s.name}_t${threads}`, unit: 'GFLOP/s', ours,
      peer: numpy.gflops[s.name] ?? NaN, peer_name: `numpy (OpenBLAS ${numpy.core})`, higher_is_better: true,
      peak_fraction: ours / peak, peak_gflops: peak,
      note: `M${s.m} N${s.n} K${s.k}${s.transA ? ' transA' : ''}${s.transB ? ' transB' : ''}, simd=${addon.simdLevel()}, both sides best of ${REPS} after ${WARMUP} warm-ups`,
    });
  }
}
