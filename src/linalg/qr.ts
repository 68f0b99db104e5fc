// Householder QR in float64: the orthogonalization step behind the low-rank and randomized SVDs.
//
// thinQr(A [m, n]) returns Q [m, k] with orthonormal columns and upper-triangular R [k, n], k = min(m, n), such
// that A = Q·R. Householder reflections (not Gram–Schmidt) keep Q orthonormal to rounding even when A's columns
// are nearly dependent, which is the normal case for stacked LoRA factors.

import type { Mat64 } from './matrix.js';

export interface QrResult {
  Q: Mat64; // [m, k]
  R: Mat64; // [k, n]
}

export function thinQr(a: Mat64): QrResult {
  const m = a.rows, n = a.cols, k = Math.min(m, n);
  // Column-major working copy: cols[j][i] = A[i, j]; reflections update whole columns.
  const cols: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const c = new Float64Array(m);
    for (let i = 0; i < m; i++) c[i] = a.data[i * n + j]!;
    cols.push(c);
  }
  const vs: Float64Array[] = []; // Householder vectors, v_j has zeros above j and ‖v_j‖ = 1 (or all zeros)
  for (let j = 0; j < k; j++) {
    const x = cols[j];
    let norm = 0;
    for (let i = j; i < m; i++) norm += x[i] * x[i];
    norm = Math.sqrt(norm);
    const v = new Float64Array(m);
    if (norm > 0) {
      // Reflect x onto -sign(x_j)·‖x‖·e_j: the sign choice avoids cancellation.
      const alpha = x[j] >= 0 ? -norm : norm;
      for (let i = j; i < m; i++) v[i] = x[i]!;
      v[j] -= alpha;
      let vn = 0;
      for (let i = j; i < m; i++) vn += v[i] * v[i];
      vn = Math.sqrt(vn);
      if (vn > 0) for (let i = j; i < m; i++) v[i] /= vn;
      for (let c = j; c < n; c++) reflect(v, cols[c], j, m);
    }
    vs.push(v);
  }
  const R = new Float64Array(k * n);
  for (let i = 0; i < k; i++) for (let j = i; j < n; j++) R[i * n + j] = cols[j][i]!;
  // Q = H_0 H_1 … H_{k-1} applied to the first k columns of the identity (reverse order).
  const Q = new Float64Array(m * k);
  for (let c = 0; c < k; c++) {
    const e = new Float64Array(m);
    e[c] = 1;
    for (let j = k - 1; j >= 0; j--) reflect(vs[j], e, j, m);
    for (let i = 0; i < m; i++) Q[i * k + c] = e[i]!;
  }
  return { Q: { rows: m, cols: k, data: Q }, R: { rows: k, cols: n, data: R } };
}

/** x ← (I − 2 v vᵀ) x on rows [from, m). */
function reflect(v: Float64Array, x: Float64Array, from: number, m: number): void {
  let dot = 0;
  for (let i = from; i < m; i++) dot += v[i] * x[i];
  if (dot === 0) return;
  dot *= 2;
  for (let i = from; i < m; i++) x[i] -= dot * v[i];
}
