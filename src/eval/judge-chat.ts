// Who answers and who judges: a chat model behind one small interface, either a model nomoat runs (greedy, with
// its chat template) or any OpenAI-compatible endpoint (POST {url}/chat/completions, temperature 0).

import type { LlamaModel } from '../models/llama.js';
import { generateTokens } from '../models/generate.js';
import { GREEDY } from '../models/sampling.js';
import { chatPromptIds, type ChatMessage } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** A chat model: messages in, the assistant's reply out (greedy / temperature 0). */
export interface ChatBackend {
  /** how judgments and answers name it */
  readonly name: string;
  complete(messages: readonly ChatMessage[], maxTokens: number): Promise<string>;
}

/**
 * A failure of one request that should not stop the run (a prompt too long for the context, a 400 from the
 * endpoint): the match is recorded with FastChat's "$ERROR$" and counted. Anything else thrown stops the run.
 */
export class MatchError extends Error {}

/** A model nomoat runs, prompted through its chat template, decoding greedily. */
export class LocalChat implements ChatBackend {
  readonly contextSize: number;

  constructor(
    readonly name: string,
    readonly model: LlamaModel,
    private readonly tokenizer: Tokenizer,
    private readonly template: string,
    contextSize?: number,
  ) {
    this.contextSize = contextSize ?? model.config.maxPositionEmbeddings;
  }

  /** The prompt ids; a template that refuses a system message (raise_exception) gets it folded into the first user turn. */
  promptIds(messages: readonly ChatMessage[]): number[] {
    try {
      return chatPromptIds(this.tokenizer, this.template, messages);
    } catch (e) {
      if (messages[0]?.role !== 'system' || messages.length < 2) throw e;
      const [sys, first, ...rest] = messages;
      return chatPromptIds(this.tokenizer, this.template, [{ ...first, content: `${sys.content}\n\n${first.content}` }, ...rest]);
    }
  }

  complete(messages: readonly ChatMessage[], maxTokens: number): Promise<string> {
    const ids = this.promptIds(messages);
    const room = this.contextSize - ids.length;
    if (room < 1) return Promise.reject(new MatchError(`${this.name}: the prompt (${ids.length} tokens) does not fit the context of ${this.contextSize} tokens`));
    const [g] = generateTokens(this.model, this.tokenizer, [ids], { maxTokens: Math.min(maxTokens, room), sampling: GREEDY, contextSize: this.contextSize });
    return Promise.resolve(g.text);
  }
}

export interface EndpointOptions {
  /** the API's base URL, ending in /v1 (as OpenAI's clients take it) */
  url: string;
  model: string;
  apiKey?: string;
  /** per request, milliseconds (default 600 000) */
  timeoutMs?: number;
  /** retries of a 429, a 5xx or a failed connection (default 5) */
  retries?: number;
  /** the first backoff, doubled each retry (default 1000 ms); a Retry-After header is honoured when longer */
  backoffMs?: number;
  /** where retries are announced (default: nowhere) */
  log?: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama.cpp's server, `nomoat serve`…). */
/** Sampled decoding for one request (best-of-n in `data synth`); absent, a request decodes at temperature 0. */
export interface EndpointSampling {
  temperature: number;
  top_p?: number;
  seed: number;
  stop?: string[];
}

export class EndpointChat implements ChatBackend {
  readonly name: string;
  private readonly endpoint: string;

  constructor(private readonly o: EndpointOptions) {
    this.name = o.model;
    this.endpoint = `${o.url.replace(/\/+$/, '')}/chat/completions`;
  }

  async complete(messages: readonly ChatMessage[], maxTokens: number, sampling?: EndpointSampling): Promise<string> {
    const body = JSON.stringify({ model: this.o.model, messages: messages.map((m) => ({ role: m.role, content: m.content })), temperature: 0, max_tokens: maxTokens, ...sampling });
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.o.apiKey !== undefined && this.o.apiKey !== '') headers.Authorization = `Bearer ${this.o.apiKey}`;
    const retries = this.o.retries ?? 5;
    let wait = this.o.backoffMs ?? 1000;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let text: string;
      try {
        // the timeout covers the whole exchange, the body's arrival included
        res = await fetch(this.endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.o.timeoutMs ?? 600_000) });
        text = await res.text();
      } catch (e) {
        const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
        const why = timedOut ? `no answer within ${(this.o.timeoutMs ?? 600_000) / 1000} s` : e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
        if (attempt >= retries) throw new Error(`POST ${this.endpoint}: ${why} (after ${attempt + 1} tries)`);
        this.o.log?.(`POST ${this.endpoint}: ${why}; retrying in ${wait} ms`);
        await sleep(wait);
        wait *= 2;
        continue;
      }
      if (res.ok) return this.content(text);
      const detail = errorMessage(text);
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        const after = Number(res.headers.get('retry-after'));
        const ms = Number.isFinite(after) && after * 1000 > wait ? after * 1000 : wait;
        this.o.log?.(`POST ${this.endpoint}: HTTP ${res.status}${detail}; retrying in ${ms} ms`);
        await sleep(ms);
        wait *= 2;
        continue;
      }
      // a request the endpoint refuses on its own merits (too long, bad field) fails this match only;
      // wrong URL, key or model, and a server still failing after the retries, stop the run
      const msg = `POST ${this.endpoint}: HTTP ${res.status}${detail}`;
      if (res.status === 400 || res.status === 413 || res.status === 422) throw new MatchError(msg);
      throw new Error(res.status === 429 || res.status >= 500 ? `${msg} (after ${attempt + 1} tries)` : msg);
    }
  }

  private content(text: string): string {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new MatchError(`POST ${this.endpoint}: the response is not JSON: ${text.slice(0, 200)}`);
    }
    const c = (v as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
    if (typeof c !== 'string') throw new MatchError(`POST ${this.endpoint}: the response has no choices[0].message.content`);
    return c;
  }
}

/** ": message" from an OpenAI-shaped error body, or its first characters. */
function errorMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === 'string') return `: ${m}`;
  } catch {
    // not JSON: show the text
  }
  return text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`;
}
