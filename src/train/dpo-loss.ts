// The two autograd ops preference tuning needs: per-row sums of log p(label) (cross-entropy gives one batch mean),
// and the DPO/IPO loss over those sums against frozen reference sums, with TRL's reward metrics.
//
// Letters: B rows, T positions, V vocabulary, P pairs (B = 2P: the P chosen rows, then the P rejected rows, as
// TRL's concatenated_forward stacks them).

import { record } from '../engine/autograd.js';
import { contiguous } from '../engine/ops/movement.js';
import { Tensor } from '../engine/tensor.js';
import { IGNORE_INDEX } from './batching.js';

/**
 * logits [B, T, V] (or [B·T, V]), labels [B·T] → [B]: row b's Σ_t log softmax(logits[b, t])[labels[b, t]] over the
 * positions whose label is not -100. Built on the cross-entropy kernels: per position loss_n = lse_n − z_n,label
 * = −log p, so the row sum is −Σ loss_n and its backward is the cross-entropy backward with dloss_n = −g[row(n)].
 */
export function sequenceLogProbs(logits: Tensor, labels: Int32Array, B: number): Tensor {
  const V = logits.shape[logits.ndim - 1];
  const N = logits.size / V;
  if (labels.length !== N) throw new Error(`sequenceLogProbs: ${N} positions of logits but ${labels.length} labels`);
  if (N % B !== 0) throw new Error(`sequenceLogProbs: ${N} positions do not split into ${B} rows`);
  const T = N / B;
  for (let i = 0; i < N; i++) {
    const t = labels[i];
    if (t !== IGNORE_INDEX && (t < 0 || t >= V)) throw new Error(`sequenceLogProbs: label ${t} at position ${i} is outside [0, ${V})`);
  }
  const be = logits.backend;
  const lc = contiguous(logits);
  const losses = Tensor.empty([N], be);
  const lse = Tensor.empty([N], be);
  be.crossEntropyForward(lc.data, labels, losses.data, lse.data, N, V, IGNORE_INDEX);
  const sums = new Float64Array(B);
  const l = losses.data;
  for (let n = 0; n < N; n++) sums[Math.floor(n / T)] -= l[n]; // ignored positions hold 0
  losses.dispose();
  const out = Tensor.from(sums, [B], be);
  const res = record('sequenceLogProbs', out, [lc], [lc, lse], (node, g) => {
    const gd = g.contiguousCopy();
    const d = new Float64Array(N);
    for (let n = 0; n < N; n++) d[n] = -gd.data[Math.floor(n / T)];
    gd.dispose();
    const dloss = Tensor.from(d, [N], be);
    const gl = Tensor.empty(logits.shape, be);
    be.crossEntropyBackward(node.get(0).data, labels, node.get(1).data, dloss.data, gl.data, N, V, IGNORE_INDEX);
    dloss.dispose();
    return [gl];
  });
  lse.dispose();
  return res;
}

export type DpoLossType = 'sigmoid' | 'ipo';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo'];

export interface PreferenceLossConfig {
  /** β: the strength of the pull toward the reference (TRL default 0.1) */
  beta: number;
  /** 'sigmoid' (DPO, TRL's default) or 'ipo' (on per-token average log-probs, as TRL) */
  lossType: DpoLossType;
  /** weight of the NLL of the chosen replies added to the loss (TRL's rpo_alpha; 0 = plain DPO) */
  rpoAlpha: number;
}

/** log(1 + e^x) without overflow. */
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** σ(x) without overflow. */
const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/**
 * logps [2P] (row sums of sequenceLogProbs: chosen rows then rejected rows), ref [2P] (the reference's sums, constants),
 * lengths [2P] (trained tokens per row) → the mean over pairs of
 *   sigmoid: −log σ(β·h)            dl/dh = −β·σ(−β·h)
 *   ipo:     (h − 1/(2β))²           dl/dh = 2·(h − 1/(2β))
 * with h = (π_c − ρ_c) − (π_r − ρ_r), π/ρ the policy/reference log-prob of a row: its sum (sigmoid) or its sum / length
 * (ipo), plus rpoAlpha · NLL, NLL = −Σ_c sum_c / Σ_c length_c (mean cross-entropy over the chosen tokens).
 * Metrics as TRL names them: rewards/chosen = mean β(π_c − ρ_c), rewards/rejected, rewards/accuracies = share of
 * pairs with the chosen reward above the rejected, rewards/margins = mean difference, logps/chosen = mean π_c, logps/rejected.
 */
export function preferenceLoss(logps: Tensor, ref: ArrayLike<number>, lengths: ArrayLike<number>, cfg: PreferenceLossConfig): { loss: Tensor; metrics: Record<string, number> } {
  const B = logps.size;
  if (B % 2 !== 0 || B === 0) throw new Error(`preferenceLoss: expected chosen and rejected rows (an even count), got ${B}`);
  if (ref.length !== B || lengths.length !== B) throw new Error(`preferenceLoss: ${B} log-probs but ${ref.length} reference values and ${lengths.length} lengths`);
  if (!(cfg.beta > 0)) throw new Error(`preferenceLoss: beta must be > 0, got ${cfg.beta}`);
  for (let i = 0; i < B; i++) if (!(lengths[i] > 0)) throw new Error(`preferenceLoss: row ${i} has no trained token`);
  const P = B / 2;
  const { beta, lossType, rpoAlpha } = cfg;
  const lc = contiguous(logps);
  const s = lc.data;
  const per = (i: number): number => (lossType === 'ipo' ? lengths[i] : 1); // divisor turning a sum into π
  let loss = 0;
  const dh = new Float64Array(P); // dl_i/dh_i, already divided by P
  const m = { rc: 0, rr: 0, acc: 0, lc: 0, lr: 0 };
  let chosenSum = 0;
  let chosenTokens = 0;
  for (let i = 0; i < P; i++) {
    const [c, r] = [i, P + i];
    const pc = s[c] / per(c), pr = s[r] / per(r);
    const rewardC = beta * (pc - ref[c] / per(c));
    const rewardR = beta * (pr - ref[r] / per(r));
    const h = (rewardC - rewardR) / beta;
    if (lossType === 'sigmoid') {
      loss += softplus(-beta * h); // −log σ(βh)
      dh[i] = (-beta * sigmoid(-beta * h)) / P;
    } else {
      const e = h - 1 / (2 * beta);
      loss += e * e;
      dh[i] = (2 * e) / P;
    }
    m.rc += rewardC;
    m.rr += rewardR;
    m.acc += rewardC > rewardR ? 1 : 0;
    m.lc += pc;
    m.lr += pr;
    chosenSum += s[c];
    chosenTokens += lengths[c];
  }
  loss /= P;
  const nll = -chosenSum / chosenTokens;
  if (rpoAlpha !== 0) loss += rpoAlpha * nll;
  const metrics: Record<string, number> = {
    'rewards/chosen': m.rc / P, 'rewards/rejected': m.rr / P, 'rewards/accuracies': m.acc / P, 'rewards/margins': (m.rc - m.rr) / P,
    'logps/chosen': m.lc / P, 'logps/rejected': m.lr / P,
  };
  if (rpoAlpha !== 0) metrics.nll_loss = nll;
  const out = Tensor.from([loss], [], logps.backend);
  const res = record('preferenceLoss', out, [lc], [], (_node, g) => {
    const g0 = g.item();
    const d = new Float64Array(B);
    for (let i = 0; i < P; i++) {
      d[i] = (g0 * dh[i]) / per(i); // dh/dsum_c = 1/per(c)
      d[P + i] = (-g0 * dh[i]) / per(P + i); // dh/dsum_r = −1/per(r)
      if (rpoAlpha !== 0) d[i] += (-g0 * rpoAlpha) / chosenTokens;
    }
    return [Tensor.from(d, logps.shape, logps.backend)];
  });
  return { loss: res, metrics };
}
