// Line splitting for JSONL files: streaming, byte-based, robust to CRLF, a UTF-8 BOM, a missing final newline,
// blank lines, invalid UTF-8 and over-long lines (reported as errors with their line number, never a crash or an
// unbounded buffer).

import { createReadStream } from 'node:fs';

/** One physical line: its 1-based number and text (without the line ending), or why it could not be read. */
export type LineRecord = { line: number; text: string } | { line: number; error: string };

export interface LineOptions {
  /** longest accepted line in bytes, excluding the line ending (default 1 MiB) */
  maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

/** Incremental splitter: push byte chunks, get complete lines back; end() flushes a last line without newline.
 *  Blank (whitespace-only) lines are dropped but still counted, so numbers match what an editor shows. */
export class LineSplitter {
  private readonly max: number;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private lineNo = 0;
  private tooLong = false; // the current line passed the limit: discard bytes until its newline
  private first = true;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(opts: LineOptions = {}) {
    this.max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!(this.max > 0)) throw new Error(`maxLineBytes must be positive, got ${this.max}`);
  }

  push(chunk: Buffer | Uint8Array): LineRecord[] {
    const out: LineRecord[] = [];
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (buf.length > 0) {
      const nl = buf.indexOf(0x0a);
      const piece = nl < 0 ? buf : buf.subarray(0, nl);
      this.append(piece);
      if (nl < 0) break;
      this.finishLine(out);
      buf = buf.subarray(nl + 1);
    }
    return out;
  }

  end(): LineRecord[] {
    const out: LineRecord[] = [];
    if (this.partBytes > 0 || this.tooLong) this.finishLine(out);
    return out;
  }

  private append(piece: Buffer): void {
    if (this.tooLong || piece.length === 0) return;
    // +1 allows the '\r' of a CRLF ending at exactly the limit
    if (this.partBytes + piece.length > this.max + 1) {
      this.tooLong = true;
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    this.parts.push(Buffer.from(piece)); // copy: the caller may reuse its chunk
    this.partBytes += piece.length;
  }

  private finishLine(out: LineRecord[]): void {
    this.lineNo++;
    const line = this.lineNo;
    if (this.tooLong) {
      this.tooLong = false;
      this.first = false;
      out.push({ line, error: `line longer than ${this.max} bytes (maxLineBytes)` });
      return;
    }
    let bytes = Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    if (this.first && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    this.first = false;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.max) {
      out.push({ line, error: `line longer than ${this.max} bytes (maxLineBytes)` });
      return;
    }
    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      out.push({ line, error: 'invalid UTF-8' });
      return;
    }
    if (text.trim() === '') return;
    out.push({ line, text });
  }
}

/** Splits an in-memory buffer or string into line records (same rules as the streaming reader). */
export function splitLines(data: Buffer | Uint8Array | string, opts: LineOptions = {}): LineRecord[] {
  const s = new LineSplitter(opts);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return [...s.push(bytes), ...s.end()];
}

/** Streams a file's line records; memory stays bounded by maxLineBytes plus one read chunk. */
export async function* readLines(path: string, opts: LineOptions = {}): AsyncGenerator<LineRecord> {
  const s = new LineSplitter(opts);
  const stream = createReadStream(path, { highWaterMark: 1 << 16 });
  for await (const chunk of stream) yield* s.push(chunk as Buffer);
  yield* s.end();
}
