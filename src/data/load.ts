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

/**
 * Checks records one at a time: detects the format (decided by the first record that shows one, then required of
 * every later one), normalizes and validates. Shared by the in-memory loader below and the file index (record-index.ts), which
 * checks records when training reads them.
 */
export class RecordChecker {
  private _format: DataFormat | null;
  private decidedAt = '';

  constructor(format: DataFormat | 'auto' = 'auto') {
    if (format !== 'auto' && !DATA_FORMATS.includes(format)) {
      throw new Error(`unknown data format "${String(format)}"; expected auto|${DATA_FORMATS.join('|')}`);
    }
    this._format = format === 'auto' ? null : format;
    if (this._format !== null) this.decidedAt = 'the format option';
  }

  /** The format, once given or decided by a valid record (null before). */
  get format(): DataFormat | null {
    return this._format;
  }

  /** The record's conversation, or what is wrong with it (without its location: `where` only names the decider). */
  check(r: { where: string } & ({ text: string } | { value: unknown } | { error: string })): { conversation: Conversation } | { error: string } {
    const v = recordValue(r);
    if ('error' in v) return v;
    const value = v.value;
    const seen = detectFormat(value);
    if (this._format === null) {
      if (seen === null) return { error: 'cannot tell the format: expected a "messages", "conversations" or "instruction" field' };
      this._format = seen;
      this.decidedAt = r.where;
    } else if (seen !== null && seen !== this._format) {
      return { error: `record looks like ${seen} but the file is ${this._format} (decided by ${this.decidedAt})` };
    }
    const n = normalizeRecord(value, this._format);
    if (!n.ok) return { error: n.errors.join('; ') };
    const errors = validateConversation(n.conversation, n.paths);
    if (errors.length > 0) return { error: errors.join('; ') };
    return { conversation: n.conversation };
  }
}

/** Collects records one at a time (RecordChecker), keeping the conversations and reporting the bad ones. */
class Collector {
  private readonly checker: RecordChecker;
  readonly conversations: Conversation[] = [];
  readonly sources: string[] = [];
  readonly problems: LoadProblem[] = [];

  constructor(private readonly file: string, private readonly opts: LoadOptions) {
    this.checker = new RecordChecker(opts.format ?? 'auto');
  }

  add(r: RawRecord): void {
    const c = this.checker.check(r);
    if ('error' in c) {
      this.problems.push({ where: r.where, message: c.error });
      return;
    }
    this.conversations.push(c.conversation);
    this.sources.push(r.where);
  }

  finish(): LoadResult {
    const { file, problems } = this;
    const total = this.conversations.length + problems.length;
    if (problems.length > 0 && !this.opts.skip) throw badRecordsError(file, problems, total, this.opts.maxErrorsShown);
    if (this.conversations.length === 0) {
      throw new Error(total === 0 ? `${file}: no records` : `${file}: no valid records (${problems.length} skipped, first: ${problems[0].where}: ${problems[0].message})`);
    }
    return { file, format: this.checker.format!, conversations: this.conversations, sources: this.sources, skipped: problems };
  }
}

/** The error a load with bad records (and no {skip: true}) throws: the first `shown` problems and the count. */
export function badRecordsError(file: string, problems: readonly LoadProblem[], total: number, shown = 5): Error {
  const lines = problems.slice(0, shown).map((p) => `  ${p.where}: ${p.message}`);
  if (problems.length > shown) lines.push(`  … and ${problems.length - shown} more`);
  return new Error(`${file}: ${problems.length} bad record(s) out of ${total} (fix them or load with {skip: true}):\n${lines.join('\n')}`);
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
