// Reference optimizer kernels: one AdamW step and the squared norm used for gradient clipping.

import type { AdamWParams, Buf } from '../backend.js';
import { needLength } from './check.js';

/**
 * AdamW (Loshchilov & Hutter), decoupled weight decay, as torch.optim.AdamW:
 *   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
 *   m̂ = m / (1 − β1^step),  v̂ = v / (1 − β2^step)
 *   θ ← θ − lr · (m̂ / (√v̂ + eps) + weightDecay · θ)     (θ on the right is the value before the step)
 */
export function adamw(param: Buf, grad: Buf, m: Buf, v: Buf, n: number, p: AdamWParams): void {
  for (const [name, buf] of [['param', param], ['grad', grad], ['m', m], ['v', v]] as const) needLength('adamw', name, buf, n);
  if (!(Number.isInteger(p.step) && p.step >= 1)) throw new RangeError(`reference adamw: step must be an integer ≥ 1, got ${p.step}`);
  const bc1 = 1 - Math.pow(p.beta1, p.step);
  const bc2 = 1 - Math.pow(p.beta2, p.step);
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    m[i] = p.beta1 * m[i] + (1 - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1 - p.beta2) * g * g;
    const mHat = m[i] / bc1;
    const vHat = v[i] / bc2;
    param[i] = param[i] - p.lr * (mHat / (Math.sqrt(vHat) + p.eps) + p.weightDecay * param[i]);
  }
}

/** Σ x[i]², summed in double. */
export function sumSquares(x: Buf, n: number): number {
  needLength('sumSquares', 'x', x, n);
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}
