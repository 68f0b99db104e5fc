// A line-offset index of a JSONL dataset, so that training reads conversations by number instead of holding them
// all: one pass over the file records where each non-blank line starts (8 bytes) and its line number (4 bytes);
// reading record i is one positioned read, a JSON parse and the loader's checks (load.ts's RecordChecker).
//
// Records in the first `checkBytes` bytes are checked during the pass (bad ones reported at once and left out of
// the index, as loadConversations does), so a small file is wholly checked before training starts; past that, a
// record is checked when it is read, and a bad one comes back as an error naming file:line. The pass itself runs at
// the speed of a newline scan, so a dataset of any size is ready in seconds.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DEFAULT_MAX_LINE_BYTES, type LineOptions } from './lines.js';
import { badRecordsError, RecordChecker, type LoadProblem } from './load.js';
import type { ConversationSource, SourceRecord } from './conversation-source.js';
import type { DataFormat } from './types.js';

export interface IndexOptions extends LineOptions {
  /** record format, or 'auto' (default): decided by the first record that shows one */
  format?: DataFormat | 'auto';
  /** bytes from the start whose records are checked while indexing (default 16 MiB; Infinity: the whole file) */
  checkBytes?: number;
  /** drop the bad records found while indexing (and report them) instead of throwing (default false) */
  skip?: boolean;
  /** called with the bytes read after each chunk (a progress bar) */
  onBytes?: (bytes: number) => void;
}

export const DEFAULT_CHECK_BYTES = 16 << 20;
const CHUNK = 1 << 20;

/** Bytes that make a line blank: space, \t, \r, \v, \f. */
const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d && b !== 0x0a);

/** Growable parallel arrays: where each record starts and its line number. */
class Offsets {
  starts = new Float64Array(1024);
  lines = new Uint32Array(1024);
  n = 0;
  push(start: number, line: number): void {
    if (this.n === this.starts.length) {
      const grow = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
        const b = make(Math.ceil(a.length * 1.5));
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts, (k) => new Float64Array(k));
      this.lines = grow(this.lines, (k) => new Uint32Array(k));
    }
    this.starts[this.n] = start;
    this.lines[this.n++] = line;
  }
}

export class JsonlIndex implements ConversationSource {
  private fd: number | null = null;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    readonly file: string,
    /** byte offset of each record's line, ascending */
    readonly starts: Float64Array,
    /** 1-based line number of each record */
    readonly lines: Uint32Array,
    readonly fileBytes: number,
    private readonly checker: RecordChecker,
    readonly maxLineBytes: number,
    /** records before this one were checked while indexing */
    readonly checkedRecords: number,
  ) {}

  get size(): number {
    return this.starts.length;
  }

  /** The format given or decided while indexing. */
  get format(): DataFormat {
    return this.checker.format ?? 'openai';
  }

  read(i: number): SourceRecord {
    if (!(Number.isInteger(i) && i >= 0 && i < this.size)) throw new Error(`${this.file}: no record ${i} (the index holds ${this.size})`);
    const where = `${this.file}:${this.lines[i]}`;
    const start = this.starts[i];
    const end = i + 1 < this.size ? this.starts[i + 1] : this.fileBytes; // blank lines between records read as padding
    const want = Math.min(end - start, this.maxLineBytes + 2); // + '\r\n'
    const buf = Buffer.allocUnsafe(want);
    this.fd ??= openSync(this.file, 'r');
    let got = 0;
    while (got < want) {
      const n = readSync(this.fd, buf, got, want - got, start + got);
      if (n === 0) return { where, error: 'the file ended early: it changed after it was indexed' };
      got += n;
    }
    const nl = buf.indexOf(0x0a);
    let line = nl < 0 ? buf : buf.subarray(0, nl);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > this.maxLineBytes || (nl < 0 && want < end - start)) return { where, error: `line longer than ${this.maxLineBytes} bytes (maxLineBytes)` };
    let text: string;
    try {
      text = this.decoder.decode(i === 0 && start === 0 ? stripBom(line) : line);
    } catch {
      return { where, error: 'invalid UTF-8' };
    }
    const c = this.checker.check({ where, text });
    return 'error' in c ? { where, error: c.error } : { where, conversation: c.conversation };
  }

  /** Closes the file (reading again reopens it). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function stripBom(b: Buffer): Buffer {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;
}

export interface IndexResult {
  index: JsonlIndex;
  /** bad records found while indexing (with {skip: true}; without, they throw) */
  skipped: LoadProblem[];
}

/**
 * Indexes a JSONL file: one sequential pass, checking the records of the first checkBytes bytes. Throws (naming
 * file:line) on the bad records it checked unless {skip: true}, and when the file holds no record.
 */
export function indexJsonl(file: string, opts: IndexOptions = {}): IndexResult {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const checkBytes = opts.checkBytes ?? DEFAULT_CHECK_BYTES;
  const checker = new RecordChecker(opts.format ?? 'auto');
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const out = new Offsets();
  const problems: LoadProblem[] = [];
  let checkedRecords = 0;
  let lineNo = 0;

  // One complete line: [start, start + bytes.length) of the file; bytes is null when it was longer than max.
  const line = (start: number, bytes: Buffer | null): void => {
    lineNo++;
    if (bytes !== null) {
      if (start === 0) {
        const s = stripBom(bytes);
        start += bytes.length - s.length;
        bytes = s;
      }
      let k = 0;
      while (k < bytes.length && isSpace(bytes[k])) k++;
      if (k === bytes.length) return; // blank: counted, not a record
    }
    // checked here: the first checkBytes bytes, and until a record has decided the format
    if (start >= checkBytes && checker.format !== null) {
      out.push(start, lineNo);
      return;
    }
    const where = `${file}:${lineNo}`;
    let error: string | null = null;
    if (bytes === null) error = `line longer than ${max} bytes (maxLineBytes)`;
    else {
      const body = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
      if (body.length > max) error = `line longer than ${max} bytes (maxLineBytes)`;
      else {
        let text = '';
        try {
          text = decoder.decode(body);
        } catch {
          error = 'invalid UTF-8';
        }
        if (error === null) {
          const c = checker.check({ where, text });
          if ('error' in c) error = c.error;
        }
      }
    }
    if (error !== null) problems.push({ where, message: error });
    else {
      out.push(start, lineNo);
      checkedRecords = out.n;
    }
  };

  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let fileBytes = 0;
  try {
    fileBytes = fstatSync(fd).size;
    const chunk = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer = Buffer.alloc(0); // the current line's bytes so far (dropped once past max: tooLong)
    let tooLong = false;
    let lineStart = 0;
    let pos = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, pos);
      if (n === 0) break;
      let data = chunk.subarray(0, n);
      let base = pos; // file offset of data[0]
      if (carry.length > 0) {
        data = Buffer.concat([carry, data]);
        base -= carry.length;
        carry = Buffer.alloc(0);
      }
      let from = 0;
      for (let nl = data.indexOf(0x0a, from); nl >= 0; nl = data.indexOf(0x0a, from)) {
        line(lineStart, tooLong ? null : data.subarray(from, nl));
        tooLong = false;
        from = nl + 1;
        lineStart = base + from;
      }
      const rest = data.subarray(from);
      if (tooLong || rest.length > max + 1) tooLong = true;
      else carry = Buffer.from(rest); // copy: chunk is reused
      pos += n;
      opts.onBytes?.(pos);
    }
    if (tooLong || carry.length > 0) line(lineStart, tooLong ? null : carry);
  } finally {
    closeSync(fd);
  }
  const total = out.n + problems.length;
  if (problems.length > 0 && opts.skip !== true) throw badRecordsError(file, problems, total);
  if (out.n === 0) {
    throw new Error(total === 0 ? `${file}: no records` : `${file}: no valid records (${problems.length} skipped, first: ${problems[0].where}: ${problems[0].message})`);
  }
  const index = new JsonlIndex(file, out.starts.subarray(0, out.n), out.lines.subarray(0, out.n), fileBytes, checker, max, checkedRecords);
  return { index, skipped: problems };
}
