// One record of a dataset as the `nomoat data` tools see it: where it came from, its format, the raw object (so
// extra fields survive dedup/filter/split), and its normalized content: a Conversation, or plain text for {"text"}
// records. Also the conversions between formats (`data convert --to`).

import { describe, detectFormat, normalizeRecord } from './formats.js';
import type { Conversation, DataFormat } from './types.js';
import { validateConversation } from './validate.js';

/** The record formats of `nomoat data`: the three chat formats plus plain text ({"text": "…"}). */
export type RecordFormat = DataFormat | 'text';
export const RECORD_FORMATS: readonly RecordFormat[] = ['alpaca', 'sharegpt', 'openai', 'text'];

export interface DataRecord {
  /** "file:line" (JSONL; for Parquet the line is the 1-based row number) */
  where: string;
  format: RecordFormat;
  raw: Record<string, unknown>;
  /** null for text records */
  conversation: Conversation | null;
  /** text records: the text; chats: role-tagged turns, one "role: content" a line (what dedup compares) */
  text: string;
}

/** A rejected record: where, the field in the source's own terms ("conversations[2].from", "(record)"), what. */
export interface RecordProblem {
  where: string;
  field: string;
  message: string;
}

/** `file:line: field: what`, the one shape every data command prints problems in. */
export function formatProblem(p: RecordProblem): string {
  return `${p.where}: ${p.field}: ${p.message}`;
}

/** detectFormat plus plain text: an object with a string "text" field and none of the chat keys. */
export function detectRecordFormat(value: unknown): RecordFormat | null {
  const f = detectFormat(value);
  if (f !== null) return f;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'text' in value) return 'text';
  return null;
}

/** Splits the loader's `field "x" must …` messages into field and what, so every problem reads field: what. */
function splitMessage(where: string, msg: string): RecordProblem {
  const m = /^field "([^"]+)":? (.*)$/su.exec(msg);
  if (m !== null) return { where, field: m[1], message: m[2] };
  const missing = /^missing field "([^"]+)"$/u.exec(msg);
  if (missing !== null) return { where, field: missing[1], message: 'missing' };
  const conv = /^conversation must end with an assistant turn, the last message \("([^"]+)"\) is "(\w+)"$/u.exec(msg);
  if (conv !== null) return { where, field: conv[1], message: `the last turn is "${conv[2]}"; a conversation must end with an assistant turn` };
  return { where, field: '(record)', message: msg };
}

/** Normalizes one parsed value of a known format into a record, or lists every problem (field by field). */
export function toRecord(where: string, value: unknown, format: RecordFormat): { ok: true; record: DataRecord } | { ok: false; problems: RecordProblem[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problems: [{ where, field: '(record)', message: `expected a JSON object, got ${describe(value)}` }] };
  }
  const raw = value as Record<string, unknown>;
  if (format === 'text') {
    const t = raw.text;
    if (typeof t !== 'string') return { ok: false, problems: [{ where, field: 'text', message: t === undefined ? 'missing' : `must be a string, got ${describe(t)}` }] };
    if (t.trim() === '') return { ok: false, problems: [{ where, field: 'text', message: 'is empty' }] };
    return { ok: true, record: { where, format, raw, conversation: null, text: t } };
  }
  const n = normalizeRecord(raw, format);
  if (!n.ok) return { ok: false, problems: n.errors.map((e) => splitMessage(where, e)) };
  const errors = validateConversation(n.conversation, n.paths);
  if (errors.length > 0) return { ok: false, problems: errors.map((e) => splitMessage(where, e)) };
  return { ok: true, record: { where, format, raw, conversation: n.conversation, text: chatText(n.conversation) } };
}

/** Role-tagged turns, one per line: the text a chat is compared by (same as dedup.ts's conversationText). */
export function chatText(c: Conversation): string {
  return c.messages.map((m) => `${m.role}: ${m.content}`).join('\n');
}

/** What a trainer learns from: the assistant turns of a chat (joined by blank lines), or the text of a document. */
export function learnedText(r: DataRecord): string {
  if (r.conversation === null) return r.text;
  return r.conversation.messages.filter((m) => m.role === 'assistant').map((m) => m.content).join('\n\n');
}

/** Every content of the record, turns joined by blank lines (no role tags): for n-gram overlap and statistics. */
export function contentText(r: DataRecord): string {
  if (r.conversation === null) return r.text;
  return r.conversation.messages.map((m) => m.content).join('\n\n');
}

/** Output formats of `data convert --to`; 'messages' is the OpenAI messages format. */
export type OutputFormat = 'alpaca' | 'sharegpt' | 'messages' | 'text';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['alpaca', 'sharegpt', 'messages', 'text'];

const SHAREGPT_FROM = { system: 'system', user: 'human', assistant: 'gpt' } as const;

/** The record as an object of `to`; throws a message (no location: the caller adds it) when it cannot be. */
export function convertRecord(r: DataRecord, to: OutputFormat): Record<string, unknown> {
  const c = r.conversation;
  if (to === 'text') return { text: c === null ? r.text : c.messages.map((m) => `${m.role === 'user' ? 'User' : m.role === 'assistant' ? 'Assistant' : 'System'}: ${m.content}`).join('\n\n') };
  if (c === null) throw new Error(`a plain text record has no turns: it cannot become ${to}`);
  if (to === 'messages') return { messages: c.messages.map((m) => ({ role: m.role, content: m.content })) };
  if (to === 'sharegpt') return { conversations: c.messages.map((m) => ({ from: SHAREGPT_FROM[m.role], value: m.content })) };
  const sys = c.messages[0].role === 'system' ? c.messages[0].content : undefined;
  const turns = sys !== undefined ? c.messages.slice(1) : c.messages;
  if (turns.length !== 2) throw new Error(`alpaca holds one instruction and one output, this conversation has ${turns.length} turns`);
  return { instruction: turns[0].content, input: '', output: turns[1].content, ...(sys !== undefined ? { system: sys } : {}) };
}

/** The output format a record keeps when written unchanged (dedup, filter, split, mix). */
export function sameFormat(f: RecordFormat): OutputFormat {
  return f === 'openai' ? 'messages' : f;
}
