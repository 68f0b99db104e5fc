// Writing helpers: a growable little-endian byte builder for headers, and atomic streaming file output.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Growable little-endian buffer for file headers (tensor data is streamed, never collected here). */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private grow(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number): void {
    this.view.setUint8(this.grow(1), v);
  }
  i8(v: number): void {
    this.view.setInt8(this.grow(1), v);
  }
  u16(v: number): void {
    this.view.setUint16(this.grow(2), v, true);
  }
  i16(v: number): void {
    this.view.setInt16(this.grow(2), v, true);
  }
  u32(v: number): void {
    this.view.setUint32(this.grow(4), v, true);
  }
  i32(v: number): void {
    this.view.setInt32(this.grow(4), v, true);
  }
  f32(v: number): void {
    this.view.setFloat32(this.grow(4), v, true);
  }
  f64(v: number): void {
    this.view.setFloat64(this.grow(8), v, true);
  }
  u64(v: number | bigint): void {
    this.view.setBigUint64(this.grow(8), BigInt(v), true);
  }
  i64(v: number | bigint): void {
    this.view.setBigInt64(this.grow(8), BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.grow(b.length));
  }
  zeros(n: number): void {
    this.buf.fill(0, this.grow(n), this.length);
  }

  /** The bytes written so far (a view; copy before writing more if it must be kept). */
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Receives output in order; chunks may be views the caller reuses, so a sink must copy or consume them now. */
export type Sink = (chunk: Uint8Array) => void;

/**
 * Writes a file atomically: the bytes go to `path.tmp-<pid>`, are fsynced, then renamed over `path`, so readers
 * never see a half-written file. On any error the temporary file is removed and the error rethrown.
 */
export function writeFileAtomic(path: string, emit: (sink: Sink) => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = openSync(tmp, 'w');
  try {
    const out = fd;
    emit((chunk) => {
      let done = 0;
      while (done < chunk.length) done += writeSync(out, chunk, done, chunk.length - done);
    });
    fsyncSync(out);
    closeSync(out);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw e;
  }
  syncDir(dirname(path));
}

/** fsync the directory so the rename itself survives a crash (best effort: not every platform allows it). */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // directories cannot be opened for fsync on some systems (Windows); the rename is still atomic
  }
}

/** Collects everything a writer emits into one buffer (tests, in-memory files). */
export function collect(emit: (sink: Sink) => void): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  emit((chunk) => {
    parts.push(chunk.slice());
    total += chunk.length;
  });
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
