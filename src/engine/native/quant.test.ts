// Tests of the native int8 path for decode-shaped q8_0/q4_0 products (and the k-quants', x as q8_K) (native/src/quant.c, kernels_quant_*.c) beyond
// the conformance suite: the fall back to the float path when x is not finite (inf/NaN must not be quantized
// away), bit-identical results across thread counts, and agreement with the exact float product up to the
// activation rounding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantize, quantize } from '../quant/index.js';
import { matmulQuant as referenceMatmulQuant } from '../reference/quant.js';
import { loadNativeAddon, type SimdLevel } from './addon.js';
import { NativeBackend } from './backend.js';

const addon = loadNativeAddon();
const DTYPES = ['q8_0', 'q4_0'] as const;

function levels(): SimdLevel[] {
  const best = addon.bestSimdLevel();
  if (best === 'neon') return ['scalar', 'neon'];
  const x86: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  return x86.slice(0, x86.indexOf(best) + 1);
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

/** out[M, N] on the native backend at one SIMD level and thread count. */
function nativeProduct(simd: SimdLevel, threads: number, x: Float32Array, w: Uint8Array, dtype: 'q8_0' | 'q4_0',
  M: number, N: number, K: number): Float32Array {
  const be = new NativeBackend({ simd, threads });
  const out = new Float32Array(M * N);
  be.matmulQuant(x, w, dtype, out, M, N, K);
  return out;
}

/** The float product with dequantized weights, in double: what the int8 path approximates. */
function exactProduct(x: Float32Array, w: Uint8Array, dtype: 'q8_0' | 'q4_0', M: number, N: number, K: number): Float64Array {
  const wf = dequantize(dtype, w, N * K);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * wf[n * K + k];
      out[m * N + n] = s;
    }
  }
  return out;
}

const restore = { simd: addon.simdLevel(), threads: addon.getThreads(), vnni: addon.vnniAllowed() };
function restoreAddon(): void {
  addon.setSimd(restore.simd);
  addon.setThreads(restore.threads);
}

void test('int8 path: a non-finite x takes the float path at every SIMD level (inf and NaN propagate)', () => {
  const [M, N, K] = [2, 9, 96];
  try {
    for (const dtype of DTYPES) {
      const w = quantize(dtype, random(N * K, 3));
      for (const bad of [Infinity, NaN]) {
        const x = random(M * K, 4);
        x[37] = bad; // row 0 only
        const want = new Float32Array(M * N);
        referenceMatmulQuant(x, w, dtype, want, M, N, K);
        for (const simd of levels()) {
          const got = nativeProduct(simd, 2, x, w, dtype, M, N, K);
          for (let n = 0; n < N; n++) {
            assert.ok(!Number.isFinite(got[n]), `${dtype} ${simd} x=${bad}: out[0, ${n}] = ${got[n]} is finite`);
            assert.equal(Number.isNaN(got[n]), Number.isNaN(want[n]), `${dtype} ${simd}: out[0, ${n}] ${got[n]} vs ${want[n]}`);
            if (!Number.isNaN(want[n])) assert.equal(got[n], want[n], `${dtype} ${simd}: sign of out[0, ${n}]`);
            // row 1 is finite and takes the float path too (close to the unquantized product, not int8-rounded)
            const g = got[N + n], e = want[N + n];
            assert.ok(Math.abs(g - e) <= 1e-5 * (1 + Math.abs(e)), `${dtype} ${simd}: out[1, ${n}] ${g} vs ${e}`);
          }
        }
      }
    }
  } finally {
    restoreAddon();
  }
});

void test('int8 path: bit-identical across thread counts and calls; within the activation rounding of the float product', () => {
  const [N, K] = [200, 576];
  try {
    for (const dtype of DTYPES) {
      const w = quantize(dtype, random(N * K, 5));
      for (const M of [1, 4]) {
        const x = random(M * K, 6 + M);
        const exact = exactProduct(x, w, dtype, M, N, K);
        let scale = 0;
        for (const v of exact) scale = Math.max(scale, Math.abs(v));
        for (const simd of levels()) {
          const one = nativeProduct(simd, 1, x, w, dtype, M, N, K);
          assert.deepEqual(nativeProduct(simd, 2, x, w, dtype, M, N, K), one, `${dtype} M=${M} ${simd}: 2 threads vs 1`);
          assert.deepEqual(nativeProduct(simd, 1, x, w, dtype, M, N, K), one, `${dtype} M=${M} ${simd}: repeated`);
          // q8 activations carry ~0.4% relative rounding per value; summed over K it stays well under 2% of the scale
          let worst = 0;
          for (let i = 0; i < M * N; i++) worst = Math.max(worst, Math.abs(one[i] - exact[i]));
          assert.ok(worst > 0, `${dtype} M=${M} ${simd}: no activation rounding at all (int8 path not taken?)`);
          assert.ok(worst < 0.02 * scale, `${dtype} M=${M} ${simd}: max error ${worst} vs scale ${scale}`);
        }
      }
    }
  } finally {
    restoreAddon();
  }
});

void test('int8 path, prefill: the tiled VNNI kernel (dot_tile) gives the bits of the row-at-a-time AVX-512BW dot, every 32-value type', () => {
  if (addon.bestSimdLevel() !== 'avx512') return; // the tiled kernel exists at AVX-512 with VNNI only
  const types = ['q8_0', 'q4_0', 'q5_0', 'q4_1', 'q5_1', 'iq4_nl'] as const;
  const be = new NativeBackend({ simd: 'avx512', threads: 2 });
  const product = (x: Float32Array, w: Uint8Array, dtype: (typeof types)[number], M: number, N: number, K: number): Float32Array => {
    const out = new Float32Array(M * N);
    be.matmulQuant(x, w, dtype, out, M, N, K, true);
    return out;
  };
  try {
    for (const dtype of types) {
      for (const [M, N, K] of [[70, 37, 32 * 7], [64, 6, 32 * 4], [133, 5, 32 * 3]] as const) { // M ≥ 64: tiled
        const w = quantize(dtype, random(N * K, 31 + M));
        const x = random(M * K, 32 + M);
        addon.setVnni(false);
        const want = product(x, w, dtype, M, N, K);
        addon.setVnni(true);
        assert.deepEqual(product(x, w, dtype, M, N, K), want, `${dtype} M=${M} N=${N} K=${K}: VNNI tiled vs AVX-512BW rows`);
      }
    }
  } finally {
    addon.setVnni(restore.vnni);
    restoreAddon();
  }
});

// ---- k-quants (q2_k … q6_k: x as q8_K superblocks, native/src/kernels_kquant.h) ----

const KDTYPES = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const;
type KDType = (typeof KDTYPES)[number];
const KBLOCK: Record<KDType, { bytes: number; scales: number[] }> = {
  q2_k: { bytes: 84, scales: [80, 82] }, q3_k: { bytes: 110, scales: [108] }, q4_k: { bytes: 144, scales: [0, 2] },
  q5_k: { bytes: 176, scales: [0, 2] }, q6_k: { bytes: 210, scales: [208] },
};

/** N rows of K values as random superblocks (every quant and sub-block scale drawn) with f16 scales near 0.01. */
function randomKWeight(dtype: KDType, N: number, K: number, seed: number): Uint8Array {
  const { bytes, scales } = KBLOCK[dtype];
  const r = random((N * K / 256) * bytes, seed);
  const w = Uint8Array.from(r, (v) => Math.floor((v + 0.5) * 256));
  for (let o = 0; o < w.length; o += bytes) {
    for (const at of scales) [w[o + at], w[o + at + 1]] = [w[o + at] & 0xff, 0x20 + (w[o + at + 1] & 3)]; // 2⁻⁷..2⁻⁵
  }
  return w;
}

function kProduct(simd: SimdLevel, threads: number, x: Float32Array, w: Uint8Array, dtype: KDType, M: number, N: number,
  K: number, inference: boolean): Float32Array {
  const be = new NativeBackend({ simd, threads });
  const out = new Float32Array(M * N);
  be.matmulQuant(x, w, dtype, out, M, N, K, inference);
  return out;
}

void test('k-quant int8 path: bit-identical across SIMD levels, VNNI, thread counts and the reference; within the activation rounding of the float product', () => {
  const [N, K] = [37, 1536];
  try {
    for (const dtype of KDTYPES) {
      const w = randomKWeight(dtype, N, K, 11);
      const wf = dequantize(dtype, w, N * K);
      // M = 1, 2: q4_k and q6_k rows dotted as stored at AVX-512 (kdot_raw); 6, 70: unpacked once per tile
      for (const [M, inference] of [[1, false], [2, false], [6, false], [70, true]] as const) {
        const x = random(M * K, 12 + M);
        const want = new Float32Array(M * N);
        referenceMatmulQuant(x, w, dtype, want, M, N, K, inference);
        let [worst, scale] = [0, 0];
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += x[m * K + k] * wf[n * K + k];
            worst = Math.max(worst, Math.abs(s - want[m * N + n]));
            scale = Math.max(scale, Math.abs(s));
          }
        }
        assert.ok(worst > 0, `${dtype} M=${M}: no activation rounding at all (int8 path not taken?)`);
        assert.ok(worst < 0.02 * scale, `${dtype} M=${M}: max error ${worst} vs scale ${scale}`);
        for (const simd of levels()) {
          for (const vnni of simd === 'avx512' ? [true, false] : [true]) {
            addon.setVnni(vnni);
            for (const threads of [1, 2]) {
              assert.deepEqual(kProduct(simd, threads, x, w, dtype, M, N, K, inference), want,
                `${dtype} M=${M} ${simd}${vnni ? '' : ' (no VNNI)'} ${threads} threads vs the reference`);
            }
          }
        }
      }
    }
  } finally {
    addon.setVnni(restore.vnni);
    restoreAddon();
  }
});

void test('k-quant int8 path: x that q8_K cannot hold (inf, NaN, a max below 127 / FLT_MAX) takes the float path', () => {
  const [M, N, K] = [2, 5, 512];
  try {
    for (const dtype of KDTYPES) {
      const w = randomKWeight(dtype, N, K, 21);
      for (const bad of [Infinity, NaN, 1e-38]) {
        const x = random(M * K, 22);
        if (bad === 1e-38) x.fill(1e-38, 256, 512); // row 0's second superblock: −127 / max overflows
        else x[300] = bad;
        const want = new Float32Array(M * N);
        referenceMatmulQuant(x, w, dtype, want, M, N, K);
        for (const simd of levels()) {
          const got = kProduct(simd, 2, x, w, dtype, M, N, K, true);
          for (let i = 0; i < M * N; i++) {
            if (!Number.isFinite(want[i])) assert.equal(got[i], want[i], `${dtype} ${simd} x=${bad}: out[${i}]`);
            else assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${dtype} ${simd} x=${bad}: out[${i}] ${got[i]} vs ${want[i]}`);
          }
          if (bad !== 1e-38) assert.ok(!Number.isFinite(got[0]), `${dtype} ${simd} x=${bad}: out[0] = ${got[0]} is finite`);
        }
      }
    }
  } finally {
    restoreAddon();
  }
});
