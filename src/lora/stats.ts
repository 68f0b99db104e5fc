// How big an adapter's update is next to the base weight it changes: ‖k·B·A‖_F / ‖W‖_F per module. Low-rank
// updates add up the way the skills bench hopes only while they are small perturbations of the base; this is the
// number that says whether they are (PEFT adapters on billion-parameter models sit around a few per cent).

import { tensorValues } from '../engine/quant/index.js';
import type { LlamaModel } from '../models/llama.js';
import type { LoraAdapter } from './adapter.js';
import { parseTargetName } from './config.js';

/**
 * ‖k·B·A‖_F for B [out, r], A [r, in] through the r×r Gram matrices: ‖BA‖² = Σ_ij (BᵀB)_ij (AAᵀ)_ij, so the
 * [out, in] product is never formed. k is the module's scaling times the adapter's runtime scale.
 */
export function lowRankFrobenius(B: Float32Array, A: Float32Array, out: number, r: number, inF: number, k = 1): number {
  if (B.length !== out * r || A.length !== r * inF) throw new Error(`lowRankFrobenius: B has ${B.length} values (want ${out}×${r}), A has ${A.length} (want ${r}×${inF})`);
  const gb = new Float64Array(r * r), ga = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = i; j < r; j++) {
      let sb = 0, sa = 0;
      for (let o = 0; o < out; o++) sb += B[o * r + i] * B[o * r + j];
      for (let c = 0; c < inF; c++) sa += A[i * inF + c] * A[j * inF + c];
      gb[i * r + j] = gb[j * r + i] = sb;
      ga[i * r + j] = ga[j * r + i] = sa;
    }
  }
  let s = 0;
  for (let i = 0; i < r * r; i++) s += gb[i] * ga[i];
  return Math.abs(k) * Math.sqrt(Math.max(0, s));
}

/** ‖k·B·A‖_F / ‖W‖_F for every module of the adapter, by HF module name (the base weight read from the model). */
export function relativeUpdateNorms(adapter: LoraAdapter, model: LlamaModel): Map<string, number> {
  adapter.checkModel(model);
  const out = new Map<string, number>();
  for (const [name, m] of adapter.modules) {
    const t = parseTargetName(name)!; // checkModel has parsed every name
    const values = tensorValues(model.linear(t.layer, t.module).weight);
    let ww = 0;
    for (const x of values) ww += x * x;
    const d = lowRankFrobenius(m.B.toArray(), m.A.toArray(), m.outFeatures, m.r, m.inFeatures, m.scaling * adapter.scale);
    out.set(name, ww > 0 ? d / Math.sqrt(ww) : Infinity);
  }
  return out;
}
