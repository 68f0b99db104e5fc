// Atomic record output for `nomoat data`: JSONL (streamed, buffered) or Parquet (one row group per buffered batch,
// hyparquet-writer), always into `path.tmp-<pid>` renamed over `path` by commit(). abort(), an error or Ctrl-C
// removes the temporary file, so a failed or interrupted run never leaves a half-written output behind.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { convertRecord, type DataRecord, type OutputFormat } from './records.js';

export interface RecordSink {
  readonly path: string;
  /** records written so far */
  readonly count: number;
  /** writes a record in the sink's format ('same': each record in its own format); throws a message if it cannot */
  write(r: DataRecord): void;
  /** writes an already-built object (reports: clusters, explanations) */
  writeObject(o: Record<string, unknown>): void;
  /** flushes, fsyncs and renames into place */
  commit(): Promise<void>;
  /** drops the temporary file */
  abort(): void;
}

// Temporary files of sinks not yet committed: removed if the process is interrupted.
const open = new Set<string>();
let hooked = false;
function track(tmp: string): void {
  open.add(tmp);
  if (hooked) return;
  hooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const t of open) removeQuietly(t);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}
function removeQuietly(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // already gone
  }
}

/** Opens an atomic sink; the container comes from the extension (.parquet, else JSONL). */
export function openSink(path: string, format: OutputFormat | 'same'): RecordSink {
  return /\.parquet$/iu.test(path) ? new ParquetSink(path, format) : new JsonlSink(path, format);
}

function objectOf(r: DataRecord, format: OutputFormat | 'same'): Record<string, unknown> {
  return format === 'same' ? r.raw : convertRecord(r, format);
}

class JsonlSink implements RecordSink {
  private readonly tmp: string;
  private fd: number | null;
  private buf: string[] = [];
  private bufLen = 0;
  count = 0;

  constructor(readonly path: string, private readonly format: OutputFormat | 'same') {
    this.tmp = `${path}.tmp-${process.pid}`;
    this.fd = openSync(this.tmp, 'w');
    track(this.tmp);
  }

  write(r: DataRecord): void {
    this.writeObject(objectOf(r, this.format));
  }

  writeObject(o: Record<string, unknown>): void {
    const line = JSON.stringify(o) + '\n';
    this.buf.push(line);
    this.bufLen += line.length;
    this.count++;
    if (this.bufLen > 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.fd === null || this.buf.length === 0) return;
    const bytes = Buffer.from(this.buf.join(''), 'utf8');
    this.buf = [];
    this.bufLen = 0;
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
  }

  commit(): Promise<void> {
    if (this.fd === null) throw new Error(`${this.path}: sink already closed`);
    try {
      this.flush();
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = null;
      renameSync(this.tmp, this.path);
      open.delete(this.tmp);
    } catch (e) {
      this.abort();
      throw e;
    }
    return Promise.resolve();
  }

  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    removeQuietly(this.tmp);
    open.delete(this.tmp);
  }
}

/** Parquet schemas of the output formats: nested lists of structs as Hugging Face datasets write them. */
type SchemaElement = { name: string; type?: 'BYTE_ARRAY'; converted_type?: 'UTF8' | 'LIST'; repetition_type?: 'REQUIRED' | 'OPTIONAL' | 'REPEATED'; num_children?: number };
const str = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const list = (name: string, a: string, b: string): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  str(a),
  str(b),
];
const COLUMNS: Record<OutputFormat, { columns: string[]; schema: SchemaElement[] }> = {
  messages: { columns: ['messages'], schema: list('messages', 'role', 'content') },
  sharegpt: { columns: ['conversations'], schema: list('conversations', 'from', 'value') },
  alpaca: { columns: ['instruction', 'input', 'output', 'system'], schema: ['instruction', 'input', 'output', 'system'].map(str) },
  text: { columns: ['text'], schema: [str('text')] },
};
const ROWS_PER_GROUP = 10_000;

class ParquetSink implements RecordSink {
  private readonly tmp: string;
  private rows: Record<string, unknown>[] = [];
  private fmt: OutputFormat | null;
  private writer: { write(o: { columnData: { name: string; data: unknown[] }[]; rowGroupSize: number }): void; finish(): void } | null = null;
  private closed = false;
  count = 0;

  constructor(readonly path: string, format: OutputFormat | 'same') {
    this.tmp = `${path}.tmp-${process.pid}`;
    this.fmt = format === 'same' ? null : format;
    track(this.tmp);
  }

  write(r: DataRecord): void {
    // one schema per file: 'same' takes the first record's format and converts the rest to it
    this.fmt ??= r.format === 'openai' ? 'messages' : r.format;
    this.push(convertRecord(r, this.fmt));
  }

  writeObject(o: Record<string, unknown>): void {
    this.push(o);
  }

  private push(o: Record<string, unknown>): void {
    if (this.fmt === null) throw new Error(`${this.path}: Parquet output needs records, not reports`);
    this.rows.push(o);
    this.count++;
    if (this.rows.length >= ROWS_PER_GROUP) this.flush();
  }

  private async open(): Promise<NonNullable<ParquetSink['writer']>> {
    if (this.writer !== null) return this.writer;
    const hw = await import('hyparquet-writer');
    const { columns, schema } = COLUMNS[this.fmt ?? 'text'];
    const pw = new hw.ParquetWriter({ writer: hw.fileWriter(this.tmp), schema: [{ name: 'root', num_children: columns.length }, ...schema] as never });
    this.writer = pw;
    return this.writer;
  }

  private pending: Promise<void> = Promise.resolve();
  private flush(): void {
    const rows = this.rows;
    this.rows = [];
    if (rows.length === 0) return;
    this.pending = this.pending.then(async () => {
      const w = await this.open();
      const fmt = this.fmt ?? 'text';
      const columnData = COLUMNS[fmt].columns.map((name) => ({ name, data: rows.map((r) => r[name] ?? null) }));
      w.write({ columnData, rowGroupSize: rows.length });
    });
  }

  async commit(): Promise<void> {
    if (this.closed) throw new Error(`${this.path}: sink already closed`);
    try {
      this.fmt ??= 'text'; // an empty output still gets a valid (empty) file
      this.flush();
      await this.pending;
      const w = await this.open();
      w.finish();
      const fd = openSync(this.tmp, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      renameSync(this.tmp, this.path);
      this.closed = true;
      open.delete(this.tmp);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  abort(): void {
    this.closed = true;
    removeQuietly(this.tmp);
    open.delete(this.tmp);
  }
}
