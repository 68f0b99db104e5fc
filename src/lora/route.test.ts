// The routing math without a model: distances to hand-made signatures, the calibrated threshold, top-k weights, the
// Arrow prototype against a dense SVD, and signature validation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import { jacobiSvd, type Mat64 } from '../linalg/index.js';
import { arrowPrototype, arrowWeights } from './arrow.js';
import type { BaseFingerprint } from './fingerprint.js';
import { commonLayer, PromptRouter } from './route.js';
import { kmeans, parseSignature, quantile, signatureDistance, type AdapterSignature } from './signature.js';

const FP: BaseFingerprint = {
  arch: 'llama', ropeMode: 'halves', shapes: { vocabSize: 8, hiddenSize: 4, intermediateSize: 8, numLayers: 2, numHeads: 1, numKvHeads: 1, headDim: 4 },
  dtypes: { f32: 3 }, weights: { algo: 'sha256', coverage: 'sample', hash: 'a'.repeat(64) }, norms: { algo: 'sha256', hash: 'b'.repeat(64) },
};

function sig(mean: number[], std: number[], layer = 1): AdapterSignature {
  return { format: 1, kind: 'diagonal-gaussian-mixture', layer, pooling: 'mean', prompts: 10, dim: mean.length, mean, std, components: [{ weight: 1, mean, std }], ownDistance: { q50: 1, q90: 2, q99: 3 }, base: FP };
}

const near = (mean: number[], rng: Rng, s = 0.1): number[] => mean.map((m) => m + s * rng.normal());

test('signatureDistance: per-dimension Mahalanobis square with a variance floor', () => {
  const s = sig([0, 0], [1, 1]);
  // floor = 0.05 · mean variance = 0.05: d² = ((3)²/1.05 + (4)²/1.05) / 2
  assert.ok(Math.abs(signatureDistance(s, [3, 4]) - 25 / 1.05 / 2) < 1e-9);
  assert.equal(signatureDistance(s, [0, 0]), 0);
  assert.throws(() => signatureDistance(s, [1, 2, 3]), /3 values, the signature 2/);
});

test('a router over two hand-made signatures picks the nearer one, and the base for an off-distribution prompt', () => {
  const rng = new Rng(1);
  const A = [1, 0, 0, 0], B = [0, 1, 0, 0], general = [0, 0, 1, 1];
  const r = new PromptRouter([{ name: 'a', signature: sig(A, [0.1, 0.1, 0.1, 0.1]) }, { name: 'b', signature: sig(B, [0.1, 0.1, 0.1, 0.1]) }]);
  const tau = r.calibrate(Array.from({ length: 200 }, () => near(general, rng, 0.3)), 0.05);
  assert.ok(Number.isFinite(tau) && tau > 0);
  for (let k = 0; k < 20; k++) {
    assert.deepEqual(r.decide(near(A, rng)).chosen.map((c) => [c.name, c.weight]), [['a', 1]]);
    assert.deepEqual(r.decide(near(B, rng)).chosen.map((c) => c.name), ['b']);
    assert.deepEqual(r.decide(near(general, rng, 0.05)).chosen, [], 'general prompts go to the base');
  }
  const d = r.decide([0, 0, -3, 5]);
  assert.deepEqual(d.chosen, []);
  assert.equal(d.threshold, tau);
  assert.equal(d.distances.length, 2);
});

test('top-k: the k nearest below the threshold, weights softmax(−d²/T) summing to 1', () => {
  const r = new PromptRouter([{ name: 'a', signature: sig([0, 0], [1, 1]) }, { name: 'b', signature: sig([1, 0], [1, 1]) }, { name: 'c', signature: sig([9, 9], [1, 1]) }], { topK: 2, temperature: 0.5, threshold: 10 });
  const f = [0.2, 0];
  const d = r.decide(f);
  assert.deepEqual(d.chosen.map((c) => c.name), ['a', 'b']);
  const [da, db] = [signatureDistance(sig([0, 0], [1, 1]), f), signatureDistance(sig([1, 0], [1, 1]), f)];
  const wa = 1 / (1 + Math.exp(-(db - da) / 0.5));
  assert.ok(Math.abs(d.chosen[0].weight - wa) < 1e-12);
  assert.ok(Math.abs(d.chosen[0].weight + d.chosen[1].weight - 1) < 1e-12);
  assert.throws(() => new PromptRouter([{ name: 'a', signature: sig([0], [1]) }], { topK: 0 }), /top-k must be a positive integer/);
});

test('signatures taken at different layers cannot share one router', () => {
  assert.throws(() => commonLayer([{ name: 'a', signature: sig([0], [1], 1) }, { name: 'b', signature: sig([0], [1], 2) }]), /b was signed at layer 2.*--layer 1/);
  assert.throws(() => commonLayer([]), /no signed adapters/);
});

test('quantile interpolates between order statistics (numpy default)', () => {
  assert.equal(quantile([3, 1, 2, 4], 0), 1);
  assert.equal(quantile([3, 1, 2, 4], 1), 4);
  assert.equal(quantile([3, 1, 2, 4], 0.5), 2.5);
  assert.ok(Math.abs(quantile([0, 10], 0.05) - 0.5) < 1e-12);
});

test('Arrow prototype: the top right-singular vector of the dense s·B·A (linalg jacobiSvd), up to sign', () => {
  const rng = new Rng(7);
  for (const [out, r, inF] of [[6, 2, 5], [12, 4, 9], [5, 3, 16]] as const) {
    const A = Float32Array.from({ length: r * inF }, () => rng.normal());
    const B = Float32Array.from({ length: out * r }, () => rng.normal());
    const v = arrowPrototype({ A: Tensor.from(A, [r, inF]), B: Tensor.from(B, [out, r]), r, inFeatures: inF, outFeatures: out });
    const dense: Mat64 = { rows: out, cols: inF, data: new Float64Array(out * inF) };
    for (let o = 0; o < out; o++) for (let c = 0; c < inF; c++) for (let j = 0; j < r; j++) dense.data[o * inF + c] += B[o * r + j] * A[j * inF + c];
    const svd = jacobiSvd(dense);
    const want = Array.from({ length: inF }, (_, j) => svd.V.data[j * svd.V.cols]);
    const sign = Math.sign(want.reduce((s, x, j) => s + x * v[j], 0));
    want.forEach((x, j) => assert.ok(Math.abs(sign * x - v[j]) < 1e-5, `${out}×${r}×${inF} [${j}]: ${v[j]} vs ${x}`));
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  }
});

test('Arrow weights: top-k by logit, softmax at the temperature among them, zero elsewhere', () => {
  const w = arrowWeights([0.5, 2, 1, 0.1], 2, 1);
  assert.equal(w[0], 0);
  assert.equal(w[3], 0);
  assert.ok(Math.abs(w[1] - 1 / (1 + Math.exp(-1))) < 1e-12);
  assert.ok(Math.abs(w[1] + w[2] - 1) < 1e-12);
  assert.deepEqual(Array.from(arrowWeights([3, 1], 1, 0.1)), [1, 0]);
  const cold = arrowWeights([1, 1.1], 2, 0.01);
  assert.ok(cold[1] > 0.99);
});

test('parseSignature refuses malformed files, naming the field and how to fix it', () => {
  const good = sig([0, 1], [1, 1]);
  assert.deepEqual(parseSignature(JSON.parse(JSON.stringify(good)), 's.json'), good);
  assert.throws(() => parseSignature({ ...good, std: [1] }, 's.json'), /s\.json: signature field "std" must be 2 finite numbers; re-sign/);
  assert.throws(() => parseSignature({ ...good, format: 9 }, 's.json'), /"format" is 9/);
  assert.throws(() => parseSignature([], 's.json'), /not a JSON object/);
  assert.throws(() => parseSignature({ ...good, base: {} }, 's.json'), /fingerprint field/);
});

test('mixture signatures: k-means finds two clumps deterministically; the distance is to the nearest component', () => {
  const rng = new Rng(5);
  const feats = Array.from({ length: 40 }, (_, i) => Float32Array.from(near(i % 2 === 0 ? [5, 0, 0] : [-5, 0, 0], rng, 0.2)));
  const mean = [0, 0, 0];
  const a = kmeans(feats, 2, mean);
  assert.deepEqual(kmeans(feats, 2, mean), a);
  feats.forEach((_, i) => assert.equal(a[i], a[i % 2], `feature ${i} joins its clump`));
  assert.notEqual(a[0], a[1]);
  const s = { std: [5, 0.2, 0.2], components: [{ weight: 0.5, mean: [5, 0, 0], std: [0.2, 0.2, 0.2] }, { weight: 0.5, mean: [-5, 0, 0], std: [0.2, 0.2, 0.2] }] };
  assert.ok(signatureDistance(s, [-5, 0, 0]) < 1e-12 && signatureDistance(s, [5, 0, 0]) < 1e-12);
  assert.ok(signatureDistance(s, [0, 0, 0]) > 10, 'between the clumps is far from both');
});
