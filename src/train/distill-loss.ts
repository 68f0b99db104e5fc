// Distillation losses on student logits against a teacher's sparse (top-k) distribution: forward KL (Hinton, with
// temperature T and T² scaling), reverse KL, and the generalized Jensen–Shannon divergence of GKD (Agarwal et al.
// 2024), as one autograd op on logits [N, V] with the trained rows picked by labels ≠ -100.
//
// Letters: N rows (positions), V vocabulary, K teacher tokens kept per trained row, M trained rows.
//
// The teacher is kept as its K most likely tokens (ids + log-probs at temperature T) per trained position. The mass
// outside them is not dropped but kept as one "rest" bucket: both distributions are compared on the K + 1 buckets
// {id_1, …, id_K, everything else}. P_rest = 1 − Σ_k p_k (stored implicitly), Q_rest = Σ_{v ∉ top-k} q_v. This is the
// divergence of the two distributions coarsened the same way, so it is a true divergence (0 iff they agree on the
// buckets), it never exceeds the full one (data processing), and it is exact when K = V. Renormalising the top-k
// instead (as some sparse-KD caches do) would let the student put any mass outside the teacher's top-k for free.
//
// Conventions (checked against TRL's GKDTrainer.generalized_jsd_loss): p = teacher, q = student,
//   forward KL  = KL(p ‖ q)                  (β = 0 of JSD)
//   reverse KL  = KL(q ‖ p)                  (β = 1 of JSD)
//   JSD(β)      = β·KL(p ‖ m) + (1−β)·KL(q ‖ m),  m = β·p + (1−β)·q
// Every divergence is computed at temperature T (student logits / T, teacher log-probs already at T) and multiplied
// by T², so gradient magnitudes stay comparable across temperatures (Hinton et al. 2015; TRL's GKD leaves out T²).
// The loss is the mean over the trained rows.

import { record } from '../engine/autograd.js';
import { contiguous } from '../engine/ops/movement.js';
import { Tensor } from '../engine/tensor.js';

export const DIVERGENCES = ['forward-kl', 'reverse-kl', 'jsd'] as const;
export type Divergence = (typeof DIVERGENCES)[number];

export interface DivergenceConfig {
  divergence: Divergence; // default 'forward-kl'
  temperature: number; // T > 0 (default 1)
  beta: number; // JSD interpolation in [0, 1]; 0 = forward KL, 1 = reverse KL (default 0.5)
}

export const DIVERGENCE_DEFAULTS: DivergenceConfig = { divergence: 'forward-kl', temperature: 1, beta: 0.5 };

/** The teacher at M trained positions: K ids and their log-probs (at the loss's temperature) per position. */
export interface SparseTeacher {
  K: number;
  ids: Int32Array; // [M·K]
  logp: Float32Array; // [M·K]
}

const TINY = 1e-30; // floor inside logs: a bucket with no mass contributes 0·log 0 = 0

const logOf = (x: number): number => Math.log(Math.max(x, TINY));

export function checkDivergence(c: DivergenceConfig): void {
  if (!DIVERGENCES.includes(c.divergence)) throw new Error(`distill: divergence must be one of ${DIVERGENCES.join('|')}, got ${String(c.divergence)}`);
  if (!(c.temperature > 0) || !Number.isFinite(c.temperature)) throw new Error(`distill: temperature must be > 0, got ${c.temperature}`);
  if (!(c.beta >= 0 && c.beta <= 1)) throw new Error(`distill: beta must be in [0, 1], got ${c.beta}`);
}

/**
 * The divergence of bucket distributions P (teacher) and Q (student), each [J] summing to 1, and g[j] = ∂D/∂Q_j
 * (up to an additive constant, which the softmax backward cancels). Pure; no temperature scaling.
 */
export function bucketDivergence(P: ArrayLike<number>, Q: ArrayLike<number>, c: Pick<DivergenceConfig, 'divergence' | 'beta'>, g?: Float64Array): number {
  const J = P.length;
  let d = 0;
  const kind = c.divergence === 'jsd' && c.beta === 0 ? 'forward-kl' : c.divergence === 'jsd' && c.beta === 1 ? 'reverse-kl' : c.divergence;
  for (let j = 0; j < J; j++) {
    const [p, q] = [P[j], Q[j]];
    if (kind === 'forward-kl') {
      // D = Σ p log(p/q); ∂D/∂q = −p/q
      if (p > 0) d += p * (Math.log(p) - logOf(q));
      if (g) g[j] = -p / Math.max(q, TINY);
    } else if (kind === 'reverse-kl') {
      // D = Σ q log(q/p); ∂D/∂q = log(q/p) + 1
      if (q > 0) d += q * (Math.log(q) - logOf(p));
      if (g) g[j] = logOf(q) - logOf(p) + 1;
    } else {
      // D = β Σ p log(p/m) + (1−β) Σ q log(q/m), m = βp + (1−β)q; ∂D/∂q = (1−β) log(q/m) (the other terms cancel)
      const b = c.beta;
      const m = b * p + (1 - b) * q;
      if (p > 0) d += b * p * (Math.log(p) - logOf(m));
      if (q > 0) d += (1 - b) * q * (Math.log(q) - logOf(m));
      if (g) g[j] = (1 - b) * (logOf(q) - logOf(m));
    }
  }
  return d;
}

/**
 * The top K of log_softmax(logits[r, :] / T) for each row r with labels[r] ≠ -100, in descending order (ties by
 * lower id): how the teacher is kept, on disk or on the fly. logits [N, V] row-major.
 */
export function sparseTopK(logits: ArrayLike<number>, V: number, labels: Int32Array, K: number, T: number): SparseTeacher {
  if (!Number.isInteger(K) || K < 1 || K > V) throw new Error(`distill: top-k must be in [1, ${V}] (the vocabulary), got ${K}`);
  const rows: number[] = [];
  labels.forEach((l, r) => l !== -100 && rows.push(r));
  const ids = new Int32Array(rows.length * K);
  const logp = new Float32Array(rows.length * K);
  const z = new Float64Array(V);
  const top = new Int32Array(K); // the best ids so far, best first
  rows.forEach((r, m) => {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, (z[v] = logits[r * V + v] / T));
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[v] - mx);
    const lse = mx + Math.log(s);
    // One pass with a sorted list of K: most tokens fail the comparison with the K-th best and cost one compare.
    let n = 0;
    for (let v = 0; v < V; v++) {
      if (n === K && !(z[v] > z[top[K - 1]])) continue; // ties keep the lower id (seen first)
      let i = n < K ? n++ : K - 1;
      while (i > 0 && z[top[i - 1]] < z[v]) {
        top[i] = top[i - 1];
        i--;
      }
      top[i] = v;
    }
    for (let k = 0; k < K; k++) {
      ids[m * K + k] = top[k];
      logp[m * K + k] = z[top[k]] - lse;
    }
  });
  return { K, ids, logp };
}

/** Number of trained rows (labels ≠ -100). */
export function trainedRows(labels: Int32Array): number {
  let n = 0;
  for (const l of labels) if (l !== -100) n++;
  return n;
}

/** Scratch buffers for one row (reused across rows). */
class RowScratch {
  readonly bucketOf: Int32Array; // token id → its bucket (K = rest)
  readonly q: Float64Array; // [V] student softmax at T
  readonly P: Float64Array; // [K + 1]
  readonly Q: Float64Array; // [K + 1]
  readonly g: Float64Array; // [K + 1]
  constructor(readonly V: number, readonly K: number) {
    this.bucketOf = new Int32Array(V).fill(K);
    this.q = new Float64Array(V);
    [this.P, this.Q, this.g] = [new Float64Array(K + 1), new Float64Array(K + 1), new Float64Array(K + 1)];
  }
}

/**
 * D(P ‖ Q) on the K + 1 buckets for logits z[off, off + V) at temperature T against teacher entry m; with grad,
 * also writes ∂D/∂(z/T)_v = q_v (g_b(v) − Σ_j Q_j g_j) into grad[0, V).
 */
function rowDivergence(z: ArrayLike<number>, off: number, t: SparseTeacher, m: number, T: number, c: DivergenceConfig, s: RowScratch, grad: Float64Array | null): number {
  const { V, K, bucketOf, q, P, Q, g } = s;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) mx = Math.max(mx, z[off + v] / T);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += (q[v] = Math.exp(z[off + v] / T - mx));
  for (let v = 0; v < V; v++) q[v] /= sum;
  let pTop = 0;

  try {
    for (let k = 0; k < K; k++) {
      const id = t.ids[m * K + k];
      if (!(id >= 0 && id < V)) throw new Error(`distillLoss: teacher token id ${id} (trained row ${m}) is outside the vocabulary [0, ${V})`);
      if (bucketOf[id] !== K) throw new Error(`distillLoss: teacher token id ${id} appears twice in trained row ${m}`);
      bucketOf[id] = k;
      pTop += (P[k] = Math.exp(t.logp[m * K + k]));
      Q[k] = q[id];
    }
    // The rest buckets: P's from the stored top-k mass; Q's summed directly (1 − qTop would lose it to rounding).
    P[K] = Math.max(0, 1 - pTop);
    let rest = 0;
    for (let v = 0; v < V; v++) if (bucketOf[v] === K) rest += q[v];
    Q[K] = rest;
    const d = bucketDivergence(P, Q, c, grad === null ? undefined : g);
    if (grad !== null) {
      let gbar = 0;
      for (let j = 0; j <= K; j++) gbar += Q[j] * g[j];
      for (let v = 0; v < V; v++) grad[v] = q[v] * (g[bucketOf[v]] - gbar);
    }
    return d;
  } finally {
    for (let k = 0; k < K; k++) {
      const id = t.ids[m * K + k];
      if (id >= 0 && id < V) bucketOf[id] = K;
    }
  }
}

/**
 * Mean over trained rows of T²·D(teacher ‖ student) on the K + 1 buckets (see the file header). student [..., V]
 * logits on the tape; labels [N] (-100 = not trained); teacher rows in the order of the trained rows. A scalar; 0 when
 * no row is trained. Backward: ∂L/∂z_v = T²/(T·M) · q_v (g_b(v) − Σ_j Q_j g_j) (the softmax Jacobian on buckets).
 */
export function distillLoss(student: Tensor, labels: Int32Array, teacher: SparseTeacher, config: Partial<DivergenceConfig> = {}): Tensor {
  const c = { ...DIVERGENCE_DEFAULTS, ...config };
  checkDivergence(c);
  const V = student.shape[student.ndim - 1];
  const N = student.size / V;
  const { K } = teacher;
  if (labels.length !== N) throw new Error(`distillLoss: ${N} rows of logits but ${labels.length} labels`);
  if (!Number.isInteger(K) || K < 1 || K > V) throw new Error(`distillLoss: teacher top-k ${K} must be in [1, ${V}]`);
  const M = trainedRows(labels);
  if (teacher.ids.length !== M * K || teacher.logp.length !== M * K) throw new Error(`distillLoss: ${M} trained rows need ${M}×${K} teacher entries, got ${teacher.ids.length}`);
  const T = c.temperature;
  const sc = contiguous(student);
  const scratch = new RowScratch(V, K);
  let total = 0;
  for (let r = 0, m = 0; r < N; r++) if (labels[r] !== -100) total += rowDivergence(sc.data, r * V, teacher, m++, T, c, scratch, null);
  const out = Tensor.from([M > 0 ? (T * T * total) / M : 0], [], student.backend);
  return record('distillLoss', out, [sc], [sc], (node, gout) => {
    const z = node.get(0).data;
    const gl = Tensor.zeros(student.shape, student.backend);
    const gd = gl.data;
    const f = M > 0 ? (gout.data[0] * T * T) / (T * M) : 0; // d(z/T)/dz = 1/T
    const row = new Float64Array(V);
    for (let r = 0, m = 0; r < N; r++) {
      if (labels[r] === -100) continue;
      rowDivergence(z, r * V, teacher, m++, T, c, scratch, row);
      for (let v = 0; v < V; v++) gd[r * V + v] = f * row[v];
    }
    return [gl];
  });
}
