// Loading instruction datasets (JSONL, or a JSON array) into normalized conversations, with the format detected
// per file and every bad record reported as "file:line: problem".
//
// Policy: by default any bad record makes loading throw one Error listing the first few problems and the count;
// with {skip: true} bad records are dropped and reported in the result (`skipped`).

import { readFile } from 'node:fs/promises';
import { detectFormat, normalizeRecord } from './formats.js';
import { readLines, splitLines, type LineOptions, type LineRecord } from './lines.js';
import type { Conversation, DataFormat } from './types.js';
import { DATA_FORMATS } from './types.js';
import { validateConversation } from './validate.js';

export interface LoadOptions extends LineOptions {
  /** record format, or 'auto' (default): decided by the first valid record, then required of every record */
  format?: DataFormat | 'auto';
  /** drop bad records and report them instead of throwing (default false) */
  skip?: boolean;
  /** how many problems the thrown Error lists before "and N more" (default 5) */
  maxErrorsShown?: number;
  /** 'json' (one array) or 'jsonl' (one record a line); default from the file name: .json → json, else jsonl */
  container?: 'json' | 'jsonl';
}

/** A rejected record: `where` is "file:line" (JSONL) or "file[index]" (JSON array). */
export interface LoadProblem {
  where: string;
  message: string;
}

export interface LoadResult {
  file: string;
  format: DataFormat;
  conversations: Conversation[];
  /** where each conversation came from (same order): "file:line" or "file[index]" */
  sources: string[];
  /** records dropped with {skip: true} (empty otherwise: bad records throw) */
  skipped: LoadProblem[];
}

/** One raw record before parsing: JSONL line text, an already-parsed JSON array element, or a read error. */
type RawRecord = { where: string; text: string } | { where: string; value: unknown } | { where: string; error: string };

/** A raw record's JSON value, or what is wrong with it (its reading error, or the JSON parser's). */
export function recordValue(r: { text: string } | { value: unknown } | { error: string }): { value: unknown } | { error: string } {
  if ('error' in r) return r;
  if (!('text' in r)) return r;
  try {
    return { value: JSON.parse(r.text) as unknown };
  } catch (e) {
    return { error: `invalid JSON (${(e as Error).message})` };
  }
}

/** Collects records one at a time: detects the format, normalizes, validates, and keeps or reports each. */
class Collector {
  private format: DataFormat | null;
  private decidedAt = '';
  readonly conversations: Conversation[] = [];
  readonly sources: string[] = [];
  readonly problems: LoadProblem[] = [];

  constructor(private readonly file: string, private readonly opts: LoadOptions) {
    const f = opts.format ?? 'auto';
    if (f !== 'auto' && !DATA_FORMATS.includes(f)) {
      throw new Error(`unknown data format "${String(f)}"; expected auto|${DATA_FORMATS.join('|')}`);
    }
    this.format = f === 'auto' ? null : f;
    if (this.format !== null) this.decidedAt = 'the format option';
  }

  add(r: RawRecord): void {
    const bad = (message: string): void => void this.problems.push({ where: r.where, message });
    const v = recordValue(r);
    if ('error' in v) return bad(v.error);
    const value = v.value;
    const seen = detectFormat(value);
    if (this.format === null) {
      if (seen === null) return bad('cannot tell the format: expected a "messages", "conversations" or "instruction" field');
      this.format = seen;
      this.decidedAt = r.where;
    } else if (seen !== null && seen !== this.format) {
      return bad(`record looks like ${seen} but the file is ${this.format} (decided by ${this.decidedAt})`);
    }
    const n = normalizeRecord(value, this.format);
    if (!n.ok) return bad(n.errors.join('; '));
    const errors = validateConversation(n.conversation, n.paths);
    if (errors.length > 0) return bad(errors.join('; '));
    this.conversations.push(n.conversation);
    this.sources.push(r.where);
  }

  finish(): LoadResult {
    const { file, problems } = this;
    const total = this.conversations.length + problems.length;
    if (problems.length > 0 && !this.opts.skip) {
      const shown = this.opts.maxErrorsShown ?? 5;
      const lines = problems.slice(0, shown).map((p) => `  ${p.where}: ${p.message}`);
      if (problems.length > shown) lines.push(`  … and ${problems.length - shown} more`);
      throw new Error(`${file}: ${problems.length} bad record(s) out of ${total} (fix them or load with {skip: true}):\n${lines.join('\n')}`);
    }
    if (this.conversations.length === 0) {
      throw new Error(total === 0 ? `${file}: no records` : `${file}: no valid records (${problems.length} skipped, first: ${problems[0].where}: ${problems[0].message})`);
    }
    return { file, format: this.format!, conversations: this.conversations, sources: this.sources, skipped: problems };
  }
}

function containerOf(file: string, opts: LoadOptions): 'json' | 'jsonl' {
  return opts.container ?? (file.toLowerCase().endsWith('.json') ? 'json' : 'jsonl');
}

function lineRecord(file: string, r: LineRecord): RawRecord {
  const where = `${file}:${r.line}`;
  return 'error' in r ? { where, error: r.error } : { where, text: r.text };
}

function* arrayRecords(file: string, text: string): Generator<RawRecord> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new Error(`${file}: a .json dataset must hold an array of records`);
  for (let i = 0; i < parsed.length; i++) yield { where: `${file}[${i}]`, value: parsed[i] as unknown };
}

/** Loads a dataset file (streamed line by line for JSONL). `file` is also the name used in messages. */
export async function loadConversations(file: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const c = new Collector(file, opts);
  if (containerOf(file, opts) === 'json') {
    for (const r of arrayRecords(file, await readFile(file, 'utf8'))) c.add(r);
  } else {
    for await (const r of readLines(file, opts)) c.add(lineRecord(file, r));
  }
  return c.finish();
}

/** Same as loadConversations for data already in memory; `file` names it in messages and picks the container. */
export function parseConversations(data: string | Buffer, file: string, opts: LoadOptions = {}): LoadResult {
  const c = new Collector(file, opts);
  if (containerOf(file, opts) === 'json') {
    for (const r of arrayRecords(file, typeof data === 'string' ? data : data.toString('utf8'))) c.add(r);
  } else {
    for (const r of splitLines(data, opts)) c.add(lineRecord(file, r));
  }
  return c.finish();
}
