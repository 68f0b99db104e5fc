// Best-of-n answering: n seeded samples per prompt from a model nomoat runs (one batch through generate.ts, its chat
// template) or from an OpenAI-compatible endpoint (judge-chat.ts's client, with its retries), each scored by a
// verifier, the top k kept with their provenance. This is rejection sampling / distillation data when the prompts
// come from a file, and the answer step of Self-Instruct when they come from generated tasks.
//
// Seeds: prompt j gets seed base + j·n, its sample i seed base + j·n + i (generate.ts seeds row i of a batch with
// seed + i; an endpoint gets each sample's seed in its request), so every kept example can be regenerated alone.

import { generateTokens } from '../../models/generate.js';
import type { SamplingConfig } from '../../models/sampling.js';
import type { ChatMessage } from '../../tokenizer/chat.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import type { LlamaModel } from '../../models/llama.js';
import { MatchError, type EndpointChat } from '../judge-chat.js';
import { pooled } from '../judge.js';
import type { SynthItem, Verifier } from './verify.js';

/** One sampled reply. */
export interface Sample {
  text: string;
  /** the token limit cut it */
  truncated: boolean;
}

/** What draws samples: a model run here or an endpoint. */
export interface SampleSource {
  /** provenance: the model (path or endpoint model name), its adapters, the endpoint URL */
  readonly info: SourceInfo;
  /** n samples of the reply to messages, sample i seeded seed + i; a prompt that cannot be run throws MatchError */
  sample(messages: readonly ChatMessage[], n: number, seed: number, maxTokens: number, stop?: readonly string[]): Promise<Sample[]>;
  /** false: prompts go in as raw text (a model without a chat template), replies continue them */
  readonly chat: boolean;
}

export interface SourceInfo {
  model: string;
  adapters: { path: string; scale: number }[];
  endpoint?: string;
  temperature: number;
}

/** A model nomoat runs, with its adapters already attached; n samples go through generate as one batch. */
export class LocalSource implements SampleSource {
  readonly chat: boolean;
  constructor(
    readonly info: SourceInfo,
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    /** the prompt ids of a chat (its template), or null to send the last user message as raw text */
    private readonly promptIds: ((messages: readonly ChatMessage[]) => number[]) | null,
    private readonly sampling: Partial<SamplingConfig>,
    private readonly contextSize: number,
  ) {
    this.chat = promptIds !== null;
  }

  ids(messages: readonly ChatMessage[]): number[] {
    if (this.promptIds !== null) return this.promptIds(messages);
    return this.tokenizer.encode(messages.map((m) => m.content).join('\n\n'), { parseSpecial: false });
  }

  sample(messages: readonly ChatMessage[], n: number, seed: number, maxTokens: number, stop: readonly string[] = []): Promise<Sample[]> {
    const ids = this.ids(messages);
    const room = this.contextSize - ids.length;
    if (room < 1) return Promise.reject(new MatchError(`the prompt (${ids.length} tokens) does not fit the context of ${this.contextSize} tokens`));
    const gens = generateTokens(this.model, this.tokenizer, Array.from({ length: n }, () => ids), {
      maxTokens: Math.min(maxTokens, room), sampling: { ...this.sampling, seed }, stopStrings: stop, contextSize: ids.length + Math.min(maxTokens, room),
    });
    return Promise.resolve(gens.map((g) => ({ text: g.text, truncated: g.stopReason === 'length' })));
  }
}

/** An OpenAI-compatible endpoint: n requests (at most `parallel` in flight), sample i with seed + i. */
export class EndpointSource implements SampleSource {
  readonly chat = true;
  constructor(
    readonly info: SourceInfo,
    private readonly client: EndpointChat,
    private readonly topP: number,
    private readonly parallel = 1,
  ) {}

  async sample(messages: readonly ChatMessage[], n: number, seed: number, maxTokens: number, stop: readonly string[] = []): Promise<Sample[]> {
    const seeds = Array.from({ length: n }, (_, i) => seed + i);
    // the chat API does not say whether the limit cut a reply here: never treated as cut
    return pooled(seeds, this.parallel, async (s) => ({
      text: await this.client.complete(messages, maxTokens, { temperature: this.info.temperature, top_p: this.topP, seed: s, ...(stop.length > 0 ? { stop: [...stop] } : {}) }),
      truncated: false,
    }));
  }
}

export interface Provenance {
  model: string;
  /** the adapter stack, in the order applied */
  adapters: { path: string; scale: number }[];
  endpoint?: string;
  temperature: number;
  /** the seed of this sample */
  seed: number;
  /** which of the n samples (0-based) */
  sample: number;
  n: number;
  /** the verifier's score (null: no verifier, n = 1) */
  score: number | null;
  verifier: string | null;
  /** where the prompt came from: "file:line" or "self-instruct:R.I" */
  source: string;
}

export interface BestOfNOptions {
  n: number;
  /** how many of the n to keep, best first */
  keep: number;
  /** keep only samples scoring at least this (rejection sampling) */
  minScore?: number;
  maxTokens: number;
  verifier: Verifier | null;
}

export interface Kept {
  text: string;
  provenance: Provenance;
}

export interface BestOfNResult {
  kept: Kept[];
  /** every sample's score, in sample order */
  scores: (number | null)[];
}

/**
 * n samples of item's reply (seeded from `seed`), scored, the top `keep` (ties: the earlier sample) that have a score
 * and reach minScore. Without a verifier every sample scores null and the first `keep` are kept.
 */
export async function bestOfN(item: SynthItem, source: SampleSource, seed: number, o: BestOfNOptions): Promise<BestOfNResult> {
  const samples = await source.sample(item.messages, o.n, seed, o.maxTokens);
  const texts = samples.map((s) => s.text.trim());
  const scores: (number | null)[] = o.verifier !== null ? await o.verifier.score(item, texts) : texts.map(() => null);
  const passes = (s: number | null): boolean => s !== null && (o.minScore === undefined || s >= o.minScore);
  const order = texts.map((_, i) => i).filter((i) => o.verifier === null || passes(scores[i]));
  order.sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b);
  const { info } = source;
  const kept = order.slice(0, o.keep).map((i): Kept => ({
    text: texts[i],
    provenance: {
      model: info.model, adapters: info.adapters, ...(info.endpoint !== undefined ? { endpoint: info.endpoint } : {}), temperature: info.temperature,
      seed: seed + i, sample: i, n: o.n, score: scores[i], verifier: o.verifier?.name ?? null, source: item.where,
    },
  }));
  return { kept, scores };
}

/** The user message of a task: its instruction, then its input after a blank line (Alpaca's two fields). */
export function taskPrompt(instruction: string, input: string): string {
  return input.trim() === '' ? instruction : `${instruction}\n\n${input}`;
}
