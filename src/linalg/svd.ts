// Singular value decompositions for merge math, in float64: exact dense (one-sided Jacobi), exact low-rank
// (QR of the factors, then Jacobi on a small core) and truncated dense (randomized subspace iteration).
//
// Why three: a LoRA delta ΔW = B·A [out, in] with out, in up to ~2048 has rank ≤ R = Σ r_i (≤ a few hundred).
// A Jacobi SVD of the dense 2048×2048 matrix costs ~10^10 flops per sweep; instead
//   B_cat = Q1·R1 (Q1 [out, k1]),  A_catᵀ = Q2·R2 (Q2 [in, k2]),  so  ΔW = Q1 · (R1·R2ᵀ) · Q2ᵀ,
// and the SVD of the small core C = R1·R2ᵀ [k1, k2] = Uc·S·Vcᵀ gives ΔW = (Q1·Uc)·S·(Q2·Vc)ᵀ exactly (no
// truncation, no iteration beyond the tiny core). Pruned deltas (ties_svd, dare_*_svd) are dense and not low rank;
// for those only the top-k triplets are needed, found by subspace iteration plus a Rayleigh–Ritz step.
//
// Results: U [m, p], S [p] (descending), V [n, p] (so M ≈ U·diag(S)·Vᵀ). Sign convention: the largest-magnitude
// entry of each column of V is positive (LAPACK's signs are arbitrary; this one is deterministic).

import { Rng } from '../engine/rng.js';
import { checkShape, frobenius, hcat64, matmul64, matmulTransB64, to64, transpose64, vcat64, type Mat64, type Matrix } from './matrix.js';
import { thinQr } from './qr.js';

export interface SvdResult {
  U: Mat64; // [m, p]
  S: Float64Array; // [p], descending, ≥ 0
  V: Mat64; // [n, p]
}

/** Full thin SVD of a dense matrix by one-sided Jacobi (exact to rounding; O(m·n²) per sweep: keep it small). */
export function jacobiSvd(a: Mat64): SvdResult {
  if (a.rows < a.cols) {
    const t = jacobiTall(transpose64(a)); // Aᵀ = U'·S·V'ᵀ  ⇒  A = V'·S·U'ᵀ
    return normalizeSigns({ U: t.V, S: t.S, V: t.U });
  }
  return normalizeSigns(jacobiTall(a));
}

/** One-sided Jacobi for m ≥ n: rotate column pairs of W = A·V until all are orthogonal; then σ_j = ‖w_j‖. */
function jacobiTall(a: Mat64): SvdResult {
  const m = a.rows, n = a.cols;
  const w: Float64Array[] = [];
  const v: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const c = new Float64Array(m);
    for (let i = 0; i < m; i++) c[i] = a.data[i * n + j]!;
    w.push(c);
    const e = new Float64Array(n);
    e[j] = 1;
    v.push(e);
  }
  const eps = 1e-15;
  for (let sweep = 0; sweep < 80; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const wp = w[p], wq = w[q];
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += wp[i] * wp[i];
          beta += wq[i] * wq[i];
          gamma += wp[i] * wq[i];
        }
        if (alpha === 0 || beta === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        rotate(wp, wq, c, s);
        rotate(v[p], v[q], c, s);
      }
    }
    if (!rotated) break;
  }
  const order = w.map((col, j) => ({ j, s: Math.sqrt(col.reduce((acc, x) => acc + x * x, 0)) }));
  order.sort((x, y) => y.s - x.s || x.j - y.j);
  const U = new Float64Array(m * n), V = new Float64Array(n * n), S = new Float64Array(n);
  const uValid: boolean[] = [];
  order.forEach(({ j, s }, k) => {
    S[k] = s;
    const smax = order[0].s;
    uValid.push(s > 0 && s > smax * 1e-300);
    for (let i = 0; i < m; i++) U[i * n + k] = s > 0 ? w[j][i] / s : 0;
    for (let i = 0; i < n; i++) V[i * n + k] = v[j][i]!;
  });
  const Um: Mat64 = { rows: m, cols: n, data: U };
  completeColumns(Um, uValid);
  return { U: Um, S, V: { rows: n, cols: n, data: V } };
}

function rotate(x: Float64Array, y: Float64Array, c: number, s: number): void {
  for (let i = 0; i < x.length; i++) {
    const a = x[i], b = y[i];
    x[i] = c * a - s * b;
    y[i] = s * a + c * b;
  }
}

/** Replaces the columns of M marked invalid (zero singular values) by unit vectors orthogonal to all others. */
export function completeColumns(M: Mat64, valid: readonly boolean[]): void {
  const { rows: m, cols: n, data } = M;
  const ok = valid.slice();
  let candidate = 0;
  for (let c = 0; c < n; c++) {
    if (ok[c]) continue;
    for (; candidate < m; candidate++) {
      const x = new Float64Array(m);
      x[candidate] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (let o = 0; o < n; o++) {
          if (!ok[o]) continue;
          let d = 0;
          for (let i = 0; i < m; i++) d += data[i * n + o] * x[i];
          for (let i = 0; i < m; i++) x[i] -= d * data[i * n + o];
        }
      }
      const norm = Math.sqrt(x.reduce((acc, t) => acc + t * t, 0));
      if (norm > 0.5) {
        for (let i = 0; i < m; i++) data[i * n + c] = x[i] / norm;
        ok[c] = true;
        candidate++;
        break;
      }
    }
    if (!ok[c]) throw new Error(`completeColumns: cannot find ${n} orthonormal columns in dimension ${m}`);
  }
}

/** Flips (u_j, v_j) pairs so that each v_j's largest-magnitude entry is positive. */
function normalizeSigns(r: SvdResult): SvdResult {
  const { U, V } = r;
  for (let j = 0; j < V.cols; j++) {
    let best = 0;
    for (let i = 0; i < V.rows; i++) if (Math.abs(V.data[i * V.cols + j]) > Math.abs(best)) best = V.data[i * V.cols + j]!;
    if (best < 0) {
      for (let i = 0; i < V.rows; i++) V.data[i * V.cols + j] = -V.data[i * V.cols + j];
      for (let i = 0; i < U.rows; i++) U.data[i * U.cols + j] = -U.data[i * U.cols + j];
    }
  }
  return r;
}

/** Exact SVD of B·A for B [m, R], A [R, n] without forming the product (see the header). p = min(m, n, R). */
export function lowRankSvd(b: Mat64, a: Mat64): SvdResult {
  if (b.cols !== a.rows) throw new Error(`lowRankSvd: B [${b.rows}, ${b.cols}] and A [${a.rows}, ${a.cols}] do not chain`);
  const q1 = thinQr(b); // B = Q1·R1
  const q2 = thinQr(transpose64(a)); // Aᵀ = Q2·R2
  const core = matmul64(q1.R, transpose64(q2.R)); // [k1, k2]
  const c = jacobiSvd(core);
  return normalizeSigns({ U: matmul64(q1.Q, c.U), S: c.S, V: matmul64(q2.Q, c.V) });
}

export interface TruncatedSvdOptions {
  /** seed for the random start block (default 0): results are reproducible */
  seed?: number;
  /** extra columns beyond k in the iterated block (default max(8, k/4)) */
  oversample?: number;
  /** maximum subspace iterations (default 30) */
  maxIter?: number;
  /** stop when the top-k singular value estimates change by less than tol relative to σ_1 (default 1e-6: value
   *  errors are about the square of subspace errors, and pruned deltas often have near-equal σ_k, σ_k+1 whose
   *  individual vectors no SVD determines well) */
  tol?: number;
}

/** Top-k singular triplets of a dense matrix. Small matrices go through jacobiSvd; large ones through
 *  randomized subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4) with a final Rayleigh–Ritz SVD. */
export function truncatedSvd(a: Mat64, k: number, opts: TruncatedSvdOptions = {}): SvdResult {
  const m = a.rows, n = a.cols, small = Math.min(m, n);
  const kk = Math.min(k, small);
  const l = Math.min(small, kk + (opts.oversample ?? Math.max(8, Math.ceil(kk / 4))));
  if (small <= 160 || 2 * l >= small) return truncate(jacobiSvd(a), kk);
  const rng = new Rng(opts.seed ?? 0);
  // Blocks are kept transposed ([l, m] / [l, n]) so that every product is a row-by-row dot (matmulTransB64).
  const omegaT = new Float64Array(l * n);
  for (let i = 0; i < omegaT.length; i++) omegaT[i] = rng.normal();
  const at = transpose64(a);
  const orth = (y: Mat64) => thinQr(y); // y [rows, l] → Q [rows, l]
  let q = orth(matmulTransB64(a, { rows: l, cols: n, data: omegaT }));
  let prev: Float64Array | null = null;
  const maxIter = opts.maxIter ?? 30, tol = opts.tol ?? 1e-6;
  for (let it = 0; it < maxIter; it++) {
    const z = orth(matmulTransB64(at, transpose64(q.Q))); // [n, l]: Aᵀ·Q
    q = orth(matmulTransB64(a, transpose64(z.Q))); // [m, l]: A·Z; |diag R| estimates σ
    const est = new Float64Array(l);
    for (let i = 0; i < l; i++) est[i] = Math.abs(q.R.data[i * q.R.cols + i]);
    est.sort().reverse();
    if (prev !== null) {
      let change = 0;
      for (let i = 0; i < kk; i++) change = Math.max(change, Math.abs(est[i] - prev[i]));
      if (change <= tol * Math.max(est[0], 1e-300)) break;
    }
    prev = est;
  }
  // Rayleigh–Ritz: Qᵀ·A = Bs [l, n]; Bsᵀ = Ub·S·Vbᵀ ⇒ A ≈ Q·Bs = (Q·Vb)·S·Ubᵀ.
  const bsT = matmulTransB64(at, transpose64(q.Q)); // [n, l] = (Qᵀ A)ᵀ
  const s = jacobiSvd(bsT);
  return truncate(normalizeSigns({ U: matmul64(q.Q, s.V), S: s.S, V: s.U }), kk);
}

/** Keeps the first k triplets. */
export function truncate(r: SvdResult, k: number): SvdResult {
  const p = Math.min(k, r.S.length);
  return { U: keepCols(r.U, p), S: r.S.slice(0, p), V: keepCols(r.V, p) };
}

function keepCols(m: Mat64, p: number): Mat64 {
  if (p === m.cols) return m;
  const out = new Float64Array(m.rows * p);
  for (let i = 0; i < m.rows; i++) out.set(m.data.subarray(i * m.cols, i * m.cols + p), i * p);
  return { rows: m.rows, cols: p, data: out };
}

/** A low-rank term scale·B·A (B [m, r], A [r, n]) of a summed update. */
export interface LowRankTerm {
  B: Matrix | Mat64;
  A: Matrix | Mat64;
  scale?: number; // default 1
}

export interface NumericalRankOptions {
  /** singular values ≤ relTol·scale (see numericalRank) count as zero. Default max(m, n)·2⁻²³ (float32 epsilon: factors are stored in
   *  float32, so smaller singular values are indistinguishable from rounding). */
  relTol?: number;
  /** absolute floor: singular values ≤ absTol count as zero (default 0) */
  absTol?: number;
}

/** Singular values of a dense matrix or of a sum of low-rank terms Σ scale_i·B_i·A_i (exact, via lowRankSvd). */
export function singularValues(x: Matrix | Mat64 | readonly LowRankTerm[]): Float64Array {
  if (!Array.isArray(x)) {
    const m = x as Matrix | Mat64;
    checkShape(m, 'singularValues');
    return jacobiSvd(to64(m)).S;
  }
  const terms = x as readonly LowRankTerm[];
  if (terms.length === 0) throw new Error('singularValues: no terms');
  const bs: Mat64[] = [], as: Mat64[] = [];
  terms.forEach((t, i) => {
    checkShape(t.B, `term ${i} B`);
    checkShape(t.A, `term ${i} A`);
    const a = to64(t.A);
    const s = t.scale ?? 1;
    for (let j = 0; j < a.data.length; j++) a.data[j] *= s;
    bs.push(to64(t.B));
    as.push(a);
  });
  return lowRankSvd(hcat64(bs), vcat64(as)).S;
}

/** Numerical rank: the number of singular values above max(relTol·scale, absTol). For a dense matrix scale = σ_max;
 *  for a sum of terms scale = max(σ_max, max_i |scale_i|·‖B_i‖_F·‖A_i‖_F), because terms that cancel leave
 *  rounding-level singular values that must not count relative to a tiny σ_max. Zero matrix → 0. */
export function numericalRank(x: Matrix | Mat64 | readonly LowRankTerm[], opts: NumericalRankOptions = {}): number {
  const s = singularValues(x);
  let m: number, n: number, scale = s.length > 0 ? s[0] : 0;
  if (Array.isArray(x)) {
    const terms = x as readonly LowRankTerm[];
    m = terms[0].B.rows;
    n = terms[0].A.cols;
    for (const t of terms) scale = Math.max(scale, Math.abs(t.scale ?? 1) * frobenius(t.B) * frobenius(t.A));
  } else {
    const mat = x as Matrix | Mat64;
    m = mat.rows;
    n = mat.cols;
  }
  if (scale === 0) return 0;
  const thr = Math.max((opts.relTol ?? Math.max(m, n) * 2 ** -23) * scale, opts.absTol ?? 0);
  let r = 0;
  for (const v of s) if (v > thr) r++;
  return r;
}
