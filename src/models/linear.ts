// A linear layer over a frozen or trainable weight, with hooks for low-rank deltas (LoRA adapters, stacked).
// y = x·Wᵀ (+ b) + Σ delta_i(x). W may be f32 (trainable or frozen) or a quantized/f16 frozen weight.

import { Tensor } from '../engine/tensor.js';
import { add, linear } from '../engine/ops/index.js';
import { qlinear } from '../engine/ops/quant.js';

/** Something added to a linear layer's output: a LoRA adapter, for example. */
export interface LinearDelta {
  /** x[..., in] → [..., out] */
  forward(x: Tensor): Tensor;
  /**
   * Optional fused form: y + forward(x), consuming y (its buffer may become the result). Linear uses it when
   * present, which saves the [..., out] temporaries of the separate delta and sum.
   */
  addTo?(y: Tensor, x: Tensor): Tensor;
  /**
   * Optional factors of a low-rank delta, y += (k·x·Aᵀ)·Bᵀ with A [r, in] and B [out, r] (f32): decode steps then call
   * the kernels on their own buffers, several rows at once, instead of building tensors per row group.
   */
  lowRank?(): LowRankFactors;
}

export interface LowRankFactors {
  A: Tensor;
  B: Tensor;
  k: number;
}

export class Linear {
  readonly deltas: LinearDelta[] = [];

  constructor(
    /** [out, in], as checkpoints store it */
    public weight: Tensor,
    public bias: Tensor | null = null,
  ) {}

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  forward(x: Tensor): Tensor {
    let y = this.weight.dtype === 'f32' ? linear(x, this.weight) : qlinear(x, this.weight);
    if (this.bias !== null) y = add(y, this.bias);
    for (const d of this.deltas) y = d.addTo ? d.addTo(y, x) : add(y, d.forward(x));
    return y;
  }
}
