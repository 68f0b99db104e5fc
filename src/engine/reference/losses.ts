// Reference losses fused with log-softmax: cross-entropy against targets and distillation KL against a teacher.

import type { Buf } from '../backend.js';
import { needLength } from './check.js';

/** log Σ_v exp(x[base + v] / T) for one row of V logits, computed around the max so exp cannot overflow. */
function rowLse(x: Buf, base: number, V: number, T: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, x[base + v] / T);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(x[base + v] / T - max);
  return max + Math.log(sum);
}

// ---- cross-entropy -----------------------------------------------------------------------------------------

/**
 * logits[N, V], targets[N] → losses[N], lse[N]:
 *   lse[n] = log Σ_v exp(logits[n, v]),   losses[n] = lse[n] − logits[n, targets[n]]   (0 when ignored)
 * lse is written for every row, ignored ones included (it does not depend on the target); callers must not
 * rely on it for ignored rows. Returns the number of rows whose target is not ignoreIndex.
 */
export function crossEntropyForward(logits: Buf, targets: Int32Array, losses: Buf, lse: Buf, N: number, V: number, ignoreIndex: number): number {
  needLength('crossEntropyForward', 'logits', logits, N * V);
  needLength('crossEntropyForward', 'targets', targets, N);
  needLength('crossEntropyForward', 'losses', losses, N);
  needLength('crossEntropyForward', 'lse', lse, N);
  let counted = 0;
  for (let n = 0; n < N; n++) {
    const l = rowLse(logits, n * V, V, 1);
    lse[n] = l;
    const t = targets[n];
    if (t === ignoreIndex) {
      losses[n] = 0;
      continue;
    }
    if (t < 0 || t >= V) throw new RangeError(`reference crossEntropyForward: targets[${n}] = ${t} is outside vocabulary ${V}`);
    losses[n] = l - logits[n * V + t];
    counted++;
  }
  return counted;
}

/** dlogits[n, v] = (exp(logits[n, v] − lse[n]) − [v = targets[n]]) · dloss[n]; rows with ignored targets are 0. */
export function crossEntropyBackward(logits: Buf, targets: Int32Array, lse: Buf, dloss: Buf, dlogits: Buf, N: number, V: number, ignoreIndex: number): void {
  needLength('crossEntropyBackward', 'logits', logits, N * V);
  needLength('crossEntropyBackward', 'targets', targets, N);
  needLength('crossEntropyBackward', 'lse', lse, N);
  needLength('crossEntropyBackward', 'dloss', dloss, N);
  needLength('crossEntropyBackward', 'dlogits', dlogits, N * V);
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    const base = n * V;
    if (t === ignoreIndex) {
      for (let v = 0; v < V; v++) dlogits[base + v] = 0;
      continue;
    }
    for (let v = 0; v < V; v++) {
      const prob = Math.exp(logits[base + v] - lse[n]);
      dlogits[base + v] = (prob - (v === t ? 1 : 0)) * dloss[n];
    }
  }
}

// ---- distillation KL ---------------------------------------------------------------------------------------

/**
 * student/teacher[N, V] → losses[N] = T² · KL(p_t ‖ p_s) with p_t = softmax(teacher/T), p_s = softmax(student/T):
 *   KL = Σ_v p_t,v · (log p_t,v − log p_s,v),   log p_·,v = z_v/T − lse(z/T)
 * (the T² keeps gradient magnitudes independent of T, as in Hinton et al.). A teacher probability that
 * underflows to 0 contributes 0 (the limit of p·log p).
 */
export function klDivForward(student: Buf, teacher: Buf, losses: Buf, N: number, V: number, temperature: number): void {
  needLength('klDivForward', 'student', student, N * V);
  needLength('klDivForward', 'teacher', teacher, N * V);
  needLength('klDivForward', 'losses', losses, N);
  const T = temperature;
  for (let n = 0; n < N; n++) {
    const base = n * V;
    const lseS = rowLse(student, base, V, T);
    const lseT = rowLse(teacher, base, V, T);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const logPt = teacher[base + v] / T - lseT;
      const logPs = student[base + v] / T - lseS;
      const pt = Math.exp(logPt);
      if (pt > 0) kl += pt * (logPt - logPs);
    }
    losses[n] = T * T * kl;
  }
}

/**
 * ∂/∂s_v of T² · (−Σ_u p_t,u · log p_s,u) = T² · (p_s,v − p_t,v) / T, so
 *   dstudent[n, v] = T · (p_s,v − p_t,v) · dloss[n]    (written)
 */
export function klDivBackward(student: Buf, teacher: Buf, dloss: Buf, dstudent: Buf, N: number, V: number, temperature: number): void {
  needLength('klDivBackward', 'student', student, N * V);
  needLength('klDivBackward', 'teacher', teacher, N * V);
  needLength('klDivBackward', 'dloss', dloss, N);
  needLength('klDivBackward', 'dstudent', dstudent, N * V);
  const T = temperature;
  for (let n = 0; n < N; n++) {
    const base = n * V;
    const lseS = rowLse(student, base, V, T);
    const lseT = rowLse(teacher, base, V, T);
    for (let v = 0; v < V; v++) {
      const ps = Math.exp(student[base + v] / T - lseS);
      const pt = Math.exp(teacher[base + v] / T - lseT);
      dstudent[base + v] = T * (ps - pt) * dloss[n];
    }
  }
}
