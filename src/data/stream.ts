// Streaming record readers for `nomoat data`: JSONL line by line and Parquet row group by row group (hyparquet),
// so memory stays flat in the file size. Every bad record comes back as a problem naming file:line and field; the
// caller decides whether to stop (the default) or count and skip (--skip-bad-lines).
//
// The format is decided per file by the first valid record (or given), then required of every record: a file that
// mixes formats is almost always two datasets concatenated by mistake.

import { createReadStream, statSync } from 'node:fs';
import { LineSplitter, type LineOptions } from './lines.js';
import { detectRecordFormat, toRecord, RECORD_FORMATS, type DataRecord, type RecordFormat, type RecordProblem } from './records.js';

export interface ReadOptions extends LineOptions {
  /** record format, or 'auto' (default) */
  format?: RecordFormat | 'auto';
  /** called with the bytes consumed so far (progress) */
  onBytes?: (n: number) => void;
}

export type ReadItem = { ok: true; record: DataRecord } | { ok: false; problems: RecordProblem[] };

/** 'parquet' for .parquet files, else 'jsonl' (one JSON object a line). */
export function containerOf(file: string): 'parquet' | 'jsonl' {
  return /\.parquet$/iu.test(file) ? 'parquet' : 'jsonl';
}

/** Size in bytes, for progress bars; a missing file is a clear error. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    throw new Error(`${file}: no such file`);
  }
}

/** Decides the format from the first valid record and holds every later record to it. */
class FormatGate {
  private format: RecordFormat | null;
  private decidedAt = '';
  constructor(f: RecordFormat | 'auto' | undefined) {
    if (f !== undefined && f !== 'auto' && !RECORD_FORMATS.includes(f)) throw new Error(`unknown data format "${String(f)}"; expected auto|${RECORD_FORMATS.join('|')}`);
    this.format = f === undefined || f === 'auto' ? null : f;
    if (this.format !== null) this.decidedAt = '--format';
  }

  item(where: string, value: unknown): ReadItem {
    const seen = detectRecordFormat(value);
    const fmt = this.format ?? seen;
    if (fmt === null) {
      const what = typeof value === 'object' && value !== null && !Array.isArray(value) ? 'cannot tell the format: expected a "messages", "conversations", "instruction" or "text" field' : 'expected a JSON object';
      return { ok: false, problems: [{ where, field: '(record)', message: what }] };
    }
    if (this.format !== null && seen !== null && seen !== this.format) {
      return { ok: false, problems: [{ where, field: '(record)', message: `looks like ${seen} but the file is ${this.format} (decided by ${this.decidedAt}): one format per file` }] };
    }
    const r = toRecord(where, value, fmt);
    if (r.ok && this.format === null) {
      this.format = fmt;
      this.decidedAt = where;
    }
    return r;
  }
}

/** Streams a JSONL file's records. */
export async function* readJsonl(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const gate = new FormatGate(opts.format);
  const splitter = new LineSplitter(opts);
  const stream = createReadStream(file, { highWaterMark: 1 << 16 });
  let bytes = 0;
  const parse = function* (lines: ReturnType<LineSplitter['push']>): Generator<ReadItem> {
    for (const l of lines) {
      const where = `${file}:${l.line}`;
      if ('error' in l) {
        yield { ok: false, problems: [{ where, field: '(line)', message: l.error }] };
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(l.text);
      } catch (e) {
        yield { ok: false, problems: [{ where, field: '(line)', message: `invalid JSON (${(e as Error).message})` }] };
        continue;
      }
      yield gate.item(where, value);
    }
  };
  try {
    for await (const chunk of stream) {
      bytes += (chunk as Buffer).length;
      yield* parse(splitter.push(chunk as Buffer));
      opts.onBytes?.(bytes);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${file}: no such file`);
    throw e;
  } finally {
    stream.destroy();
  }
  yield* parse(splitter.end());
}

/** Streams a Parquet file's records one row group at a time (rows are numbered from 1 as lines). A file that is
 *  not Parquet or is truncated throws naming the file; a row group that cannot be decoded throws naming its rows. */
export async function* readParquet(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const gate = new FormatGate(opts.format);
  let buf;
  try {
    buf = await asyncBufferFromFile(file);
  } catch {
    throw new Error(`${file}: no such file`);
  }
  let meta;
  try {
    meta = await parquetMetadataAsync(buf);
  } catch (e) {
    throw new Error(`${file}: not a readable Parquet file (truncated or not Parquet: ${(e as Error).message})`);
  }
  let row = 0, bytes = 0;
  for (const rg of meta.row_groups) {
    const n = Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buf, metadata: meta, rowStart: row, rowEnd: row + n });
    } catch (e) {
      throw new Error(`${file}:${row + 1}: (row group): rows ${row + 1}–${row + n} cannot be read (${(e as Error).message}); the file is damaged or truncated`);
    }
    for (let i = 0; i < rows.length; i++) yield gate.item(`${file}:${row + i + 1}`, plain(rows[i]));
    row += n;
    bytes += rg.columns.reduce((sum, c) => sum + Number(c.meta_data?.total_compressed_size ?? 0), 0);
    opts.onBytes?.(bytes);
  }
}

/** Parquet readers give BigInt for INT64 columns; JSON has no BigInt, so small ones become numbers. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

/** Streams any supported file's records (by extension). */
export function readRecords(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  return containerOf(file) === 'parquet' ? readParquet(file, opts) : readJsonl(file, opts);
}
