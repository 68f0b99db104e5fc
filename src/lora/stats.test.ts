// The update-size statistic against explicitly formed products.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/rng.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { LoraAdapter } from './adapter.js';
import { lowRankFrobenius, relativeUpdateNorms } from './stats.js';

function normals(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** ‖k·B·A‖_F with the [out, in] product formed. */
function dense(B: Float32Array, A: Float32Array, out: number, r: number, inF: number, k: number): number {
  let s = 0;
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < inF; c++) {
      let d = 0;
      for (let j = 0; j < r; j++) d += B[o * r + j] * A[j * inF + c];
      s += (k * d) ** 2;
    }
  }
  return Math.sqrt(s);
}

test('lowRankFrobenius equals the norm of the formed product', () => {
  const rng = new Rng(3);
  for (const [out, r, inF, k] of [[7, 3, 5, 1], [16, 4, 9, -2.5], [1, 1, 1, 0.5], [12, 6, 3, 1]] as const) {
    const B = normals(out * r, rng), A = normals(r * inF, rng);
    const want = dense(B, A, out, r, inF, k);
    assert.ok(Math.abs(lowRankFrobenius(B, A, out, r, inF, k) - want) <= 1e-5 * want, `${out}×${r}×${inF}`);
  }
  assert.equal(lowRankFrobenius(new Float32Array(6), normals(6, rng), 3, 2, 3), 0);
  assert.throws(() => lowRankFrobenius(new Float32Array(5), new Float32Array(6), 3, 2, 3), /B has 5 values/);
});

test('relativeUpdateNorms: zero for a fresh adapter, ‖ΔW‖/‖W‖ once B is set, and it follows the runtime scale', () => {
  const cfg = tinyConfig();
  const w = initWeights(cfg, 1);
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const a = LoraAdapter.create(model, { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'down_proj'] }, { seed: 1 });
  for (const v of relativeUpdateNorms(a, model).values()) assert.equal(v, 0);
  const rng = new Rng(9);
  for (const m of a.modules.values()) m.B.data.set(normals(m.B.size, rng));
  const norms = relativeUpdateNorms(a, model);
  assert.equal(norms.size, 2 * cfg.numLayers);
  for (const [name, m] of a.modules) {
    const W = w.get(`${name}.weight`)!.toArray();
    const want = dense(m.B.toArray(), m.A.toArray(), m.outFeatures, m.r, m.inFeatures, m.scaling) / Math.hypot(...W);
    assert.ok(Math.abs(norms.get(name)! - want) <= 1e-5 * want, name);
  }
  a.scale = -0.5;
  const half = relativeUpdateNorms(a, model);
  for (const [name, v] of norms) assert.ok(Math.abs(half.get(name)! - v / 2) <= 1e-6 * v, name);
});
