// Unit tests for QR, the three SVDs and numerical rank: reconstruction, orthonormality, agreement between paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../engine/rng.js';
import { matmul64, matrixFromRows, relativeError, to64, transpose64, type Mat64 } from './matrix.js';
import { thinQr } from './qr.js';
import { jacobiSvd, lowRankSvd, numericalRank, singularValues, truncatedSvd, type SvdResult } from './svd.js';

function randn(rows: number, cols: number, rng: Rng): Mat64 {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return { rows, cols, data };
}

function reconstruct(r: SvdResult): Mat64 {
  const us = { rows: r.U.rows, cols: r.U.cols, data: r.U.data.map((x, i) => x * r.S[i % r.U.cols]) };
  return matmul64(us, transpose64(r.V));
}

function orthonormalError(q: Mat64): number {
  const g = matmul64(transpose64(q), q);
  let e = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) e = Math.max(e, Math.abs(g.data[i * g.cols + j] - (i === j ? 1 : 0)));
  return e;
}

test('thinQr: A = QR, Q orthonormal, R upper triangular (tall and wide)', () => {
  const rng = new Rng(1);
  for (const [m, n] of [[7, 4], [4, 7], [5, 5]] as const) {
    const a = randn(m, n, rng);
    const { Q, R } = thinQr(a);
    assert.ok(relativeError(matmul64(Q, R), a) < 1e-13);
    assert.ok(orthonormalError(Q) < 1e-13);
    for (let i = 0; i < R.rows; i++) for (let j = 0; j < Math.min(i, R.cols); j++) assert.equal(R.data[i * R.cols + j], 0);
  }
});

test('jacobiSvd: hand case diag(3, 2) padded, and random reconstruction', () => {
  const r = jacobiSvd(to64(matrixFromRows([[0, 2, 0], [3, 0, 0]])));
  assert.deepEqual(Array.from(r.S), [3, 2]);
  // σ1 = 3 pairs u = e2 with v = e1; σ2 = 2 pairs u = e1 with v = e2 (v's largest entry made positive)
  assert.deepEqual(Array.from(r.V.data).slice(0, 6), [1, 0, 0, 1, 0, 0]);
  const rng = new Rng(2);
  for (const [m, n] of [[9, 5], [5, 9]] as const) {
    const a = randn(m, n, rng);
    const s = jacobiSvd(a);
    assert.ok(relativeError(reconstruct(s), a) < 1e-13);
    assert.ok(orthonormalError(s.U) < 1e-12 && orthonormalError(s.V) < 1e-12);
    for (let i = 1; i < s.S.length; i++) assert.ok(s.S[i - 1] >= s.S[i]);
  }
});

test('jacobiSvd: rank-deficient input still gives orthonormal U (completed for zero singular values)', () => {
  const rng = new Rng(3);
  const a = matmul64(randn(8, 2, rng), randn(2, 5, rng));
  const s = jacobiSvd(a);
  assert.ok(s.S[2] < 1e-12 * s.S[0]);
  assert.ok(orthonormalError(s.U) < 1e-10);
  assert.ok(relativeError(reconstruct(s), a) < 1e-13);
});

test('lowRankSvd matches the dense SVD of B·A without forming it', () => {
  const rng = new Rng(4);
  const b = randn(40, 6, rng), a = randn(6, 30, rng);
  const dense = jacobiSvd(matmul64(b, a));
  const low = lowRankSvd(b, a);
  assert.equal(low.S.length, 6);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(low.S[i] - dense.S[i]) < 1e-10 * dense.S[0]);
  assert.ok(relativeError(reconstruct(low), matmul64(b, a)) < 1e-13);
  assert.ok(orthonormalError(low.U) < 1e-12 && orthonormalError(low.V) < 1e-12);
});

test('truncatedSvd (randomized path) finds the top singular values of a 200×170 matrix', () => {
  const rng = new Rng(5);
  // decaying spectrum plus noise: the dense, non-low-rank shape of a pruned delta
  const lr = matmul64(randn(200, 12, rng), randn(12, 170, rng));
  const noise = randn(200, 170, rng);
  const a: Mat64 = { rows: 200, cols: 170, data: lr.data.map((x, i) => x + 0.05 * noise.data[i]) };
  const exact = jacobiSvd(a);
  const approx = truncatedSvd(a, 8, { seed: 1 });
  assert.equal(approx.S.length, 8);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(approx.S[i] - exact.S[i]) < 1e-8 * exact.S[0], `σ${i}`);
  assert.ok(orthonormalError(approx.U) < 1e-10 && orthonormalError(approx.V) < 1e-10);
});

test('numericalRank of sums of low-rank terms, dense matrices and zero', () => {
  const rng = new Rng(6);
  const f32 = (m: Mat64) => ({ rows: m.rows, cols: m.cols, data: Float32Array.from(m.data) });
  const B1 = f32(randn(20, 2, rng)), A1 = f32(randn(2, 16, rng));
  const B2 = f32(randn(20, 2, rng)), A2 = f32(randn(2, 16, rng));
  assert.equal(numericalRank([{ B: B1, A: A1 }, { B: B2, A: A2 }]), 4);
  // the same update added twice (and cancelled) does not add rank
  assert.equal(numericalRank([{ B: B1, A: A1 }, { B: B1, A: A1, scale: 2 }]), 2);
  assert.equal(numericalRank([{ B: B1, A: A1 }, { B: B1, A: A1, scale: -1 }]), 0);
  assert.equal(numericalRank(matrixFromRows([[1, 2], [2, 4], [3, 6]])), 1);
  assert.equal(numericalRank(matrixFromRows([[0, 0], [0, 0]])), 0);
  assert.equal(singularValues(matrixFromRows([[3, 0], [0, 4]]))[0], 4);
});
