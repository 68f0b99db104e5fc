// Merging adapters into the base weights and unmerging them: W ← W + k·s·B·A per module (k the runtime scale, s the
// LoRA scaling), PEFT's merge with safe_merge always on: every module's result is computed and checked finite
// before any weight changes. Merges form a stack per model; unmerge pops it in reverse, as PEFT's unmerge does.
//
// By the base's dtype:
//   f32                  added in place; unmerge subtracts (restores within float rounding)
//   f16, bf16            dequantized, added, re-encoded in the same dtype; the original tensor is kept, so unmerge
//                        restores it exactly
//   q8_0, q4_0, q4_k…    dequantized and added; the result is f32 unless requantize is asked (q8_0/q4_0 only);
//                        the original tensor is kept and restored exactly on unmerge

import type { DType } from '../engine/dtype.js';
import { noGrad, tidy } from '../engine/context.js';
import { matmul } from '../engine/ops/index.js';
import { Tensor } from '../engine/tensor.js';
import { dequantize, isWritableDType, quantize, tensorValues } from '../engine/quant/index.js';
import type { Linear } from '../models/linear.js';
import type { LlamaModel } from '../models/llama.js';
import type { LoraAdapter } from './adapter.js';
import { checkScale } from './adapter.js';
import { parseTargetName } from './config.js';
import { baseFingerprint, checkBase, setPreMergeFingerprint } from './fingerprint.js';
import type { LoraLinear } from './layer.js';

export interface MergeOptions {
  /** multiplier k on the adapter's delta (default: the adapter's runtime scale) */
  scale?: number;
  /** quantized bases: re-encode merged weights in the base's dtype (q8_0, q4_0) instead of producing f32 */
  requantize?: boolean;
}

interface MergeEntry {
  linear: Linear;
  module: LoraLinear;
  /** the weight before this merge when it was replaced (byte dtypes), null when f32 was changed in place */
  prior: Tensor | null;
  /** the tensor this merge installed (freed when unmerged) */
  installed: Tensor | null;
}

interface MergeRecord {
  adapter: LoraAdapter;
  k: number;
  entries: MergeEntry[];
}

const stacks = new WeakMap<LlamaModel, MergeRecord[]>();

/** The adapters merged into a model, first merged first. */
export function mergedAdapters(model: LlamaModel): LoraAdapter[] {
  return (stacks.get(model) ?? []).map((r) => r.adapter);
}

/** k·s·B·A [out·in] in f32 (the backend's matmul). */
function delta(m: LoraLinear, k: number): Float32Array {
  const d = noGrad(() => tidy(() => matmul(m.B, m.A).toArray()));
  const f = k * m.scaling;
  for (let i = 0; i < d.length; i++) d[i] *= f;
  return d;
}

/** The merged weight tensor for a byte-dtype base, or null for f32 in place; throws on non-finite results. */
function mergedTensor(lin: Linear, d: Float32Array, requantize: boolean, what: string): Tensor | null {
  const w = lin.weight;
  const v = tensorValues(w);
  for (let i = 0; i < v.length; i++) v[i] += d[i];
  if (!v.every(Number.isFinite)) throw new Error(`${what}: merging gives non-finite weights; nothing was changed`);
  if (w.dtype === 'f32') return null;
  const target: DType = w.dtype === 'f16' || w.dtype === 'bf16' || requantize ? w.dtype : 'f32';
  if (target === 'f32') return Tensor.from(v, w.shape).keep();
  if (!isWritableDType(target)) throw new Error(`${what}: cannot re-quantize to ${target} (this project writes every ggml type it reads but iq4_xs); merge without requantize to get f32`);
  const bytes = quantize(target, v);
  if (!dequantize(target, bytes, v.length).every(Number.isFinite)) throw new Error(`${what}: merged weights overflow ${target}; nothing was changed`);
  return Tensor.fromBytes(bytes, w.shape, target, w.backend).keep();
}

/**
 * Merges an adapter into the model's weights (detaching it first if it is attached to this model, so its delta is
 * not counted twice). Checks the adapter fits the model and its recorded base; refuses non-finite results.
 */
export function mergeAdapter(model: LlamaModel, adapter: LoraAdapter, opts: MergeOptions = {}): void {
  const stack = stacks.get(model) ?? [];
  const who = `merge of LoRA adapter ${adapter.name}`;
  if (stack.some((r) => r.adapter === adapter)) throw new Error(`${who}: already merged into this model`);
  adapter.checkModel(model);
  if (adapter.fingerprint !== null) checkBase(model, adapter.fingerprint, who);
  const k = checkScale(opts.scale ?? adapter.scale);
  const requantize = opts.requantize === true;
  const linears = [...adapter.modules.values()].map((m) => {
    const t = parseTargetName(m.name)!;
    return { m, lin: model.linear(t.layer, t.module) };
  });
  // Pass 1: compute and check every module; build byte-dtype replacements (f32 changes wait for pass 2).
  const staged: { m: LoraLinear; lin: Linear; next: Tensor | null; d: Float32Array | null }[] = [];
  try {
    for (const { m, lin } of linears) {
      const d = delta(m, k);
      const next = mergedTensor(lin, d, requantize, `${who} (${m.name})`);
      staged.push({ m, lin, next, d: next === null ? d : null });
    }
  } catch (e) {
    for (const s of staged) s.next?.dispose();
    throw e;
  }
  // Pass 2: commit.
  if (stack.length === 0) setPreMergeFingerprint(model, baseFingerprint(model));
  if (adapter.attachedTo === model) adapter.detach();
  const entries: MergeEntry[] = staged.map(({ m, lin, next, d }) => {
    if (next === null) {
      const w = lin.weight.data;
      for (let i = 0; i < d!.length; i++) w[i] += d![i];
      return { linear: lin, module: m, prior: null, installed: null };
    }
    const prior = lin.weight;
    lin.weight = next;
    return { linear: lin, module: m, prior, installed: next };
  });
  stack.push({ adapter, k, entries });
  stacks.set(model, stack);
}

/** Unmerges the last merged adapter (which must be `adapter` when given); returns it, or null when none is merged. */
export function unmergeAdapter(model: LlamaModel, adapter?: LoraAdapter): LoraAdapter | null {
  const stack = stacks.get(model) ?? [];
  const top = stack[stack.length - 1];
  if (top === undefined) {
    if (adapter !== undefined) throw new Error(`unmerge: LoRA adapter ${adapter.name} is not merged into this model`);
    return null;
  }
  if (adapter !== undefined && top.adapter !== adapter) {
    const where = stack.some((r) => r.adapter === adapter) ? `merged before ${top.adapter.name}: unmerge in reverse order` : 'not merged into this model';
    throw new Error(`unmerge: LoRA adapter ${adapter.name} is ${where}`);
  }
  for (const e of top.entries) {
    if (e.prior !== null) {
      if (e.linear.weight === e.installed) e.installed.dispose();
      e.linear.weight = e.prior;
    } else {
      const d = delta(e.module, top.k);
      const w = e.linear.weight.data;
      for (let i = 0; i < d.length; i++) w[i] -= d[i];
    }
  }
  stack.pop();
  if (stack.length === 0) setPreMergeFingerprint(model, null);
  return top.adapter;
}

/** Unmerges every merged adapter, last first. */
export function unmergeAll(model: LlamaModel): LoraAdapter[] {
  const out: LoraAdapter[] = [];
  for (let a = unmergeAdapter(model); a !== null; a = unmergeAdapter(model)) out.push(a);
  return out;
}
