// Task-vector merge primitives with the semantics of PEFT's peft/utils/merge_utils.py: prune → elect sign →
// disjoint merge (TIES), random drop + rescale (DARE), magnitude pruning, task arithmetic.
//
// A "task tensor" is one flat Float64Array (any shape, row-major); every function takes a list of equally long task
// tensors (PEFT stacks them on dim 0) and one weight per tensor, and returns a new Float64Array. Inputs are never
// modified. Randomness (DARE) comes from a caller-supplied Rng so that a merge is reproducible from its seed.

import type { Rng } from '../../engine/rng.js';

export type PruneMethod = 'magnitude' | 'random';
export type MajoritySignMethod = 'total' | 'frequency';

/** Keeps the k = trunc(density·n) largest-magnitude entries, zeroes the rest (PEFT magnitude_based_pruning).
 *  Ties in magnitude are broken by lower index first (torch.topk leaves ties unspecified). */
export function magnitudeBasedPruning(t: Float64Array, density: number): Float64Array {
  const n = t.length;
  const k = Math.trunc(density * n); // Python int() of a non-negative float
  const out = new Float64Array(n);
  if (k <= 0) return out;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => Math.abs(t[b]) - Math.abs(t[a]) || a - b);
  for (let j = 0; j < k && j < n; j++) out[idx[j]] = t[idx[j]]!;
  return out;
}

/** Keeps each entry with probability `density` (Bernoulli mask, draws in element order), optionally dividing the
 *  survivors by density so the expected value is unchanged (PEFT random_pruning). */
export function randomPruning(t: Float64Array, density: number, rescale: boolean, rng: Rng): Float64Array {
  if (rescale && density === 0) {
    // PEFT divides 0 by 0 here and silently returns NaN everywhere; refuse instead.
    throw new Error('random pruning with rescale: density 0 would divide by zero (PEFT yields NaN); use density > 0');
  }
  const out = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const keep = rng.next() < density;
    out[i] = keep ? (rescale ? t[i] / density : t[i]) : 0;
  }
  return out;
}

/** PEFT prune(): density ≥ 1 returns the tensor unchanged (no pruning, no random draws); density < 0 throws. */
export function prune(t: Float64Array, density: number, method: PruneMethod, rescale = false, rng?: Rng): Float64Array {
  if (!Number.isFinite(density)) throw new Error(`density must be a finite number, got ${density}`);
  if (density >= 1) return t;
  if (density < 0) throw new Error(`density should be >= 0, got ${density}`);
  if (method === 'magnitude') return magnitudeBasedPruning(t, density);
  if (rng === undefined) throw new Error('random pruning needs a seeded Rng');
  return randomPruning(t, density, rescale, rng);
}

/** Per element, whether each tensor's sign agrees with the elected majority sign (PEFT
 *  calculate_majority_sign_mask). 'total': sign of the sum of values; 'frequency': sign of the sum of signs.
 *  A zero sum elects +1; a zero entry (sign 0) never agrees. */
export function calculateMajoritySignMask(tensors: readonly Float64Array[], method: MajoritySignMethod = 'total'): Uint8Array[] {
  const n = checkSameLength(tensors);
  const majority = new Int8Array(n);
  for (let e = 0; e < n; e++) {
    let s = 0;
    for (const t of tensors) s += method === 'total' ? t[e] : Math.sign(t[e]);
    majority[e] = s >= 0 ? 1 : -1;
  }
  return tensors.map((t) => {
    const mask = new Uint8Array(n);
    for (let e = 0; e < n; e++) mask[e] = Math.sign(t[e]) === majority[e] ? 1 : 0;
    return mask;
  });
}

/** Σ_i mask_i·t_i divided by the number of agreeing tensors, at least 1 (PEFT disjoint_merge). */
export function disjointMerge(tensors: readonly Float64Array[], masks: readonly Uint8Array[]): Float64Array {
  const n = checkSameLength(tensors);
  const out = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    let s = 0, count = 0;
    tensors.forEach((t, i) => {
      if (masks[i][e]) {
        s += t[e];
        count++;
      }
    });
    out[e] = s / Math.max(count, 1);
  }
  return out;
}

/** Σ_i w_i·t_i. */
export function taskArithmetic(tensors: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const n = checkSameLength(tensors, weights);
  const out = new Float64Array(n);
  tensors.forEach((t, i) => {
    const w = weights[i];
    for (let e = 0; e < n; e++) out[e] += w * t[e];
  });
  return out;
}

/** Magnitude-prune each tensor, then task arithmetic. */
export function magnitudePrune(tensors: readonly Float64Array[], weights: readonly number[], density: number): Float64Array {
  checkSameLength(tensors, weights);
  return taskArithmetic(tensors.map((t) => prune(t, density, 'magnitude')), weights);
}

/** TIES: magnitude-prune, elect signs on the (unweighted) pruned tensors, weight, disjoint merge. */
export function ties(
  tensors: readonly Float64Array[],
  weights: readonly number[],
  density: number,
  majoritySignMethod: MajoritySignMethod = 'total',
): Float64Array {
  checkSameLength(tensors, weights);
  const pruned = tensors.map((t) => prune(t, density, 'magnitude'));
  return electAndMerge(pruned, weights, majoritySignMethod);
}

/** DARE linear: random drop with rescale, then task arithmetic. */
export function dareLinear(tensors: readonly Float64Array[], weights: readonly number[], density: number, rng: Rng): Float64Array {
  checkSameLength(tensors, weights);
  return taskArithmetic(tensors.map((t) => prune(t, density, 'random', true, rng)), weights);
}

/** DARE TIES: random drop with rescale, elect signs, weight, disjoint merge. */
export function dareTies(
  tensors: readonly Float64Array[],
  weights: readonly number[],
  density: number,
  rng: Rng,
  majoritySignMethod: MajoritySignMethod = 'total',
): Float64Array {
  checkSameLength(tensors, weights);
  const pruned = tensors.map((t) => prune(t, density, 'random', true, rng));
  return electAndMerge(pruned, weights, majoritySignMethod);
}

function electAndMerge(pruned: Float64Array[], weights: readonly number[], method: MajoritySignMethod): Float64Array {
  const masks = calculateMajoritySignMask(pruned, method); // signs elected before weighting, as PEFT does
  const weighted = pruned.map((t, i) => t.map((x) => x * weights[i]));
  return disjointMerge(weighted, masks);
}

function checkSameLength(tensors: readonly Float64Array[], weights?: readonly number[]): number {
  if (tensors.length === 0) throw new Error('merge: no task tensors');
  const n = tensors[0].length;
  tensors.forEach((t, i) => {
    if (t.length !== n) throw new Error(`merge: task tensor ${i} has ${t.length} elements, tensor 0 has ${n}`);
  });
  if (weights !== undefined && weights.length !== tensors.length) {
    throw new Error(`merge: ${tensors.length} task tensors but ${weights.length} weights`);
  }
  return n;
}
