// Arrow (Ostapenko et al. 2024, PEFT's ArrowConfig): token-level routing among LoRA adapters, training-free.
// Each adapter's prototype for a module is the top right-singular vector v [in] of its ΔW = s·B·A (the input
// direction the update amplifies most). Per token x [in] and module, the logits are |⟨x, v_e⟩| over the adapters
// e that have the module; the top_k are kept and weighted softmax(logit / router_temperature) among themselves
// (the others 0); the module adds Σ_e w_e · s_e·(x·A_eᵀ)·B_eᵀ. Inference only.
//
// The mixture is one LinearDelta per routed linear, pushed onto Linear.deltas like an adapter: the tensor path
// (prefill) and the decode path (tensorDeltaRows calls forward on a few rows) both go through forward().

import { isGradEnabled, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { lowRankSvd, to64 } from '../linalg/index.js';
import type { LinearDelta } from '../models/linear.js';
import type { LlamaModel } from '../models/llama.js';
import { linearOf, type LoraAdapter } from './adapter.js';
import type { LoraLinear } from './layer.js';

/** PEFT ArrowConfig's defaults. */
export const ARROW_DEFAULTS = { topK: 3, temperature: 1 } as const;

export interface ArrowOptions {
  topK?: number;
  /** PEFT's router_temperature */
  temperature?: number;
}

/** The top right-singular vector [in] of s·B·A for one module (unit norm; sign as linalg's SVD fixes it). */
export function arrowPrototype(m: Pick<LoraLinear, 'A' | 'B' | 'r' | 'inFeatures' | 'outFeatures'>): Float32Array {
  const svd = lowRankSvd(to64({ rows: m.outFeatures, cols: m.r, data: m.B.toArray() }), to64({ rows: m.r, cols: m.inFeatures, data: m.A.toArray() }));
  const v = new Float32Array(m.inFeatures);
  const p = svd.V.cols;
  for (let j = 0; j < m.inFeatures; j++) v[j] = svd.V.data[j * p];
  return v;
}

export interface ArrowExpert {
  adapter: LoraAdapter;
  lora: LoraLinear;
  proto: Float32Array; // [in]
}

/** Top-k of logits → weights (softmax at temperature over the kept ones, 0 elsewhere); ties keep the lower index. */
export function arrowWeights(logits: ArrayLike<number>, topK: number, temperature: number): Float64Array {
  const E = logits.length;
  const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, Math.min(topK, E));
  const w = new Float64Array(E);
  const m = logits[order[0]];
  let z = 0;
  for (const e of order) z += w[e] = Math.exp((logits[e] - m) / temperature);
  for (const e of order) w[e] /= z;
  return w;
}

/** The routed delta on one linear: x[..., in] → Σ_e w_e(x) · Δ_e(x) [..., out]. */
export class ArrowLinear implements LinearDelta {
  /** tokens routed to each expert (weight > 0), for reports */
  readonly routed: number[];

  constructor(
    readonly name: string,
    readonly experts: readonly ArrowExpert[],
    private readonly topK: number,
    private readonly temperature: number,
  ) {
    this.routed = experts.map(() => 0);
  }

  forward(x: Tensor): Tensor {
    if (isGradEnabled()) throw new Error(`Arrow routing (${this.name}) is inference-only: run it under noGrad (generation does)`);
    const K = x.shape[x.shape.length - 1];
    const N = x.size / K;
    const E = this.experts.length;
    const xd = x.toArray(); // [N, K]
    const w = new Float64Array(N * E);
    const logits = new Float64Array(E);
    for (let n = 0; n < N; n++) {
      for (let e = 0; e < E; e++) {
        const v = this.experts[e].proto;
        let s = 0;
        for (let j = 0; j < K; j++) s += xd[n * K + j] * v[j];
        logits[e] = Math.abs(s);
      }
      w.set(arrowWeights(logits, this.topK, this.temperature), n * E);
    }
    const outF = this.experts[0].lora.outFeatures;
    const out = new Float32Array(N * outF);
    this.experts.forEach((ex, e) => {
      let any = false;
      for (let n = 0; n < N && !any; n++) any = w[n * E + e] > 0;
      if (!any) return;
      const y = tidy(() => ex.lora.forwardScaled(x, ex.adapter.scale).toArray()); // [N, out]
      for (let n = 0; n < N; n++) {
        const wn = w[n * E + e];
        if (wn === 0) continue;
        this.routed[e]++;
        for (let o = 0; o < outF; o++) out[n * outF + o] += wn * y[n * outF + o];
      }
    });
    return Tensor.from(out, [...x.shape.slice(0, -1), outF], x.backend);
  }
}

/** Arrow over a set of adapters: prototypes built once, attached to a model as one routed delta per module. */
export class ArrowRouter {
  readonly topK: number;
  readonly temperature: number;
  readonly layers: ReadonlyMap<string, ArrowLinear>;
  private model: LlamaModel | null = null;

  constructor(readonly adapters: readonly LoraAdapter[], opts: ArrowOptions = {}) {
    if (adapters.length === 0) throw new Error('Arrow: no adapters to route among');
    this.topK = opts.topK ?? ARROW_DEFAULTS.topK;
    this.temperature = opts.temperature ?? ARROW_DEFAULTS.temperature;
    if (!Number.isInteger(this.topK) || this.topK < 1) throw new Error(`Arrow: top_k must be a positive integer, got ${this.topK}`);
    if (!(this.temperature > 0)) throw new Error(`Arrow: router_temperature must be > 0, got ${this.temperature}`);
    const names = [...new Set(adapters.flatMap((a) => [...a.modules.keys()]))];
    const layers = new Map<string, ArrowLinear>();
    for (const name of names) {
      const experts = adapters.flatMap((adapter) => {
        const lora = adapter.modules.get(name);
        return lora === undefined ? [] : [{ adapter, lora, proto: arrowPrototype(lora) }];
      });
      layers.set(name, new ArrowLinear(name, experts, this.topK, this.temperature));
    }
    this.layers = layers;
  }

  /** Pushes the routed deltas onto the model's linears (checking each adapter fits the model first). */
  attach(model: LlamaModel): void {
    if (this.model !== null) throw new Error('Arrow: already attached; detach first');
    for (const a of this.adapters) a.checkModel(model);
    for (const [name, l] of this.layers) linearOf(model, name).deltas.push(l);
    this.model = model;
  }

  detach(): void {
    const model = this.model;
    if (model === null) return;
    for (const [name, l] of this.layers) {
      const d = linearOf(model, name).deltas;
      const i = d.indexOf(l);
      if (i >= 0) d.splice(i, 1);
    }
    this.model = null;
  }

  /** Per adapter, the share of (token, module) routings it took part in since the router was made. */
  usage(): { name: string; share: number }[] {
    const counts = new Map<LoraAdapter, number>(this.adapters.map((a) => [a, 0]));
    let total = 0;
    for (const l of this.layers.values()) {
      l.experts.forEach((ex, e) => {
        counts.set(ex.adapter, counts.get(ex.adapter)! + l.routed[e]);
        total += l.routed[e];
      });
    }
    return this.adapters.map((a) => ({ name: a.name, share: total > 0 ? counts.get(a)! / total : 0 }));
  }
}
