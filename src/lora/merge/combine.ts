// Combining several LoRA adapters into one, for one target module, with the semantics of PEFT's
// LoraModel.add_weighted_adapter (as of PEFT main after #2918 negative weights, #3111 single SVD scaling and
// #3449 rsLoRA output scaling).
//
// Inputs per adapter i: A_i [r_i, in], B_i [out, r_i], its scaling s_i (lora_alpha/r, or lora_alpha/√r for
// rsLoRA) and the user's weight w_i. Output: A [r, in], B [out, r] whose delta is B·A with scaling 1, i.e. the merged
// adapter must be stored with lora_alpha = r and use_rslora = false (PEFT writes exactly that config).
//
//   linear, ties, dare_linear, dare_ties, magnitude_prune   equal ranks required; A's and B's are merged separately
//       with weights √|w_i s_i| (the sign of w_i s_i goes on A only). Note: B·A then contains cross terms B_i·A_j,
//       so this is not Σ w_i s_i B_i A_i (PEFT's documented behaviour; use cat or svd for the exact sum).
//   cat     ranks may differ, r = Σ r_i: A = [w_1 s_1 A_1; …], B = [B_1 | …]; B·A = Σ w_i s_i B_i A_i exactly.
//   svd, ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd   ranks may differ; the merge runs on the
//       full deltas ΔW_i = s_i B_i A_i with weights w_i, then a truncated SVD to r = svdRank || max r_i gives
//       B = U·S, A = Vᵀ, optionally clamped to ±quantile(values of B and A, svdClamp) as PEFT does.
// With a single adapter PEFT always uses linear, whatever combination was asked; so does this.

import type { Rng } from '../../engine/rng.js';
import { checkShape, hcat64, matmul64, to64, toF32, vcat64, zeros64, type Mat64, type Matrix } from '../../linalg/matrix.js';
import { completeColumns, lowRankSvd, truncatedSvd, type SvdResult } from '../../linalg/svd.js';
import { dareLinear, dareTies, magnitudePrune, taskArithmetic, ties, type MajoritySignMethod } from './merge_utils.js';

export type CombinationType =
  | 'linear'
  | 'cat'
  | 'svd'
  | 'ties'
  | 'ties_svd'
  | 'dare_linear'
  | 'dare_ties'
  | 'dare_linear_svd'
  | 'dare_ties_svd'
  | 'magnitude_prune'
  | 'magnitude_prune_svd';

export const COMBINATION_TYPES: readonly CombinationType[] = [
  'linear', 'cat', 'svd', 'ties', 'ties_svd', 'dare_linear', 'dare_ties',
  'dare_linear_svd', 'dare_ties_svd', 'magnitude_prune', 'magnitude_prune_svd',
];

/** Methods that merge A and B separately and so need one common rank. */
const EQUAL_RANK: readonly CombinationType[] = ['linear', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune'];
/** Methods that read `density`. */
const NEEDS_DENSITY: readonly CombinationType[] = [
  'ties', 'ties_svd', 'dare_linear', 'dare_ties', 'dare_linear_svd', 'dare_ties_svd', 'magnitude_prune', 'magnitude_prune_svd',
];

/** One adapter's factors for one module, with its scaling and the user's weight. */
export interface WeightedLora {
  A: Matrix; // [r, in]
  B: Matrix; // [out, r]
  scaling: number; // lora_alpha / r (or lora_alpha / √r with rsLoRA)
  weight: number; // the user's combination weight, may be negative
  name?: string; // for error messages
}

export interface CombineOptions {
  combination: CombinationType;
  /** svd family: output rank; undefined or 0 means max input rank (PEFT's `svd_rank or max(ranks)`) */
  svdRank?: number;
  /** svd family: clamp B and A to ±quantile(values of [B; A], svdClamp), a quantile in [0, 1]; undefined: no clamp */
  svdClamp?: number;
  /** fraction of entries kept by the pruning methods, in [0, 1] (≥ 1 disables pruning); required by those methods */
  density?: number;
  /** sign election for ties / dare_ties (default 'total') */
  majoritySignMethod?: MajoritySignMethod;
  /** random source for DARE's drop masks (required by dare_*): draws A's then B's (or the deltas) in order */
  rng?: Rng;
  /** seed of the start block of the truncated SVD for the pruned *_svd methods (default 0) */
  svdSeed?: number;
}

export interface CombinedLora {
  A: Matrix; // [rank, in]
  B: Matrix; // [out, rank]
  rank: number; // store with lora_alpha = rank (scaling 1), use_rslora = false
  combination: CombinationType; // the method actually used ('linear' for a single adapter)
}

/** PEFT's _check_add_weighted_adapter rank logic: the method actually used and the new rank, or a clear Error. */
export function resolveCombination(
  combination: CombinationType,
  ranks: readonly number[],
  svdRank?: number,
): { combination: CombinationType; rank: number } {
  if (!COMBINATION_TYPES.includes(combination)) {
    throw new Error(`unknown combination "${String(combination)}"; expected one of ${COMBINATION_TYPES.join('|')}`);
  }
  if (ranks.length === 0) throw new Error('combine: no adapters given');
  const used: CombinationType = ranks.length === 1 ? 'linear' : combination;
  if (EQUAL_RANK.includes(used)) {
    if (new Set(ranks).size !== 1) {
      throw new Error(
        `combination "${used}" needs all adapters to have the same rank (PEFT merges A and B separately for ` +
          `${EQUAL_RANK.join(', ')}), got ranks [${ranks.join(', ')}]; use "cat" or an *_svd method for mixed ranks`,
      );
    }
    return { combination: used, rank: ranks[0] };
  }
  if (used === 'cat') return { combination: used, rank: ranks.reduce((a, b) => a + b, 0) };
  if (svdRank !== undefined && (!Number.isInteger(svdRank) || svdRank < 0)) {
    throw new Error(`svdRank must be a non-negative integer, got ${svdRank}`);
  }
  return { combination: used, rank: svdRank || Math.max(...ranks) };
}

/** One adapter's delta s·B·A [out, in] in float64. */
export function loraDelta64(f: { A: Matrix | Mat64; B: Matrix | Mat64; scaling: number }): Mat64 {
  const d = matmul64(to64(f.B), to64(f.A));
  for (let i = 0; i < d.data.length; i++) d.data[i] *= f.scaling;
  return d;
}

/** Combines adapters for one module (see the header for each method's exact semantics). */
export function combineAdapters(adapters: readonly WeightedLora[], opts: CombineOptions): CombinedLora {
  const { out, inDim, ranks } = checkAdapters(adapters);
  const { combination, rank } = resolveCombination(opts.combination, ranks, opts.svdRank);
  const density = opts.density;
  if (NEEDS_DENSITY.includes(combination) && density === undefined) {
    throw new Error(`combination "${combination}" needs a density in [0, 1]`);
  }
  if (combination.startsWith('dare') && opts.rng === undefined) {
    throw new Error(`combination "${combination}" needs a seeded rng (DARE drops entries at random)`);
  }
  const sign = opts.majoritySignMethod ?? 'total';
  let A: Mat64, B: Mat64;
  if (combination === 'cat') {
    A = vcat64(adapters.map((a) => scaled(to64(a.A), a.weight * a.scaling)));
    B = hcat64(adapters.map((a) => to64(a.B)));
  } else if (EQUAL_RANK.includes(combination)) {
    // PEFT: weight_A = √|w s|·sign(w s), weight_B = √|w s|; A's merged first, then B's (order matters for DARE).
    const ws = adapters.map((a) => a.weight * a.scaling);
    const wA = ws.map((w) => Math.sqrt(Math.abs(w)) * (w >= 0 ? 1 : -1));
    const wB = ws.map((w) => Math.sqrt(Math.abs(w)));
    const mergeOne = (tensors: Float64Array[], w: number[]): Float64Array =>
      mergeTensors(combination, tensors, w, density ?? 1, sign, opts.rng);
    A = { rows: rank, cols: inDim, data: mergeOne(adapters.map((a) => Float64Array.from(a.A.data)), wA) };
    B = { rows: out, cols: rank, data: mergeOne(adapters.map((a) => Float64Array.from(a.B.data)), wB) };
  } else {
    if (rank > Math.min(out, inDim)) {
      throw new Error(`combination "${combination}": rank ${rank} exceeds min(out, in) = ${Math.min(out, inDim)} of the [${out}, ${inDim}] delta`);
    }
    let svd: SvdResult;
    if (combination === 'svd') {
      // Σ w_i·(s_i B_i A_i) is exactly [B_1 | …]·[w_1 s_1 A_1; …]: SVD through the factors, no dense delta.
      const Bc = hcat64(adapters.map((a) => to64(a.B)));
      const Ac = vcat64(adapters.map((a) => scaled(to64(a.A), a.weight * a.scaling)));
      svd = lowRankSvd(Bc, Ac);
    } else {
      const deltas = adapters.map((a) => loraDelta64(a).data);
      const base = combination.slice(0, -'_svd'.length) as CombinationType;
      const merged = mergeTensors(base, deltas, adapters.map((a) => a.weight), density ?? 1, sign, opts.rng);
      svd = truncatedSvd({ rows: out, cols: inDim, data: merged }, rank, { seed: opts.svdSeed ?? 0 });
    }
    ({ A, B } = factorsFromSvd(svd, rank, out, inDim));
    if (opts.svdClamp !== undefined) clampQuantile(A, B, opts.svdClamp);
  }
  for (const [name, m] of [['A', A], ['B', B]] as const) {
    if (!m.data.every(Number.isFinite)) throw new Error(`combination "${combination}" produced non-finite values in ${name}`);
  }
  return { A: toF32(A), B: toF32(B), rank, combination };
}

function mergeTensors(
  method: CombinationType,
  tensors: Float64Array[],
  weights: number[],
  density: number,
  sign: MajoritySignMethod,
  rng: Rng | undefined,
): Float64Array {
  switch (method) {
    case 'linear':
    case 'svd':
      return taskArithmetic(tensors, weights);
    case 'ties':
      return ties(tensors, weights, density, sign);
    case 'dare_linear':
      return dareLinear(tensors, weights, density, rng!);
    case 'dare_ties':
      return dareTies(tensors, weights, density, rng!, sign);
    case 'magnitude_prune':
      return magnitudePrune(tensors, weights, density);
    default:
      throw new Error(`mergeTensors: "${method}" is not a task-arithmetic method`);
  }
}

/** B = U[:, :r]·diag(S), A = V[:, :r]ᵀ; when the delta has fewer than r singular triplets, B gets zero columns and
 *  A gets orthonormal rows (as a full SVD would give for zero singular values). */
function factorsFromSvd(svd: SvdResult, r: number, out: number, inDim: number): { A: Mat64; B: Mat64 } {
  const p = Math.min(r, svd.S.length);
  const B = zeros64(out, r);
  for (let i = 0; i < out; i++) for (let j = 0; j < p; j++) B.data[i * r + j] = svd.U.data[i * svd.U.cols + j] * svd.S[j];
  const V = zeros64(inDim, r);
  const valid: boolean[] = [];
  for (let j = 0; j < r; j++) valid.push(j < p);
  for (let i = 0; i < inDim; i++) for (let j = 0; j < p; j++) V.data[i * r + j] = svd.V.data[i * svd.V.cols + j]!;
  if (p < r) completeColumns(V, valid);
  const A = zeros64(r, inDim);
  for (let i = 0; i < inDim; i++) for (let j = 0; j < r; j++) A.data[j * inDim + i] = V.data[i * r + j]!;
  return { A, B };
}

/** PEFT's svd_clamp: hi = quantile(concat(B, A), q) with linear interpolation (torch.quantile's default), then
 *  clamp both to [−hi, hi]. If hi < 0, torch.clamp(min > max) sets everything to max; so does min(max(x, lo), hi). */
export function clampQuantile(A: Mat64, B: Mat64, q: number): void {
  if (!(q >= 0 && q <= 1)) throw new Error(`svdClamp must be a quantile in [0, 1], got ${q}`);
  const all = new Float64Array(B.data.length + A.data.length);
  all.set(B.data);
  all.set(A.data, B.data.length);
  const hi = quantile(all, q);
  const lo = -hi;
  for (const m of [A, B]) for (let i = 0; i < m.data.length; i++) m.data[i] = Math.min(Math.max(m.data[i], lo), hi);
}

/** Linear-interpolation quantile (numpy/torch default): position q·(n−1) in the sorted values. */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) throw new Error('quantile of an empty set');
  const s = Float64Array.from(values).sort();
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos), hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

function scaled(m: Mat64, s: number): Mat64 {
  for (let i = 0; i < m.data.length; i++) m.data[i] *= s;
  return m;
}

function checkAdapters(adapters: readonly WeightedLora[]): { out: number; inDim: number; ranks: number[] } {
  if (adapters.length === 0) throw new Error('combine: no adapters given');
  const label = (i: number): string => adapters[i].name ?? `adapter ${i}`;
  const out = adapters[0].B.rows, inDim = adapters[0].A.cols;
  const ranks = adapters.map((a, i) => {
    checkShape(a.A, `${label(i)} A`);
    checkShape(a.B, `${label(i)} B`);
    if (a.A.rows !== a.B.cols) throw new Error(`${label(i)}: A is [${a.A.rows}, ${a.A.cols}] but B is [${a.B.rows}, ${a.B.cols}]; ranks differ`);
    if (a.B.rows !== out || a.A.cols !== inDim) {
      throw new Error(`${label(i)}: delta is [${a.B.rows}, ${a.A.cols}], ${label(0)}'s is [${out}, ${inDim}]`);
    }
    if (!Number.isFinite(a.weight) || !Number.isFinite(a.scaling)) throw new Error(`${label(i)}: weight and scaling must be finite`);
    return a.A.rows;
  });
  return { out, inDim, ranks };
}
