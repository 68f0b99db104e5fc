// The OpenAI-compatible protocol in one place (as vLLM's protocol module): request schemas, validated at the edge
// with zod; the response and stream-chunk shapes; and ApiError, the error body every route returns
// ({"error": {"message", "type", "param", "code"}}). Unknown request fields are dropped, as OpenAI ignores them; a
// known field of the wrong type or range is a 400 naming it (`messages[1].content: must be a string, got 3`).

import { z } from 'zod';

// ---- errors -------------------------------------------------------------------------------------------------------

/** An error a route answers with: HTTP status and OpenAI's error object. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** OpenAI's error type: invalid_request_error, authentication_error… */
    readonly type = 'invalid_request_error',
    /** the request field at fault */
    readonly param: string | null = null,
    /** machine-readable: model_not_found, context_length_exceeded, invalid_api_key… */
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A field path as OpenAI names it in `param`: messages[0].content. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

function shown(v: unknown): string {
  if (v === null) return 'null';
  const s = JSON.stringify(v) ?? typeof v;
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

const ARTICLE: Record<string, string> = { int: 'an integer', array: 'a list', object: 'an object', number: 'a number', string: 'a string', boolean: 'true or false' };

/** One zod issue as a sentence about its field. */
function issueText(i: z.core.$ZodIssue): string {
  const got = 'input' in i && i.input !== undefined ? `, got ${shown(i.input)}` : '';
  switch (i.code) {
    case 'invalid_type':
      return 'input' in i && i.input !== undefined ? `must be ${ARTICLE[i.expected] ?? i.expected}${got}` : 'is required';
    case 'too_small':
    case 'too_big': {
      const small = i.code === 'too_small';
      const bound = Number(small ? i.minimum : i.maximum);
      if (i.origin === 'array') return `must have ${small ? 'at least' : 'at most'} ${bound} item${bound === 1 ? '' : 's'}`;
      if (i.origin === 'string') return bound === 1 && small ? 'must not be empty' : `must have ${small ? 'at least' : 'at most'} ${bound} characters`;
      const op = small ? (i.inclusive === false ? '>' : '≥') : i.inclusive === false ? '<' : '≤';
      return `must be ${op} ${bound}${got}`;
    }
    default:
      return i.message;
  }
}

/**
 * Parses a request body with a schema; a mismatch becomes a 400 naming the first bad field (`param`), and with
 * `all` every bad field in the message (`vote: …; config_a.model: …`).
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, opts: { all?: boolean } = {}): z.output<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
  const r = schema.safeParse(body, { reportInput: true });
  if (r.success) return r.data;
  const issues = opts.all === true ? r.error.issues : r.error.issues.slice(0, 1);
  const param = fieldPath(issues[0].path);
  const message = issues.map((i) => `${fieldPath(i.path)}: ${issueText(i)}`).join('; ');
  throw new ApiError(400, message, 'invalid_request_error', param || null);
}

// ---- requests -----------------------------------------------------------------------------------------------------

// every optional field also takes null, which OpenAI clients send for "unset"
const int = (min: number, max = Number.MAX_SAFE_INTEGER): z.ZodNumber => z.number().int().min(min).max(max);

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)], { error: 'must be a non-empty string or a list of at most 16 of them' });

/** nomoat's extension: any adapter stack per request, applied after the one `model` names. */
const adapterRef = z.object({ name: z.string().min(1), scale: z.number().default(1) });

/** llama.cpp's per-request `lora`: id = the adapter's id in GET /lora-adapters (stable, never reused). */
const loraRef = z.object({ id: int(0), scale: z.number() });

/** Fields shared by chat and completions. */
const common = {
  model: z.string().nullish(),
  max_tokens: int(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop: stop.nullish(),
  n: int(1, 128).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  // OpenAI's penalties are not implemented: 0 (what clients send by default) is accepted, anything else refused
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  // extensions llama.cpp and vLLM accept
  top_k: int(0).nullish(),
  min_p: z.number().min(0).lt(1).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  ignore_eos: z.boolean().nullish(),
  adapters: z.array(adapterRef).max(16).nullish(),
  lora: z.array(loraRef).max(16).nullish(),
};

const contentPart = z.object({ type: z.string(), text: z.string().optional() });

const message = z.object({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(contentPart), z.null()], { error: 'must be a string or a list of {"type": "text", "text"} parts' }).optional(),
  name: z.string().optional(),
});

export const ChatRequest = z.object({
  ...common,
  messages: z.array(message).min(1),
  max_completion_tokens: int(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int(0, 20).nullish(),
});
export type ChatRequest = z.output<typeof ChatRequest>;
export type ChatRequestMessage = ChatRequest['messages'][number];

export const CompletionRequest = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), z.array(int(0)).min(1), z.array(z.array(int(0)).min(1)).min(1)], {
    error: 'must be a string, a list of strings, a list of token ids or a list of lists of token ids',
  }),
  /** legacy: the k most likely alternatives per token (OpenAI allows up to 5; here up to 20, as chat's top_logprobs) */
  logprobs: int(0, 20).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
});
export type CompletionRequest = z.output<typeof CompletionRequest>;

/** A configuration of the arena: a model (base, adapter or recipe) and a stack of adapters on top of it. */
const arenaConfig = z.object({ model: z.string().min(1).max(256), adapters: z.array(adapterRef).max(16).default([]) });
export type ArenaConfig = z.output<typeof arenaConfig>;

export const ARENA_VOTES = ['a', 'b', 'tie', 'both_bad'] as const;
export type ArenaVoteValue = (typeof ARENA_VOTES)[number];

/** POST /v1/arena/votes: one battle of the web page's arena, as the page saw it. */
export const ArenaVoteRequest = z.object({
  prompt: z.string().min(1),
  config_a: arenaConfig,
  config_b: arenaConfig,
  reply_a: z.string(),
  reply_b: z.string(),
  vote: z.enum(ARENA_VOTES, { error: `must be one of ${ARENA_VOTES.join(', ')}` }),
  /** who voted (FastChat's judge): the page sends a random id kept in the browser */
  judge: z.string().min(1).max(128).nullish(),
  /** the sampling both replies were made with */
  sampling: z.object({ temperature: z.number().min(0).max(2).nullish(), max_tokens: int(1).nullish() }).nullish(),
});
export type ArenaVoteRequest = z.output<typeof ArenaVoteRequest>;

export const LoadLoraRequest = z.object({ lora_name: z.string().min(1).max(128), lora_path: z.string().min(1) });
export const UnloadLoraRequest = z.object({ lora_name: z.string().min(1) });

// ---- responses ----------------------------------------------------------------------------------------------------

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** One alternative token of chat logprobs. */
export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** One generated token of chat logprobs (choices[].logprobs.content[]). */
export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

/** Legacy completions logprobs. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export type FinishReason = 'stop' | 'length';

export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** vLLM: the base's path for the base, the adapter's (or recipe's) path for the others */
  root: string;
  /** vLLM: null for the base, the base's id for an adapter or a recipe */
  parent: string | null;
  max_model_len: number;
  /** nomoat: what the id names */
  kind: 'base' | 'adapter' | 'recipe';
}
