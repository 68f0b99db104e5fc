// The Llama architecture, once, for every Llama-family checkpoint: embeddings → N × (RMSNorm → GQA attention with
// RoPE → residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head. Weights are named as Hugging Face names
// them (model.layers.N.self_attn.q_proj.weight …), which is also how PEFT adapters address them.
//
// Letters: B batch, T new positions, P cached positions, C hidden, H query heads, G kv heads, D head dim, V vocab.

import type { RopeMode } from '../engine/backend.js';
import { isGradEnabled, noGrad, tidy } from '../engine/context.js';
import { add, attention, embedding, reshape, rmsnorm, rope, swiglu } from '../engine/ops/index.js';
import { Tensor } from '../engine/tensor.js';
import { ropeInvFreq, type LlamaConfig } from './config.js';
import { Linear } from './linear.js';
import type { KVCache } from './kvcache.js';
import { decodeStep } from './decode.js';

export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];

export interface Block {
  attnNorm: Tensor; // [C]
  q: Linear; // [H·D, C]
  k: Linear; // [G·D, C]
  v: Linear; // [G·D, C]
  o: Linear; // [C, H·D]
  mlpNorm: Tensor; // [C]
  gate: Linear; // [I, C]
  up: Linear; // [I, C]
  down: Linear; // [C, I]
}

/** HF name of a block linear: model.layers.{i}.self_attn.q_proj (without ".weight"). */
export function linearName(layer: number, m: LinearModule): string {
  const group = m === 'gate_proj' || m === 'up_proj' || m === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${group}.${m}`;
}

/** Looks up a weight by HF name; returns f32 or byte-dtype tensors. */
export type WeightLookup = (name: string) => Tensor | undefined;

/**
 * Rows ids[...shape] of a frozen table[V, C] stored in a byte dtype (f16, q8_0, …), decoded to f32 → [...shape, C].
 * A quantized tied embedding thus stays quantized (it is also the LM head, read by qlinear) instead of being
 * held a second time as f32 (49152 × 576 floats = 113 MB for SmolLM). No gradient: the table is frozen.
 */
export function gatherRows(table: Tensor, ids: Int32Array, shape: readonly number[]): Tensor {
  if (table.dtype === 'f32') throw new Error(`gatherRows: ${table.label()} is f32; use embedding`);
  const [V, C] = table.shape as [number, number];
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`embedding: token id ${id} at position ${n} is outside the vocabulary [0, ${V})`);
  }
  const out = Tensor.zeros([...shape, C], table.backend);
  table.backend.gatherQuant(table.bytes, table.dtype, ids, out.data, ids.length, C);
  return out;
}

export class LlamaModel {
  readonly embed: Tensor; // [V, C]: f32, or frozen in a byte dtype (rows decoded as they are gathered)
  readonly blocks: Block[];
  readonly norm: Tensor; // [C]
  readonly lmHead: Linear; // [V, C] (the embedding itself when tied)
  readonly invFreq: Float32Array; // [D/2]

  constructor(
    readonly config: LlamaConfig,
    weights: WeightLookup,
  ) {
    const need = (name: string): Tensor => {
      const t = weights(name);
      if (t === undefined) throw new Error(`checkpoint has no tensor "${name}"`);
      return t;
    };
    const lin = (base: string, bias: boolean): Linear => new Linear(need(`${base}.weight`), bias ? need(`${base}.bias`) : null);
    const c = config;
    this.embed = need('model.embed_tokens.weight');
    this.blocks = [];
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      this.blocks.push({
        attnNorm: need(`${p}.input_layernorm.weight`),
        q: lin(linearName(i, 'q_proj'), c.attentionBias),
        k: lin(linearName(i, 'k_proj'), c.attentionBias),
        v: lin(linearName(i, 'v_proj'), c.attentionBias),
        o: lin(linearName(i, 'o_proj'), false),
        mlpNorm: need(`${p}.post_attention_layernorm.weight`),
        gate: lin(linearName(i, 'gate_proj'), false),
        up: lin(linearName(i, 'up_proj'), false),
        down: lin(linearName(i, 'down_proj'), false),
      });
    }
    this.norm = need('model.norm.weight');
    this.lmHead = new Linear(c.tieWordEmbeddings ? this.embed : (weights('lm_head.weight') ?? this.embed));
    this.invFreq = ropeInvFreq(c);
  }

  get ropeMode(): RopeMode {
    return this.config.ropeMode;
  }

  /** Every named tensor of the model (HF names), embedding listed once when tied. */
  namedTensors(): [string, Tensor][] {
    const out: [string, Tensor][] = [['model.embed_tokens.weight', this.embed]];
    this.blocks.forEach((b, i) => {
      out.push([`model.layers.${i}.input_layernorm.weight`, b.attnNorm]);
      for (const m of LINEAR_MODULES) {
        const l = this.linear(i, m);
        out.push([`${linearName(i, m)}.weight`, l.weight]);
        if (l.bias !== null) out.push([`${linearName(i, m)}.bias`, l.bias]);
      }
      out.push([`model.layers.${i}.post_attention_layernorm.weight`, b.mlpNorm]);
    });
    out.push(['model.norm.weight', this.norm]);
    if (this.lmHead.weight !== this.embed) out.push(['lm_head.weight', this.lmHead.weight]);
    return out;
  }

  linear(layer: number, m: LinearModule): Linear {
    const b = this.blocks[layer];
    if (b === undefined) throw new Error(`layer ${layer} out of range (model has ${this.blocks.length})`);
    const map: Record<LinearModule, Linear> = { q_proj: b.q, k_proj: b.k, v_proj: b.v, o_proj: b.o, gate_proj: b.gate, up_proj: b.up, down_proj: b.down };
    return map[m];
  }

  /**
   * Hidden states after the final norm: ids[B·T] (row-major [B, T]) → [B, T, C].
   * With a cache, the T new positions follow the cache's P stored ones and their keys/values are appended.
   * Without a tape (noGrad), each layer's intermediates are freed when the layer ends: a 512-token prefill of a
   * 30-layer model otherwise holds every layer's activations at once (~600 MB for SmolLM-135M); and a single-token
   * step of one sequence goes through decodeStep (the same kernels, no per-op tensors).
   */
  hidden(ids: Int32Array, B: number, T: number, cache?: KVCache): Tensor {
    const c = this.config;
    const [H, G, D] = [c.numHeads, c.numKvHeads, c.headDim];
    const start = cache?.length ?? 0;
    const positions = new Int32Array(T);
    for (let t = 0; t < T; t++) positions[t] = start + t;
    const block = (b: Block, i: number, x: Tensor): Tensor => {
      const h = rmsnorm(x, b.attnNorm, c.rmsNormEps);
      const q = rope(reshape(b.q.forward(h), [B, T, H, D]), positions, this.invFreq, c.ropeMode);
      let k = rope(reshape(b.k.forward(h), [B, T, G, D]), positions, this.invFreq, c.ropeMode);
      let v = reshape(b.v.forward(h), [B, T, G, D]);
      if (cache) [k, v] = noGrad(() => cache.append(i, k, v)); // [B, P+T, G, D]
      const a = attention(q, k, v, { causal: true, qOffset: start }); // [B, T, H, D]
      const r = add(x, b.o.forward(reshape(a, [B, T, H * D])));
      const m = rmsnorm(r, b.mlpNorm, c.rmsNormEps);
      return add(r, b.down.forward(swiglu(b.gate.forward(m), b.up.forward(m))));
    };
    const inference = !isGradEnabled();
    if (inference && cache !== undefined && B === 1 && T === 1) return decodeStep(this, ids[0] ?? -1, cache);
    let x = this.embed.dtype === 'f32' ? embedding(this.embed, ids, [B, T]) : gatherRows(this.embed, ids, [B, T]); // [B, T, C]
    this.blocks.forEach((b, i) => {
      if (!inference) {
        x = block(b, i, x);
        return;
      }
      const prev = x;
      x = tidy(() => block(b, i, prev));
      prev.dispose(); // made in this method, read by nobody else
    });
    cache?.advance(T);
    if (!inference) return rmsnorm(x, this.norm, c.rmsNormEps);
    const out = rmsnorm(x, this.norm, c.rmsNormEps);
    x.dispose();
    return out;
  }

  /** Logits [B, T, V] for every position (training, scoring). */
  forward(ids: Int32Array, B: number, T: number, cache?: KVCache): Tensor {
    return this.lmHead.forward(this.hidden(ids, B, T, cache));
  }

  /** Logits [B, V] of the last position only (generation: skips the LM head for the prompt's other rows). */
  forwardLast(ids: Int32Array, B: number, T: number, cache?: KVCache): Tensor {
    const h = this.hidden(ids, B, T, cache); // [B, T, C]
    const C = this.config.hiddenSize;
    const last = Tensor.zeros([B, C], h.backend);
    const hd = h.data;
    for (let b = 0; b < B; b++) last.data.set(hd.subarray((b * T + T - 1) * C, (b * T + T) * C), b * C);
    return this.lmHead.forward(last);
  }

  /** Releases every tensor of the model. */
  dispose(): void {
    for (const [, t] of this.namedTensors()) t.dispose();
  }
}
