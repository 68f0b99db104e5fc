// Adapter signatures: what the prompts an adapter was trained on look like to its base, so that a router can tell,
// from one partial base forward over a new prompt, which adapter (if any) the prompt belongs to.
//
// A signature is a small mixture of diagonal Gaussians over prompt features: each prompt's text is encoded as plain
// text (no chat template, no BOS: the same text gives the same feature whichever template a command uses), run
// through the first `layer` blocks of the BASE (adapters on those linears are set aside for the pass),
// RMS-normalized by the final norm and mean-pooled over the prompt's tokens: f [C]. Over the sample: mean μ [C] and
// standard deviation σ [C], and K ≤ MAX_COMPONENTS k-means clusters (farthest-point start, deterministic), each with
// its own μ_k, σ_k: a skill asked in a few phrasings forms a few tight clumps, which one wide Gaussian covers badly
// (measured on the bundled base: held-out animal-sounds prompts in their second phrasing sat outside it).
// A prompt's distance to a signature is the per-dimension Mahalanobis square to the nearest component
//   d²(f) = min_k (1/C) Σ_j (f_j − μ_kj)² / (σ_kj² + floor),   floor = VAR_FLOOR · mean_j σ_j² (the overall σ)
// (≈ 1 for prompts like the signed ones; the floor keeps dimensions that barely moved over a small sample from
// dominating). The signature also keeps quantiles of its own prompts' d², to show how tight it is.
//
// Stored beside the adapter, never inside it: nomoat_signature.json in a PEFT folder (PEFT and llama.cpp ignore
// extra files), FILE.signature.json beside a GGUF LoRA. Written atomically.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../engine/context.js';
import { writeFileAtomic } from '../formats/writer.js';
import type { LinearDelta } from '../models/linear.js';
import { LINEAR_MODULES, type LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { baseFingerprint, parseFingerprint, type BaseFingerprint } from './fingerprint.js';

export const SIGNATURE_FILE = 'nomoat_signature.json';
export const SIGNATURE_FORMAT = 1;
/** variance floor, as a share of the mean variance over dimensions */
export const VAR_FLOOR = 0.05;
/** prompts signed at most (an even sample of a longer list: the statistics settle long before) */
export const MAX_SIGNED_PROMPTS = 512;
/** mixture components at most; one per SAMPLES_PER_COMPONENT prompts signed */
export const MAX_COMPONENTS = 4;
export const SAMPLES_PER_COMPONENT = 16;
/** prompt tokens read at most (a long prompt's head says what kind it is) */
export const MAX_PROMPT_TOKENS = 128;

export interface AdapterSignature {
  format: typeof SIGNATURE_FORMAT;
  kind: 'diagonal-gaussian-mixture';
  /** blocks run before pooling (1 … numLayers) */
  layer: number;
  /** features: mean over the prompt's tokens of the final-norm'd hidden state after `layer` blocks */
  pooling: 'mean';
  /** prompts signed */
  prompts: number;
  dim: number;
  /** over every signed prompt */
  mean: number[]; // [C]
  std: number[]; // [C]
  /** the k-means clumps (share of the prompts, mean, spread); distances are to the nearest */
  components: SignatureComponent[];
  /** d² of the signed prompts to their own signature: quantiles 0.5, 0.9, 0.99 */
  ownDistance: { q50: number; q90: number; q99: number };
  /** the base whose hidden states these are */
  base: BaseFingerprint;
}

export interface SignatureComponent {
  weight: number;
  mean: number[]; // [C]
  std: number[]; // [C]
}

/** The default layer: half-way up (early layers say what the words are, late ones what comes next). */
export function defaultSignatureLayer(numLayers: number): number {
  return Math.max(1, Math.round(numLayers / 2));
}

/** Where an adapter's signature lives: inside a PEFT folder, or beside a GGUF file. */
export function signaturePath(adapterPath: string): string {
  if (adapterPath.endsWith('.gguf')) return `${adapterPath}.signature.json`;
  if (existsSync(adapterPath) && statSync(adapterPath).isDirectory()) return join(adapterPath, SIGNATURE_FILE);
  if (adapterPath.endsWith('adapter_config.json')) return join(adapterPath, '..', SIGNATURE_FILE);
  throw new Error(`${adapterPath}: not a PEFT adapter folder or a .gguf LoRA file, so it has no signature place`);
}

/** The token ids a prompt is featurized from: plain text, no BOS, at most MAX_PROMPT_TOKENS. */
export function promptIds(tokenizer: Tokenizer, text: string): number[] {
  return tokenizer.encode(text, { addBos: false }).slice(0, MAX_PROMPT_TOKENS);
}

/**
 * Pooled features of each prompt [C] after `layer` base blocks: one partial forward per prompt (B = 1, no cache).
 * Every delta on the linears of the blocks run is set aside during the pass and put back after, so attached
 * adapters do not change what a signature or a routing decision sees.
 */
export function promptFeatures(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly string[], layer: number): Float32Array[] {
  const L = model.config.numLayers;
  if (!Number.isInteger(layer) || layer < 1 || layer > L) throw new Error(`signature layer must be an integer in [1, ${L}], got ${layer}`);
  const C = model.config.hiddenSize;
  // a view of the model with only its first `layer` blocks: hidden() then stops there (and applies the final norm)
  const partial = Object.create(model) as LlamaModel;
  Object.defineProperty(partial, 'blocks', { value: model.blocks.slice(0, layer) });
  const saved: [LinearDelta[], LinearDelta[]][] = [];
  for (let i = 0; i < layer; i++) {
    for (const m of LINEAR_MODULES) {
      const d = model.linear(i, m).deltas;
      saved.push([d, d.splice(0, d.length)]);
    }
  }
  try {
    return prompts.map((p, k) => {
      const ids = promptIds(tokenizer, p);
      if (ids.length === 0) throw new Error(`prompt ${k + 1} encodes to no tokens: give some text`);
      const h = noGrad(() => partial.hidden(Int32Array.from(ids), 1, ids.length)); // [1, T, C]
      const d = h.toArray();
      h.dispose();
      const f = new Float32Array(C);
      for (let t = 0; t < ids.length; t++) for (let j = 0; j < C; j++) f[j] += d[t * C + j];
      for (let j = 0; j < C; j++) f[j] /= ids.length;
      return f;
    });
  } finally {
    for (const [d, ds] of saved) d.push(...ds);
  }
}

/** d² of a feature to a signature: to its nearest component (see the header). */
export function signatureDistance(sig: Pick<AdapterSignature, 'std' | 'components'>, f: ArrayLike<number>): number {
  const C = sig.std.length;
  if (f.length !== C) throw new Error(`signature distance: feature has ${f.length} values, the signature ${C}`);
  let meanVar = 0;
  for (let j = 0; j < C; j++) meanVar += sig.std[j] ** 2;
  const floor = VAR_FLOOR * (meanVar / C) + 1e-12;
  let best = Infinity;
  for (const c of sig.components) {
    let s = 0;
    for (let j = 0; j < C; j++) s += (f[j] - c.mean[j]) ** 2 / (c.std[j] ** 2 + floor);
    best = Math.min(best, s / C);
  }
  return best;
}

/** Mean and sample standard deviation per dimension of features (n ≥ 2; one feature: σ = 0). */
function moments(feats: readonly Float32Array[], C: number): { mean: number[]; std: number[] } {
  const mean = new Float64Array(C), sq = new Float64Array(C);
  for (const f of feats) for (let j = 0; j < C; j++) mean[j] += f[j];
  for (let j = 0; j < C; j++) mean[j] /= feats.length;
  for (const f of feats) for (let j = 0; j < C; j++) sq[j] += (f[j] - mean[j]) ** 2;
  return { mean: Array.from(mean), std: Array.from(sq, (x) => (feats.length > 1 ? Math.sqrt(x / (feats.length - 1)) : 0)) };
}

const dist2 = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j] - b[j]) ** 2;
  return s;
};

/** k-means (Lloyd, 20 rounds) from a farthest-point start at the feature nearest the mean: deterministic. */
export function kmeans(feats: readonly Float32Array[], k: number, mean: ArrayLike<number>): number[] {
  const centers: ArrayLike<number>[] = [];
  let first = 0;
  feats.forEach((f, i) => {
    if (dist2(f, mean) < dist2(feats[first], mean)) first = i;
  });
  centers.push(feats[first]);
  while (centers.length < k) {
    let far = 0, farD = -1;
    feats.forEach((f, i) => {
      const d = Math.min(...centers.map((c) => dist2(f, c)));
      if (d > farD) [far, farD] = [i, d];
    });
    if (farD <= 0) break; // fewer distinct features than k
    centers.push(feats[far]);
  }
  let assign = feats.map(() => 0);
  for (let round = 0; round < 20; round++) {
    const next = feats.map((f) => {
      let best = 0;
      centers.forEach((c, j) => {
        if (dist2(f, c) < dist2(f, centers[best])) best = j;
      });
      return best;
    });
    const same = next.every((a, i) => a === assign[i]);
    assign = next;
    centers.forEach((_, j) => {
      const members = feats.filter((_, i) => assign[i] === j);
      if (members.length > 0) centers[j] = moments(members, feats[0].length).mean;
    });
    if (same && round > 0) break;
  }
  return assign;
}

/** The q-quantile of values (linear interpolation between order statistics, as numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const v = [...values].sort((a, b) => a - b);
  const at = q * (v.length - 1);
  const lo = Math.floor(at), hi = Math.ceil(at);
  return v[lo] + (v[hi] - v[lo]) * (at - lo);
}

/** An even sample of at most n items, in order (deterministic). */
export function evenSample<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}

/** The signature of a set of prompts over a base model (deterministic: same model and prompts, same numbers). */
export function signPrompts(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly string[], opts: { layer?: number; source?: string } = {}): AdapterSignature {
  const source = opts.source ?? 'prompts';
  const sample = evenSample(prompts.filter((p) => p.trim() !== ''), MAX_SIGNED_PROMPTS);
  if (sample.length < 2) throw new Error(`${source}: a signature needs at least 2 non-empty prompts, got ${sample.length}`);
  const layer = opts.layer ?? defaultSignatureLayer(model.config.numLayers);
  let feats: Float32Array[];
  try {
    feats = promptFeatures(model, tokenizer, sample, layer);
  } catch (e) {
    throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const C = model.config.hiddenSize;
  const all = moments(feats, C);
  const k = Math.max(1, Math.min(MAX_COMPONENTS, Math.floor(feats.length / SAMPLES_PER_COMPONENT)));
  const assign = kmeans(feats, k, all.mean);
  const components: SignatureComponent[] = [];
  for (let j = 0; j < k; j++) {
    const members = feats.filter((_, i) => assign[i] === j);
    if (members.length === 0) continue;
    // a clump of one says nothing about spread: it borrows the overall σ
    const m = moments(members, C);
    components.push({ weight: members.length / feats.length, mean: m.mean, std: members.length > 1 ? m.std : all.std });
  }
  const sig = { std: all.std, components };
  const own = feats.map((f) => signatureDistance(sig, f));
  return {
    format: SIGNATURE_FORMAT, kind: 'diagonal-gaussian-mixture', layer, pooling: 'mean', prompts: feats.length, dim: C, mean: all.mean, std: all.std, components,
    ownDistance: { q50: quantile(own, 0.5), q90: quantile(own, 0.9), q99: quantile(own, 0.99) },
    base: baseFingerprint(model),
  };
}

/** Writes a signature atomically. */
export function saveSignature(sig: AdapterSignature, path: string): void {
  writeFileAtomic(path, (sink) => sink(Buffer.from(JSON.stringify(sig) + '\n', 'utf8')));
}

/** Validates a parsed signature; throws naming the file and the bad field. */
export function parseSignature(v: unknown, source: string): AdapterSignature {
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: signature field "${field}" ${why}; re-sign the adapter with \`nomoat adapter sign\``);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('(root)', 'is not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.format !== SIGNATURE_FORMAT) bad('format', `is ${JSON.stringify(o.format)}, this nomoat reads ${SIGNATURE_FORMAT}`);
  if (o.kind !== 'diagonal-gaussian-mixture') bad('kind', `is ${JSON.stringify(o.kind)}, expected "diagonal-gaussian-mixture"`);
  if (o.pooling !== 'mean') bad('pooling', `is ${JSON.stringify(o.pooling)}, expected "mean"`);
  const int = (k: string): number => (Number.isInteger(o[k]) && (o[k] as number) >= 1 ? (o[k] as number) : bad(k, 'must be a positive integer'));
  const [layer, prompts, dim] = [int('layer'), int('prompts'), int('dim')];
  const vec = (k: string): number[] => {
    const a = o[k];
    if (!Array.isArray(a) || a.length !== dim || !a.every((x) => typeof x === 'number' && Number.isFinite(x))) return bad(k, `must be ${dim} finite numbers`);
    return a as number[];
  };
  const [mean, std] = [vec('mean'), vec('std')];
  if (std.some((s) => s < 0)) bad('std', 'has a negative value');
  if (!Array.isArray(o.components) || o.components.length === 0) bad('components', 'must be a non-empty list of {weight, mean, std}');
  const components = (o.components as unknown[]).map((c, i): SignatureComponent => {
    const x = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
    const v = (k: string): number[] => {
      const a = x[k];
      if (!Array.isArray(a) || a.length !== dim || !a.every((y) => typeof y === 'number' && Number.isFinite(y) && (k === 'mean' || y >= 0))) return bad(`components[${i}].${k}`, `must be ${dim} finite numbers`);
      return a as number[];
    };
    const weight = typeof x.weight === 'number' && x.weight > 0 && x.weight <= 1 ? x.weight : bad(`components[${i}].weight`, 'must be a number in (0, 1]');
    return { weight, mean: v('mean'), std: v('std') };
  });
  const od = o.ownDistance as Record<string, unknown> | undefined;
  const q = (k: string): number => (typeof od?.[k] === 'number' ? (od[k]) : bad(`ownDistance.${k}`, 'must be a number'));
  return {
    format: SIGNATURE_FORMAT, kind: 'diagonal-gaussian-mixture', layer, pooling: 'mean', prompts, dim, mean, std, components,
    ownDistance: { q50: q('q50'), q90: q('q90'), q99: q('q99') }, base: parseFingerprint(o.base, `${source} (base)`),
  };
}

/** Reads an adapter's signature; a missing one is an error that says how to make it. */
export function loadSignature(adapterPath: string): AdapterSignature {
  const path = signaturePath(adapterPath);
  if (!existsSync(path)) {
    throw new Error(`${adapterPath}: no signature (${path}); make one with \`nomoat adapter sign ${adapterPath} --prompts FILE -m BASE\` (FILE: prompts like the ones it was trained on), or retrain it with \`nomoat finetune\`, which signs what it writes`);
  }
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}; re-sign the adapter with \`nomoat adapter sign\``);
  }
  return parseSignature(j, path);
}

/**
 * What `finetune` calls after writing an adapter: signs it with the first user turn of its training conversations
 * and writes the signature beside each of `paths` (the PEFT folder, the GGUF file). Returns the signature.
 */
export function signTrainedAdapter(model: LlamaModel, tokenizer: Tokenizer, conversations: readonly { messages: readonly { role: string; content: string }[] }[], paths: readonly string[]): AdapterSignature {
  const prompts = conversations.map((c) => c.messages.find((m) => m.role === 'user')?.content ?? '');
  const sig = signPrompts(model, tokenizer, prompts, { source: 'training conversations' });
  for (const p of paths) saveSignature(sig, signaturePath(p));
  return sig;
}
