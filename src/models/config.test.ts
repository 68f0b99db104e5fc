// Llama-3 rope scaling in both forms: HF's rope_scaling folded into inverse frequencies, llama.cpp's rope_freqs
// factors computed from it (a hand-computed case), the rope_scaling recovered from factors, and config.json export.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configToHf, isIdentityRopeFactors, llama3RopeFreqFactors, llama3ScalingFromFactors, ropeInvFreq, type RopeScaling } from './config.js';
import { tinyConfig } from './init.js';

const llama3 = (factor: number, low: number, high: number, orig: number): RopeScaling => ({
  type: 'llama3', factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: orig,
});

function relClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= rtol * Math.abs(b[i]), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('rope_freqs factors of a Llama-3 rope_scaling match a hand-computed case', () => {
  // θ 10000, D 16: freq_i = 10^(-i/2), wavelength 2π·10^(i/2). original 64, low 1, high 4: pairs shorter than
  // 64/4 = 16 keep their speed, pairs longer than 64 are 8× slower, pairs 1 (2π√10 ≈ 19.87) and 2 (20π ≈ 62.83)
  // are on the ramp: s = (64/wavelen − 1)/3, factor = 1/((1 − s)/8 + s).
  const s1 = (64 / (2 * Math.PI * Math.sqrt(10)) - 1) / 3; // 0.74034…
  const s2 = (64 / (20 * Math.PI) - 1) / 3; // 0.0061972…
  const expected = [1, 1 / ((1 - s1) / 8 + s1), 1 / ((1 - s2) / 8 + s2), 8, 8, 8, 8, 8];
  const f = llama3RopeFreqFactors(10000, 16, llama3(8, 1, 4, 64));
  relClose(f, expected, 1e-6, 'factors');
  assert.equal(f[0], 1);
  assert.equal(f[3], 8);
  // the two ramp values, worked out by hand to 6 digits
  assert.ok(Math.abs(f[1] - 1.29398) < 1e-5, `pair 1: ${f[1]}`);
  assert.ok(Math.abs(f[2] - 7.66739) < 1e-5, `pair 2: ${f[2]}`);
});

test("Meta's Llama 3.1 scaling: 1 for fast pairs, 8 for slow ones, a ramp between", () => {
  // Llama-3.1-8B: θ 500000, head_dim 128, factor 8, low 1, high 4, original 8192
  const f = llama3RopeFreqFactors(500000, 128, llama3(8, 1, 4, 8192));
  assert.equal(f.length, 64);
  const ramp = [...f].filter((x) => x !== 1 && x !== 8);
  assert.equal(ramp.length, 6, `ramp: ${ramp.join(', ')}`);
  for (let i = 1; i < f.length; i++) assert.ok(f[i] >= f[i - 1], 'factors grow with the wavelength');
  // wavelength 2π·500000^(i/64) passes 8192/4 between i = 28 and 29, and 8192 between i = 34 and 35
  assert.equal(f.findIndex((x) => x !== 1), 29);
  assert.equal(f.indexOf(8), 35);
});

test('inverse frequencies from rope_freqs factors equal those from rope_scaling (float32 rounding)', () => {
  for (const [theta, D, s] of [
    [500000, 128, llama3(8, 1, 4, 8192)], [500000, 64, llama3(32, 1, 4, 8192)], [10000, 16, llama3(8, 1, 4, 64)], [10000, 32, llama3(2.5, 1, 3, 100)],
  ] as const) {
    const hf = tinyConfig({ ropeTheta: theta, headDim: D, ropeScaling: s });
    const factors = llama3RopeFreqFactors(theta, D, s);
    const gguf = tinyConfig({ ropeTheta: theta, headDim: D, ropeScaling: null, ropeFreqFactors: factors });
    const fromFactors = ropeInvFreq(gguf);
    relClose(fromFactors, ropeInvFreq(hf), 1e-6, `θ ${theta} D ${D}`);
    // and that is θ^(-2i/D) / f[i], the rotation llama.cpp applies
    relClose(fromFactors, Array.from(factors, (x, i) => Math.pow(theta, (-2 * i) / D) / x), 1e-7, 'definition');
    // the scaling is not a no-op
    assert.ok(ropeInvFreq({ ...hf, ropeScaling: null })[D / 2 - 1] > 1.5 * fromFactors[D / 2 - 1]);
  }
  assert.throws(() => ropeInvFreq(tinyConfig({ headDim: 8, ropeFreqFactors: new Float32Array(3) })), /3 values for 4 pairs/);
});

test('the rope_scaling is recovered from factors when one reproduces them, else null', () => {
  for (const [theta, D, s] of [[500000, 128, llama3(8, 1, 4, 8192)], [500000, 64, llama3(32, 1, 4, 8192)], [10000, 16, llama3(8, 1, 4, 64)], [10000, 32, llama3(2.5, 1, 3, 100)]] as const) {
    assert.deepEqual(llama3ScalingFromFactors(theta, D, llama3RopeFreqFactors(theta, D, s)), s, `θ ${theta} D ${D}`);
  }
  // low 2 / high 8 / original 128 is the same ramp as low 1 / high 4 / original 64: the factors cannot tell them apart
  const f = llama3RopeFreqFactors(10000, 16, llama3(4, 2, 8, 128));
  const r = llama3ScalingFromFactors(10000, 16, f);
  assert.deepEqual(r, llama3(4, 1, 4, 64));
  assert.deepEqual(llama3RopeFreqFactors(10000, 16, r), f);
  // no pair on the ramp: any original between the classes does; one is chosen and checked
  const flat = llama3RopeFreqFactors(10000, 8, llama3(8, 1, 4, 40));
  const rf = llama3ScalingFromFactors(10000, 8, flat);
  assert.ok(rf !== null);
  assert.deepEqual(llama3RopeFreqFactors(10000, 8, rf), flat);
  // factors that no llama3 ramp produces, and ones that need no scaling
  assert.equal(llama3ScalingFromFactors(10000, 8, Float32Array.of(1, 2, 1.5, 3)), null);
  assert.equal(llama3ScalingFromFactors(10000, 8, Float32Array.of(1, 1.2, 3, 3.0001)), null);
  assert.equal(llama3ScalingFromFactors(10000, 8, Float32Array.of(1, 1, 1, 1)), null);
  assert.ok(isIdentityRopeFactors(Float32Array.of(1, 1)));
});

test('config.json gets rope_scaling from recovered factors, and refuses factors no rope_scaling reproduces', () => {
  const s = llama3(8, 1, 4, 64);
  const f = llama3RopeFreqFactors(10000, 16, s);
  const withScaling = configToHf(tinyConfig({ headDim: 16, ropeScaling: s, ropeFreqFactors: f }));
  assert.deepEqual(withScaling.rope_scaling, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 });
  assert.throws(() => configToHf(tinyConfig({ headDim: 8, ropeFreqFactors: Float32Array.of(1, 2, 1.5, 3) })), /rope_freqs\.weight.*match no Llama-3 rope_scaling/);
  assert.equal(configToHf(tinyConfig({ headDim: 8, ropeFreqFactors: Float32Array.of(1, 1, 1, 1) })).rope_scaling, undefined);
  assert.throws(() => llama3RopeFreqFactors(10000, 16, llama3(8, 2, 2, 64)), /both 2/);
});
