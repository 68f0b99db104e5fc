// Reference attention with grouped-query heads: scores per query row, softmax, weighted sum of values.

import type { AttentionParams, Buf } from '../backend.js';
import { needLength, scratch, store } from './check.js';

// Layouts: q[B, Tq, H, D], k/v[B, Tk, G, D], out[B, Tq, H, D], lse[B, H, Tq].
// Query head h reads key/value head g = floor(h / (H/G)) (grouped-query attention; G = H is plain multi-head,
// G = 1 multi-query).
//
// For one (b, h) and query row i, with the allowed keys j ∈ 0..last(i):
//   s_j   = scale · q_i · k_j
//   lse_i = log Σ_j exp(s_j)
//   p_j   = exp(s_j − lse_i)
//   out_i = Σ_j p_j · v_j
// last(i) = min(Tk − 1, qOffset + i) when causal (query i sits at position qOffset + i of the key timeline;
// with a KV cache Tq < Tk and qOffset = Tk − Tq), and Tk − 1 otherwise (qOffset is then ignored).
// The reference materializes one row of Tk scores at a time, never a Tq × Tk matrix.

function checkParams(kernel: string, p: AttentionParams): void {
  const { B, Tq, Tk, H, G, D, qOffset } = p;
  for (const [name, v] of [['B', B], ['Tq', Tq], ['Tk', Tk], ['H', H], ['G', G], ['D', D], ['qOffset', qOffset]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`reference ${kernel}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (G === 0 || H % G !== 0) throw new RangeError(`reference ${kernel}: H=${H} query heads is not a multiple of G=${G} key/value heads`);
}

/** Index of the last key that query row i may attend. */
function lastKey(p: AttentionParams, i: number): number {
  return p.causal ? Math.min(p.Tk - 1, p.qOffset + i) : p.Tk - 1;
}

/** s_j = scale · q_i · k_j for j ≤ last, written into scores[0..last]. */
function rowScores(q: Buf, k: Buf, qBase: number, b: number, g: number, last: number, p: AttentionParams, scores: Float64Array): void {
  const { Tk, G, D, scale } = p;
  for (let j = 0; j <= last; j++) {
    const kBase = ((b * Tk + j) * G + g) * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qBase + d] * k[kBase + d];
    scores[j] = scale * dot;
  }
}

/** out[B, Tq, H, D] = softmax(q·kᵀ·scale + mask) · v per head; lse[B, H, Tq] = log Σ exp(scaled scores). */
export function attentionForward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, p: AttentionParams): void {
  checkParams('attentionForward', p);
  const { B, Tq, Tk, H, G, D } = p;
  needLength('attentionForward', 'q', q, B * Tq * H * D);
  needLength('attentionForward', 'k', k, B * Tk * G * D);
  needLength('attentionForward', 'v', v, B * Tk * G * D);
  needLength('attentionForward', 'out', out, B * Tq * H * D);
  needLength('attentionForward', 'lse', lse, B * H * Tq);
  if (Tk === 0 && Tq > 0) throw new RangeError('reference attentionForward: Tk=0 leaves queries with no key to attend');
  const groupSize = H / G;
  const scores = scratch(Tk);
  const acc = scratch(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / groupSize);
      for (let i = 0; i < Tq; i++) {
        const qBase = ((b * Tq + i) * H + h) * D;
        const last = lastKey(p, i);
        rowScores(q, k, qBase, b, g, last, p, scores);
        // lse = max + log Σ exp(s − max): subtracting the max keeps exp from overflowing
        let max = -Infinity;
        for (let j = 0; j <= last; j++) max = Math.max(max, scores[j]);
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += Math.exp(scores[j] - max);
        const rowLse = max + Math.log(sum);
        acc.fill(0);
        for (let j = 0; j <= last; j++) {
          const pj = Math.exp(scores[j] - rowLse);
          const vBase = ((b * Tk + j) * G + g) * D;
          for (let d = 0; d < D; d++) acc[d] += pj * v[vBase + d];
        }
        for (let d = 0; d < D; d++) out[qBase + d] = acc[d];
        lse[(b * H + h) * Tq + i] = rowLse;
      }
    }
  }
}

/**
 * Backward, recomputing p_j = exp(s_j − lse_i) from the saved lse. For one row (dO_i = dout_i):
 *   dv_j  += p_j · dO_i                            (out_i = Σ_j p_j v_j)
 *   dp_j   = dO_i · v_j
 *   ds_j   = p_j · (dp_j − Δ_i),  Δ_i = Σ_j p_j dp_j = dO_i · out_i   (softmax backward; Δ from the saved out)
 *   dq_i  += scale · Σ_j ds_j · k_j                (s_j = scale · q_i · k_j)
 *   dk_j  += scale · ds_j · q_i
 * dk and dv of a key/value head sum over the H/G query heads that share it. All three are written (zeroed
 * first), accumulated in double and stored at the end.
 */
export function attentionBackward(q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, dout: Buf, dq: Buf, dk: Buf, dv: Buf, p: AttentionParams): void {
  checkParams('attentionBackward', p);
  const { B, Tq, Tk, H, G, D, scale } = p;
  const nq = B * Tq * H * D;
  const nkv = B * Tk * G * D;
  for (const [name, buf, len] of [['q', q, nq], ['k', k, nkv], ['v', v, nkv], ['out', out, nq], ['lse', lse, B * H * Tq], ['dout', dout, nq], ['dq', dq, nq], ['dk', dk, nkv], ['dv', dv, nkv]] as const) {
    needLength('attentionBackward', name, buf, len);
  }
  const groupSize = H / G;
  const dqAcc = scratch(nq);
  const dkAcc = scratch(nkv);
  const dvAcc = scratch(nkv);
  const scores = scratch(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / groupSize);
      for (let i = 0; i < Tq; i++) {
        const qBase = ((b * Tq + i) * H + h) * D;
        const last = lastKey(p, i);
        const rowLse = lse[(b * H + h) * Tq + i];
        rowScores(q, k, qBase, b, g, last, p, scores);
        let delta = 0;
        for (let d = 0; d < D; d++) delta += dout[qBase + d] * out[qBase + d];
        for (let j = 0; j <= last; j++) {
          const kvBase = ((b * Tk + j) * G + g) * D;
          const pj = Math.exp(scores[j] - rowLse);
          let dpj = 0;
          for (let d = 0; d < D; d++) dpj += dout[qBase + d] * v[kvBase + d];
          const dsj = pj * (dpj - delta);
          for (let d = 0; d < D; d++) {
            dvAcc[kvBase + d] += pj * dout[qBase + d];
            dqAcc[qBase + d] += scale * dsj * k[kvBase + d];
            dkAcc[kvBase + d] += scale * dsj * q[qBase + d];
          }
        }
      }
    }
  }
  store(dqAcc, dq, nq);
  store(dkAcc, dk, nkv);
  store(dvAcc, dv, nkv);
}
