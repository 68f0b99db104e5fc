// safetensors reader and writer, plus opening a Hugging Face model folder (single file or sharded with an index).
//
// Layout (huggingface/safetensors, safetensors/src/tensor.rs), little-endian:
//   u64 N | N bytes of UTF-8 JSON, starting with '{', may be padded with spaces | byte buffer
//   JSON: { "__metadata__"?: {string: string}, name: { "dtype": "F32", "shape": [..], "data_offsets": [b, e] } }
//   offsets are relative to the byte buffer; the library requires them contiguous from 0 to the buffer's end, with
//   e − b = product(shape) × dtype size. Its writer pads the header with spaces to a multiple of 8 and orders
//   tensors by dtype alignment (largest first), then by name; we do the same.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ByteReader, decodeUtf8, FormatError, toSource, type ByteSource } from './source.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../engine/quant/index.js';
import { bytesFromF32, f32FromBytes } from './source.js';
import { collect, writeFileAtomic, type Sink } from './writer.js';

/** Bytes per element of each safetensors dtype (tensor.rs `Dtype::size`); others are rejected. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | (string & {});

export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** absolute file offsets [begin, end) */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  source: ByteSource;
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
}

/** Header size limit, as the reference library's (100 MB). */
const MAX_HEADER = 100_000_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and validates the header; tensor data is read later, on demand. */
export function readSafetensors(src: ByteSource | string): SafetensorsFile {
  const source = toSource(src);
  const r: ByteReader = new ByteReader(source);
  const n = r.u64('header length');
  if (n > MAX_HEADER) r.fail('header length', `${n} bytes exceeds the ${MAX_HEADER}-byte limit`, 0);
  if (n < 2) r.fail('header length', `${n} bytes is too short for a JSON object`, 0);
  r.need(n, 'header', `header of ${n} bytes`);
  const text = decodeUtf8(r.bytes(n, 'header'), source.name, 8, 'header');
  if (!text.startsWith('{')) r.fail('header', 'JSON header does not start with "{"', 8);
  const fail = (field: string, detail: string): never => {
    throw new FormatError(source.name, 8, field, detail);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail('header', `invalid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isRecord(json)) return fail('header', 'JSON header is not an object');

  const dataStart = 8 + n;
  const bufferLength = source.size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry][] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(value)) fail('__metadata__', 'must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k}`, 'value is not a string');
        metadata[k] = v as string;
      }
      continue;
    }
    const field = `tensor '${name}'`;
    if (!isRecord(value)) return fail(field, 'entry is not an object');
    const { dtype, shape, data_offsets: offs } = value;
    if (typeof dtype !== 'string') return fail(field, 'dtype is not a string');
    const size = SAFETENSORS_DTYPE_BYTES[dtype];
    if (size === undefined) return fail(field, `unknown dtype '${dtype}'`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      return fail(field, 'shape is not a list of non-negative integers');
    }
    const dims = shape as number[];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      return fail(field, 'data_offsets is not [begin, end] of non-negative integers');
    }
    const [b, e] = offs as [number, number];
    let count = 1;
    for (const d of dims) count *= d;
    if (!Number.isSafeInteger(count * size)) fail(field, `shape [${dims.join(', ')}] is too large`);
    if (e < b || e - b !== count * size) {
      fail(field, `data_offsets [${b}, ${e}] hold ${e - b} bytes but shape [${dims.join(', ')}] of ${dtype} needs ${count * size}`);
    }
    if (e > bufferLength) fail(field, `data_offsets end ${e} runs past the ${bufferLength}-byte data buffer`);
    entries.push([name, { dtype, shape: dims, begin: dataStart + b, end: dataStart + e }]);
  }

  // the reference library requires the buffer to be covered exactly, without gaps or overlaps
  const sorted = [...entries].sort((x, y) => x[1].begin - y[1].begin || x[1].end - y[1].end);
  let expect = dataStart;
  for (const [name, t] of sorted) {
    if (t.begin !== expect) {
      fail(`tensor '${name}'`, `data starts at relative offset ${t.begin - dataStart}, expected ${expect - dataStart} (gap or overlap)`);
    }
    expect = t.end;
  }
  if (expect !== source.size) fail('data', `tensors cover ${expect - dataStart} bytes but the data buffer has ${bufferLength}`);
  return { source, metadata, tensors: new Map(entries) };
}

/** The tensor's raw bytes. */
export function readSafetensorsBytes(file: SafetensorsFile, name: string): Uint8Array {
  const t = file.tensors.get(name);
  if (t === undefined) throw new FormatError(file.source.name, null, `tensor '${name}'`, 'not found');
  return file.source.read(t.begin, t.end - t.begin);
}

/** The tensor as f32 values (row-major `shape`), converted from F32, F16, BF16 or F64. */
export function readSafetensorsF32(file: SafetensorsFile, name: string): Float32Array {
  const t = file.tensors.get(name);
  if (t === undefined) throw new FormatError(file.source.name, null, `tensor '${name}'`, 'not found');
  const bytes = readSafetensorsBytes(file, name);
  switch (t.dtype) {
    case 'F32':
      return f32FromBytes(bytes);
    case 'F16':
      return decodeF16(bytes);
    case 'BF16':
      return decodeBf16(bytes);
    case 'F64': {
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(bytes.length / 8);
      for (let i = 0; i < out.length; i++) out[i] = v.getFloat64(i * 8, true);
      return out;
    }
    default:
      throw new FormatError(file.source.name, t.begin, `tensor '${name}'`, `dtype ${t.dtype} is not a float type`);
  }
}

/** A model folder's tensors: name → the file holding it and its entry. */
export interface SafetensorsModel {
  dir: string;
  files: Map<string, SafetensorsFile>;
  names: string[];
  get(name: string): { file: SafetensorsFile; entry: SafetensorsEntry } | undefined;
  close(): void;
}

/** Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json` (its `weight_map`). */
export function openSafetensorsModel(dir: string): SafetensorsModel {
  const index = join(dir, 'model.safetensors.index.json');
  const files = new Map<string, SafetensorsFile>();
  const where = new Map<string, string>(); // tensor → shard file name
  if (existsSync(index)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(index, 'utf8'));
    } catch (e) {
      throw new FormatError(index, null, 'index', `invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const map = isRecord(json) ? json.weight_map : undefined;
    if (!isRecord(map)) throw new FormatError(index, null, 'weight_map', 'missing or not an object');
    for (const [tensor, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || shard === '' || /[/\\]/.test(shard) || shard === '.' || shard === '..') {
        throw new FormatError(index, null, `weight_map '${tensor}'`, `shard ${JSON.stringify(shard)} is not a plain file name`);
      }
      if (!files.has(shard)) files.set(shard, readSafetensors(join(dir, shard)));
      if (!files.get(shard)?.tensors.has(tensor)) {
        throw new FormatError(join(dir, shard), null, `tensor '${tensor}'`, 'listed in the index but absent from the shard');
      }
      where.set(tensor, shard);
    }
  } else {
    const single = join(dir, 'model.safetensors');
    if (!existsSync(single)) throw new FormatError(dir, null, 'model folder', 'neither model.safetensors nor model.safetensors.index.json exists');
    const file = readSafetensors(single);
    files.set('model.safetensors', file);
    for (const name of file.tensors.keys()) where.set(name, 'model.safetensors');
  }
  return {
    dir,
    files,
    names: [...where.keys()],
    get(name) {
      const shard = where.get(name);
      const file = shard === undefined ? undefined : files.get(shard);
      const entry = file?.tensors.get(name);
      return file && entry ? { file, entry } : undefined;
    },
    close() {
      for (const f of files.values()) f.source.close?.();
    },
  };
}

export interface SafetensorsTensorSpec {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  /** the values, or a function giving them when the tensor is written (a file then holds one tensor's values at a time) */
  data: Float32Array | (() => Float32Array);
}

const valueCount = (t: SafetensorsTensorSpec): number => t.shape.reduce((a, b) => a * b, 1);

/** Checks that values fit the tensor's shape (lazy data is checked when it is made). */
function checkValues(t: SafetensorsTensorSpec, data: Float32Array): void {
  if (valueCount(t) !== data.length) throw new Error(`safetensors tensor '${t.name}': shape [${t.shape.join(', ')}] does not match ${data.length} values`);
}

function encode(t: SafetensorsTensorSpec): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  checkValues(t, data);
  return t.dtype === 'F32' ? bytesFromF32(data) : t.dtype === 'F16' ? encodeF16(data) : encodeBf16(data);
}

/** Validates the tensors and builds the header (length prefix included) and the order tensors are written in. */
function planSafetensors(tensors: SafetensorsTensorSpec[], metadata: Record<string, string> | undefined): { head: Uint8Array; order: SafetensorsTensorSpec[] } {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name) || t.name === '__metadata__') throw new Error(`safetensors tensor '${t.name}': duplicate or reserved name`);
    names.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`safetensors tensor '${t.name}': shape [${t.shape.join(', ')}] is not a list of sizes`);
    if (typeof t.data !== 'function') checkValues(t, t.data);
  }
  const size = (d: string): number => SAFETENSORS_DTYPE_BYTES[d] ?? 0;
  const order = [...tensors].sort((a, b) => size(b.dtype) - size(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // build the JSON by hand: JS objects would move integer-like tensor names ("0") to the front
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of order) {
    const bytes = valueCount(t) * size(t.dtype);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const head = new Uint8Array(8 + header.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(header.length), true);
  head.set(header, 8);
  return { head, order };
}

/** Emits a safetensors file: header (HF order and padding), then each tensor encoded one at a time. */
export function emitSafetensors(tensors: SafetensorsTensorSpec[], metadata: Record<string, string> | undefined, sink: Sink): void {
  const { head, order } = planSafetensors(tensors, metadata);
  sink(head);
  for (const t of order) sink(encode(t));
}

/** Writes a safetensors file atomically (temp file, fsync, rename); everything is validated before the file is created. */
export function writeSafetensors(path: string, tensors: SafetensorsTensorSpec[], metadata?: Record<string, string>): void {
  const { head, order } = planSafetensors(tensors, metadata);
  writeFileAtomic(path, (sink) => {
    sink(head);
    for (const t of order) sink(encode(t));
  });
}

/** The bytes of a safetensors file, in memory. */
export function encodeSafetensors(tensors: SafetensorsTensorSpec[], metadata?: Record<string, string>): Uint8Array {
  return collect((sink) => emitSafetensors(tensors, metadata, sink));
}
