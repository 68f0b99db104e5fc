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
    const at = this.grow(1); // grow first: it may replace this.view
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.grow(1); // grow first: it may replace this.view
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.grow(2); // grow first: it may replace this.view
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.grow(2); // grow first: it may replace this.view
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.grow(4); // grow first: it may replace this.view
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.grow(4); // grow first: it may replace this.view
    this.view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.grow(4); // grow first: it may replace this.view
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.grow(8); // grow first: it may replace this.view
    this.view.setFloat64(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.grow(8); // grow first: it may replace this.view
    this.view.setBigUint64(at, BigInt(v), true);
  }
  i64(v: number | bigint): void {
    const at = this.grow(8); // grow first: it may replace this.view
    this.view.setBigInt64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.grow(b.length);
    this.buf.set(b, at);
  }
  zeros(n: number): void {
    const at = this.grow(n);
    this.buf.fill(0, at, this.length);
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
