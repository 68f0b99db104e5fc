// Readers for the three instruction-data record formats (Alpaca, ShareGPT, OpenAI messages) into the normalized
// Conversation, with errors that name the offending field in the source's own terms ("conversations[2].from").

import type { Conversation, DataFormat, Message, Role } from './types.js';

/** Where each normalized message came from, as field paths in the source record (for error messages). */
export interface FieldPaths {
  role: string;
  content: string;
}

export type NormalizeResult =
  | { ok: true; conversation: Conversation; paths: FieldPaths[] }
  | { ok: false; errors: string[] };

const SHAREGPT_ROLES: Record<string, Role> = {
  system: 'system',
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
};
const OPENAI_ROLES: readonly Role[] = ['system', 'user', 'assistant'];

/** Guesses a record's format from its keys: messages → openai, conversations → sharegpt, instruction → alpaca. */
export function detectFormat(value: unknown): DataFormat | null {
  if (!isObject(value)) return null;
  if ('messages' in value) return 'openai';
  if ('conversations' in value) return 'sharegpt';
  if ('instruction' in value) return 'alpaca';
  return null;
}

/** Converts one parsed JSON value of the given format into a Conversation, or lists every field problem. */
export function normalizeRecord(value: unknown, format: DataFormat): NormalizeResult {
  if (!isObject(value)) return { ok: false, errors: [`expected a JSON object, got ${describe(value)}`] };
  switch (format) {
    case 'alpaca':
      return normalizeAlpaca(value);
    case 'sharegpt':
      return normalizeList(value, 'conversations', 'from', 'value', (r) => SHAREGPT_ROLES[r], Object.keys(SHAREGPT_ROLES));
    case 'openai':
      return normalizeList(value, 'messages', 'role', 'content', (r) => (OPENAI_ROLES as readonly string[]).includes(r) ? (r as Role) : undefined, OPENAI_ROLES);
  }
}

/** Alpaca: system? → system message; instruction (+ "\n\n" + input when non-empty) → user; output → assistant. */
function normalizeAlpaca(v: Record<string, unknown>): NormalizeResult {
  const errors: string[] = [];
  const str = (key: string, required: boolean): string | undefined => {
    const x = v[key];
    if (x === undefined || (x === null && !required)) {
      if (required) errors.push(`missing field "${key}"`);
      return undefined;
    }
    if (typeof x !== 'string') {
      errors.push(`field "${key}" must be a string, got ${describe(x)}`);
      return undefined;
    }
    return x;
  };
  const system = str('system', false), instruction = str('instruction', true), input = str('input', false), output = str('output', true);
  if (errors.length > 0 || instruction === undefined || output === undefined) return { ok: false, errors };
  const messages: Message[] = [];
  const paths: FieldPaths[] = [];
  if (system !== undefined && system.trim() !== '') {
    messages.push({ role: 'system', content: system });
    paths.push({ role: 'system', content: 'system' });
  }
  const hasInput = input !== undefined && input.trim() !== '';
  messages.push({ role: 'user', content: hasInput ? `${instruction}\n\n${input}` : instruction });
  paths.push({ role: 'instruction', content: 'instruction' });
  messages.push({ role: 'assistant', content: output });
  paths.push({ role: 'output', content: 'output' });
  return { ok: true, conversation: { messages }, paths };
}

/** ShareGPT and OpenAI: a list of {roleKey, contentKey} objects under listKey. */
function normalizeList(
  v: Record<string, unknown>,
  listKey: string,
  roleKey: string,
  contentKey: string,
  mapRole: (r: string) => Role | undefined,
  allowed: readonly string[],
): NormalizeResult {
  const list = v[listKey];
  if (!Array.isArray(list)) return { ok: false, errors: [`field "${listKey}" must be an array, got ${describe(list)}`] };
  const errors: string[] = [];
  const messages: Message[] = [];
  const paths: FieldPaths[] = [];
  list.forEach((item: unknown, i) => {
    const at = `${listKey}[${i}]`;
    if (!isObject(item)) {
      errors.push(`field "${at}" must be an object, got ${describe(item)}`);
      return;
    }
    const role = item[roleKey], content = item[contentKey];
    let mapped: Role | undefined;
    if (typeof role !== 'string') errors.push(`field "${at}.${roleKey}" must be a string, got ${describe(role)}`);
    else if ((mapped = mapRole(role)) === undefined) {
      errors.push(`field "${at}.${roleKey}" must be one of ${allowed.join('|')}, got ${JSON.stringify(role)}`);
    }
    if (typeof content !== 'string') errors.push(`field "${at}.${contentKey}" must be a string, got ${describe(content)}`);
    if (mapped !== undefined && typeof content === 'string') {
      messages.push({ role: mapped, content });
      paths.push({ role: `${at}.${roleKey}`, content: `${at}.${contentKey}` });
    }
  });
  if (errors.length > 0) return { ok: false, errors };
  if (list.length === 0) return { ok: false, errors: [`field "${listKey}" is empty`] };
  return { ok: true, conversation: { messages }, paths };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A short description of a JSON value for error messages. */
export function describe(x: unknown): string {
  if (x === undefined) return 'nothing (missing)';
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`;
  if (typeof x === 'object') return 'an object';
  if (typeof x === 'number' || typeof x === 'boolean') return `${typeof x} ${x}`;
  return typeof x;
}
