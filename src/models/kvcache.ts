// Key/value cache for generation: per layer, keys and values of every position seen so far, so each new token
// costs one position of work instead of the whole prefix.

import type { Buf } from '../engine/backend.js';
import { slice } from '../engine/ops/index.js';
import { Tensor } from '../engine/tensor.js';
import type { LlamaConfig } from './config.js';

export class KVCache {
  /** positions stored (P) */
  length = 0;
  private readonly keys: Tensor[] = []; // per layer [B, maxT, G, D]
  private readonly values: Tensor[] = [];
  private readonly scratchBufs = new Map<string, Tensor>();

  constructor(
    cfg: LlamaConfig,
    readonly batch: number,
    readonly maxLength: number,
  ) {
    const shape = [batch, maxLength, cfg.numKvHeads, cfg.headDim];
    for (let i = 0; i < cfg.numLayers; i++) {
      this.keys.push(Tensor.zeros(shape).keep());
      this.values.push(Tensor.zeros(shape).keep());
    }
  }

  /** Stores k, v [B, T, G, D] after the P cached positions; returns views of all P+T positions. */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const [B, T, G, D] = k.shape as [number, number, number, number];
    const P = this.length;
    this.checkRoom(T);
    const K = this.keys[layer];
    const V = this.values[layer];
    const row = G * D;
    const kd = k.data;
    const vd = v.data;
    for (let b = 0; b < B; b++) {
      const dst = (b * this.maxLength + P) * row;
      K.data.set(kd.subarray(b * T * row, (b + 1) * T * row), dst);
      V.data.set(vd.subarray(b * T * row, (b + 1) * T * row), dst);
    }
    return [slice(K, 1, 0, P + T), slice(V, 1, 0, P + T)];
  }

  /** Throws when T more positions do not fit. */
  checkRoom(T: number): void {
    if (this.length + T > this.maxLength) throw new Error(`context full: ${this.length} cached + ${T} new positions exceed ${this.maxLength} (raise the context size, -c)`);
  }

  /** The raw key and value buffers of a layer, [B, maxT, G, D] each (the single-token decode path writes into them). */
  layerBuffers(layer: number): { k: Buf; v: Buf } {
    const [K, V] = [this.keys[layer], this.values[layer]];
    if (K === undefined || V === undefined) throw new Error(`KV cache has no layer ${layer}`);
    return { k: K.data, v: V.data };
  }

  /** A work buffer of n f32 elements kept with the cache (reused step after step, grown when needed, freed by
   *  dispose); a buffer asked for again by name may move, so hold it only for the step. */
  scratch(name: string, n: number): Buf {
    let t = this.scratchBufs.get(name);
    if (t === undefined || t.size < n) {
      t?.dispose();
      t = Tensor.zeros([n]).keep();
      this.scratchBufs.set(name, t);
    }
    return t.data.subarray(0, n);
  }

  /** Called once per forward, after every layer appended. */
  advance(T: number): void {
    this.length += T;
  }

  /** Forgets positions from n on (n = 0 empties the cache). */
  truncate(n: number): void {
    this.length = Math.min(this.length, n);
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values, ...this.scratchBufs.values()]) t.dispose();
    this.scratchBufs.clear();
  }
}
