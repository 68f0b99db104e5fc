// One LoRA delta on one linear: y = k · (dropout(x) · Aᵀ) · Bᵀ, k = scaling · the adapter's runtime scale.
// A [r, in] is initialized as PEFT's reset_lora_parameters does (torch kaiming_uniform_ with a = √5), B [out, r] zeros,
// so a fresh adapter changes nothing.

import { isGradEnabled, tidy } from '../engine/context.js';
import { addLowRank, dropout, linear, scale } from '../engine/ops/index.js';
import { hashIndex, Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import type { LinearDelta, LowRankFactors } from '../models/linear.js';

/** What a layer reads from its adapter at every forward (shared by all layers of one adapter). */
export interface LoraRuntime {
  /** the adapter's runtime multiplier (negative subtracts the adapter) */
  readonly scale: number;
  /** dropout is applied only while training and recording gradients */
  readonly training: boolean;
  readonly dropout: number;
  /** a fresh dropout seed per call */
  nextSeed(): number;
}

/**
 * torch.nn.init.kaiming_uniform_(A, a=√5) as PEFT calls it: gain = √(2 / (1 + a²)) = √(1/3), std = gain / √fan_in,
 * bound = √3 · std = 1 / √fan_in, with fan_in = in (A's second dimension). Values uniform in [−bound, bound).
 */
export function kaimingUniformA(r: number, inFeatures: number, rng: Rng): Float32Array {
  const a = Math.sqrt(5);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = Math.sqrt(3) * (gain / Math.sqrt(inFeatures));
  const out = new Float32Array(r * inFeatures);
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * bound;
  return out;
}

export class LoraLinear implements LinearDelta {
  constructor(
    /** HF module name: model.layers.N.self_attn.q_proj */
    readonly name: string,
    /** [r, in], f32, trainable */
    readonly A: Tensor,
    /** [out, r], f32, trainable */
    readonly B: Tensor,
    /** this module's lora_alpha (PEFT alpha_pattern may give modules different ones) */
    readonly alpha: number,
    /** lora_alpha / r, or lora_alpha / √r with rsLoRA */
    readonly scaling: number,
    private readonly runtime: LoraRuntime,
  ) {
    if (A.ndim !== 2 || B.ndim !== 2 || A.shape[0] !== B.shape[1]) {
      throw new Error(`LoRA ${name}: A [${A.shape.join(', ')}] and B [${B.shape.join(', ')}] are not [r, in] and [out, r]`);
    }
  }

  get r(): number {
    return this.A.shape[0];
  }

  get inFeatures(): number {
    return this.A.shape[1];
  }

  get outFeatures(): number {
    return this.B.shape[0];
  }

  /** x[..., in] → [..., out] */
  forward(x: Tensor): Tensor {
    const rt = this.runtime;
    return tidy(() => this.forwardScaled(rt.training && rt.dropout > 0 && isGradEnabled() ? dropout(x, rt.dropout, rt.nextSeed()) : x, rt.scale));
  }

  /**
   * x[..., in] → [..., out] at a given runtime scale instead of the adapter's, no dropout: one request's scale in a
   * server batch, the same arithmetic as forward() at that scale.
   */
  forwardScaled(x: Tensor, runtimeScale: number): Tensor {
    // k·(h·Aᵀ)·Bᵀ = (k·h·Aᵀ)·Bᵀ: scaling the [..., r] intermediate instead of the [..., out] result costs r/out of
    // the work, forward and backward. The scope frees the intermediates' handles at once (the graph keeps its own).
    return tidy(() => linear(scale(linear(x, this.A), this.scaling * runtimeScale), this.B));
  }

  /** The factors at the adapter's runtime scale (decode steps; no dropout: inference only). */
  lowRank(): LowRankFactors {
    return { A: this.A, B: this.B, k: this.scaling * this.runtime.scale };
  }

  /** y[..., out] + forward(x), accumulated into y's buffer by one fused op (addLowRank); y is consumed. */
  addTo(y: Tensor, x: Tensor): Tensor {
    const rt = this.runtime;
    return tidy(() => {
      const h = rt.training && rt.dropout > 0 && isGradEnabled() ? dropout(x, rt.dropout, rt.nextSeed()) : x;
      return addLowRank(y, h, this.A, this.B, this.scaling * rt.scale);
    });
  }
}

/** A counter-based dropout seed stream: call i of an adapter seeded s gets hashIndex(s, i). */
export class SeedStream {
  private i = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    return hashIndex(this.seed, this.i++);
  }
}
