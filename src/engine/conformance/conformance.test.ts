// Runs the conformance suite: the float64 reference against the float32 one (a self-check of the suite and the
// oracle), the native backend at every SIMD level it offers (skipped, saying why, when it is not built), and
// deliberately broken backends that the suite must catch.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Backend, Buf, MatmulParams } from '../backend.js';
import { ReferenceBackend } from '../reference/index.js';
import { baseSeed, checkKernel, runConformance } from './run.js';

runConformance(() => new ReferenceBackend({ precision: 'f64' }), 'reference-f64');

// ---- the suite can fail ----------------------------------------------------------------------------------------

/** Reference backends with one planted bug each: the suite has to report every one. */
class IgnoresAccumulate extends ReferenceBackend {
  override matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
    super.matmul(a, b, c, { ...p, accumulate: false });
  }
}

void test('the suite catches planted bugs', () => {
  const seed = baseSeed();
  const mutants: Array<[string, Parameters<typeof checkKernel>[0], Backend]> = [
    ['matmul ignoring accumulate', 'matmul', new IgnoresAccumulate()],
    ['attention ignoring causal', 'attentionForward', new (class extends ReferenceBackend {
      override attentionForward(...args: Parameters<ReferenceBackend['attentionForward']>): void {
        super.attentionForward(args[0], args[1], args[2], args[3], args[4], { ...args[5], causal: false });
      }
    })()],
    ['dropout with another seed', 'dropoutForward', new (class extends ReferenceBackend {
      override dropoutForward(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number): void {
        super.dropoutForward(x, out, mask, n, p, seed + 1);
      }
    })()],
    ['rope in the other layout', 'rope', new (class extends ReferenceBackend {
      override rope(...a: Parameters<ReferenceBackend['rope']>): void {
        super.rope(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8] === 'halves' ? 'interleaved' : 'halves', a[9]);
      }
    })()],
    ['alloc leaking bytes', 'alloc', new (class extends ReferenceBackend {
      override liveBytes(): number {
        return super.liveBytes() + 4;
      }
      override alloc(n: number): Buf {
        return super.alloc(n + 1).subarray(0, n);
      }
    })()],
  ];
  for (const [what, kernel, be] of mutants) {
    const { failures } = checkKernel(kernel, be, seed);
    assert.ok(failures.length > 0, `the conformance suite did not catch: ${what}`);
  }
});

// ---- native ------------------------------------------------------------------------------------------------

const nativeIndexUrl = new URL('../native/index.js', import.meta.url);
const nativeIndex = fileURLToPath(nativeIndexUrl);
const nativeAddon = fileURLToPath(new URL('../../../../build/Release/nomoat_native.node', import.meta.url));
const nativeBuilt = existsSync(nativeIndex) && existsSync(nativeAddon);

/** What the conformance test needs of src/engine/native/index.ts (read from its exports, not imported as types,
 *  so that this file compiles before that module exists). */
interface NativeModule {
  NativeBackend: new (options?: { threads?: number; simd?: string; vnni?: boolean }) => Backend;
  loadNativeAddon: () => { bestSimdLevel: () => string };
}

/** Every SIMD level the CPU runs: scalar, then its vector family up to the best (avx2 → avx512, or neon). */
function simdLevels(best: string): string[] {
  const x86 = ['avx2', 'avx512'];
  if (best === 'neon') return ['scalar', 'neon'];
  return ['scalar', ...x86.slice(0, x86.indexOf(best) + 1)];
}

if (!nativeBuilt) {
  void test('conformance: native', { skip: 'native backend not built' }, () => {});
} else {
  // Once it is built, a failure to load it is a real failure, not a skip.
  const mod = (await import(nativeIndexUrl.href)) as NativeModule;
  assert.equal(typeof mod.NativeBackend, 'function', `${nativeIndex} exports no NativeBackend class`);
  const best = mod.loadNativeAddon().bestSimdLevel();
  // vnni is process-wide like the level, so every run says it: true takes the VNNI int8 dot where the CPU has it.
  for (const simd of simdLevels(best)) {
    // Two threads exercise the pool's split of every kernel (and its remainders) on a 2-core machine.
    runConformance(() => new mod.NativeBackend({ simd, threads: 2, vnni: true }), `native simd=${simd} threads=2`);
  }
  runConformance(() => new mod.NativeBackend({ simd: best, threads: 1, vnni: true }), `native simd=${best} threads=1`);
  // The AVX-512BW int8 dot, which a VNNI CPU never takes by itself (native.test.ts checks that the table switches).
  if (best === 'avx512') runConformance(() => new mod.NativeBackend({ simd: 'avx512', threads: 2, vnni: false }), 'native simd=avx512 vnni=off threads=2');
}
