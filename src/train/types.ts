// The small interfaces the trainer is written against, so any model and any set of trainable tensors plug in.

import type { Tensor } from '../engine/tensor.js';
import type { Batch } from './batching.js';

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

/**
 * What training minimises, one micro-batch at a time (default: cross-entropy of the batch's labels). Distillation and
 * preference tuning plug in here and keep everything else of the Trainer (accumulation, clipping, schedules,
 * checkpoints, resume, metrics, Ctrl-C).
 */
export interface Objective {
  /** a short name for logs */
  name: string;
  /**
   * The micro-batch's loss as a scalar on the tape, a mean over the batch's `weight` units (the Trainer weights
   * micro-batches by weight / Σ weight when accumulating, and averages `metrics` the same way), plus numbers to log
   * (metrics.jsonl keys, e.g. rewards/accuracies). `training` is false during evaluation (no tape).
   */
  loss(model: ForwardModel, batch: Batch, training: boolean): { loss: Tensor; metrics?: Record<string, number> };
  /** the batch's weight in accumulation and averages (default: batch.targets, the trained tokens) */
  weight?(batch: Batch): number;
}
