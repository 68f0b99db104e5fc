// Moving an adapter's q_proj/k_proj B rows between RoPE layouts. LoRA's delta B·A lands on the base weight's rows,
// so when the base's q/k rows are permuted (HF 'halves' ↔ GGUF llama 'interleaved'), B's rows must be permuted the
// same way; A (the input side) is untouched. This is what convert_lora_to_gguf.py does through LlamaModel.permute.

import type { RopeMode } from '../engine/backend.js';
import { qkHalvesToInterleaved, qkInterleavedToHalves } from '../formats/names.js';
import type { BaseInfo } from './adapter.js';
import { parseTargetName } from './config.js';

/** B [out, r] of module `name` re-laid from one RoPE layout to another (a copy; the same array when nothing moves). */
export function permuteLoraB(name: string, B: Float32Array, out: number, from: RopeMode, to: RopeMode, base: Pick<BaseInfo, 'numHeads' | 'numKvHeads'>): Float32Array {
  const t = parseTargetName(name);
  if (from === to || t === null || (t.module !== 'q_proj' && t.module !== 'k_proj')) return B;
  const heads = t.module === 'q_proj' ? base.numHeads : base.numKvHeads;
  return from === 'halves' ? qkHalvesToInterleaved(B, out, heads) : qkInterleavedToHalves(B, out, heads);
}
