// The serving engine: one base model in memory, named LoRA adapters, and a running batch of requests, each with
// its own adapter stack. Requests join and leave the batch at token boundaries (continuous batching): each tick
// runs prompt chunks of newcomers up to PREFILL_CHUNK positions (so a long prompt never stalls the running streams
// for long, and many short ones start together), then one decode step of every running row together (decodeRows: the base products shared by
// the batch, the low-rank products grouped by adapter, the Punica / S-LoRA idea). Every row gets the bits it would
// get alone, so a request's tokens and logprobs do not depend on what shares its batch, and equal those of
// `nomoat generate` with the same stack (the same prefill chunks, the same one-row arithmetic).
//
// The engine is transport-free: the HTTP layer (./http.ts) turns OpenAI requests into CompletionRequests.

import { noGrad, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { linearOf, type LoraAdapter } from '../lora/adapter.js';
import type { LoraLinear } from '../lora/layer.js';
import { decodeRows, logitsRows } from '../models/decode.js';
import { PREFILL_CHUNK, prefillChunk, TextStream } from '../models/generate.js';
import { KVCache } from '../models/kvcache.js';
import type { Linear, LinearDelta } from '../models/linear.js';
import type { LlamaModel } from '../models/llama.js';
import { Sampler, SAMPLING_DEFAULTS, type SamplingConfig } from '../models/sampling.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** One adapter of a request's stack, at its scale. */
export interface AdapterRef {
  name: string;
  scale: number;
}

export interface CompletionRequest {
  /** prompt token ids (chat template already applied) */
  prompt: readonly number[];
  /** adapters applied in this order (empty: the base alone) */
  adapters: readonly AdapterRef[];
  maxTokens: number;
  sampling: Partial<SamplingConfig>;
  /** ids that end the reply (default: the tokenizer's stop ids) */
  stopTokens?: readonly number[];
  stopStrings?: readonly string[];
  /** undefined: no logprobs; n ≥ 0: each token's logprob and the n most likely alternatives */
  topLogprobs?: number;
}

/** A token with its log-probability under the model (log-softmax of the raw logits). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}

/** What a request receives for each token it generates (stop token excluded). */
export interface TokenEvent {
  id: number;
  /** text newly safe to show (may be '': an incomplete character, or a tail that may turn into a stop string) */
  text: string;
  logprob: TokenLogprob | null;
}

export interface CompletionResult {
  tokens: number[];
  text: string;
  /** OpenAI's: 'stop' (stop token or string), 'length' (max tokens or a full context) */
  finishReason: 'stop' | 'length';
  promptTokens: number;
  logprobs: TokenLogprob[] | null;
  /** milliseconds from submit to the first token */
  timeToFirstTokenMs: number;
}

export type EngineErrorCode = 'queue_full' | 'context_length' | 'unknown_adapter' | 'bad_request' | 'cancelled' | 'timeout' | 'shutting_down' | 'kv_budget';

/** A request the engine refused or stopped, with a code the HTTP layer maps to a status. */
export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    /** the request field at fault, if one is */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export interface EngineOptions {
  /** rows in the running batch (default 4) */
  parallel: number;
  /** positions one request may use, prompt and reply (default: the model's, at most 4096) */
  contextSize: number;
  /** requests waiting for a row before new ones are refused (default 64) */
  maxQueue: number;
  /** bytes of KV cache the running rows may hold together (default: parallel full-context rows) */
  kvBudgetBytes: number;
  /** a request running longer is stopped with 'timeout' (default 600 000 ms; 0 = never) */
  requestTimeoutMs: number;
}

export interface SubmitHooks {
  onToken?: (ev: TokenEvent) => void;
  /** aborting frees the request's row at the next token boundary; the promise rejects with 'cancelled' */
  signal?: AbortSignal;
}

/** Counters for /metrics. */
export interface EngineStats {
  requests: number;
  completed: number;
  failed: number;
  promptTokens: number;
  generatedTokens: number;
  queued: number;
  running: number;
  /** rows in the last decode step */
  batchRows: number;
  ttftSumMs: number;
  ttftCount: number;
  interTokenSumMs: number;
  interTokenCount: number;
  kvBytes: number;
}

interface Row {
  req: CompletionRequest;
  hooks: SubmitHooks;
  resolve: (r: CompletionResult) => void;
  reject: (e: Error) => void;
  stack: { adapter: LoraAdapter; scale: number }[];
  cache: KVCache | null;
  cacheBytes: number;
  prefilled: number; // prompt positions in the cache
  sampler: Sampler;
  stopIds: Set<number>;
  decoder: ReturnType<Tokenizer['createDecoder']>;
  stream: TextStream;
  history: number[];
  tokens: number[];
  logprobs: TokenLogprob[] | null;
  last: number; // the token to feed next
  submittedAt: number;
  firstTokenAt: number | null;
  lastTokenAt: number;
  deadline: number;
  stopped: EngineError | null;
  finish: 'stop' | 'length' | null;
}

const now = (): number => performance.now();
/** KV caches are made in multiples of this many positions, so that ended rows' caches fit later requests */
const KV_STEP = 64;

export class ServeEngine {
  readonly options: EngineOptions;
  private readonly adapters = new Map<string, LoraAdapter>();
  /** per (adapter, scale), per linear: the delta object rows share (grouping in decodeRows is by identity); weak, so
   *  an adapter removed while rows still used it is forgotten with it */
  private readonly scaled = new WeakMap<LoraAdapter, Map<number, Map<Linear, LinearDelta>>>();
  private readonly queue: Row[] = [];
  private readonly running: Row[] = [];
  private readonly scratch = new Map<string, Tensor>();
  /** KV caches of ended rows, kept for the next ones (sizes in steps of KV_STEP positions): steady memory from
   *  request to request instead of a fresh allocation each (which fragments the native heap) */
  private readonly pool: KVCache[] = [];
  private scheduled = false;
  private closing = false;
  private drainWaiters: (() => void)[] = [];
  private readonly counters: EngineStats = {
    requests: 0, completed: 0, failed: 0, promptTokens: 0, generatedTokens: 0, queued: 0, running: 0, batchRows: 0, ttftSumMs: 0,
    ttftCount: 0, interTokenSumMs: 0, interTokenCount: 0, kvBytes: 0,
  };

  constructor(
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    opts: Partial<EngineOptions> = {},
  ) {
    const parallel = opts.parallel ?? 4;
    const contextSize = opts.contextSize ?? Math.min(model.config.maxPositionEmbeddings, 4096);
    for (const [k, v] of [['parallel', parallel], ['contextSize', contextSize]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`serve: ${k} must be a positive integer, got ${v}`);
    }
    this.options = {
      parallel, contextSize, maxQueue: opts.maxQueue ?? 64, kvBudgetBytes: opts.kvBudgetBytes ?? parallel * this.cacheBytes(contextSize),
      requestTimeoutMs: opts.requestTimeoutMs ?? 600_000,
    };
  }

  // ---- adapters ------------------------------------------------------------------------------------------------

  /** Makes an adapter available by name (its base is checked by whoever loaded it). */
  addAdapter(name: string, adapter: LoraAdapter): void {
    if (this.adapters.has(name)) throw new EngineError('bad_request', `an adapter named "${name}" is already loaded`, 'lora_name');
    adapter.checkModel(this.model);
    this.adapters.set(name, adapter);
  }

  /** Forgets an adapter: new requests cannot name it; running ones keep it until they end. Returns it, or null. */
  removeAdapter(name: string): LoraAdapter | null {
    const a = this.adapters.get(name);
    if (a === undefined) return null;
    this.adapters.delete(name);
    return a;
  }

  adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  getAdapter(name: string): LoraAdapter | undefined {
    return this.adapters.get(name);
  }

  /** True when some running or queued request uses the adapter. */
  inUse(adapter: LoraAdapter): boolean {
    return [...this.running, ...this.queue].some((r) => r.stack.some((s) => s.adapter === adapter));
  }

  // ---- requests --------------------------------------------------------------------------------------------------

  /** Queues a request; resolves when it ends, calling hooks.onToken for each token as it is generated. */
  submit(req: CompletionRequest, hooks: SubmitHooks = {}): Promise<CompletionResult> {
    return new Promise((resolve, reject) => {
      try {
        const row = this.admit(req, hooks, resolve, reject);
        this.counters.requests++;
        this.queue.push(row);
        hooks.signal?.addEventListener('abort', () => this.cancel(row, new EngineError('cancelled', 'the client went away')), { once: true });
        this.schedule();
      } catch (e) {
        this.counters.failed++;
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  stats(): EngineStats {
    return { ...this.counters, queued: this.queue.length, running: this.running.length, kvBytes: this.running.reduce((s, r) => s + r.cacheBytes, 0) };
  }

  /** Stops taking requests and resolves when every queued and running one has ended. */
  drain(): Promise<void> {
    this.closing = true;
    if (this.queue.length === 0 && this.running.length === 0) return Promise.resolve();
    return new Promise((res) => this.drainWaiters.push(res));
  }

  /** Ends every request (rejected with 'shutting_down') and frees the caches and work buffers. */
  dispose(): void {
    this.closing = true;
    for (const r of [...this.queue, ...this.running]) this.end(r, new EngineError('shutting_down', 'the server is shutting down'));
    for (const t of this.scratch.values()) t.dispose();
    this.scratch.clear();
    for (const c of this.pool.splice(0)) c.dispose();
  }

  private admit(req: CompletionRequest, hooks: SubmitHooks, resolve: Row['resolve'], reject: Row['reject']): Row {
    if (this.closing) throw new EngineError('shutting_down', 'the server is shutting down');
    const V = this.model.config.vocabSize;
    if (req.prompt.length === 0) throw new EngineError('bad_request', 'the prompt is empty', 'prompt');
    if (req.prompt.some((id) => !Number.isInteger(id) || id < 0 || id >= V)) throw new EngineError('bad_request', `prompt token ids must be integers in [0, ${V})`, 'prompt');
    if (req.prompt.length >= this.options.contextSize) {
      throw new EngineError('context_length', `the prompt has ${req.prompt.length} tokens; this server's context is ${this.options.contextSize} (prompt and reply together)`, 'messages');
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new EngineError('bad_request', 'max_tokens must be an integer ≥ 1', 'max_tokens');
    const seen = new Set<LoraAdapter>();
    const stack = req.adapters.map(({ name, scale }) => {
      const adapter = this.adapters.get(name);
      if (adapter === undefined) throw new EngineError('unknown_adapter', `no adapter named "${name}" is loaded`, 'adapters');
      if (seen.has(adapter)) throw new EngineError('bad_request', `adapter "${name}" appears twice in the stack`, 'adapters');
      if (!Number.isFinite(scale)) throw new EngineError('bad_request', `adapter "${name}": scale must be a finite number`, 'adapters');
      seen.add(adapter);
      return { adapter, scale };
    });
    if (this.queue.length >= this.options.maxQueue) throw new EngineError('queue_full', `the queue is full (${this.options.maxQueue} waiting); retry later`);
    const t = now();
    return {
      req, hooks, resolve, reject, stack, cache: null, cacheBytes: 0, prefilled: 0,
      sampler: new Sampler({ ...SAMPLING_DEFAULTS, ...req.sampling }),
      stopIds: new Set(req.stopTokens ?? this.tokenizer.stopIds),
      decoder: this.tokenizer.createDecoder(),
      stream: new TextStream(req.stopStrings ?? []),
      history: [...req.prompt], tokens: [], logprobs: req.topLogprobs === undefined ? null : [], last: -1,
      submittedAt: t, firstTokenAt: null, lastTokenAt: t,
      deadline: this.options.requestTimeoutMs > 0 ? t + this.options.requestTimeoutMs : Infinity, stopped: null, finish: null,
    };
  }

  /** Keeps an ended row's cache for the next rows while running + pooled caches stay within the KV budget. */
  private release(cache: KVCache): void {
    const used = this.running.reduce((s, r) => s + r.cacheBytes, 0);
    if (this.closing || used + this.pooledBytes() + this.cacheBytes(cache.maxLength) > this.options.kvBudgetBytes) cache.dispose();
    else this.pool.push(cache);
  }

  private pooledBytes(): number {
    return this.pool.reduce((s, c) => s + this.cacheBytes(c.maxLength), 0);
  }

  private cacheBytes(positions: number): number {
    const c = this.model.config;
    return 2 * c.numLayers * positions * c.numKvHeads * c.headDim * 4;
  }

  private cancel(row: Row, why: EngineError): void {
    row.stopped ??= why;
    const q = this.queue.indexOf(row);
    if (q >= 0) { // not started: end it now
      this.queue.splice(q, 1);
      this.end(row, why);
    }
    this.schedule(); // a running row ends at the next token boundary
  }

  // ---- the loop ----------------------------------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.tick();
      } catch (e) { // an engine bug: fail the running requests rather than the process
        const err = e instanceof Error ? e : new Error(String(e));
        for (const r of [...this.running]) this.end(r, err);
      }
      if (this.queue.length > 0 || this.running.length > 0) this.schedule();
      else this.drained();
    });
  }

  private drained(): void {
    if (!this.closing) return;
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Prompt chunks of newcomers (up to PREFILL_CHUNK positions), then one decode step of every running row. */
  private tick(): void {
    const t = now();
    for (const r of [...this.running]) {
      if (r.stopped === null && t > r.deadline) r.stopped = new EngineError('timeout', `the request ran past ${this.options.requestTimeoutMs} ms`);
      if (r.stopped !== null) this.end(r, r.stopped);
    }
    this.admitRows();
    // prompt chunks of newcomers, first come first served, until PREFILL_CHUNK positions are done this tick (whole
    // chunks only: their boundaries are generate's, so the bits are too); short prompts join together
    let budget = PREFILL_CHUNK;
    for (const r of this.running) {
      if (budget <= 0) break;
      if (r.cache === null || r.prefilled >= r.req.prompt.length) continue;
      budget -= this.prefillStep(r);
    }
    const decoding = this.running.filter((r) => r.cache !== null && r.prefilled === r.req.prompt.length && r.finish === null && r.stopped === null);
    if (decoding.length > 0) this.decodeStep(decoding);
  }

  /** Moves queued requests into the batch while rows and KV budget allow (first come, first served). */
  private admitRows(): void {
    while (this.queue.length > 0 && this.running.length < this.options.parallel) {
      const row = this.queue[0];
      const needed = Math.min(this.options.contextSize, row.req.prompt.length + row.req.maxTokens);
      const pooled = this.pool.filter((c) => c.maxLength >= needed).sort((a, b) => a.maxLength - b.maxLength)[0];
      const positions = pooled?.maxLength ?? Math.min(this.options.contextSize, Math.ceil(needed / KV_STEP) * KV_STEP);
      const bytes = this.cacheBytes(positions);
      const used = this.running.reduce((s, r) => s + r.cacheBytes, 0);
      // pooled caches give way to a request that needs the memory
      while (pooled === undefined && this.pool.length > 0 && used + bytes + this.pooledBytes() > this.options.kvBudgetBytes) this.pool.shift()?.dispose();
      if (used + bytes > this.options.kvBudgetBytes) {
        if (this.running.length === 0) { // it can never fit
          this.queue.shift();
          this.end(row, new EngineError('kv_budget', `the request needs ${bytes} bytes of KV cache, more than the budget of ${this.options.kvBudgetBytes}`));
          continue;
        }
        return; // wait for a row to end
      }
      this.queue.shift();
      if (pooled !== undefined) {
        this.pool.splice(this.pool.indexOf(pooled), 1);
        pooled.truncate(0);
      }
      row.cache = pooled ?? new KVCache(this.model.config, 1, positions);
      row.cacheBytes = bytes;
      this.running.push(row);
    }
  }

  /** One prompt chunk of a row; returns its positions. */
  private prefillStep(row: Row): number {
    const cache = row.cache;
    if (cache === null) return 0;
    const ids = Int32Array.from(row.req.prompt);
    const T = ids.length;
    const tc = Math.min(PREFILL_CHUNK, T - row.prefilled);
    const last = row.prefilled + tc === T;
    // the request's stack is attached for this call only (nothing else runs meanwhile: the engine is synchronous)
    const attached: LoraAdapter[] = [];
    let logits: Float32Array | null;
    try {
      for (const { adapter, scale } of row.stack) {
        adapter.attach(this.model, { scale, checkBase: false });
        attached.push(adapter);
      }
      logits = prefillChunk(this.model, ids, 1, T, row.prefilled, tc, cache, last);
    } finally {
      for (const a of attached.reverse()) a.detach();
    }
    row.prefilled += tc;
    this.counters.promptTokens += tc;
    if (logits !== null) this.accept(row, logits);
    return tc;
  }

  private decodeStep(rows: Row[]): void {
    const ids = Int32Array.from(rows, (r) => r.last);
    const caches = rows.map((r) => r.cache as KVCache);
    const deltasOf = (lin: Linear, r: number): readonly LinearDelta[] => this.rowDeltas(rows[r], lin);
    const V = this.model.lmHead.outFeatures;
    const logits = this.buf('logits', rows.length * V); // read before the next step reuses it
    noGrad(() => tidy(() => logitsRows(this.model, decodeRows(this.model, ids, caches, (n, k) => this.buf(n, k), deltasOf), logits)));
    this.counters.batchRows = rows.length;
    rows.forEach((r, i) => this.accept(r, logits.subarray(i * V, (i + 1) * V)));
  }

  /** A row's deltas on one linear, in stack order; one shared object per (adapter, scale, linear). */
  private rowDeltas(row: Row, lin: Linear): readonly LinearDelta[] {
    if (row.stack.length === 0) return [];
    const out: LinearDelta[] = [];
    for (const { adapter, scale } of row.stack) {
      let byScale = this.scaled.get(adapter);
      if (byScale === undefined) this.scaled.set(adapter, (byScale = new Map<number, Map<Linear, LinearDelta>>()));
      let byLinear = byScale.get(scale);
      if (byLinear === undefined) {
        byLinear = new Map();
        for (const m of adapter.modules.values()) byLinear.set(linearOf(this.model, m.name), scaledDelta(m, scale));
        byScale.set(scale, byLinear);
      }
      const d = byLinear.get(lin);
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  private buf(name: string, n: number): Float32Array {
    let t = this.scratch.get(name);
    if (t === undefined || t.size < n) {
      t?.dispose();
      t = Tensor.zeros([n], this.model.norm.backend).keep();
      this.scratch.set(name, t);
    }
    return (t.data as Float32Array).subarray(0, n);
  }

  /** Samples the row's next token from its logits, streams it, and ends the row when it is done. */
  private accept(row: Row, logits: Float32Array): void {
    const t = now();
    if (row.firstTokenAt === null) {
      row.firstTokenAt = t;
      this.counters.ttftSumMs += t - row.submittedAt;
      this.counters.ttftCount++;
    } else {
      this.counters.interTokenSumMs += t - row.lastTokenAt;
      this.counters.interTokenCount++;
    }
    row.lastTokenAt = t;
    const id = row.sampler.sample(logits, row.history);
    row.history.push(id);
    row.last = id;
    if (row.stopIds.has(id)) {
      row.finish = 'stop';
    } else {
      row.tokens.push(id);
      this.counters.generatedTokens++;
      const lp = row.logprobs === null ? null : tokenLogprob(logits, id, row.req.topLogprobs ?? 0);
      if (lp !== null) row.logprobs?.push(lp);
      const text = row.stream.push(row.decoder.push(id));
      row.hooks.onToken?.({ id, text, logprob: lp });
      if (row.stream.stopped) row.finish = 'stop';
      else if (row.tokens.length >= row.req.maxTokens || (row.cache?.length ?? 0) + 1 > (row.cache?.maxLength ?? 0)) row.finish = 'length';
    }
    if (row.finish !== null) this.end(row, null);
  }

  /** Frees the row and settles its promise: with its result, or with the error that stopped it. */
  private end(row: Row, err: Error | null): void {
    const i = this.running.indexOf(row);
    if (i >= 0) this.running.splice(i, 1);
    if (row.cache !== null) this.release(row.cache);
    row.cache = null;
    row.cacheBytes = 0;
    if (err !== null) {
      this.counters.failed++;
      row.reject(err);
    } else {
      if (!row.stream.stopped) {
        const tail = row.stream.finish(row.decoder.flush());
        if (tail !== '') row.hooks.onToken?.({ id: -1, text: tail, logprob: null });
      }
      this.counters.completed++;
      row.resolve({
        tokens: row.tokens, text: row.stream.text, finishReason: row.finish ?? 'length', promptTokens: row.req.prompt.length, logprobs: row.logprobs,
        timeToFirstTokenMs: (row.firstTokenAt ?? now()) - row.submittedAt,
      });
    }
    if (this.queue.length === 0 && this.running.length === 0) this.drained();
  }
}

/** A module's delta at a request's scale (forwardScaled: the arithmetic of forward() at that scale). */
function scaledDelta(m: LoraLinear, scale: number): LinearDelta {
  return { forward: (x) => m.forwardScaled(x, scale), lowRank: () => ({ A: m.A, B: m.B, k: m.scaling * scale }) };
}

/** log-softmax of the raw logits at `id`, and the n most likely tokens with theirs (ties by lower id). */
export function tokenLogprob(logits: ArrayLike<number>, id: number, n: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const top: { id: number; logprob: number }[] = [];
  if (n > 0) {
    // a running list of the n largest (n is small: OpenAI allows up to 20)
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (top.length === n && v <= top[n - 1].logprob) continue;
      let k = top.length;
      while (k > 0 && top[k - 1].logprob < v) k--;
      top.splice(k, 0, { id: i, logprob: v });
      if (top.length > n) top.pop();
    }
    for (const t of top) t.logprob -= lse;
  }
  return { id, logprob: logits[id] - lse, top };
}
