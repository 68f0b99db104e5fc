// The identity of a base model, recorded in every adapter we save, so that an adapter is never silently applied to
// a base it was not trained on.
//
// Two hashes, both SHA-256:
//   weights  over every named tensor's name, dtype and shape, then its stored bytes: all of them ('all'), or by
//            default a deterministic sample ('sample': tensors up to 64 KiB whole, larger ones as 16 chunks of
//            4 KiB at evenly spaced offsets, first and last included). Identifies the exact stored weights.
//   norms    over the RMSNorm vectors' f32 values (every layer's two norms and the final one). GGUF keeps norms in
//            f32 whatever the quantization, and f16/bf16 → f32 is exact, so this survives re-encoding the base
//            (f16 → q4_0, HF → GGUF layout) where the weights hash cannot.
// A match is: same arch and shapes, and the same weights hash, or (when the stored encodings differ: dtypes or
// RoPE layout) the same norms hash.

import { createHash, type Hash } from 'node:crypto';
import type { RopeMode } from '../engine/backend.js';
import type { Tensor } from '../engine/tensor.js';
import type { LlamaModel } from '../models/llama.js';

export type HashCoverage = 'sample' | 'all';

export interface BaseShapes {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

export interface BaseFingerprint {
  arch: string;
  ropeMode: RopeMode;
  shapes: BaseShapes;
  /** number of tensors stored in each dtype, e.g. { f32: 5, q4_0: 14 } */
  dtypes: Record<string, number>;
  weights: { algo: 'sha256'; coverage: HashCoverage; hash: string };
  norms: { algo: 'sha256'; hash: string };
}

const CHUNK = 4096;
const CHUNKS = 16;

/** The f32 bytes of a tensor: a view when it is a contiguous Float32Array, else a converted copy. */
function f32Bytes(t: Tensor): Uint8Array {
  const d = t.isContiguous && t.data instanceof Float32Array ? t.data : t.toArray();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function updateSampled(h: Hash, bytes: Uint8Array, coverage: HashCoverage): void {
  const L = bytes.byteLength;
  if (coverage === 'all' || L <= CHUNK * CHUNKS) {
    h.update(bytes);
    return;
  }
  for (let i = 0; i < CHUNKS; i++) {
    const at = Math.floor((i * (L - CHUNK)) / (CHUNKS - 1));
    h.update(bytes.subarray(at, at + CHUNK));
  }
}

/** Models whose weights have adapters merged in: their fingerprint is the one taken before the first merge. */
const preMerge = new WeakMap<LlamaModel, BaseFingerprint>();

/** Called by merge: remembers (fp) or forgets (null) the fingerprint of the unmerged base. */
export function setPreMergeFingerprint(model: LlamaModel, fp: BaseFingerprint | null): void {
  if (fp === null) preMerge.delete(model);
  else preMerge.set(model, fp);
}

/** The fingerprint of a model's base weights (of the unmerged base when adapters are merged into it). */
export function baseFingerprint(model: LlamaModel, coverage: HashCoverage = 'sample'): BaseFingerprint {
  const stored = preMerge.get(model);
  if (stored !== undefined) return stored;
  const c = model.config;
  const weights = createHash('sha256');
  const norms = createHash('sha256');
  const dtypes: Record<string, number> = {};
  for (const [name, t] of model.namedTensors()) {
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    weights.update(`${name}\0${t.dtype}\0${t.shape.join(',')}\0`);
    updateSampled(weights, t.dtype === 'f32' ? f32Bytes(t) : t.bytes, coverage);
    if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') {
      norms.update(`${name}\0`);
      norms.update(t.dtype === 'f32' ? f32Bytes(t) : t.bytes);
    }
  }
  return {
    arch: c.arch,
    ropeMode: c.ropeMode,
    shapes: {
      vocabSize: c.vocabSize, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, numLayers: c.numLayers,
      numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim,
    },
    dtypes,
    weights: { algo: 'sha256', coverage, hash: weights.digest('hex') },
    norms: { algo: 'sha256', hash: norms.digest('hex') },
  };
}

/** Thrown when an adapter's recorded base differs from the model it is applied to; `differences` lists each. */
export class BaseMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly differences: string[],
  ) {
    super(`${source}: adapter was trained on a different base model: ${differences.join('; ')}. ` + 'Load it onto the base it was trained on (or pass ignoreFingerprint to force it).');
    this.name = 'BaseMismatchError';
  }
}

const short = (h: string): string => `${h.slice(0, 12)}…`;

/**
 * Compares an adapter's recorded fingerprint with a model. Returns a note when the match is by norms only (same
 * base, another encoding), throws BaseMismatchError naming every difference otherwise.
 */
export function checkBase(model: LlamaModel, fp: BaseFingerprint, source: string): string | null {
  const have = baseFingerprint(model, fp.weights.coverage);
  const diffs: string[] = [];
  if (have.arch !== fp.arch) diffs.push(`architecture: adapter ${fp.arch}, model ${have.arch}`);
  for (const k of Object.keys(have.shapes) as (keyof BaseShapes)[]) {
    if (have.shapes[k] !== fp.shapes[k]) diffs.push(`${k}: adapter ${String(fp.shapes[k])}, model ${have.shapes[k]}`);
  }
  if (diffs.length > 0) throw new BaseMismatchError(source, diffs);
  if (have.weights.hash === fp.weights.hash && have.weights.coverage === fp.weights.coverage) return null;
  const sameDtypes = JSON.stringify(sortKeys(have.dtypes)) === JSON.stringify(sortKeys(fp.dtypes));
  const reencoded = !sameDtypes || have.ropeMode !== fp.ropeMode || have.weights.coverage !== fp.weights.coverage;
  if (reencoded && have.norms.hash === fp.norms.hash) {
    return `${source}: base weights are stored differently (dtypes ${JSON.stringify(fp.dtypes)} → ${JSON.stringify(have.dtypes)}, RoPE ${fp.ropeMode} → ${have.ropeMode}) but the norm weights match: treated as the same base`;
  }
  diffs.push(`base weights: sha256 (${fp.weights.coverage}) adapter ${short(fp.weights.hash)}, model ${short(have.weights.hash)}`);
  if (have.norms.hash !== fp.norms.hash) diffs.push(`norm weights: sha256 adapter ${short(fp.norms.hash)}, model ${short(have.norms.hash)}`);
  if (!sameDtypes) diffs.push(`dtypes: adapter ${JSON.stringify(fp.dtypes)}, model ${JSON.stringify(have.dtypes)}`);
  throw new BaseMismatchError(source, diffs);
}

function sortKeys(r: Record<string, number>): [string, number][] {
  return Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1));
}

/** Validates a fingerprint read from a file (JSON): returns it typed, or throws naming the bad field. */
export function parseFingerprint(v: unknown, source: string): BaseFingerprint {
  const fail = (field: string): never => {
    throw new Error(`${source}: nomoat fingerprint field "${field}" is missing or malformed`);
  };
  const obj = (x: unknown, field: string): Record<string, unknown> => (typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : fail(field));
  const o = obj(v, 'fingerprint');
  const str = (x: unknown, field: string): string => (typeof x === 'string' ? x : fail(field));
  const shapes = obj(o.shapes, 'shapes');
  const shapeKeys: (keyof BaseShapes)[] = ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim'];
  const s = {} as BaseShapes;
  for (const k of shapeKeys) s[k] = typeof shapes[k] === 'number' ? shapes[k] : fail(`shapes.${k}`);
  const dt = obj(o.dtypes, 'dtypes');
  const dtypes: Record<string, number> = {};
  for (const [k, n] of Object.entries(dt)) dtypes[k] = typeof n === 'number' ? n : fail(`dtypes.${k}`);
  const w = obj(o.weights, 'weights');
  const n = obj(o.norms, 'norms');
  const coverage = w.coverage === 'sample' || w.coverage === 'all' ? w.coverage : fail('weights.coverage');
  const rope = o.ropeMode === 'halves' || o.ropeMode === 'interleaved' ? o.ropeMode : fail('ropeMode');
  if (w.algo !== 'sha256') fail('weights.algo');
  if (n.algo !== 'sha256') fail('norms.algo');
  return {
    arch: str(o.arch, 'arch'),
    ropeMode: rope,
    shapes: s,
    dtypes,
    weights: { algo: 'sha256', coverage, hash: str(w.hash, 'weights.hash') },
    norms: { algo: 'sha256', hash: str(n.hash, 'norms.hash') },
  };
}
