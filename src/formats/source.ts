// Byte sources (a file read by position, or bytes in memory) and a bounds-checked little-endian cursor over them.
//
// Every parser in src/formats reads through this file so that every failure becomes a FormatError whose message
// names the source, the byte offset and the field: `model.gguf: tensor 3 name at offset 1234: string length …`.
// Nothing here allocates from an unchecked count: callers ask `need(count * minBytes)` before building arrays.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Random access to the bytes of one file-like thing. */
export interface ByteSource {
  /** file path or label; every error message starts with it */
  readonly name: string;
  /** total size in bytes */
  readonly size: number;
  /** `length` bytes from `offset` (a fresh array the caller may keep). Throws FormatError past the end. */
  read(offset: number, length: number): Uint8Array;
  /** release the file descriptor, if any (reads afterwards fail). Readers given a path keep it open for lazy
   *  tensor reads (GGUF, safetensors): call `file.source.close?.()` when done. */
  close?(): void;
}

/** Whether this host stores numbers little-endian (the formats here all are, so LE hosts can view bytes directly). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A malformed or unreadable file: the message names the source, the offset and the field. */
export class FormatError extends Error {
  constructor(
    readonly sourceName: string,
    readonly offset: number | null,
    readonly field: string,
    detail: string,
  ) {
    super(`${sourceName}: ${field}${offset === null ? '' : ` at offset ${offset}`}: ${detail}`);
    this.name = 'FormatError';
  }
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FormatError(name, null, 'read', `invalid range offset ${offset} length ${length}`);
  }
  if (offset + length > size) {
    throw new FormatError(name, offset, 'read', `${length} bytes run past end of file (size ${size})`);
  }
}

/** Bytes already in memory (tests, fuzzing, downloaded buffers). */
export class MemorySource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.length;
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this.name, this.size, offset, length);
    return this.bytes.slice(offset, offset + length);
  }
}

/** A file read with positioned reads; the whole file is never loaded. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | null;

  constructor(readonly name: string) {
    try {
      this.fd = openSync(name, 'r');
      this.size = fstatSync(this.fd).size;
    } catch (e) {
      throw new FormatError(name, null, 'open', e instanceof Error ? e.message : String(e));
    }
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this.name, this.size, offset, length);
    if (this.fd === null) throw new FormatError(this.name, offset, 'read', 'file already closed');
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      // readSync takes at most 2 GiB per call; loop until the range is filled
      const n = readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) throw new FormatError(this.name, offset + done, 'read', 'unexpected end of file (truncated while open?)');
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** A path opens a FileSource; a ByteSource passes through. */
export function toSource(src: ByteSource | string): ByteSource {
  return typeof src === 'string' ? new FileSource(src) : src;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding; invalid bytes throw FormatError naming the field. */
export function decodeUtf8(bytes: Uint8Array, sourceName: string, offset: number, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new FormatError(sourceName, offset, field, 'invalid UTF-8');
  }
}

const WINDOW = 1 << 16; // bytes buffered per refill: parsing a 50k-token vocabulary must not do 100k syscalls

/** Sequential little-endian reader with a buffered window. `field` names what is read, for error messages. */
export class ByteReader {
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0; // file offset of buf[0]
  pos: number;

  constructor(
    readonly source: ByteSource,
    start = 0,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.source.size - this.pos;
  }

  fail(field: string, detail: string, at: number = this.pos): never {
    throw new FormatError(this.source.name, at, field, detail);
  }

  /** Throws unless `n` more bytes exist. Use before allocating anything sized by a count read from the file. */
  need(n: number, field: string, what = `${n} bytes`): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      this.fail(field, `${what} run past end of file (size ${this.source.size})`);
    }
  }

  /** Ensures [pos, pos+n) is in the window (n ≤ WINDOW) and returns the index of pos inside it. */
  private at(n: number, field: string): number {
    this.need(n, field);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const len = Math.min(Math.max(WINDOW, n), this.remaining);
    this.buf = this.source.read(this.pos, len);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  u8(field: string): number {
    const i = this.at(1, field);
    this.pos += 1;
    return this.buf[i] ?? 0;
  }
  i8(field: string): number {
    const i = this.at(1, field);
    this.pos += 1;
    return this.view.getInt8(i);
  }
  u16(field: string): number {
    const i = this.at(2, field);
    this.pos += 2;
    return this.view.getUint16(i, true);
  }
  i16(field: string): number {
    const i = this.at(2, field);
    this.pos += 2;
    return this.view.getInt16(i, true);
  }
  u32(field: string): number {
    const i = this.at(4, field);
    this.pos += 4;
    return this.view.getUint32(i, true);
  }
  i32(field: string): number {
    const i = this.at(4, field);
    this.pos += 4;
    return this.view.getInt32(i, true);
  }
  f32(field: string): number {
    const i = this.at(4, field);
    this.pos += 4;
    return this.view.getFloat32(i, true);
  }
  f64(field: string): number {
    const i = this.at(8, field);
    this.pos += 8;
    return this.view.getFloat64(i, true);
  }
  u64big(field: string): bigint {
    const i = this.at(8, field);
    this.pos += 8;
    return this.view.getBigUint64(i, true);
  }
  i64big(field: string): bigint {
    const i = this.at(8, field);
    this.pos += 8;
    return this.view.getBigInt64(i, true);
  }
  /** u64 that must fit a JS number exactly (≤ 2^53 − 1): counts, sizes, offsets. */
  u64(field: string): number {
    const start = this.pos;
    const v = this.u64big(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(field, `value ${v} exceeds 2^53 - 1`, start);
    return Number(v);
  }
  /** i64 that must fit a JS number exactly. */
  i64(field: string): number {
    const start = this.pos;
    const v = this.i64big(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail(field, `value ${v} is outside ±(2^53 - 1)`, start);
    }
    return Number(v);
  }

  /** n raw bytes (a fresh copy). */
  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    if (n <= WINDOW) {
      const i = this.at(n, field);
      this.pos += n;
      return this.buf.slice(i, i + n);
    }
    const out = this.source.read(this.pos, n);
    this.pos += n;
    return out;
  }

  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }

  /** UTF-8 string of `len` bytes (already read length); strict decoding. */
  utf8(len: number, field: string, lengthAt: number = this.pos): string {
    if (!Number.isSafeInteger(len) || len < 0 || len > this.remaining) {
      this.fail(field, `string length ${len} runs past end of file (size ${this.source.size})`, lengthAt);
    }
    const start = this.pos;
    return decodeUtf8(this.bytes(len, field), this.source.name, start, field);
  }

  /** GGUF string: u64 length then UTF-8 bytes. */
  ggufString(field: string, maxLen = Number.MAX_SAFE_INTEGER): string {
    const lengthAt = this.pos;
    const len = this.u64(field);
    if (len > maxLen) this.fail(field, `string length ${len} exceeds the limit ${maxLen}`, lengthAt);
    return this.utf8(len, field, lengthAt);
  }
}

// little-endian f32 bytes ↔ Float32Array: the engine's codecs (alignment-safe, byte-swapped on big-endian hosts)
export { f32FromLeBytes as f32FromBytes, leBytesFromF32 as bytesFromF32 } from '../engine/quant/block.js';
