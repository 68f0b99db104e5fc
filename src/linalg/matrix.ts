// Small dense row-major matrices for merge math: a float32 storage type and float64 working helpers.
//
// Shapes are written [rows, cols]; element (i, j) lives at data[i * cols + j]. Merge math runs in float64
// (Mat64) so that rounding stays far below float32 storage precision, then converts back with toF32.

/** A row-major float32 matrix: the storage type for LoRA factors and deltas. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** A row-major float64 matrix: the working type inside linear algebra routines. */
export interface Mat64 {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function zeros64(rows: number, cols: number): Mat64 {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** Builds a float32 matrix from nested rows (handy in tests). Throws on ragged input. */
export function matrixFromRows(rows: readonly (readonly number[])[]): Matrix {
  const r = rows.length;
  const c = r === 0 ? 0 : rows[0].length;
  const data = new Float32Array(r * c);
  rows.forEach((row, i) => {
    if (row.length !== c) throw new Error(`matrixFromRows: row ${i} has ${row.length} entries, expected ${c}`);
    data.set(row, i * c);
  });
  return { rows: r, cols: c, data };
}

/** Checks that data.length === rows * cols, naming the matrix in the error. */
export function checkShape(m: { rows: number; cols: number; data: ArrayLike<number> }, name: string): void {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 0 || m.cols < 0) {
    throw new Error(`${name}: invalid shape [${m.rows}, ${m.cols}]`);
  }
  if (m.data.length !== m.rows * m.cols) {
    throw new Error(`${name}: shape [${m.rows}, ${m.cols}] needs ${m.rows * m.cols} values, got ${m.data.length}`);
  }
}

export function to64(m: Matrix | Mat64): Mat64 {
  return { rows: m.rows, cols: m.cols, data: Float64Array.from(m.data) };
}

export function toF32(m: Mat64 | Matrix): Matrix {
  return { rows: m.rows, cols: m.cols, data: Float32Array.from(m.data) };
}

/** C [m, n] = A [m, k] · B [k, n]. */
export function matmul64(a: Mat64, b: Mat64): Mat64 {
  if (a.cols !== b.rows) throw new Error(`matmul: [${a.rows}, ${a.cols}] · [${b.rows}, ${b.cols}] do not chain`);
  const m = a.rows, k = a.cols, n = b.cols;
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a.data[i * k + p];
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * b.data[bp + j];
    }
  }
  return { rows: m, cols: n, data: c };
}

/** C [m, n] = A [m, k] · Bᵀ for B stored [n, k]: every entry is a dot product of two contiguous rows, which
 *  runs several times faster than matmul64 when n is small (tall-skinny products in subspace iteration). */
export function matmulTransB64(a: Mat64, b: Mat64): Mat64 {
  if (a.cols !== b.cols) throw new Error(`matmulTransB: [${a.rows}, ${a.cols}] · [${b.rows}, ${b.cols}]ᵀ do not chain`);
  const m = a.rows, k = a.cols, n = b.rows, A = a.data, B = b.data;
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, p = 0;
      for (; p + 3 < k; p += 4) {
        s0 += A[ai + p] * B[bj + p];
        s1 += A[ai + p + 1] * B[bj + p + 1];
        s2 += A[ai + p + 2] * B[bj + p + 2];
        s3 += A[ai + p + 3] * B[bj + p + 3];
      }
      for (; p < k; p++) s0 += A[ai + p] * B[bj + p];
      c[i * n + j] = s0 + s1 + s2 + s3;
    }
  }
  return { rows: m, cols: n, data: c };
}

/** Aᵀ [n, m] of A [m, n]. */
export function transpose64(a: Mat64): Mat64 {
  const t = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: t };
}

/** Columns [from, to) of A. */
export function sliceCols64(a: Mat64, from: number, to: number): Mat64 {
  const n = to - from;
  const out = new Float64Array(a.rows * n);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols + from, i * a.cols + to), i * n);
  return { rows: a.rows, cols: n, data: out };
}

/** Horizontal concatenation [A1 | A2 | …] (equal row counts). */
export function hcat64(parts: readonly Mat64[]): Mat64 {
  const rows = parts[0].rows;
  const cols = parts.reduce((s, p) => s + p.cols, 0);
  const out = new Float64Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    if (p.rows !== rows) throw new Error(`hcat: row counts differ (${rows} vs ${p.rows})`);
    for (let i = 0; i < rows; i++) out.set(p.data.subarray(i * p.cols, (i + 1) * p.cols), i * cols + off);
    off += p.cols;
  }
  return { rows, cols, data: out };
}

/** Vertical concatenation [A1; A2; …] (equal column counts). */
export function vcat64(parts: readonly Mat64[]): Mat64 {
  const cols = parts[0].cols;
  const rows = parts.reduce((s, p) => s + p.rows, 0);
  const out = new Float64Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    if (p.cols !== cols) throw new Error(`vcat: column counts differ (${cols} vs ${p.cols})`);
    out.set(p.data, off);
    off += p.data.length;
  }
  return { rows, cols, data: out };
}

/** Frobenius norm. */
export function frobenius(a: { data: ArrayLike<number> }): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i] * a.data[i];
  return Math.sqrt(s);
}

/** ‖A − B‖_F / max(‖B‖_F, tiny): the relative error used by tests and checks. */
export function relativeError(a: { data: ArrayLike<number> }, b: { data: ArrayLike<number> }): number {
  if (a.data.length !== b.data.length) throw new Error(`relativeError: sizes differ (${a.data.length} vs ${b.data.length})`);
  let d = 0;
  for (let i = 0; i < a.data.length; i++) d += (a.data[i] - b.data[i]) ** 2;
  return Math.sqrt(d) / Math.max(frobenius(b), 1e-300);
}
