// The small interfaces the trainer is written against, so any model and any set of trainable tensors plug in.

import type { Tensor } from '../engine/tensor.js';

/** Anything that maps token ids to next-token logits: ids[B·T] (row-major [B, T]) → logits [B, T, V]. */
export interface ForwardModel {
  forward(ids: Int32Array, B: number, T: number): Tensor;
}

/** A trainable tensor and its checkpoint name (HF names for full training, PEFT names for adapters). */
export interface NamedParam {
  name: string;
  /** contiguous f32, requiresGrad, kept (outside every tidy scope) */
  tensor: Tensor;
}
