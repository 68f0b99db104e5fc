// Public-API tests for adapter combination (PEFT add_weighted_adapter semantics): hand-computed 2×3 cases for each
// method, then properties on random adapters (exactness of cat and svd, density-1 identities, rank rules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.js';
import { matmul64, matrixFromRows, relativeError, to64, type Matrix } from '../src/linalg/index.js';
import {
  combineAdapters,
  loraDelta64,
  resolveCombination,
  type CombinationType,
  type WeightedLora,
} from '../src/lora/merge/index.js';

const close = (actual: Float32Array, expected: number[], tol = 1e-6): void => {
  assert.equal(actual.length, expected.length);
  actual.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) <= tol, `[${i}] ${x} vs ${expected[i]}`));
};
const delta = (m: { A: Matrix; B: Matrix }): Float64Array => matmul64(to64(m.B), to64(m.A)).data;

// Two rank-1 adapters on a 2×3 module (out 2, in 3):
//   A1 = [1 -2 3], B1 = [1; 2], s1 = 2, w1 = 0.5  → w·s = 1, √ = 1
//   A2 = [2 1 -1], B2 = [-1; 4], s2 = 1, w2 = 4   → w·s = 4, √ = 2
const a1: WeightedLora = { A: matrixFromRows([[1, -2, 3]]), B: matrixFromRows([[1], [2]]), scaling: 2, weight: 0.5 };
const a2: WeightedLora = { A: matrixFromRows([[2, 1, -1]]), B: matrixFromRows([[-1], [4]]), scaling: 1, weight: 4 };

test('linear: A = 1·A1 + 2·A2 = [5 0 1], B = 1·B1 + 2·B2 = [-1; 10]', () => {
  const m = combineAdapters([a1, a2], { combination: 'linear' });
  close(m.A.data, [5, 0, 1]);
  close(m.B.data, [-1, 10]);
  assert.equal(m.rank, 1);
});

test('linear with a negative weight puts the sign on A only', () => {
  // w·s = -4: A weight -2, B weight 2. A = 1·A1 - 2·A2 = [-3 -4 5], B = B1 + 2·B2 = [-1; 10]
  const m = combineAdapters([a1, { ...a2, weight: -4 }], { combination: 'linear' });
  close(m.A.data, [-3, -4, 5]);
  close(m.B.data, [-1, 10]);
});

test('cat: A = [w1 s1 A1; w2 s2 A2], B = [B1 | B2]; B·A = Σ w s B A = [[-7 -6 7], [34 12 -10]]', () => {
  const m = combineAdapters([a1, a2], { combination: 'cat' });
  close(m.A.data, [1, -2, 3, 8, 4, -4]);
  close(m.B.data, [1, -1, 2, 4]);
  assert.equal(m.rank, 2);
  assert.deepEqual(Array.from(delta(m)), [-7, -6, 7, 34, 12, -10]);
});

test('ties, density 1, total: A = [2.5 -2 3], B = [1; 5]', () => {
  // A: sums [3 -1 2] elect [+ - +]; A1 agrees everywhere, A2 only at 0. Weighted A1 = [1 -2 3], 2·A2 = [4 2 -2].
  //    → [(1+4)/2, -2/1, 3/1]. B: sums [0 6] elect [+ +] (0 counts as +); B2[0] = -1 disagrees.
  //    weighted B1 = [1 2], 2·B2 = [-2 8] → [1/1, (2+8)/2].
  const m = combineAdapters([a1, a2], { combination: 'ties', density: 1 });
  close(m.A.data, [2.5, -2, 3]);
  close(m.B.data, [1, 5]);
});

test('ties, density 1, frequency: A = [2.5 2 3] (sign counts [2 0 0] elect + everywhere)', () => {
  // masks A1 [1 0 1], A2 [1 1 0]: [(1+4)/2, 2/1, 3/1]
  const m = combineAdapters([a1, a2], { combination: 'ties', density: 1, majoritySignMethod: 'frequency' });
  close(m.A.data, [2.5, 2, 3]);
});

test('ties and magnitude_prune at density 0.7 (k = trunc(0.7·n): 2 of 3 in A, 1 of 2 in B)', () => {
  // pruned A1 = [0 -2 3], A2 = [2 1 0] (|1| = |-1| tie: lower index kept); B1 = [0 2], B2 = [0 4].
  // ties A: sums [2 -1 3] elect [+ - +]; zeros never agree → [4/1, -2/1, 3/1]. B: [0/1, (2+8)/2].
  const t = combineAdapters([a1, a2], { combination: 'ties', density: 0.7 });
  close(t.A.data, [4, -2, 3]);
  close(t.B.data, [0, 5]);
  // magnitude_prune: plain weighted sums of the pruned tensors
  const mp = combineAdapters([a1, a2], { combination: 'magnitude_prune', density: 0.7 });
  close(mp.A.data, [4, 0, 3]);
  close(mp.B.data, [0, 10]);
});

test('dare_linear and dare_ties: drop masks drawn in order A1, A2, B1, B2 from the given Rng, survivors / density', () => {
  const density = 0.5, seed = 7;
  const draws = new Rng(seed);
  const keep = (n: number): boolean[] => Array.from({ length: n }, () => draws.next() < density);
  const kA1 = keep(3), kA2 = keep(3), kB1 = keep(2), kB2 = keep(2);
  const dropped = (v: number[], k: boolean[]): number[] => v.map((x, i) => (k[i] ? x / density : 0));
  const pA1 = dropped([1, -2, 3], kA1), pA2 = dropped([2, 1, -1], kA2);
  const pB1 = dropped([1, 2], kB1), pB2 = dropped([-1, 4], kB2);
  const lin = combineAdapters([a1, a2], { combination: 'dare_linear', density, rng: new Rng(seed) });
  close(lin.A.data, pA1.map((x, i) => x + 2 * pA2[i]));
  close(lin.B.data, pB1.map((x, i) => x + 2 * pB2[i]));
  // dare_ties on the same masks: elect by total on the pruned tensors, average the agreeing weighted values
  const tiesOf = (p: number[], q: number[]): number[] =>
    p.map((x, i) => {
      const y = q[i], maj = x + y >= 0 ? 1 : -1;
      const parts = [[x, 1], [y, 2]].filter(([v]) => Math.sign(v) === maj).map(([v, w]) => v * w);
      return parts.reduce((s, v) => s + v, 0) / Math.max(parts.length, 1);
    });
  const dt = combineAdapters([a1, a2], { combination: 'dare_ties', density, rng: new Rng(seed) });
  close(dt.A.data, tiesOf(pA1, pA2));
  close(dt.B.data, tiesOf(pB1, pB2));
  assert.ok(kA1.concat(kA2, kB1, kB2).some((k) => !k), 'seed should drop something');
});

// Two rank-1 adapters whose weighted sum is [[3 0 0], [0 2 0]] (σ = 3, 2).
const d1: WeightedLora = { A: matrixFromRows([[1, 0, 0]]), B: matrixFromRows([[3], [0]]), scaling: 1, weight: 1 };
const d2: WeightedLora = { A: matrixFromRows([[0, 2, 0]]), B: matrixFromRows([[0], [0.5]]), scaling: 2, weight: 1 };

test('svd: rank 1 (max rank) keeps σ1 = 3: B = [3; 0], A = [1 0 0]; rank 2 reproduces the sum', () => {
  const r1 = combineAdapters([d1, d2], { combination: 'svd' });
  close(r1.B.data, [3, 0]);
  close(r1.A.data, [1, 0, 0]);
  const r2 = combineAdapters([d1, d2], { combination: 'svd', svdRank: 2 });
  close(Float32Array.from(delta(r2)), [3, 0, 0, 0, 2, 0]);
  close(r2.B.data, [3, 0, 0, 2]);
});

test('svd clamp: hi = quantile([3 0 0 2 | 1 0 0 0 1 0], 0.9) = 2 + 0.1·(3−2) = 2.1', () => {
  const r = combineAdapters([d1, d2], { combination: 'svd', svdRank: 2, svdClamp: 0.9 });
  close(r.B.data, [2.1, 0, 0, 2]);
  close(r.A.data, [1, 0, 0, 0, 1, 0]);
});

test('*_svd methods prune the full deltas with weights w (scaling already inside the delta)', () => {
  // deltas: D1 = [[3 0 0],[0 0 0]], D2 = [[0 0 0],[0 2 0]]; ties at density 1: no sign conflicts, each entry has
  // one contributor, so the merge is the plain sum and rank 2 reproduces it.
  const r = combineAdapters([d1, d2], { combination: 'ties_svd', density: 1, svdRank: 2 });
  close(Float32Array.from(delta(r)), [3, 0, 0, 0, 2, 0]);
  // magnitude_prune_svd at density 0.2 keeps trunc(0.2·6) = 1 entry per delta, i.e. both nonzeros again
  const mp = combineAdapters([d1, d2], { combination: 'magnitude_prune_svd', density: 0.2, svdRank: 2 });
  close(Float32Array.from(delta(mp)), [3, 0, 0, 0, 2, 0]);
  // at density 0.1 nothing survives (trunc(0.6) = 0)
  const none = combineAdapters([d1, d2], { combination: 'magnitude_prune_svd', density: 0.1, svdRank: 1 });
  close(Float32Array.from(delta(none)), [0, 0, 0, 0, 0, 0]);
});

// ---- properties on random adapters ----

function randomAdapter(rng: Rng, out: number, inDim: number, r: number, opts: { positive?: boolean } = {}): WeightedLora {
  const mk = (rows: number, cols: number): Matrix => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = opts.positive ? 0.1 + rng.next() : rng.normal();
    return { rows, cols, data };
  };
  const alpha = 2 * r;
  return { A: mk(r, inDim), B: mk(out, r), scaling: alpha / r, weight: 0.3 + rng.next() };
}

function weightedSum(adapters: WeightedLora[]): Float64Array {
  const out = new Float64Array(adapters[0].B.rows * adapters[0].A.cols);
  for (const a of adapters) loraDelta64(a).data.forEach((x, i) => (out[i] += a.weight * x));
  return out;
}

test('cat reproduces Σ w_i s_i B_i A_i exactly (mixed ranks, rsLoRA-style scaling)', () => {
  const rng = new Rng(11);
  const ads = [randomAdapter(rng, 24, 20, 2), randomAdapter(rng, 24, 20, 5), { ...randomAdapter(rng, 24, 20, 3), scaling: 8 / Math.sqrt(3) }];
  const m = combineAdapters(ads, { combination: 'cat' });
  assert.equal(m.rank, 10);
  assert.ok(relativeError({ data: delta(m) }, { data: weightedSum(ads) }) < 1e-6);
});

test('svd at full rank (Σ r_i) reproduces the weighted sum to ≤ 1e-5 relative', () => {
  const rng = new Rng(12);
  const ads = [randomAdapter(rng, 48, 40, 3), randomAdapter(rng, 48, 40, 4)];
  ads[1].weight = -0.7;
  const m = combineAdapters(ads, { combination: 'svd', svdRank: 7 });
  assert.ok(relativeError({ data: delta(m) }, { data: weightedSum(ads) }) < 1e-5);
  // truncated to the default rank (max r_i = 4) it is the best rank-4 approximation: error is σ5..σ7 only, > 0
  const t = combineAdapters(ads, { combination: 'svd' });
  assert.equal(t.rank, 4);
  assert.ok(relativeError({ data: delta(t) }, { data: weightedSum(ads) }) > 1e-3);
});

test('density 1: dare_linear = magnitude_prune = linear exactly; ties = linear / n with agreeing signs', () => {
  const rng = new Rng(13);
  const ads = [randomAdapter(rng, 6, 5, 3, { positive: true }), randomAdapter(rng, 6, 5, 3, { positive: true })];
  const lin = combineAdapters(ads, { combination: 'linear' });
  for (const c of ['dare_linear', 'magnitude_prune'] as const) {
    const m = combineAdapters(ads, { combination: c, density: 1, rng: new Rng(1) });
    assert.deepEqual(m.A.data, lin.A.data, c);
    assert.deepEqual(m.B.data, lin.B.data, c);
  }
  // PEFT's disjoint_merge divides by the number of agreeing adapters, so with all signs agreeing ties is the
  // mean, not the sum: A_ties = A_linear / 2 and B_ties = B_linear / 2.
  for (const c of ['ties', 'dare_ties'] as const) {
    const m = combineAdapters(ads, { combination: c, density: 1, rng: new Rng(1) });
    close(m.A.data, Array.from(lin.A.data, (x) => x / 2), 1e-5);
    close(m.B.data, Array.from(lin.B.data, (x) => x / 2), 1e-5);
  }
  // magnitude_prune_svd / dare_linear_svd at density 1 equal svd
  const svd = combineAdapters(ads, { combination: 'svd', svdRank: 5 });
  for (const c of ['magnitude_prune_svd', 'dare_linear_svd'] as const) {
    const m = combineAdapters(ads, { combination: c, density: 1, svdRank: 5, rng: new Rng(1) });
    assert.ok(relativeError({ data: delta(m) }, { data: delta(svd) }) < 1e-5, c);
  }
});

test('a single adapter always combines as linear (as PEFT), giving back w·s·B·A', () => {
  const rng = new Rng(14);
  const a = randomAdapter(rng, 5, 4, 2);
  for (const c of ['cat', 'svd', 'ties', 'dare_ties_svd'] as CombinationType[]) {
    const m = combineAdapters([{ ...a, weight: -1.5 }], { combination: c, density: 0.1, svdRank: 1, rng: new Rng(0) });
    assert.equal(m.combination, 'linear');
    assert.equal(m.rank, 2);
    const expected = loraDelta64(a).data.map((x) => -1.5 * x);
    assert.ok(relativeError({ data: delta(m) }, { data: expected }) < 1e-6, c);
  }
});

test('mixed ranks: refused by linear/ties/dare_linear/dare_ties/magnitude_prune, accepted by cat and *_svd', () => {
  const rng = new Rng(15);
  const ads = [randomAdapter(rng, 8, 6, 2), randomAdapter(rng, 8, 6, 3)];
  for (const c of ['linear', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune'] as const) {
    assert.throws(
      () => combineAdapters(ads, { combination: c, density: 0.5, rng: new Rng(0) }),
      (e: Error) => e.message.includes(`"${c}"`) && e.message.includes('[2, 3]'),
    );
  }
  assert.equal(combineAdapters(ads, { combination: 'cat' }).rank, 5);
  for (const c of ['svd', 'ties_svd', 'dare_linear_svd', 'dare_ties_svd', 'magnitude_prune_svd'] as const) {
    assert.equal(combineAdapters(ads, { combination: c, density: 0.5, rng: new Rng(0) }).rank, 3, c);
  }
  assert.deepEqual(resolveCombination('svd', [2, 3], 0), { combination: 'svd', rank: 3 }); // `svd_rank or max`
  assert.deepEqual(resolveCombination('svd', [2, 3], 6), { combination: 'svd', rank: 6 });
});

test('clear errors: missing density or rng, bad shapes, rank above the delta size, bad clamp', () => {
  const rng = new Rng(16);
  const ads = [randomAdapter(rng, 4, 3, 2), randomAdapter(rng, 4, 3, 2)];
  assert.throws(() => combineAdapters(ads, { combination: 'ties' }), /"ties" needs a density/);
  assert.throws(() => combineAdapters(ads, { combination: 'dare_linear', density: 0.5 }), /needs a seeded rng/);
  assert.throws(() => combineAdapters(ads, { combination: 'dare_linear', density: 0, rng: new Rng(0) }), /divide by zero/);
  assert.throws(() => combineAdapters(ads, { combination: 'ties', density: -0.1 }), /density should be >= 0/);
  assert.throws(() => combineAdapters(ads, { combination: 'svd', svdRank: 4 }), /rank 4 exceeds min\(out, in\) = 3/);
  assert.throws(() => combineAdapters(ads, { combination: 'svd', svdClamp: 1.5 }), /svdClamp/);
  const bad = { ...ads[1], A: { rows: 2, cols: 5, data: new Float32Array(10) }, name: 'math' };
  assert.throws(() => combineAdapters([ads[0], bad], { combination: 'cat' }), /math: delta is \[4, 5\]/);
  assert.throws(() => combineAdapters(ads, { combination: 'bogus' as CombinationType }), /unknown combination "bogus"/);
});

test('svd of a 256×256 module from rank-16 adapters stays fast and exact (factored path)', () => {
  const rng = new Rng(17);
  const ads = [randomAdapter(rng, 256, 256, 16), randomAdapter(rng, 256, 256, 16)];
  const t0 = performance.now();
  const m = combineAdapters(ads, { combination: 'svd', svdRank: 32 });
  assert.ok(relativeError({ data: delta(m) }, { data: weightedSum(ads) }) < 1e-5);
  assert.ok(performance.now() - t0 < 5000, 'factored SVD should take well under a second');
});
