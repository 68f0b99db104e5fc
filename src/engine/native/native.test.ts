// Tests of the native addon itself: loading, SIMD dispatch on every level this CPU has, native memory
// (alloc/free/liveBytes/detach, JS-allocated arrays with byte offsets), argument checks, determinism, the
// dropout hash against src/engine/rng.ts, and the thread pool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hashIndex } from '../rng.js';
import { loadNativeAddon, type SimdLevel } from './addon.js';
import { NativeBackend } from './backend.js';

const addon = loadNativeAddon();
const X86_LEVELS: readonly SimdLevel[] = ['scalar', 'avx2', 'avx512'];

/** The levels this CPU supports, best last. */
function levels(): SimdLevel[] {
  const best = addon.bestSimdLevel();
  if (best === 'neon') return ['scalar', 'neon'];
  return X86_LEVELS.slice(0, X86_LEVELS.indexOf(best) + 1);
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

void test('the addon loads and reports a SIMD level and threads', () => {
  assert.ok(['scalar', 'neon', 'avx2', 'avx512'].includes(addon.simdLevel()));
  assert.ok(addon.getThreads() >= 1);
  assert.equal(new NativeBackend().name, 'native');
});

void test('setSimd switches to every level this CPU has, and refuses others', () => {
  const before = addon.simdLevel();
  try {
    for (const l of levels()) {
      addon.setSimd(l);
      assert.equal(addon.simdLevel(), l);
    }
    const foreign: SimdLevel = addon.bestSimdLevel() === 'neon' ? 'avx2' : 'neon';
    assert.throws(() => addon.setSimd(foreign), /does not support/);
  } finally {
    addon.setSimd(before);
  }
});

/** Whether this CPU has AVX-512 VNNI, read from the kernel's flags (null where there is no /proc/cpuinfo). */
function cpuHasVnni(): boolean | null {
  if (!existsSync('/proc/cpuinfo')) return null;
  return /^flags\s*:.*\bavx512_vnni\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

void test('the int8 table follows the level, and setVnni(false) takes the AVX-512BW dot on a VNNI CPU', () => {
  const [before, vnniBefore] = [addon.simdLevel(), addon.vnniAllowed()];
  try {
    for (const l of levels()) {
      addon.setSimd(l);
      addon.setVnni(true);
      const vnni = cpuHasVnni();
      const want = l === 'avx512' && vnni !== false ? ['avx512-vnni', ...(vnni === null ? ['avx512'] : [])] : [l];
      assert.ok(want.includes(addon.quantKernels()), `${l}: ${addon.quantKernels()}`);
      addon.setVnni(false);
      assert.equal(addon.vnniAllowed(), false);
      assert.equal(addon.quantKernels(), l, `${l} without VNNI`);
    }
  } finally {
    addon.setSimd(before);
    addon.setVnni(vnniBefore);
  }
});

void test('NOMOAT_NO_VNNI=1 starts a fresh process off the VNNI dot', () => {
  const addonUrl = new URL('./addon.js', import.meta.url).href;
  const script = `import('${addonUrl}').then((m) => { const a = m.loadNativeAddon(); console.log(a.vnniAllowed(), a.quantKernels()); })`;
  const run = (env: Record<string, string>): string => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NOMOAT_SIMD: '', NOMOAT_NO_VNNI: '', ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const best = addon.bestSimdLevel();
  assert.equal(run({ NOMOAT_NO_VNNI: '1' }), `false ${best}`);
  if (best === 'avx512' && cpuHasVnni() === true) assert.equal(run({}), 'true avx512-vnni');
});

void test('NOMOAT_SIMD forces a lower level in a fresh process', () => {
  const addonUrl = new URL('./addon.js', import.meta.url).href;
  const script = `import('${addonUrl}').then((m) => console.log(m.loadNativeAddon().simdLevel()))`;
  for (const l of levels()) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NOMOAT_SIMD: l },
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), l);
  }
});

void test('alloc is zero-filled, aligned native memory; free detaches and liveBytes counts', () => {
  const live = addon.liveBytes();
  const a = addon.alloc(1000);
  assert.equal(a.length, 1000);
  assert.ok(a.every((v) => v === 0));
  assert.equal(addon.liveBytes(), live + 4000);
  a.fill(7);
  const view = a.subarray(10, 20);
  addon.free(a);
  assert.equal(addon.liveBytes(), live);
  assert.equal(a.length, 0, 'a freed buffer is detached');
  assert.equal(view.length, 0, 'views of a freed buffer are detached too');
  assert.throws(() => addon.free(a), /already freed/);
  assert.throws(() => addon.free(new Float32Array(4)), /not allocated by alloc/);
  assert.throws(() => addon.affine(a, new Float32Array(1), 1, 1, 0), /freed buffers have 0/);
  const empty = addon.alloc(0);
  addon.free(empty);
  assert.equal(addon.liveBytes(), live);
});

void test('kernels accept JS-allocated arrays and honour byteOffset', () => {
  const backing = new Float32Array(64).fill(1);
  const x = backing.subarray(5, 15);
  const out = new Float32Array(64).subarray(3, 13);
  addon.affine(x, out, 10, 2, 1);
  assert.deepEqual(Array.from(out), new Array<number>(10).fill(3));
  assert.throws(() => addon.affine(x, out, 11, 1, 0), /x has 10 elements but the call needs 11/);
  assert.throws(() => new NativeBackend().fill(new Float64Array(3), 1), /must be a Float32Array/);
});

void test('bad ids are refused before any memory is read', () => {
  const table = new Float32Array(12);
  const out = new Float32Array(8);
  assert.throws(() => addon.embeddingForward(table, Int32Array.from([0, 3]), out, 2, 4), /ids holds 3, outside \[0, 3\)/);
  const logits = new Float32Array(6);
  const n = addon.crossEntropyForward(logits, Int32Array.from([1, -100]), new Float32Array(2), new Float32Array(2), 2, 3, -100);
  assert.equal(n, 1);
  assert.throws(() => addon.crossEntropyForward(logits, Int32Array.from([1, 5]), new Float32Array(2), new Float32Array(2), 2, 3, -100), /targets holds 5/);
});

void test('the dropout hash matches src/engine/rng.ts', () => {
  for (const seed of [0, 1, 12345, 0xffffffff]) {
    for (const i of [0, 1, 2, 1000, 123456789]) assert.equal(addon.hashIndex(seed, i), hashIndex(seed, i));
  }
});

void test('repeated runs are bit-identical (same inputs, same threads) at every level', () => {
  const before = addon.simdLevel();
  try {
    for (const l of levels()) {
      addon.setSimd(l);
      const N = 67, C = 301;
      const x = random(N * C, 1), w = random(C, 2), dout = random(N * C, 3);
      const run = (): Float32Array[] => {
        const out = new Float32Array(N * C), rstd = new Float32Array(N), dx = new Float32Array(N * C), dw = new Float32Array(C);
        addon.rmsnormForward(x, w, out, rstd, N, C, 1e-5);
        addon.rmsnormBackward(dout, x, w, rstd, dx, dw, N, C);
        const c = new Float32Array(N * N);
        addon.matmul(x, x, c, 1, N, N, C, false, true, 0, 0, 0, 0, 0, 0, false, false);
        return [out, dx, dw, c];
      };
      const a = run(), b = run();
      for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `level ${l}, output ${i}`);
      assert.equal(addon.sumSquares(x, N * C), addon.sumSquares(x, N * C));
    }
  } finally {
    addon.setSimd(before);
  }
});

void test('the thread pool: 1 and 2 threads give the same GEMM and row-kernel results', () => {
  const threads = addon.getThreads();
  try {
    const M = 301, N = 257, K = 129;
    const a = random(M * K, 4), b = random(K * N, 5);
    const logits = random(300 * 700, 6);
    const results: Float32Array[][] = [];
    for (const t of [1, 2]) {
      addon.setThreads(t);
      const c = new Float32Array(M * N);
      addon.matmul(a, b, c, 1, M, N, K, false, false, 0, 0, 0, 0, 0, 0, false, false);
      const sm = new Float32Array(300 * 700);
      addon.softmaxForward(logits, sm, 300, 700);
      results.push([c, sm]);
    }
    const [one, two] = results;
    assert.ok(one !== undefined && two !== undefined);
    for (let i = 0; i < one.length; i++) {
      const x = one[i], y = two[i];
      assert.ok(x !== undefined && y !== undefined);
      for (let j = 0; j < x.length; j++) assert.ok(Math.abs((x[j] ?? 0) - (y[j] ?? 0)) <= 1e-6 * K, `output ${i}[${j}]`);
    }
    addon.setThreads(2);
    assert.equal(addon.getThreads(), 2);
  } finally {
    addon.setThreads(threads);
  }
});

void test('a buffer the GC reaches before free() is released by the finalizer and counted apart', () => {
  const addonUrl = new URL('./addon.js', import.meta.url).href;
  const script = `
    const { loadNativeAddon } = await import('${addonUrl}');
    const a = loadNativeAddon();
    const live = a.liveBytes();
    (() => { for (let i = 0; i < 8; i++) a.alloc(1 << 16); })();
    for (let i = 0; i < 20 && a.gcFreedBytes() < 8 * 4 * (1 << 16); i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify({ freed: a.gcFreedBytes(), live: a.liveBytes() - live }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { freed, live } = JSON.parse(r.stdout) as { freed: number; live: number };
  assert.equal(freed, 8 * 4 * (1 << 16));
  assert.equal(live, 0);
});

void test('freed blocks are handed out again by size (block cache), zeroed by alloc and not by allocUninit', () => {
  const n = 54321; // a size no other test uses
  const s0 = addon.blockCacheStats();
  const a = addon.allocUninit(n);
  a.fill(7);
  addon.free(a);
  const s1 = addon.blockCacheStats();
  assert.ok(s1.cachedBytes >= s0.cachedBytes + n * 4, 'a freed block should be kept for reuse');
  const b = addon.alloc(n);
  const s2 = addon.blockCacheStats();
  assert.equal(s2.hits, s1.hits + 1, 'alloc of a freed size should reuse the cached block');
  assert.ok(b.every((x) => x === 0), 'alloc must zero a recycled block');
  b.fill(3);
  addon.free(b);
  const c = addon.allocUninit(n);
  assert.equal(addon.blockCacheStats().hits, s2.hits + 1);
  assert.equal(c.length, n);
  addon.free(c);
});

void test('rope: the cached (cos, sin) tables follow the positions, frequencies and direction of every call', async () => {
  const { ReferenceBackend } = await import('../reference/index.js');
  const ref = new ReferenceBackend();
  const be = new NativeBackend({ threads: 2 });
  const [B, T, H, D] = [1, 6, 2, 8];
  const x = Float32Array.from({ length: B * T * H * D }, (_, i) => Math.sin(i * 0.7) * 3);
  const invA = Float32Array.of(1, 0.1, 0.01, 0.001), invB = Float32Array.of(1, 0.2, 0.04, 0.008);
  const posA = Int32Array.of(0, 1, 2, 3, 4, 5), posB = Int32Array.of(7, 8, 9, 10, 11, 12);
  // the same shape again and again: a table kept for the wrong inputs would show as a mismatch
  const calls: [Int32Array, Float32Array, boolean][] = [[posA, invA, false], [posA, invA, true], [posB, invA, false], [posA, invA, false],
    [posA, invB, false], [posB, invB, true], [posA, invA, true]];
  for (const [i, [pos, inv, inverse]] of calls.entries()) {
    for (const mode of ['halves', 'interleaved'] as const) {
      const want = new Float32Array(x.length), got = new Float32Array(x.length);
      ref.rope(x, want, B, T, H, D, pos, inv, mode, inverse);
      be.rope(x, got, B, T, H, D, pos, inv, mode, inverse);
      for (let j = 0; j < x.length; j++) assert.ok(Math.abs(got[j] - want[j]) <= 1e-5, `call ${i} ${mode}: out[${j}] ${got[j]} vs ${want[j]}`);
    }
  }
});
