// Finite-difference checks of backward kernels, at the kernel level, on the float64 reference backend:
// for a loss L(inputs) = Σ r ⊙ forward(inputs) with fixed random r, each analytic gradient element is compared
// with the central difference (L(x + h) − L(x − h)) / 2h.

import type { Buf } from '../backend.js';

/** Step of the central difference: truncation error ~h²·L''' and roundoff ~1e-16·|L|/h both stay near 1e-10. */
export const FD_STEP = 1e-6;
/** Relative tolerance between analytic and numeric gradients. */
export const FD_REL = 1e-6;

export interface GradCheck {
  /** what is checked, e.g. 'attention dq (H=4, G=2, causal)'; printed with the seed on failure */
  label: string;
  /** the input buffer perturbed in place (float64) */
  x: Buf;
  /** the analytic gradient ∂L/∂x from the backward kernel */
  grad: ArrayLike<number>;
  /** recomputes L from the current contents of every input */
  loss: () => number;
}

/** Σ r[i] · y[i]: the scalar loss whose gradient with respect to y is r. */
export function dot(r: ArrayLike<number>, y: ArrayLike<number>, n = y.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += r[i] * y[i];
  return s;
}

/**
 * Mismatches between analytic and central-difference gradients (empty when all agree). An element passes when
 * |numeric − analytic| ≤ FD_REL · (|analytic| + 1e-2 · max|analytic|) + 2e-10 · (1 + |L|): relative, with floors
 * for elements much smaller than the rest of the gradient, since the difference quotient carries the roundoff of
 * the whole loss (about 1e-16 · |L| / h = 1e-10 · |L|).
 */
export function checkGradient(g: GradCheck): string[] {
  const n = g.x.length;
  let gmax = 0;
  for (let i = 0; i < n; i++) gmax = Math.max(gmax, Math.abs(g.grad[i]));
  const problems: string[] = [];
  for (let i = 0; i < n; i++) {
    const x0 = g.x[i];
    g.x[i] = x0 + FD_STEP;
    const up = g.loss();
    g.x[i] = x0 - FD_STEP;
    const down = g.loss();
    g.x[i] = x0;
    const numeric = (up - down) / (2 * FD_STEP);
    const analytic = g.grad[i];
    const bound = FD_REL * (Math.abs(analytic) + 1e-2 * gmax) + 2e-10 * (1 + Math.abs(up));
    if (!(Math.abs(numeric - analytic) <= bound)) {
      problems.push(`${g.label} [${i}]: analytic ${analytic}, numeric ${numeric} (|err| ${Math.abs(numeric - analytic).toExponential(2)} > ${bound.toExponential(2)})`);
    }
  }
  return problems;
}
