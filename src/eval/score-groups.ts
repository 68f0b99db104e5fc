// Groups of prompts for `data filter --score-groups K`: the model score's --keep-best ranks within each group, not over
// the whole file. A loss ranks difficulty as well as correctness: ranked globally, the records of a task the reference
// finds hard (arithmetic, for a small model) lose to every record of an easy one, right or wrong, and a curated set
// keeps almost none of them. Ranked within groups of similar prompts, each kind of task keeps its best share
// (diversity-aware selection, as DEITA's and SemDeDup's clusters of embeddings).
//
// The groups are k-means clusters of the prompt features the router's signatures use (src/lora/signature.ts: the
// base's hidden state half-way up, mean-pooled over the prompt's tokens, adapters set aside), fitted on the first
// SAMPLE records scored; every later record goes to its nearest center. Held: SAMPLE features while fitting, then K
// centers and two bytes a record.

import type { Conversation } from '../data/types.js';
import { defaultSignatureLayer, kmeans, promptFeatures } from '../lora/signature.js';
import type { LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** Records whose features fit the centers. */
export const GROUP_SAMPLE = 4096;

/** The prompt a record is grouped by: its user turns (a chat), or its start (a plain text). */
export function groupPrompt(item: { conversation: Conversation } | { text: string }): string {
  if ('text' in item) return item.text.slice(0, 2000);
  const user = item.conversation.messages.filter((m) => m.role === 'user').map((m) => m.content);
  return (user.length > 0 ? user : item.conversation.messages.map((m) => m.content)).join('\n').slice(0, 2000);
}

export class PromptGroups {
  private centers: Float64Array[] | null = null;
  /** per-dimension mean and 1/std of the sample: features are standardized (a few outlier dimensions of a hidden
   *  state would otherwise decide every distance) */
  private shift = new Float64Array(0);
  private scale = new Float64Array(0);
  private sample: { index: number; f: Float32Array }[] = [];
  private groups = new Uint16Array(1024);
  private readonly layer: number;

  /** k groups (1 ≤ k ≤ 65535) of prompts under model's base (features at its signature layer). */
  constructor(private readonly model: LlamaModel, private readonly tokenizer: Tokenizer, readonly k: number, private readonly sampleSize = GROUP_SAMPLE) {
    if (!Number.isInteger(k) || k < 1 || k > 65535) throw new Error(`score groups must be an integer in [1, 65535], got ${k}`);
    this.layer = defaultSignatureLayer(model.config.numLayers);
  }

  /** Features of these records' prompts; each is assigned now (centers fitted) or when the sample is full. */
  add(items: readonly { index: number; prompt: string }[]): void {
    const feats = promptFeatures(this.model, this.tokenizer, items.map((x) => (x.prompt.trim() === '' ? '.' : x.prompt)), this.layer);
    items.forEach((x, j) => {
      if (this.centers !== null) this.set(x.index, nearest(this.centers, this.standard(feats[j])));
      else this.sample.push({ index: x.index, f: feats[j] });
    });
    if (this.centers === null && this.sample.length >= this.sampleSize) this.fit();
  }

  /** Fits the centers on what was sampled (when fewer records than the sample came). */
  finish(): void {
    if (this.centers === null && this.sample.length > 0) this.fit();
  }

  /** The group of record i (0 for a record never added). */
  group(i: number): number {
    return i < this.groups.length ? this.groups[i] : 0;
  }

  private fit(): void {
    const raw = this.sample.map((s) => s.f);
    const C = raw[0].length;
    this.shift = new Float64Array(C);
    this.scale = new Float64Array(C);
    for (const f of raw) for (let j = 0; j < C; j++) this.shift[j] += f[j] / raw.length;
    for (const f of raw) for (let j = 0; j < C; j++) this.scale[j] += (f[j] - this.shift[j]) ** 2 / raw.length;
    for (let j = 0; j < C; j++) this.scale[j] = this.scale[j] > 1e-12 ? 1 / Math.sqrt(this.scale[j]) : 0;
    const feats = raw.map((f) => this.standard(f));
    const assign = kmeans(feats, Math.min(this.k, feats.length), new Float64Array(C));
    // the clusters kmeans made (fewer than k when features repeat), renumbered 0… in order of first appearance
    const ids = new Map<number, number>();
    for (const a of assign) if (!ids.has(a)) ids.set(a, ids.size);
    const centers = Array.from({ length: ids.size }, () => new Float64Array(C));
    const counts = new Array<number>(ids.size).fill(0);
    assign.forEach((a, i) => {
      const g = ids.get(a)!;
      counts[g]++;
      for (let j = 0; j < C; j++) centers[g][j] += feats[i][j];
    });
    centers.forEach((c, g) => c.forEach((_, j) => (c[j] /= counts[g])));
    this.centers = centers;
    this.sample.forEach((s, i) => this.set(s.index, ids.get(assign[i])!));
    this.sample = [];
  }

  private standard(f: Float32Array): Float32Array {
    return f.map((v, j) => (v - this.shift[j]) * this.scale[j]);
  }

  private set(i: number, g: number): void {
    if (i >= this.groups.length) {
      const grown = new Uint16Array(Math.max(i + 1, this.groups.length * 2));
      grown.set(this.groups);
      this.groups = grown;
    }
    this.groups[i] = g;
  }
}

function nearest(centers: readonly Float64Array[], f: Float32Array): number {
  let best = 0, bestD = Infinity;
  centers.forEach((c, g) => {
    let d = 0;
    for (let j = 0; j < f.length; j++) d += (f[j] - c[j]) ** 2;
    if (d < bestD) [best, bestD] = [g, d];
  });
  return best;
}
