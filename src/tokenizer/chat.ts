// Chat templates: render Hugging Face Jinja chat templates (as transformers' apply_chat_template does) and turn a
// conversation into token ids with a mask of the tokens that belong to assistant replies.
import * as jinja from '@huggingface/jinja';
import type { Tokenizer } from './types.js';

/** One chat message. Templates may read extra fields (tool_calls, name…), which pass through. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'ipython' | (string & {});
  content: string;
  [field: string]: unknown;
}

export interface RenderChatOptions {
  /** Append the header that starts an assistant turn (for generation). Default false. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Tool (function) schemas, for templates that support them. */
  tools?: unknown[];
  /** The date `strftime_now` reports; default: the current time. Fix it for reproducible prompts. */
  now?: Date;
  /** More template variables (e.g. `enable_thinking`, `date_string`). */
  variables?: Record<string, unknown>;
}

/** The parts of @huggingface/jinja we use. (Its .d.ts files use extension-less relative imports that NodeNext
 *  resolution cannot follow, so they are typed here.) Template.render cannot be used: it declares its own
 *  raise_exception/strftime_now and refuses redefinitions, so we run the parsed program in our own Environment. */
interface JinjaTemplate {
  parsed: unknown;
}
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
interface JinjaInterpreter {
  run(program: unknown): { value: unknown };
}
const lib = jinja as unknown as {
  Template: new (source: string) => JinjaTemplate;
  Environment: new () => JinjaEnvironment;
  Interpreter: new (env: JinjaEnvironment) => JinjaInterpreter;
};

/** Python's range() (the engine's own global is not exported). */
function range(start: number, stop?: number, step = 1): number[] {
  const [lo, hi] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0) throw new Error('chat template: range() step must not be zero');
  const out: number[] = [];
  for (let i = lo; step > 0 ? i < hi : i > hi; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python-style strftime in local time with English (C locale) names: %a %A %b %B %d %H %I %j %m %M %p %S %y %Y %%. */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.floor((date.getTime() - startOfYear.getTime()) / 86_400_000) + 1;
  return format.replace(/%([aAbBdHIjmMpSyY%])/g, (_, c: string) => {
    switch (c) {
      case 'a': return DAYS[date.getDay()].slice(0, 3);
      case 'A': return DAYS[date.getDay()];
      case 'b': return MONTHS[date.getMonth()].slice(0, 3);
      case 'B': return MONTHS[date.getMonth()];
      case 'd': return p2(date.getDate());
      case 'H': return p2(date.getHours());
      case 'I': return p2(date.getHours() % 12 === 0 ? 12 : date.getHours() % 12);
      case 'j': return String(dayOfYear).padStart(3, '0');
      case 'm': return p2(date.getMonth() + 1);
      case 'M': return p2(date.getMinutes());
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return p2(date.getSeconds());
      case 'y': return p2(date.getFullYear() % 100);
      case 'Y': return String(date.getFullYear());
      default: return '%';
    }
  });
}

const compiled = new Map<string, JinjaTemplate>();
function compile(source: string): JinjaTemplate {
  let t = compiled.get(source);
  if (t === undefined) {
    if (compiled.size > 64) compiled.clear();
    t = new lib.Template(source);
    compiled.set(source, t);
  }
  return t;
}

/** Renders a conversation with a Jinja chat template, providing the variables and helpers transformers does:
 *  messages, add_generation_prompt, bos_token, eos_token, tools, raise_exception, strftime_now (and the tojson
 *  filter, built into the engine). */
export function renderChat(template: string, messages: readonly ChatMessage[], options: RenderChatOptions = {}): string {
  const now = options.now;
  const vars: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null, range,
    messages: messages.map((m) => ({ ...m })),
    add_generation_prompt: options.addGenerationPrompt ?? false,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
    raise_exception: (message: unknown): never => {
      throw new Error(`chat template: ${String(message)}`);
    },
    strftime_now: (format: string): string => strftime(now ?? new Date(), format),
    ...options.variables,
  };
  if (options.tools !== undefined) vars.tools = options.tools; // left undefined so `tools is defined` is false
  const env = new lib.Environment();
  for (const [k, v] of Object.entries(vars)) env.set(k, v);
  const out = new lib.Interpreter(env).run(compile(template).parsed).value;
  if (typeof out !== 'string') throw new Error('chat template: rendering did not produce a string');
  return out;
}

/** The prompt for the next assistant turn, as `nomoat chat` and the server build it: the template rendered with
 *  add_generation_prompt, encoded with special tokens parsed; BOS added when the tokenizer adds one by default and
 *  the template did not already write it (templates that write {{ bos_token }} must not get a second one). */
export function chatPromptIds(tokenizer: Tokenizer, template: string, messages: readonly ChatMessage[], options: Omit<RenderChatOptions, 'addGenerationPrompt' | 'bosToken' | 'eosToken'> = {}): number[] {
  const tokenText = (id: number | null): string => (id === null ? '' : (tokenizer.idToToken(id) ?? ''));
  const bos = tokenText(tokenizer.bosId);
  const text = renderChat(template, messages, { ...options, addGenerationPrompt: true, bosToken: bos, eosToken: tokenText(tokenizer.eosId) });
  return tokenizer.encode(text, { parseSpecial: true, addBos: tokenizer.addBosByDefault && !(bos !== '' && text.startsWith(bos)) });
}

export interface ChatTokens {
  text: string;
  ids: number[];
  /** 1 where the token belongs to an assistant reply (its content and end-of-turn marker), else 0. */
  assistantMask: Uint8Array;
}

export interface TokenizeChatOptions extends Omit<RenderChatOptions, 'addGenerationPrompt' | 'bosToken' | 'eosToken'> {
  /** Default: the tokenizer's chat template. */
  template?: string;
  /** Add BOS in front (default false: as in transformers, templates that need BOS write {{ bos_token }}). */
  addBos?: boolean;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Renders and tokenizes a conversation, marking assistant tokens (for loss only on replies).
 *
 *  Method: render prefixes and diff in token space. The whole conversation is rendered and encoded once (`full`).
 *  For each assistant message k, the conversation before it is rendered with the generation prompt (ending in the
 *  assistant header) and the conversation up to and including it without; the assistant tokens are those of
 *  `full` between the two token-level common prefixes with `full`. Diffing against `full` (not against each other)
 *  copes with templates that end a rendering differently from how the turn continues (e.g. Phi-3.5 appends EOS
 *  only at the very end). A token that BPE merges across the header/content boundary counts as assistant.
 *  Costs O(turns) renders and encodes of growing prefixes. */
export function tokenizeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: TokenizeChatOptions = {}): ChatTokens {
  const template = options.template ?? tokenizer.chatTemplate;
  if (template === null) throw new Error('tokenizeChat: the tokenizer has no chat template; pass options.template');
  const tokenText = (id: number | null): string => (id === null ? '' : (tokenizer.idToToken(id) ?? ''));
  const render = (msgs: readonly ChatMessage[], addGenerationPrompt: boolean): string =>
    renderChat(template, msgs, { ...options, addGenerationPrompt, bosToken: tokenText(tokenizer.bosId), eosToken: tokenText(tokenizer.eosId) });
  const encode = (text: string): number[] => tokenizer.encode(text, { parseSpecial: true, addBos: options.addBos ?? false, addEos: false });
  const text = render(messages, false);
  const ids = encode(text);
  const mask = new Uint8Array(ids.length);
  messages.forEach((m, k) => {
    if (m.role !== 'assistant') return;
    const start = commonPrefix(encode(render(messages.slice(0, k), true)), ids);
    const end = commonPrefix(encode(render(messages.slice(0, k + 1), false)), ids);
    mask.fill(1, start, Math.max(start, end));
  });
  return { text, ids, assistantMask: mask };
}
