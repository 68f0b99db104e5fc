// POST /v1/chat/completions and /v1/completions: a validated request becomes engine requests (one per prompt and
// choice), and their results become OpenAI's response, or its server-sent events as tokens arrive. The engine
// knows nothing of HTTP; this file knows nothing of batching.

import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SamplingConfig } from '../models/sampling.js';
import { chatPromptIds, type ChatMessage } from '../tokenizer/chat.js';
import { EngineError, type AdapterRef, type CompletionResult, type ServeEngine, type TokenEvent, type TokenLogprob } from './engine.js';
import {
  ApiError, type ChatLogprobs, type ChatRequest, type ChatRequestMessage, type ChatTokenLogprob, type CompletionLogprobs, type CompletionRequest,
  type FinishReason, type Usage,
} from './protocol.js';
import type { ModelRegistry } from './registry.js';

export interface GenerationDeps {
  engine: ServeEngine;
  registry: ModelRegistry;
  /** the base's id: the `model` echoed when a request names none */
  modelId: string;
}

/** What both endpoints turn a request into. */
export interface Plan {
  model: string;
  /** prompt token ids, one list per prompt (chat: one) */
  prompts: number[][];
  stack: AdapterRef[];
  /** per prompt */
  maxTokens: number[];
  sampling: SamplingConfig;
  n: number;
  stop: string[];
  /** vLLM's and llama.cpp's ignore_eos: only max_tokens, the context or a stop string end the reply */
  ignoreEos: boolean;
  /** engine's topLogprobs: undefined = none */
  topLogprobs: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

/** How one endpoint writes its choices. */
export interface Format {
  object: 'chat.completion' | 'text_completion';
  chunkObject: 'chat.completion.chunk' | 'text_completion';
  idPrefix: string;
  /** a choice's first chunk (chat: the assistant role), or null */
  opening(index: number): Record<string, unknown> | null;
  /** a chunk choice for one token event (null: nothing worth sending) */
  token(index: number, ev: TokenEvent, state: ChoiceState): Record<string, unknown> | null;
  closing(index: number, finish: FinishReason): Record<string, unknown>;
  /** the non-streaming choice */
  whole(index: number, r: CompletionResult): Record<string, unknown>;
}

interface ChoiceState {
  /** characters of completion text so far (legacy logprobs' text_offset) */
  offset: number;
}

// ---- requests → plans -----------------------------------------------------------------------------------------------

function commonPlan(deps: GenerationDeps, req: ChatRequest | CompletionRequest, prompts: number[][], promptParam: string, maxTokens: number | null | undefined, routeText: () => string): Omit<Plan, 'topLogprobs'> {
  for (const f of ['presence_penalty', 'frequency_penalty'] as const) {
    if ((req[f] ?? 0) !== 0) throw new ApiError(400, `${f} is not supported (use repetition_penalty, as llama.cpp and vLLM accept)`, 'invalid_request_error', f);
  }
  if (req.adapters != null && req.lora != null) throw new ApiError(400, 'give adapters or lora, not both', 'invalid_request_error', 'lora');
  const { registry, engine } = deps;
  const routed = req.model === 'auto' ? registry.route(routeText()) : null; // --library: the prompt router picks
  const stack = [
    ...(routed?.stack ?? registry.resolve(req.model)),
    ...(req.adapters != null ? registry.named(req.adapters) : []),
    ...(req.lora != null ? registry.byId(req.lora) : []),
  ];
  const ctx = engine.options.contextSize;
  const max = prompts.map((p) => {
    if (p.length === 0) throw new ApiError(400, `${promptParam}: the prompt encodes to no tokens`, 'invalid_request_error', promptParam);
    if (p.length >= ctx) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, your ${promptParam} resulted in ${p.length} tokens (prompt and completion must fit together).`, 'invalid_request_error', promptParam, 'context_length_exceeded');
    }
    const m = maxTokens ?? ctx - p.length;
    if (p.length + m > ctx) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, you requested ${p.length + m} tokens (${p.length} in the ${promptParam}, ${m} for the completion). Please reduce the length of the ${promptParam} or the completion.`, 'invalid_request_error', promptParam, 'context_length_exceeded');
    }
    return m;
  });
  // OpenAI's sampling: temperature 1 and top_p 1 by default, no top-k or min-p (extensions may set them)
  const sampling: SamplingConfig = {
    temperature: req.temperature ?? 1, topP: req.top_p ?? 1, topK: req.top_k ?? 0, minP: req.min_p ?? 0,
    repeatPenalty: req.repetition_penalty ?? 1, repeatLastN: 64, seed: req.seed ?? Math.floor(Math.random() * 2 ** 31),
  };
  const stop = req.stop == null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
  return {
    model: routed?.model ?? req.model ?? deps.modelId, prompts, stack, maxTokens: max, sampling, n: req.n ?? 1, stop, ignoreEos: req.ignore_eos ?? false,
    stream: req.stream ?? false, includeUsage: (req.stream ?? false) && (req.stream_options?.include_usage ?? false),
  };
}

function messageText(m: ChatRequestMessage, i: number): string {
  const c = m.content;
  if (c == null) return '';
  if (typeof c === 'string') return c;
  return c.map((part, j) => {
    if (part.type !== 'text' || part.text === undefined) {
      throw new ApiError(400, `messages[${i}].content[${j}]: only {"type": "text", "text"} parts are supported, got type ${JSON.stringify(part.type)}`, 'invalid_request_error', `messages[${i}].content[${j}].type`);
    }
    return part.text;
  }).join('');
}

export function chatPlan(deps: GenerationDeps, req: ChatRequest): Plan {
  const tok = deps.engine.tokenizer;
  if (tok.chatTemplate === null) throw new ApiError(400, 'this model has no chat template; use POST /v1/completions with a prompt', 'invalid_request_error', 'messages');
  if (req.top_logprobs != null && req.logprobs !== true) throw new ApiError(400, 'top_logprobs needs logprobs: true', 'invalid_request_error', 'top_logprobs');
  const messages: ChatMessage[] = req.messages.map((m, i) => ({
    role: m.role === 'developer' ? 'system' : m.role, content: messageText(m, i), ...(m.name !== undefined ? { name: m.name } : {}),
  }));
  let ids: number[];
  try {
    ids = chatPromptIds(tok, tok.chatTemplate, messages);
  } catch (e) { // raise_exception in a template: roles that do not alternate, a missing system message…
    throw new ApiError(400, `messages: ${e instanceof Error ? e.message : String(e)}`, 'invalid_request_error', 'messages');
  }
  const plan = commonPlan(deps, req, [ids], 'messages', req.max_completion_tokens ?? req.max_tokens, () => [...messages].reverse().find((m) => m.role === 'user')?.content ?? '');
  return { ...plan, topLogprobs: req.logprobs === true ? (req.top_logprobs ?? 0) : undefined };
}

export function completionPlan(deps: GenerationDeps, req: CompletionRequest): Plan {
  if (req.echo === true) throw new ApiError(400, 'echo is not supported', 'invalid_request_error', 'echo');
  if (req.suffix != null && req.suffix !== '') throw new ApiError(400, 'suffix is not supported', 'invalid_request_error', 'suffix');
  const tok = deps.engine.tokenizer;
  const V = deps.engine.model.config.vocabSize;
  const p = req.prompt;
  // a string, a list of strings, a list of ids, or a list of lists of ids (OpenAI's four forms)
  const raw: (string | number[])[] = typeof p === 'string' ? [p] : p.length > 0 && typeof p[0] === 'number' ? [p as number[]] : (p as (string | number[])[]);
  const prompts = raw.map((x, i) => {
    if (typeof x === 'string') return tok.encode(x, { parseSpecial: true });
    const bad = x.findIndex((id) => id >= V);
    if (bad >= 0) throw new ApiError(400, `prompt: token id ${x[bad]} is not below the vocabulary size ${V}`, 'invalid_request_error', raw.length > 1 ? `prompt[${i}][${bad}]` : `prompt[${bad}]`);
    return x;
  });
  const routeText = (): string => (typeof raw[0] === 'string' ? raw[0] : tok.decode(raw[0]));
  const plan = commonPlan(deps, req, prompts, 'prompt', req.max_tokens ?? 16, routeText); // OpenAI's legacy default: 16
  return { ...plan, topLogprobs: req.logprobs ?? undefined };
}

// ---- formats --------------------------------------------------------------------------------------------------------

function tokenText(engine: ServeEngine, id: number): { token: string; bytes: number[] } {
  const b = engine.tokenizer.tokenBytes(id);
  return { token: Buffer.from(b).toString('utf8'), bytes: [...b] };
}

function chatLogprob(engine: ServeEngine, lp: TokenLogprob): ChatTokenLogprob {
  return { ...tokenText(engine, lp.id), logprob: lp.logprob, top_logprobs: lp.top.map((t) => ({ ...tokenText(engine, t.id), logprob: t.logprob })) };
}

function legacyLogprobs(engine: ServeEngine, lps: readonly TokenLogprob[], state: ChoiceState): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const lp of lps) {
    const t = tokenText(engine, lp.id).token;
    out.tokens.push(t);
    out.token_logprobs.push(lp.logprob);
    out.top_logprobs.push(Object.fromEntries(lp.top.map((a) => [tokenText(engine, a.id).token, a.logprob])));
    out.text_offset.push(state.offset);
    state.offset += t.length;
  }
  return out;
}

export function chatFormat(engine: ServeEngine): Format {
  return {
    object: 'chat.completion', chunkObject: 'chat.completion.chunk', idPrefix: 'chatcmpl-',
    opening: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
    token: (index, ev) => {
      if (ev.text === '' && ev.logprob === null) return null;
      const logprobs: ChatLogprobs | null = ev.logprob === null ? null : { content: [chatLogprob(engine, ev.logprob)], refusal: null };
      return { index, delta: { content: ev.text }, logprobs, finish_reason: null };
    },
    closing: (index, finish) => ({ index, delta: {}, logprobs: null, finish_reason: finish }),
    whole: (index, r) => ({
      index, message: { role: 'assistant', content: r.text, refusal: null },
      logprobs: r.logprobs === null ? null : { content: r.logprobs.map((lp) => chatLogprob(engine, lp)), refusal: null }, finish_reason: r.finishReason,
    }),
  };
}

export function completionFormat(engine: ServeEngine): Format {
  return {
    object: 'text_completion', chunkObject: 'text_completion', idPrefix: 'cmpl-',
    opening: () => null,
    token: (index, ev, state) => {
      if (ev.text === '' && ev.logprob === null) return null;
      return { index, text: ev.text, logprobs: ev.logprob === null ? null : legacyLogprobs(engine, [ev.logprob], state), finish_reason: null };
    },
    closing: (index, finish) => ({ index, text: '', logprobs: null, finish_reason: finish }),
    whole: (index, r) => ({ index, text: r.text, logprobs: r.logprobs === null ? null : legacyLogprobs(engine, r.logprobs, { offset: 0 }), finish_reason: r.finishReason }),
  };
}

// ---- running ----------------------------------------------------------------------------------------------------------

/** An engine error as the API's. */
export function apiErrorOf(e: unknown, promptParam: string): unknown {
  if (!(e instanceof EngineError)) return e;
  switch (e.code) {
    case 'queue_full': return new ApiError(429, e.message, 'rate_limit_error', null, 'queue_full');
    case 'shutting_down': return new ApiError(503, e.message, 'service_unavailable', null, 'shutting_down');
    case 'context_length': return new ApiError(400, e.message, 'invalid_request_error', promptParam, 'context_length_exceeded');
    case 'unknown_adapter': return new ApiError(404, `${e.message} (it was unloaded)`, 'invalid_request_error', 'model', 'model_not_found');
    case 'kv_budget': return new ApiError(400, e.message, 'invalid_request_error', 'max_tokens', 'kv_budget_exceeded');
    case 'timeout': return new ApiError(504, e.message, 'timeout', null, 'timeout');
    case 'cancelled': return new ApiError(499, e.message, 'invalid_request_error', null, 'cancelled');
    case 'bad_request': return new ApiError(400, e.message, 'invalid_request_error', e.param);
  }
}

export interface Sink {
  /** the raw response: the route has handed it over (Fastify's reply is hijacked) */
  res: ServerResponse;
  /** aborted when the client goes away */
  signal: AbortSignal;
  /** writes a JSON body with its status (only before anything else was written) */
  json(status: number, body: unknown): void;
  /** writes an error (an ApiError, or a 500 that shows no details and logs the cause) */
  fail(e: unknown): void;
  /** logs an unexpected error (one that ends a stream already started) */
  log(e: unknown): void;
}

/**
 * Submits every choice (prompts × n; choice index = prompt × n + i; seeds seed + i) and answers: one JSON body,
 * or server-sent events (headers written with the first event, so a request refused at once still gets its
 * status). Any choice failing stops the others. Resolves when the answer is written and every row is free.
 */
export async function runPlan(deps: GenerationDeps, plan: Plan, format: Format, sink: Sink): Promise<void> {
  const id = format.idPrefix + randomBytes(12).toString('hex');
  const created = Math.floor(Date.now() / 1000);
  const stop = new AbortController();
  const cancel = (): void => stop.abort();
  sink.signal.addEventListener('abort', cancel, { once: true });
  const res = sink.res;
  let started = false;
  const send = (obj: unknown): void => {
    if (res.destroyed) return;
    if (!started) {
      started = true;
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    }
    res.write(`data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`);
  };
  const chunk = (choices: Record<string, unknown>[], usage?: Usage): void => {
    const c: Record<string, unknown> = { id, object: format.chunkObject, created, model: plan.model, choices };
    if (plan.includeUsage) c.usage = usage ?? null;
    send(c);
  };

  const jobs: Promise<CompletionResult>[] = [];
  plan.prompts.forEach((prompt, p) => {
    for (let i = 0; i < plan.n; i++) {
      const index = p * plan.n + i;
      const state: ChoiceState = { offset: 0 };
      let opened = false;
      const open = (): void => {
        if (opened) return;
        opened = true;
        const o = format.opening(index);
        if (o !== null) chunk([o]);
      };
      const job = deps.engine.submit({
        prompt, adapters: plan.stack, maxTokens: plan.maxTokens[p], sampling: { ...plan.sampling, seed: plan.sampling.seed + i },
        stopStrings: plan.stop, topLogprobs: plan.topLogprobs, ...(plan.ignoreEos ? { stopTokens: [] } : {}),
      }, {
        signal: stop.signal,
        onToken: plan.stream ? (ev) => {
          const c = format.token(index, ev, state);
          if (c === null) return;
          open();
          chunk([c]);
        } : undefined,
      }).then((r) => {
        if (plan.stream && !stop.signal.aborted) {
          open();
          chunk([format.closing(index, r.finishReason)]);
        }
        return r;
      });
      job.catch(cancel); // one choice failing stops the others
      jobs.push(job);
    }
  });

  const settled = await Promise.allSettled(jobs);
  sink.signal.removeEventListener('abort', cancel);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) {
    if (res.destroyed || sink.signal.aborted) return; // the client is gone: nothing to answer
    // the first cause, not the cancellations it caused in the other choices
    const cause = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !(s.reason instanceof EngineError && s.reason.code === 'cancelled')) ?? failed;
    const err = apiErrorOf(cause.reason, format.object === 'chat.completion' ? 'messages' : 'prompt');
    if (!started) return sink.fail(err);
    // mid-stream: an error event, then the end of the stream (as vLLM does)
    if (!(err instanceof ApiError)) sink.log(err);
    send(err instanceof ApiError ? err.body() : { error: { message: 'internal server error', type: 'server_error', param: null, code: null } });
    send('[DONE]');
    res.end();
    return;
  }
  const results = settled.map((s) => (s as PromiseFulfilledResult<CompletionResult>).value);
  const completion = results.reduce((s, r) => s + r.tokens.length, 0);
  const promptTokens = plan.prompts.reduce((s, p) => s + p.length, 0);
  const usage: Usage = { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
  if (!plan.stream) {
    sink.json(200, { id, object: format.object, created, model: plan.model, choices: results.map((r, k) => format.whole(k, r)), usage });
    return;
  }
  if (plan.includeUsage) chunk([], usage);
  send('[DONE]');
  res.end();
}
