// Preference pairs for DPO: one prompt, a chosen and a rejected continuation, read from TRL's preference formats
// (https://huggingface.co/docs/trl/dataset_formats) and from Anthropic HH-RLHF transcripts, each bad record
// reported as "file:line: field …".
//
// Accepted records (JSONL, .jsonl.gz, or a .json array):
//   standard explicit      {prompt: "…", chosen: "…", rejected: "…"}                 → user prompt, assistant replies
//   conversational         {prompt: [messages], chosen: [messages], rejected: [messages]}
//   implicit conversational {chosen: [whole conversation], rejected: [whole conversation]}   → shared prefix = prompt
//   HH transcripts         {chosen: "\n\nHuman: …\n\nAssistant: …", rejected: "…"}      → parsed, then as implicit
// `nomoat eval arena --pairs` writes the conversational form. The prompt must end with a user turn and each
// continuation must end with an assistant turn (what the loss is taken on).

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { recordValue } from './load.js';
import { LineSplitter, type LineOptions, type LineRecord } from './lines.js';
import type { Message, Role } from './types.js';
import { validateConversation } from './validate.js';

/** One preference: prompt messages (ending with a user turn), and two continuations (ending with an assistant turn). */
export interface PreferencePair {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
}

export type PairFormat = 'standard' | 'conversational' | 'implicit' | 'hh';

export interface PairLoadOptions extends LineOptions {
  /** drop bad records and report them instead of throwing (default false) */
  skip?: boolean;
  /** how many problems the thrown Error lists before "and N more" (default 5) */
  maxErrorsShown?: number;
  /** read only the first N records (tests, quick looks) */
  limit?: number;
}

export interface PairLoadResult {
  file: string;
  pairs: PreferencePair[];
  /** "file:line" (or "file[i]") of each pair, same order */
  sources: string[];
  /** the format of each pair, same order */
  formats: PairFormat[];
  /** records dropped with {skip: true} */
  skipped: { where: string; message: string }[];
}

type Parsed = { ok: true; pair: PreferencePair; format: PairFormat } | { ok: false; error: string };

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];
const HH_TURN = /\n\n(Human|Assistant):[ ]?/g;

/** A messages list (TRL/OpenAI style {role, content}), each problem naming its field. */
function messagesOf(v: unknown, field: string): { ok: true; messages: Message[] } | { ok: false; error: string } {
  if (!Array.isArray(v)) return { ok: false, error: `field "${field}" must be a list of messages` };
  if (v.length === 0) return { ok: false, error: `field "${field}" is an empty list` };
  const out: Message[] = [];
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as unknown;
    const at = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return { ok: false, error: `field "${at}" must be an object {role, content}` };
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return { ok: false, error: `field "${at}.role" must be one of ${ROLES.join('|')}, got ${JSON.stringify(role)}` };
    if (typeof content !== 'string') return { ok: false, error: `field "${at}.content" must be a string` };
    if (content.trim() === '') return { ok: false, error: `field "${at}.content" is empty` };
    out.push({ role: role as Role, content });
  }
  return { ok: true, messages: out };
}

/**
 * An HH-RLHF transcript ("\n\nHuman: …\n\nAssistant: …") as messages. Text before the first turn marker is refused
 * (it is not a transcript); empty turns are kept here and refused by the caller, which can name the field.
 */
export function parseHhTranscript(s: string): Message[] | null {
  const marks = [...s.matchAll(HH_TURN)];
  if (marks.length === 0 || s.slice(0, marks[0].index).trim() !== '') return null;
  return marks.map((m, i) => ({
    role: m[1] === 'Human' ? 'user' : 'assistant',
    content: s.slice(m.index + m[0].length, i + 1 < marks.length ? marks[i + 1].index : s.length).trim(),
  }));
}

/** Splits two whole conversations at their longest shared prefix of messages (TRL's maybe_extract_prompt). */
function splitShared(chosen: Message[], rejected: Message[], fc: string, fr: string): Parsed {
  let k = 0;
  while (k < chosen.length && k < rejected.length && chosen[k].role === rejected[k].role && chosen[k].content === rejected[k].content) k++;
  if (k === chosen.length && k === rejected.length) return { ok: false, error: `fields "${fc}" and "${fr}" are identical (nothing to prefer)` };
  // the continuations start where the two first differ: back up to just after the last shared user turn
  while (k > 0 && chosen[k - 1].role !== 'user') k--;
  if (k === 0) return { ok: false, error: `fields "${fc}" and "${fr}" share no prompt (they must start with the same user turn)` };
  return checked({ prompt: chosen.slice(0, k), chosen: chosen.slice(k), rejected: rejected.slice(k) }, fc, fr);
}

/** Structural checks: prompt ends with a user turn; prompt + each continuation is a valid conversation. */
function checked(p: PreferencePair, fc: string, fr: string, format: PairFormat = 'implicit'): Parsed {
  if (p.prompt.length === 0 || p.prompt[p.prompt.length - 1].role !== 'user') return { ok: false, error: 'the prompt must end with a user turn' };
  for (const [side, field] of [['chosen', fc], ['rejected', fr]] as const) {
    const msgs = [...p.prompt, ...p[side]];
    const errs = validateConversation({ messages: msgs });
    if (errs.length > 0) {
      // validateConversation names messages[i]; say which field of the record that is
      const named = errs.map((e) => e.replace(/messages\[(\d+)\]/g, (_, i: string) => {
        const j = Number(i);
        return j < p.prompt.length ? `prompt[${j}]` : `${field}[${j - p.prompt.length}]`;
      }));
      return { ok: false, error: `${field}: ${named.join('; ')}` };
    }
  }
  return { ok: true, pair: p, format };
}

/** One record of any accepted form → a pair, or the problem naming the field. */
export function normalizePair(value: unknown): Parsed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'a record must be a JSON object with "chosen" and "rejected"' };
  const r = value as Record<string, unknown>;
  for (const f of ['chosen', 'rejected'] as const) if (!(f in r)) return { ok: false, error: `missing field "${f}"` };
  const { prompt, chosen, rejected } = r;
  if (prompt === undefined) {
    if (typeof chosen === 'string' && typeof rejected === 'string') {
      const c = parseHhTranscript(chosen);
      const j = parseHhTranscript(rejected);
      if (c === null || j === null) return { ok: false, error: `field "${c === null ? 'chosen' : 'rejected'}": without a "prompt" field, strings must be Human/Assistant transcripts ("\\n\\nHuman: …\\n\\nAssistant: …")` };
      for (const [msgs, f] of [[c, 'chosen'], [j, 'rejected']] as const) {
        const empty = msgs.findIndex((m) => m.content === '');
        if (empty >= 0) return { ok: false, error: `field "${f}": ${msgs[empty].role === 'user' ? 'Human' : 'Assistant'} turn ${empty} is empty` };
      }
      const s = splitShared(c, j, 'chosen', 'rejected');
      return s.ok ? { ...s, format: 'hh' } : s;
    }
    const c = messagesOf(chosen, 'chosen');
    if (!c.ok) return c;
    const j = messagesOf(rejected, 'rejected');
    if (!j.ok) return j;
    return splitShared(c.messages, j.messages, 'chosen', 'rejected');
  }
  if (typeof prompt === 'string') {
    if (prompt.trim() === '') return { ok: false, error: 'field "prompt" is empty' };
    for (const f of ['chosen', 'rejected'] as const) {
      if (typeof r[f] !== 'string') return { ok: false, error: `field "${f}" must be a string when "prompt" is one (standard format)` };
      if ((r[f]).trim() === '') return { ok: false, error: `field "${f}" is empty` };
    }
    const pair = { prompt: [{ role: 'user' as const, content: prompt }], chosen: [{ role: 'assistant' as const, content: chosen as string }], rejected: [{ role: 'assistant' as const, content: rejected as string }] };
    if (chosen === rejected) return { ok: false, error: 'fields "chosen" and "rejected" are identical (nothing to prefer)' };
    return checked(pair, 'chosen', 'rejected', 'standard');
  }
  const p = messagesOf(prompt, 'prompt');
  if (!p.ok) return p;
  const c = messagesOf(chosen, 'chosen');
  if (!c.ok) return c;
  const j = messagesOf(rejected, 'rejected');
  if (!j.ok) return j;
  if (JSON.stringify(c.messages) === JSON.stringify(j.messages)) return { ok: false, error: 'fields "chosen" and "rejected" are identical (nothing to prefer)' };
  return checked({ prompt: p.messages, chosen: c.messages, rejected: j.messages }, 'chosen', 'rejected', 'conversational');
}

/** Collects records: parses, normalizes, keeps or reports each. */
class PairCollector {
  readonly out: PairLoadResult;
  constructor(readonly file: string, readonly opts: PairLoadOptions) {
    this.out = { file, pairs: [], sources: [], formats: [], skipped: [] };
  }

  get full(): boolean {
    return this.opts.limit !== undefined && this.out.pairs.length + this.out.skipped.length >= this.opts.limit;
  }

  add(where: string, r: { text: string } | { value: unknown } | { error: string }): void {
    const bad = (message: string): void => void this.out.skipped.push({ where, message });
    const v = recordValue(r);
    if ('error' in v) return bad(v.error);
    const n = normalizePair(v.value);
    if (!n.ok) return bad(n.error);
    this.out.pairs.push(n.pair);
    this.out.sources.push(where);
    this.out.formats.push(n.format);
  }

  finish(): PairLoadResult {
    const { file, out } = this;
    const problems = out.skipped;
    const total = out.pairs.length + problems.length;
    if (problems.length > 0 && this.opts.skip !== true) {
      const shown = this.opts.maxErrorsShown ?? 5;
      const lines = problems.slice(0, shown).map((p) => `  ${p.where}: ${p.message}`);
      if (problems.length > shown) lines.push(`  … and ${problems.length - shown} more`);
      throw new Error(`${file}: ${problems.length} bad preference pair(s) out of ${total}:\n${lines.join('\n')}`);
    }
    if (out.pairs.length === 0) {
      throw new Error(total === 0 ? `${file}: no preference pairs` : `${file}: no valid preference pairs (${problems.length} skipped, first: ${problems[0].where}: ${problems[0].message})`);
    }
    return out;
  }
}

/** Line records of a JSONL file, gunzipped on the way when its name ends in .gz. */
async function* fileLines(path: string, opts: LineOptions): AsyncGenerator<LineRecord> {
  const s = new LineSplitter(opts);
  const raw = createReadStream(path, { highWaterMark: 1 << 16 });
  const stream = path.toLowerCase().endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  try {
    for await (const chunk of stream) yield* s.push(chunk as Buffer);
    yield* s.end();
  } finally {
    raw.destroy();
  }
}

/** Loads preference pairs from JSONL (.jsonl, .jsonl.gz) or a .json array; `file` names them in messages. */
export async function loadPreferencePairs(file: string, opts: PairLoadOptions = {}): Promise<PairLoadResult> {
  const c = new PairCollector(file, opts);
  if (file.toLowerCase().endsWith('.json')) {
    let parsed: unknown;
    try {
      const text = await readFile(file, 'utf8');
      parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (e) {
      throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new Error(`${file}: a .json file of pairs must hold an array of records`);
    for (let i = 0; i < parsed.length && !c.full; i++) c.add(`${file}[${i}]`, { value: parsed[i] as unknown });
  } else {
    for await (const r of fileLines(file, opts)) {
      if (c.full) break;
      c.add(`${file}:${r.line}`, 'error' in r ? { error: r.error } : { text: r.text });
    }
  }
  return c.finish();
}

/** Same as loadPreferencePairs for JSONL text in memory (tests, data made on the fly). */
export function parsePreferencePairs(text: string, file: string, opts: PairLoadOptions = {}): PairLoadResult {
  const c = new PairCollector(file, opts);
  const s = new LineSplitter(opts);
  for (const r of [...s.push(Buffer.from(text, 'utf8')), ...s.end()]) {
    if (c.full) break;
    c.add(`${file}:${r.line}`, 'error' in r ? { error: r.error } : { text: r.text });
  }
  return c.finish();
}
