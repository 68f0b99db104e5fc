// Text generation: batched prefill of the prompt into a KV cache, then one token at a time, with sampling, stop
// tokens, stop strings and streaming. Several sequences run in one batch when their prompts have equal length.

import { noGrad, tidy } from '../engine/context.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { KVCache } from './kvcache.js';
import type { LlamaModel } from './llama.js';
import { Sampler, SAMPLING_DEFAULTS, type SamplingConfig } from './sampling.js';

export interface GenerateOptions {
  maxTokens: number; // -n (default 128)
  sampling: Partial<SamplingConfig>;
  /** Token ids that end a sequence (default: the tokenizer's EOS and end-of-turn ids). */
  stopTokens?: readonly number[];
  /** Strings that end a sequence; the text is cut before them. */
  stopStrings?: readonly string[];
  /** Called with each new piece of text of sequence i as soon as it is complete UTF-8. */
  onText?: (text: string, sequence: number) => void;
  /** Context size of the KV cache (default: prompt + maxTokens; a session's own size when one is given). */
  contextSize?: number;
  /** One sequence's KV cache kept across calls (a chat): the prompt's prefix already cached is not computed again. */
  session?: GenerationSession;
}

/**
 * A KV cache kept between generate calls of one sequence, as llama.cpp's server keeps a slot's cache: each call
 * reuses the longest prefix its prompt shares with the tokens the cache holds (in a chat, every earlier turn), and
 * only the rest of the prompt is prefilled. The cache belongs to one model with one set of adapters: reset() after
 * changing either.
 */
export class GenerationSession {
  private cache: KVCache | null = null;
  /** the ids whose keys/values the cache holds, position by position */
  private ids: number[] = [];
  /** prompt positions the last call took from the cache */
  reused = 0;

  constructor(
    readonly model: LlamaModel,
    /** positions the cache holds at most (prompt + reply of any one call must fit) */
    readonly contextSize: number,
  ) {
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new Error(`GenerationSession: context size must be a positive integer, got ${contextSize}`);
  }

  /** The cache, cut back to the longest prefix shared with prompt (at least one prompt token is always left to run). */
  take(prompt: readonly number[]): { cache: KVCache; start: number } {
    this.cache ??= new KVCache(this.model.config, 1, this.contextSize);
    let k = 0;
    const most = Math.min(this.ids.length, this.cache.length, prompt.length - 1);
    while (k < most && this.ids[k] === prompt[k]) k++;
    this.cache.truncate(k);
    this.ids.length = k;
    this.reused = k;
    return { cache: this.cache, start: k };
  }

  /** Records what the cache holds after a call: the sequence's ids up to the cache's length. */
  record(sequence: readonly number[]): void {
    const n = this.cache?.length ?? 0;
    this.ids = sequence.slice(0, n);
  }

  /** Forgets everything cached (the buffers are kept for reuse). */
  reset(): void {
    this.cache?.truncate(0);
    this.ids = [];
    this.reused = 0;
  }

  dispose(): void {
    this.cache?.dispose();
    this.cache = null;
    this.ids = [];
  }
}

/**
 * Prompt positions per forward call. A long prompt is prefilled in chunks of this many, as llama.cpp does in
 * micro-batches: a server interleaves them with the steps of its running streams, and generate uses the same
 * chunks, so that both compute the same bits for the same prompt.
 */
export const PREFILL_CHUNK = 256;

/**
 * Positions [t0, t0 + tc) of ids[B, T] through the model into the cache (which holds the t0 before them): the last
 * position's logits [B, V] when this is the prompt's last chunk (`last`), else nothing (no LM head).
 */
export function prefillChunk(model: LlamaModel, ids: Int32Array, B: number, T: number, t0: number, tc: number, cache: KVCache, last: boolean): Float32Array | null {
  const part = new Int32Array(B * tc);
  for (let b = 0; b < B; b++) part.set(ids.subarray(b * T + t0, b * T + t0 + tc), b * tc);
  return noGrad(() => tidy(() => {
    if (last) return model.forwardLast(part, B, tc, cache).toArray();
    model.hidden(part, B, tc, cache);
    return null;
  }));
}

/** ids[B, T] through the model into the cache, PREFILL_CHUNK positions at a time; the last position's logits [B, V]. */
export function prefill(model: LlamaModel, ids: Int32Array, B: number, T: number, cache: KVCache): Float32Array {
  let logits: Float32Array | null = null;
  for (let t0 = 0; t0 < T; t0 += PREFILL_CHUNK) {
    const tc = Math.min(PREFILL_CHUNK, T - t0);
    logits = prefillChunk(model, ids, B, T, t0, tc, cache, t0 + tc === T);
  }
  if (logits === null) throw new Error('prefill: no prompt positions');
  return logits;
}

export interface Generation {
  tokens: number[]; // generated ids (stop token excluded)
  text: string;
  stopReason: 'stop_token' | 'stop_string' | 'length';
  promptTokens: number;
}

/** Generates continuations of prompts given as token ids. */
export function generateTokens(model: LlamaModel, tokenizer: Tokenizer | null, prompts: readonly number[][], opts: Partial<GenerateOptions> = {}): Generation[] {
  if (prompts.length === 0) return [];
  const len = prompts[0].length;
  if (prompts.some((p) => p.length !== len)) {
    // Different lengths would need per-row masks in the batch: run them one by one instead.
    return prompts.flatMap((p, i) => generateTokens(model, tokenizer, [p], { ...opts, onText: opts.onText && ((t) => opts.onText!(t, i)) }));
  }
  if (len === 0) throw new Error('generate: empty prompt (add a BOS token or some text)');
  const maxTokens = opts.maxTokens ?? 128;
  const B = prompts.length;
  const session = opts.session;
  if (session !== undefined && B !== 1) throw new Error(`generate: a session holds one sequence, got ${B} prompts`);
  // by config: CLI timing wrappers are objects derived from the model (Object.create), sharing its config
  if (session !== undefined && session.model.config !== model.config) throw new Error('generate: the session belongs to another model');
  const stopIds = new Set(opts.stopTokens ?? tokenizer?.stopIds ?? []);
  const stopStrings = opts.stopStrings ?? [];
  const samplers = prompts.map((_, i) => new Sampler({ ...SAMPLING_DEFAULTS, ...opts.sampling, seed: (opts.sampling?.seed ?? SAMPLING_DEFAULTS.seed) + i }));
  const decoders = prompts.map(() => tokenizer?.createDecoder());
  const out: Generation[] = prompts.map(() => ({ tokens: [], text: '', stopReason: 'length', promptTokens: len }));
  const done = prompts.map(() => false);
  const streams = prompts.map(() => new TextStream(stopStrings));
  const history = prompts.map((p) => [...p]);
  const { cache, start } = session !== undefined ? session.take(prompts[0]) : { cache: new KVCache(model.config, B, opts.contextSize ?? len + maxTokens), start: 0 };
  try {
    let input = Int32Array.from(start > 0 ? prompts[0].slice(start) : prompts.flat());
    let T = len - start;
    for (let step = 0; step < maxTokens && done.includes(false); step++) {
      const logits = step === 0 ? prefill(model, input, B, T, cache) : noGrad(() => tidy(() => model.forwardLast(input, B, T, cache).toArray())); // [B, V]
      const V = logits.length / B;
      const next = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const id = samplers[b].sample(logits.subarray(b * V, (b + 1) * V), history[b]);
        next[b] = id;
        history[b].push(id);
        const g = out[b];
        if (stopIds.has(id)) {
          g.stopReason = 'stop_token';
          done[b] = true;
          continue;
        }
        g.tokens.push(id);
        const piece = decoders[b]?.push(id) ?? '';
        if (piece !== '') emit(g, piece, b);
      }
      input = next;
      T = 1;
    }
    prompts.forEach((_, b) => finish(out[b], b));
  } finally {
    if (session !== undefined) session.record(history[0]);
    else cache.dispose();
  }
  return out;

  function emit(g: Generation, piece: string, b: number): void {
    if (done[b]) return;
    const shown = streams[b].push(piece);
    g.text = streams[b].text;
    if (streams[b].stopped) {
      g.stopReason = 'stop_string';
      done[b] = true;
    }
    if (shown !== '') opts.onText?.(shown, b);
  }

  /** Flushes the decoder and the held-back tail of a sequence that did not end on a stop string. */
  function finish(g: Generation, b: number): void {
    if (g.stopReason === 'stop_string') return;
    const shown = streams[b].finish(decoders[b]?.flush() ?? '');
    g.text = streams[b].text;
    if (streams[b].stopped) g.stopReason = 'stop_string';
    if (shown !== '') opts.onText?.(shown, b);
    done[b] = true;
  }
}

/**
 * The text of one sequence as its tokens arrive, cut at the first stop string: push() returns what may be shown
 * now, holding back any tail that could still grow into a stop string, so none is ever shown.
 */
export class TextStream {
  text = '';
  /** a stop string appeared: the text ends before it */
  stopped = false;
  private streamed = 0;

  constructor(private readonly stopStrings: readonly string[]) {}

  /** Appends a piece of decoded text; returns the part newly safe to show ('' when none). */
  push(piece: string): string {
    if (this.stopped) return '';
    const before = this.text.length;
    this.text += piece;
    for (const s of this.stopStrings) {
      const at = s === '' ? -1 : this.text.indexOf(s, Math.max(0, before - s.length + 1));
      if (at >= 0) {
        this.text = this.text.slice(0, at);
        this.stopped = true;
        break;
      }
    }
    const safe = this.stopped ? this.text.length : this.text.length - this.heldTail();
    if (safe <= this.streamed) return '';
    const shown = this.text.slice(this.streamed, safe);
    this.streamed = safe;
    return shown;
  }

  /** The sequence ended (not on a stop string): the decoder's last piece, then everything held back. */
  finish(tail: string): string {
    let shown = this.push(tail);
    if (this.text.length > this.streamed) shown += this.text.slice(this.streamed);
    this.streamed = this.text.length;
    return shown;
  }

  private heldTail(): number {
    let hold = 0;
    for (const s of this.stopStrings) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }
}

/** Generates from a text prompt (encoded with the tokenizer's default BOS handling). */
export function generate(model: LlamaModel, tokenizer: Tokenizer, prompt: string, opts: Partial<GenerateOptions> = {}): Generation {
  const ids = tokenizer.encode(prompt, { parseSpecial: true });
  return generateTokens(model, tokenizer, [ids], opts)[0];
}
