// The prompt-level router: given signed adapters (./signature.ts), send a prompt to the adapter whose signature it
// is nearest, or to several with weights, or to none (the base) when it is near none. The cost per prompt is one
// partial base forward (the signatures' layer), B = 1, no cache.
//
// Rule: d²_i = the prompt's distance to adapter i's signature (per-dimension Mahalanobis square). The k nearest
// adapters with d² < τ are chosen (k = topK, default 1), weighted softmax(−d²/temperature) among themselves; none
// below τ → the base. τ is calibrated on general prompts (assets/data/generic-chats.jsonl by default): the
// `quantile` (default 0.02) of their nearest distance, min_i d²_i. So about that share of general prompts would be
// sent to some adapter, and a prompt goes to an adapter only when it sits closer to that adapter's prompts than
// 98 % of general prompts sit to any. (On the bundled base and the skills bench's four skills, 0.02 kept every
// skill's held-out prompts as well as 0.05 did and sent 98 % of held-out general prompts to the base, against 93 %.)

import { fileURLToPath } from 'node:url';
import type { LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { readPromptFile } from './prompts.js';
import { evenSample, promptFeatures, quantile, signatureDistance, type AdapterSignature } from './signature.js';

/** The general prompts the threshold is calibrated on by default (chats like the bundled base's pretraining). */
export const DEFAULT_CALIBRATION = fileURLToPath(new URL('../../../assets/data/generic-chats.jsonl', import.meta.url));
/** general prompts read for calibration at most (an even sample): one partial forward each at start-up */
export const CALIBRATION_PROMPTS = 256;

export const ROUTE_DEFAULTS = { topK: 1, temperature: 1, quantile: 0.02 } as const;

export interface SignedEntry {
  name: string;
  signature: AdapterSignature;
}

export interface RouteChoice {
  name: string;
  /** share of the mixture (the chosen weights sum to 1) */
  weight: number;
  distance: number;
}

export interface RouteDecision {
  /** empty: the base answers */
  chosen: RouteChoice[];
  /** every adapter's d², in library order */
  distances: number[];
  threshold: number;
}

export interface PromptRouterOptions {
  topK?: number;
  temperature?: number;
  /** a fixed τ instead of a calibrated one */
  threshold?: number;
}

/** The layer all signatures share (the one forward); refuses mixed layers or widths, naming the adapter. */
export function commonLayer(entries: readonly SignedEntry[]): number {
  if (entries.length === 0) throw new Error('prompt router: no signed adapters');
  const [first] = entries;
  for (const e of entries.slice(1)) {
    if (e.signature.layer !== first.signature.layer || e.signature.dim !== first.signature.dim) {
      throw new Error(`prompt router: ${e.name} was signed at layer ${e.signature.layer} (width ${e.signature.dim}), ${first.name} at layer ${first.signature.layer} (width ${first.signature.dim}); ` +
        `re-sign one with \`nomoat adapter sign ADAPTER --prompts FILE --layer ${first.signature.layer}\``);
    }
  }
  return first.signature.layer;
}

/** Pure routing over features: distances, threshold, decisions (no model). */
export class PromptRouter {
  readonly layer: number;
  readonly topK: number;
  readonly temperature: number;
  /** τ; Infinity until calibrated (every prompt then goes to its nearest adapter) */
  threshold: number;

  constructor(readonly entries: readonly SignedEntry[], opts: PromptRouterOptions = {}) {
    this.layer = commonLayer(entries);
    this.topK = opts.topK ?? ROUTE_DEFAULTS.topK;
    this.temperature = opts.temperature ?? ROUTE_DEFAULTS.temperature;
    if (!Number.isInteger(this.topK) || this.topK < 1) throw new Error(`prompt router: top-k must be a positive integer, got ${this.topK}`);
    if (!(this.temperature > 0)) throw new Error(`prompt router: temperature must be > 0, got ${this.temperature}`);
    this.threshold = opts.threshold ?? Infinity;
  }

  distances(f: ArrayLike<number>): number[] {
    return this.entries.map((e) => signatureDistance(e.signature, f));
  }

  /** Sets τ to the q-quantile of general prompts' nearest distance; returns it. */
  calibrate(general: readonly ArrayLike<number>[], q: number = ROUTE_DEFAULTS.quantile): number {
    if (general.length === 0) throw new Error('prompt router: no general prompts to calibrate the threshold on');
    if (!(q >= 0 && q <= 1)) throw new Error(`prompt router: the calibration quantile must be in [0, 1], got ${q}`);
    this.threshold = quantile(general.map((f) => Math.min(...this.distances(f))), q);
    return this.threshold;
  }

  decide(f: ArrayLike<number>): RouteDecision {
    const distances = this.distances(f);
    const near = distances.map((d, i) => ({ i, d })).filter((x) => x.d < this.threshold).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, this.topK);
    const m = near.length > 0 ? near[0].d : 0;
    const w = near.map((x) => Math.exp(-(x.d - m) / this.temperature));
    const z = w.reduce((s, x) => s + x, 0);
    return { chosen: near.map((x, k) => ({ name: this.entries[x.i].name, weight: w[k] / z, distance: x.d })), distances, threshold: this.threshold };
  }
}

/** Features of prompts at the router's layer (one partial base forward each). */
export function routeFeatures(router: PromptRouter, model: LlamaModel, tokenizer: Tokenizer, prompts: readonly string[]): Float32Array[] {
  return promptFeatures(model, tokenizer, prompts, router.layer);
}

/** One prompt's decision: one partial base forward, then the distances. */
export function routePrompt(router: PromptRouter, model: LlamaModel, tokenizer: Tokenizer, prompt: string): RouteDecision {
  return router.decide(promptFeatures(model, tokenizer, [prompt], router.layer)[0]);
}

/** "opposites (d² 0.41)", "opposites 0.7 + counting 0.3", or "base (nearest: opposites, d² 3.2 ≥ τ 1.1)". */
export function describeDecision(d: RouteDecision, names: readonly string[]): string {
  if (d.chosen.length === 0) {
    const i = d.distances.indexOf(Math.min(...d.distances));
    return `base (nearest: ${names[i]}, d² ${d.distances[i].toFixed(2)} ≥ τ ${d.threshold.toFixed(2)})`;
  }
  if (d.chosen.length === 1) return `${d.chosen[0].name} (d² ${d.chosen[0].distance.toFixed(2)} < τ ${d.threshold.toFixed(2)})`;
  return d.chosen.map((c) => `${c.name} ${c.weight.toFixed(2)}`).join(' + ');
}

/** A router over signed entries, its threshold calibrated on a general prompt file (default DEFAULT_CALIBRATION)
 *  unless opts.threshold fixes it. Returns the router and a line saying how τ was set. */
export function calibratedRouter(model: LlamaModel, tokenizer: Tokenizer, entries: readonly SignedEntry[], opts: PromptRouterOptions & { calibration?: string; quantile?: number } = {}): { router: PromptRouter; note: string } {
  const router = new PromptRouter(entries, opts);
  if (opts.threshold !== undefined) return { router, note: `threshold τ = ${opts.threshold} (given)` };
  const file = opts.calibration ?? DEFAULT_CALIBRATION;
  const q = opts.quantile ?? ROUTE_DEFAULTS.quantile;
  const general = evenSample(readPromptFile(file), CALIBRATION_PROMPTS);
  const tau = router.calibrate(promptFeatures(model, tokenizer, general, router.layer), q);
  return { router, note: `threshold τ = ${tau.toFixed(3)}: the ${q} quantile of the nearest-signature distance of ${general.length} general prompts (${file})` };
}
