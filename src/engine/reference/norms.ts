// Reference row-wise model kernels: embedding gather/scatter, RMSNorm, RoPE and softmax, each with its backward.

import type { Buf, RopeMode } from '../backend.js';
import { needLength } from './check.js';

// ---- embedding ---------------------------------------------------------------------------------------------

/** out[N, C] = table[ids[n], C]. */
export function embeddingForward(table: Buf, ids: Int32Array, out: Buf, N: number, C: number): void {
  needLength('embeddingForward', 'ids', ids, N);
  needLength('embeddingForward', 'out', out, N * C);
  for (let n = 0; n < N; n++) {
    const row = checkedRow('embeddingForward', ids, n, table.length, C);
    for (let c = 0; c < C; c++) out[n * C + c] = table[row + c];
  }
}

/** dtable[ids[n], :] += dout[n, :] in order of n (duplicates accumulate, each add rounded like a store). */
export function embeddingBackward(dout: Buf, ids: Int32Array, dtable: Buf, N: number, C: number): void {
  needLength('embeddingBackward', 'ids', ids, N);
  needLength('embeddingBackward', 'dout', dout, N * C);
  for (let n = 0; n < N; n++) {
    const row = checkedRow('embeddingBackward', ids, n, dtable.length, C);
    for (let c = 0; c < C; c++) dtable[row + c] += dout[n * C + c];
  }
}

/** Start of row ids[n] in a [rows, C] table; the oracle refuses an id outside the table. */
function checkedRow(kernel: string, ids: Int32Array, n: number, tableLength: number, C: number): number {
  const id = ids[n];
  if (id < 0 || (id + 1) * C > tableLength) {
    throw new RangeError(`reference ${kernel}: ids[${n}] = ${id} is outside a table of ${Math.floor(tableLength / C)} rows`);
  }
  return id * C;
}

// ---- RMSNorm -----------------------------------------------------------------------------------------------

/**
 * x[N, C], w[C] → out[N, C], rstd[N]:
 *   rstd[n] = 1 / sqrt(mean_c x[n, c]² + eps),   out[n, c] = x[n, c] · rstd[n] · w[c]
 */
export function rmsnormForward(x: Buf, w: Buf, out: Buf, rstd: Buf, N: number, C: number, eps: number): void {
  needLength('rmsnormForward', 'x', x, N * C);
  needLength('rmsnormForward', 'w', w, C);
  needLength('rmsnormForward', 'out', out, N * C);
  needLength('rmsnormForward', 'rstd', rstd, N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = x[n * C + c] * r * w[c];
  }
}

/**
 * Backward of out = x · r · w with r = (Σ x²/C + eps)^(−1/2), so ∂r/∂x_j = −r³ · x_j / C:
 *   dx[n, j] = r · w_j · dout_j − (r³ / C) · x_j · Σ_c dout_c · w_c · x_c      (written)
 *   dw[j]   += Σ_n dout[n, j] · x[n, j] · r[n]                                 (accumulated)
 * r is the saved rstd[n].
 */
export function rmsnormBackward(dout: Buf, x: Buf, w: Buf, rstd: Buf, dx: Buf, dw: Buf, N: number, C: number): void {
  for (const [name, buf, len] of [['dout', dout, N * C], ['x', x, N * C], ['w', w, C], ['rstd', rstd, N], ['dx', dx, N * C], ['dw', dw, C]] as const) {
    needLength('rmsnormBackward', name, buf, len);
  }
  const dwAcc = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0; // Σ_c dout·w·x
    for (let c = 0; c < C; c++) dot += dout[n * C + c] * w[c] * x[n * C + c];
    const k = (r * r * r) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = r * w[c] * dout[i] - k * x[i] * dot;
      dwAcc[c] += dout[i] * x[i] * r;
    }
  }
  for (let c = 0; c < C; c++) dw[c] += dwAcc[c];
}

// ---- RoPE --------------------------------------------------------------------------------------------------

/**
 * x[B, T, H, D] → out[B, T, H, D]. Pair i < D/2 is (x[2i], x[2i+1]) when interleaved, (x[i], x[i + D/2]) for
 * halves; it is rotated by θ = positions[t] · invFreq[i] (−θ when inverse):
 *   out₀ = x₀·cos θ − x₁·sin θ,   out₁ = x₀·sin θ + x₁·cos θ
 * The rotation is orthogonal, so the backward is the same call with inverse = true. Each pair is read before
 * it is written, so out may be x (in place). The angle is formed in double.
 */
export function rope(x: Buf, out: Buf, B: number, T: number, H: number, D: number, positions: Int32Array, invFreq: Buf, mode: RopeMode, inverse: boolean): void {
  if (D % 2 !== 0) throw new RangeError(`reference rope: head dim D=${D} must be even`);
  needLength('rope', 'x', x, B * T * H * D);
  needLength('rope', 'out', out, B * T * H * D);
  needLength('rope', 'positions', positions, T);
  needLength('rope', 'invFreq', invFreq, D / 2);
  const half = D / 2;
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const theta = sign * positions[t] * invFreq[i];
          const cos = Math.cos(theta);
          const sin = Math.sin(theta);
          const j0 = base + (mode === 'interleaved' ? 2 * i : i);
          const j1 = base + (mode === 'interleaved' ? 2 * i + 1 : i + half);
          const x0 = x[j0];
          const x1 = x[j1];
          out[j0] = x0 * cos - x1 * sin;
          out[j1] = x0 * sin + x1 * cos;
        }
      }
    }
  }
}

// ---- softmax -----------------------------------------------------------------------------------------------

/** out[n, :] = exp(x[n, :] − max) / Σ exp(x[n, :] − max), x[N, C]. */
export function softmaxForward(x: Buf, out: Buf, N: number, C: number): void {
  needLength('softmaxForward', 'x', x, N * C);
  needLength('softmaxForward', 'out', out, N * C);
  const e = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, x[n * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) {
      e[c] = Math.exp(x[n * C + c] - max);
      sum += e[c];
    }
    for (let c = 0; c < C; c++) out[n * C + c] = e[c] / sum;
  }
}

/** With y = softmax(x): ∂y_i/∂x_j = y_i(δ_ij − y_j), so dx_j = y_j · (dout_j − Σ_i dout_i · y_i). */
export function softmaxBackward(y: Buf, dout: Buf, dx: Buf, N: number, C: number): void {
  needLength('softmaxBackward', 'y', y, N * C);
  needLength('softmaxBackward', 'dout', dout, N * C);
  needLength('softmaxBackward', 'dx', dx, N * C);
  for (let n = 0; n < N; n++) {
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[n * C + c] * y[n * C + c];
    for (let c = 0; c < C; c++) dx[n * C + c] = y[n * C + c] * (dout[n * C + c] - dot);
  }
}
