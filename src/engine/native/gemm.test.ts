// GEMM of the native backend against a naive triple loop in TypeScript: random odd shapes, both transposes,
// batches with stride-0 broadcast, accumulate and offsets, at every SIMD level this CPU has.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MatmulParams } from '../backend.js';
import { loadNativeAddon, type SimdLevel } from './addon.js';
import { NativeBackend } from './backend.js';

const addon = loadNativeAddon();

function levels(): SimdLevel[] {
  const best = addon.bestSimdLevel();
  if (best === 'neon') return ['scalar', 'neon'];
  const all: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  return all.slice(0, all.indexOf(best) + 1);
}

let state = 12345;
function rnd(): number {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
}
function randInt(lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** C (+)= op(A)·op(B) in float64, exactly as the contract in backend.ts says. */
function naive(a: Float32Array, b: Float32Array, c: Float64Array, p: MatmulParams): void {
  for (let bi = 0; bi < p.batch; bi++) {
    const oa = p.offA + bi * p.strideA, ob = p.offB + bi * p.strideB, oc = p.offC + bi * p.strideC;
    for (let m = 0; m < p.M; m++) {
      for (let n = 0; n < p.N; n++) {
        let s = 0;
        for (let k = 0; k < p.K; k++) {
          const av = a[oa + (p.transA ? k * p.M + m : m * p.K + k)] ?? NaN;
          const bv = b[ob + (p.transB ? n * p.K + k : k * p.N + n)] ?? NaN;
          s += av * bv;
        }
        const i = oc + m * p.N + n;
        c[i] = p.accumulate ? (c[i] ?? 0) + s : s;
      }
    }
  }
}

function check(be: NativeBackend, p: MatmulParams, label: string): void {
  const span = (stride: number, size: number): number => (p.batch - 1) * stride + size;
  const a = Float32Array.from({ length: p.offA + span(p.strideA, p.M * p.K) }, () => rnd() * 2 - 1);
  const b = Float32Array.from({ length: p.offB + span(p.strideB, p.K * p.N) }, () => rnd() * 2 - 1);
  const c0 = Float32Array.from({ length: p.offC + span(p.strideC, p.M * p.N) }, () => rnd() * 2 - 1);
  const want = Float64Array.from(c0);
  naive(a, b, want, p);
  const got = Float32Array.from(c0);
  be.matmul(a, b, got, p);
  const tol = 1e-6 * (p.K + 2) + 1e-6;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs((got[i] ?? NaN) - (want[i] ?? 0));
    assert.ok(err <= tol, `${label}: C[${i}] = ${got[i]}, want ${want[i]} (|err| ${err.toExponential(2)} > ${tol.toExponential(2)})`);
  }
}

void test('matmul matches a naive loop on random odd shapes, transposes and batches at every SIMD level', () => {
  const be = new NativeBackend();
  const before = be.simdLevel();
  try {
    for (const level of levels()) {
      be.setSimd(level);
      for (let trial = 0; trial < 24; trial++) {
        const M = randInt(1, 70), N = randInt(1, 90), K = randInt(0, 80), batch = randInt(1, 3);
        const transA = rnd() < 0.5, transB = rnd() < 0.5, accumulate = rnd() < 0.3;
        const shareA = rnd() < 0.3, shareB = rnd() < 0.3;
        const p: MatmulParams = {
          batch, M, N, K, transA, transB, accumulate,
          strideA: shareA ? 0 : M * K + randInt(0, 3),
          strideB: shareB ? 0 : K * N + randInt(0, 3),
          strideC: M * N + randInt(0, 2),
          offA: randInt(0, 5), offB: randInt(0, 5), offC: randInt(0, 5),
        };
        check(be, p, `${level} ${JSON.stringify(p)}`);
      }
    }
  } finally {
    be.setSimd(before);
  }
});

void test('matmul across block boundaries (larger than one cache block) in both threads settings', () => {
  const be = new NativeBackend();
  const threads = be.getThreads();
  try {
    for (const t of [1, 2]) {
      be.setThreads(t);
      for (const [transA, transB] of [[false, true], [true, false], [false, false]] as const) {
        const p: MatmulParams = { batch: 1, M: 37, N: 1100, K: 400, transA, transB, accumulate: false, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0 };
        check(be, p, `threads ${t} transA ${transA} transB ${transB}`);
        // K in several passes (the last one with K % 4 left over) and M over more than one row block, accumulating
        const q: MatmulParams = { ...p, M: 101, N: 70, K: 1301, accumulate: true };
        check(be, q, `threads ${t} transA ${transA} transB ${transB} M 101 N 70 K 1301 accumulate`);
      }
    }
  } finally {
    be.setThreads(threads);
  }
});

void test('narrow products (N or M <= 16, LoRA rank 16) match the naive loop and are bit-identical over thread counts', () => {
  const be = new NativeBackend();
  const threads = be.getThreads(), simd = addon.simdLevel();
  try {
    for (const level of levels()) {
      be.setSimd(level);
      const shapes = [
        [301, 16, 200, false, true], [301, 11, 200, false, false], [40, 16, 700, false, false], // A read in place
        [301, 16, 200, true, false], [301, 7, 200, true, true], // A stored transposed (LoRA's gᵀ·t)
        [16, 301, 200, true, false], [13, 301, 200, false, false], // M <= 16: Cᵀ (LoRA's uᵀ·h)
      ] as const;
      for (const [M, N, K, transA, transB] of shapes) {
        const p: MatmulParams = { batch: 1, M, N, K, transA, transB, accumulate: true, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0 };
        be.setThreads(2);
        check(be, p, `${level} M ${M} N ${N} K ${K} transA ${transA} transB ${transB}`);
        const a = Float32Array.from({ length: M * K }, () => rnd() * 2 - 1);
        const b = Float32Array.from({ length: K * N }, () => rnd() * 2 - 1);
        const runs = [1, 2].map((t) => {
          be.setThreads(t);
          const c = new Float32Array(M * N).fill(0.5);
          be.matmul(a, b, c, p);
          return c;
        });
        assert.deepEqual(runs[0], runs[1], `${level} M ${M} N ${N}: 1 and 2 threads differ`);
      }
    }
  } finally {
    be.setThreads(threads);
    be.setSimd(simd);
  }
});

test('rowwise: each of M rows gets the bits of a one-row product, at every level and thread count', () => {
  const [M, N, K] = [37, 70, 300]; // past every level's micro-tile rows, N past a panel
  const a = Float32Array.from({ length: M * K }, () => rnd() * 2 - 1);
  const b = Float32Array.from({ length: N * K }, () => rnd() * 2 - 1);
  for (const simd of levels()) {
    for (const threads of [1, 2]) {
      const be = new NativeBackend({ simd, threads });
      const p = (m: number, rowwise: boolean): MatmulParams => ({ batch: 1, M: m, N, K, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate: false, rowwise });
      const [all, packed] = [new Float32Array(M * N), new Float32Array(M * N)];
      be.matmul(a, b, all, p(M, true));
      be.matmul(a, b, packed, p(M, false));
      for (let m = 0; m < M; m++) {
        const one = new Float32Array(N);
        be.matmul(a.subarray(m * K, (m + 1) * K), b, one, p(1, false));
        assert.deepEqual(all.subarray(m * N, (m + 1) * N), one, `${simd} t=${threads} row ${m}`);
      }
      // the packed GEMM reduces in another order: without rowwise some bits differ (else this test shows nothing)
      if (simd !== 'scalar') assert.ok(packed.some((v, i) => v !== all[i]), `${simd}: packed and rowwise agree bit for bit`);
    }
  }
});
