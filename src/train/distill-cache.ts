// The teacher's sparse distributions on disk: computed once per training set, read back one row at a time, so memory
// stays flat however large the set (a row's entries are read with one pread when its batch comes up).
//
// File layout (little-endian):
//   "NMTOPK01"                      8-byte magic
//   u32 H, H bytes of JSON          the header: which teacher, tokenizer, data, K, temperature, rows (CacheHeader)
//   zero padding to a multiple of 4
//   u32 start[R + 1]                row r's entries are [start[r], start[r+1]) (one entry per trained position)
//   entries, each K × i32 id then K × f32 log-prob (descending), at temperature `temperature`
// The residual mass of each entry (1 − Σ exp(log-prob)) is implicit: the loss keeps it as the "rest" bucket.
//
// A cache is refused unless every header field matches what the run expects (teacher fingerprint, tokenizer
// fingerprint, data fingerprint, K, temperature): a stale cache would train the student on another teacher silently.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Tokenizer } from '../tokenizer/types.js';
import type { Row } from './batching.js';
import { trainedRows, type SparseTeacher } from './distill-loss.js';

const MAGIC = 'NMTOPK01';
export const TEACHER_CACHE_VERSION = 1;

export interface CacheHeader {
  version: number; // TEACHER_CACHE_VERSION
  /** a readable name of the teacher (model path and adapters), for messages */
  teacher: string;
  /** hash of the teacher's files, config and adapter stack */
  teacherId: string;
  /** hash of the tokenizer's vocabulary */
  tokenizer: string;
  /** hash of the training rows (ids and labels) the entries belong to */
  data: string;
  vocabSize: number;
  k: number;
  temperature: number;
  rows: number;
}

const sha = (parts: readonly (string | Uint8Array)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
};

/** The vocabulary's fingerprint: two tokenizers with the same fingerprint map ids to the same strings. */
export function tokenizerFingerprint(tok: Pick<Tokenizer, 'vocabSize' | 'idToToken'>): string {
  const parts: string[] = [String(tok.vocabSize)];
  for (let i = 0; i < tok.vocabSize; i++) parts.push(`\0${tok.idToToken(i) ?? ''}`);
  return sha(parts);
}

/** A fingerprint of files by path, size and modification time (cheap: the weights are not read). */
export function filesFingerprint(what: unknown, files: readonly string[]): string {
  const stamp = files.map((f) => {
    const p = resolve(f);
    if (!existsSync(p)) return [p, 'missing'];
    const s = statSync(p);
    return [p, s.size, Math.round(s.mtimeMs)];
  });
  return sha([JSON.stringify({ what, stamp })]);
}

/** The rows' fingerprint (ids and labels in order). */
export function rowsFingerprint(rows: readonly Row[]): string {
  const h = createHash('sha256');
  for (const r of rows) {
    h.update(new Uint8Array(r.ids.buffer, r.ids.byteOffset, r.ids.byteLength));
    h.update(new Uint8Array(r.labels.buffer, r.labels.byteOffset, r.labels.byteLength));
    h.update('|');
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Writes the cache atomically (a temporary file renamed into place): `score` is asked for the teacher of `rows` a
 * chunk at a time (one SparseTeacher per row, its entries in the order of the row's trained positions).
 */
export function writeTeacherCache(path: string, header: Omit<CacheHeader, 'version' | 'rows'>, rows: readonly Row[], score: (chunk: readonly Row[]) => SparseTeacher[], chunk = 16, onProgress?: (done: number) => void): CacheHeader {
  const h: CacheHeader = { version: TEACHER_CACHE_VERSION, ...header, rows: rows.length };
  const K = h.k;
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const pre = 8 + 4 + json.length;
  const pad = (4 - (pre % 4)) % 4;
  const start = new Uint32Array(rows.length + 1);
  rows.forEach((r, i) => (start[i + 1] = start[i] + trainedRows(r.labels)));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const head = Buffer.alloc(pre + pad);
    head.write(MAGIC, 0, 'latin1');
    head.writeUInt32LE(json.length, 8);
    json.copy(head, 12);
    writeSync(fd, head);
    writeSync(fd, new Uint8Array(start.buffer));
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const teachers = score(part);
      if (teachers.length !== part.length) throw new Error(`teacher cache: scored ${teachers.length} rows of ${part.length}`);
      teachers.forEach((t, j) => {
        const n = start[i + j + 1] - start[i + j];
        if (t.K !== K || t.ids.length !== n * K) throw new Error(`teacher cache: row ${i + j} has ${n} trained positions but the teacher gave ${t.ids.length / t.K} × top-${t.K}`);
        const buf = new ArrayBuffer(n * K * 8);
        for (let e = 0; e < n; e++) {
          new Int32Array(buf, e * K * 8, K).set(t.ids.subarray(e * K, (e + 1) * K));
          new Float32Array(buf, e * K * 8 + K * 4, K).set(t.logp.subarray(e * K, (e + 1) * K));
        }
        writeSync(fd, new Uint8Array(buf));
      });
      onProgress?.(Math.min(i + chunk, rows.length));
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    if (existsSync(tmp)) unlinkSync(tmp);
    throw e;
  }
  return h;
}

/** Reads the header of a cache file (throws a message naming the file when it is not one). */
export function readCacheHeader(path: string): { header: CacheHeader; dataStart: number; index: Uint32Array } {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const b = Buffer.alloc(12);
    if (readSync(fd, b, 0, 12, 0) !== 12 || b.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${path}: not a nomoat teacher cache (bad magic)`);
    const H = b.readUInt32LE(8);
    if (12 + H > size) throw new Error(`${path}: truncated teacher cache (header of ${H} bytes)`);
    const jb = Buffer.alloc(H);
    readSync(fd, jb, 0, H, 12);
    let header: CacheHeader;
    try {
      header = JSON.parse(jb.toString('utf8')) as CacheHeader;
    } catch {
      throw new Error(`${path}: the teacher cache header is not JSON`);
    }
    if (header.version !== TEACHER_CACHE_VERSION) throw new Error(`${path}: teacher cache version ${header.version}, this build reads ${TEACHER_CACHE_VERSION}`);
    const idxAt = 12 + H + ((4 - ((12 + H) % 4)) % 4);
    const index = new Uint32Array(header.rows + 1);
    readSync(fd, new Uint8Array(index.buffer), 0, index.byteLength, idxAt);
    const dataStart = idxAt + index.byteLength;
    const want = dataStart + index[header.rows] * header.k * 8;
    if (size !== want) throw new Error(`${path}: teacher cache is ${size} bytes, its index says ${want} (truncated or corrupt; delete it to recompute)`);
    return { header, dataStart, index };
  } finally {
    closeSync(fd);
  }
}

/** Header fields that must match for a cache to be used, and how to say which one did not. */
const CHECKED = ['teacherId', 'tokenizer', 'data', 'vocabSize', 'k', 'temperature', 'rows'] as const;

/** An open cache: read(r) returns row r's teacher entries (one pread). */
export class TeacherCache {
  private fd: number | null;
  private constructor(
    readonly path: string,
    readonly header: CacheHeader,
    private readonly dataStart: number,
    private readonly index: Uint32Array,
  ) {
    this.fd = openSync(path, 'r');
  }

  /** Opens a cache, refusing it (naming the field) unless it was made for `expect`. */
  static open(path: string, expect: Omit<CacheHeader, 'version'>): TeacherCache {
    const { header, dataStart, index } = readCacheHeader(path);
    for (const k of CHECKED) {
      if (header[k] !== expect[k]) {
        const what = k === 'teacherId' ? `the teacher (cached for ${header.teacher}, now ${expect.teacher})` : k === 'data' ? 'the training rows' : k === 'tokenizer' ? 'the tokenizer' : k;
        throw new Error(`${path}: stale teacher cache: ${what} changed (${String(header[k])} → ${String(expect[k])}); delete it to recompute`);
      }
    }
    return new TeacherCache(path, header, dataStart, index);
  }

  /** Trained positions of row r (as cached). */
  positions(r: number): number {
    return this.index[r + 1] - this.index[r];
  }

  read(r: number): SparseTeacher {
    if (this.fd === null) throw new Error(`${this.path}: teacher cache is closed`);
    if (!(r >= 0 && r < this.header.rows)) throw new Error(`${this.path}: row ${r} is outside the cache's ${this.header.rows} rows`);
    const K = this.header.k;
    const n = this.positions(r);
    const buf = new Uint8Array(n * K * 8);
    readSync(this.fd, buf, 0, buf.length, this.dataStart + this.index[r] * K * 8);
    const ids = new Int32Array(n * K);
    const logp = new Float32Array(n * K);
    for (let e = 0; e < n; e++) {
      ids.set(new Int32Array(buf.buffer, e * K * 8, K), e * K);
      logp.set(new Float32Array(buf.buffer, e * K * 8 + K * 4, K), e * K);
    }
    return { K, ids, logp };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Concatenates per-row teachers (batch order) into one, as distillLoss reads the batch's trained rows. */
export function concatTeachers(parts: readonly SparseTeacher[], K: number): SparseTeacher {
  const n = parts.reduce((s, p) => s + p.ids.length, 0);
  const ids = new Int32Array(n);
  const logp = new Float32Array(n);
  let at = 0;
  for (const p of parts) {
    if (p.K !== K) throw new Error(`concatTeachers: top-${p.K} among top-${K}`);
    ids.set(p.ids, at);
    logp.set(p.logp, at);
    at += p.ids.length;
  }
  return { K, ids, logp };
}
