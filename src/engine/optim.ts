// Optimizers over parameter tensors: AdamW with decoupled weight decay, and global gradient-norm clipping.
// State lives in kept tensors beside each parameter; an update allocates nothing.

import type { AdamWParams } from './backend.js';
import { Tensor } from './tensor.js';

export interface AdamWConfig {
  lr: number; // peak learning rate (schedules in train/ scale it per step)
  beta1: number; // default 0.9
  beta2: number; // default 0.999
  eps: number; // default 1e-8
  weightDecay: number; // decoupled, applied as p -= lr·wd·p (default 0.0, as PEFT recipes use)
}

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

interface Slot {
  m: Tensor;
  v: Tensor;
}

export class AdamW {
  readonly config: AdamWConfig;
  step = 0;
  private readonly slots = new Map<Tensor, Slot>();

  constructor(readonly params: readonly Tensor[], config: Partial<AdamWConfig> = {}) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    for (const p of params) {
      if (!p.requiresGrad) throw new Error(`AdamW: parameter ${p.label()} does not require grad`);
      if (!p.isContiguous || p.dtype !== 'f32') throw new Error(`AdamW: parameter ${p.label()} must be contiguous f32`);
      this.slots.set(p, { m: Tensor.zeros(p.shape, p.backend).keep(), v: Tensor.zeros(p.shape, p.backend).keep() });
    }
  }

  /** One update with the current gradients; lr overrides the configured rate (schedules). */
  update(lr = this.config.lr): void {
    this.step++;
    const c = this.config;
    const hp: AdamWParams = { lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, step: this.step };
    for (const [p, s] of this.slots) {
      if (p.grad === null) continue;
      p.backend.adamw(p.data, p.grad.data, s.m.data, s.v.data, p.size, hp);
    }
  }

  /** Optimizer state for checkpoints: [m, v] per parameter, in parameter order. */
  state(): { m: Tensor; v: Tensor }[] {
    return this.params.map((p) => this.slots.get(p)!);
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}

/** Drops every parameter's gradient (the next backward starts from zero). */
export function zeroGrad(params: readonly Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad !== null) sq += p.backend.sumSquares(p.grad.data, p.grad.size);
  const norm = Math.sqrt(sq);
  if (norm > maxNorm && norm > 0) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad !== null) p.backend.affine(p.grad.data, p.grad.data, p.grad.size, s, 0);
  }
  return norm;
}
