// GGUF reader (versions 2 and 3): parses the header and tensor directory, reads tensors on demand.
//
// Layout (ggml/docs/gguf.md, ggml/src/gguf.cpp), little-endian:
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 value_type | value }      string = u64 byte length + UTF-8 bytes (no NUL)
//        array value = u32 item_type | u64 count | items
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data; offsets are relative to the data start
// ne[0] is the contiguous dimension (ggml order); `shape` is the reverse, row-major as in PyTorch.

import type { DType } from '../engine/dtype.js';
import { ByteReader, FormatError, toSource, type ByteSource } from './source.js';
import { dequantize } from '../engine/quant/index.js';
import {
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAX_NAME_BYTES,
  GGUF_SCALAR_TYPES,
  GGUF_TYPE_ARRAY,
  ggufScalarSize,
  ggufTypeName,
  type GgufScalar,
  type GgufScalarType,
  type GgufType,
  type GgufValue,
} from './gguf-types.js';

export interface GgufTensorInfo {
  name: string;
  /** element counts, ggml order: ne[0] is contiguous */
  ne: number[];
  /** row-major shape (ne reversed), as PyTorch / safetensors */
  shape: number[];
  ggmlType: number;
  /** ggml's type name, also for types we cannot decode */
  typeName: string;
  /** our dtype, or null when this project cannot decode the type (reading raw bytes still works) */
  dtype: DType | null;
  nElements: number;
  /** absolute file offset of the first byte */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  source: ByteSource;
  version: number;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufType>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** absolute offset of the tensor data section */
  dataOffset: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const MIN_KV_BYTES = 8 + 4 + 1; // empty key, type, smallest value
const MIN_TENSOR_BYTES = 8 + 4 + 4 + 8; // empty name, n_dims = 0, type, offset
const MAX_DIMS = 4; // GGML_MAX_DIMS

function scalarType(r: ByteReader, id: number, field: string, at: number): GgufScalarType {
  const t = GGUF_SCALAR_TYPES[id];
  if (t === undefined || t === 'array') r.fail(field, `invalid value type ${id}`, at);
  return t;
}

function readScalar(r: ByteReader, t: GgufScalarType, field: string): GgufScalar {
  switch (t) {
    case 'uint8':
      return r.u8(field);
    case 'int8':
      return r.i8(field);
    case 'uint16':
      return r.u16(field);
    case 'int16':
      return r.i16(field);
    case 'uint32':
      return r.u32(field);
    case 'int32':
      return r.i32(field);
    case 'float32':
      return r.f32(field);
    case 'float64':
      return r.f64(field);
    case 'bool': {
      const at = r.pos;
      const b = r.u8(field);
      if (b > 1) r.fail(field, `bool byte is ${b}, expected 0 or 1`, at);
      return b === 1;
    }
    case 'string':
      return r.ggufString(field);
    case 'uint64': {
      const v = r.u64big(field);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case 'int64': {
      const v = r.i64big(field);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
  }
}

function readValue(r: ByteReader, field: string): { type: GgufType; value: GgufValue } {
  const typeAt = r.pos;
  const id = r.u32(`${field} type`);
  if (id !== GGUF_TYPE_ARRAY) {
    const t = scalarType(r, id, `${field} type`, typeAt);
    return { type: t, value: readScalar(r, t, field) };
  }
  const itemAt = r.pos;
  const itemId = r.u32(`${field} array item type`);
  if (itemId === GGUF_TYPE_ARRAY) r.fail(`${field} array item type`, 'nested arrays are not supported', itemAt);
  const item = scalarType(r, itemId, `${field} array item type`, itemAt);
  const countAt = r.pos;
  const count = r.u64(`${field} array count`);
  // check before allocating: every item takes at least ggufScalarSize bytes
  if (count * ggufScalarSize(item) > r.remaining) {
    r.fail(`${field} array count`, `${count} ${item} items cannot fit in the ${r.remaining} bytes left`, countAt);
  }
  const values: GgufScalar[] = new Array<GgufScalar>(count);
  for (let i = 0; i < count; i++) values[i] = readScalar(r, item, `${field}[${i}]`);
  return { type: { array: item }, value: values };
}

/** Parses the header and tensor directory of a GGUF file (tensor data is read later, on demand). */
export function readGguf(src: ByteSource | string): GgufFile {
  const source = toSource(src);
  const r: ByteReader = new ByteReader(source);
  const magic = r.u32('magic');
  if (magic !== MAGIC) r.fail('magic', `bad magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF"`, 0);
  const version = r.u32('version');
  if ((version & 0xffff) === 0 && version !== 0) r.fail('version', `version ${version}: a big-endian GGUF file is not supported`, 4);
  if (version === 1) r.fail('version', 'GGUF v1 is not supported (convert to v3)', 4);
  if (version !== 2 && version !== 3) r.fail('version', `unsupported GGUF version ${version} (expected 2 or 3)`, 4);

  const nTensors = r.u64('tensor count');
  const nKv = r.u64('metadata count');
  if (nKv * MIN_KV_BYTES + nTensors * MIN_TENSOR_BYTES > r.remaining) {
    r.fail('header', `${nTensors} tensors and ${nKv} metadata entries cannot fit in a ${source.size}-byte file`, 8);
  }

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufType>();
  for (let i = 0; i < nKv; i++) {
    const keyAt = r.pos;
    const key = r.ggufString(`metadata ${i} key`);
    if (metadata.has(key)) r.fail(`metadata ${i} key`, `duplicate key '${key}'`, keyAt);
    const { type, value } = readValue(r, `metadata '${key}'`);
    metadata.set(key, value);
    metadataTypes.set(key, type);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    const t = metadataTypes.get('general.alignment');
    if (t !== 'uint32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      throw new FormatError(source.name, null, 'general.alignment', `must be a uint32 power of two, got ${ggufTypeName(t ?? 'uint8')} ${String(a)}`);
    }
    alignment = a;
  }

  const tensors: GgufTensorInfo[] = [];
  const relOffsets: number[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const f = `tensor ${i}`;
    const nameAt = r.pos;
    const name = r.ggufString(`${f} name`, GGUF_MAX_NAME_BYTES);
    if (names.has(name)) r.fail(`${f} name`, `duplicate tensor name '${name}'`, nameAt);
    names.add(name);
    const ft = `tensor '${name}'`;
    const dimsAt = r.pos;
    const nDims = r.u32(`${ft} n_dims`);
    if (nDims > MAX_DIMS) r.fail(`${ft} n_dims`, `${nDims} dimensions, at most ${MAX_DIMS} allowed`, dimsAt);
    const ne: number[] = [];
    let nElements = 1;
    for (let d = 0; d < nDims; d++) {
      const at = r.pos;
      const n = r.u64(`${ft} ne[${d}]`);
      if (n < 1) r.fail(`${ft} ne[${d}]`, `dimension is ${n}, must be positive`, at);
      nElements *= n;
      if (!Number.isSafeInteger(nElements)) r.fail(`${ft} ne[${d}]`, 'element count overflows 2^53', at);
      ne.push(n);
    }
    const typeAt = r.pos;
    const ggmlType = r.u32(`${ft} type`);
    const info = GGML_TYPES.get(ggmlType);
    if (info === undefined) r.fail(`${ft} type`, `unknown ggml type id ${ggmlType}`, typeAt);
    const ne0 = ne[0] ?? 1;
    if (ne0 % info.blockSize !== 0) {
      r.fail(`${ft} type`, `row of ${ne0} values is not a multiple of ${info.name}'s block size ${info.blockSize}`, typeAt);
    }
    const offAt = r.pos;
    const rel = r.u64(`${ft} offset`);
    if (rel % alignment !== 0) r.fail(`${ft} offset`, `data offset ${rel} is not a multiple of the alignment ${alignment}`, offAt);
    const byteLength = (nElements / info.blockSize) * info.typeSize;
    tensors.push({ name, ne, shape: [...ne].reverse(), ggmlType, typeName: info.name, dtype: info.dtype, nElements, offset: rel, byteLength });
    relOffsets.push(rel);
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  checkTensorData(source, tensors, dataOffset);
  return { source, version, metadata, metadataTypes, tensors, alignment, dataOffset };
}

/** Makes tensor offsets absolute and checks each range lies inside the file without overlapping another. */
function checkTensorData(source: ByteSource, tensors: GgufTensorInfo[], dataOffset: number): void {
  for (const t of tensors) {
    t.offset += dataOffset;
    if (!Number.isSafeInteger(t.offset + t.byteLength) || t.offset + t.byteLength > source.size) {
      throw new FormatError(source.name, t.offset, `tensor '${t.name}' data`,
        `${t.byteLength} bytes run past end of file (size ${source.size})`);
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (prev !== undefined && cur !== undefined && cur.offset < prev.offset + prev.byteLength) {
      throw new FormatError(source.name, cur.offset, `tensor '${cur.name}' data`, `overlaps tensor '${prev.name}'`);
    }
  }
}

/** Looks a tensor up by name. */
export function findGgufTensor(file: GgufFile, name: string): GgufTensorInfo | undefined {
  return file.tensors.find((t) => t.name === name);
}

/** The tensor's raw bytes, in its ggml type. */
export function readGgufTensor(file: GgufFile, info: GgufTensorInfo): Uint8Array {
  return file.source.read(info.offset, info.byteLength);
}

/** The tensor's values as f32 (decoded from any type this project supports), ggml order = row-major `shape`. */
export function readGgufTensorF32(file: GgufFile, info: GgufTensorInfo): Float32Array {
  if (info.dtype === null) {
    throw new FormatError(file.source.name, info.offset, `tensor '${info.name}'`,
      `ggml type ${info.typeName} (${info.ggmlType}) cannot be decoded by this project`);
  }
  return dequantize(info.dtype, readGgufTensor(file, info), info.nElements);
}

/** A typed metadata lookup; throws naming the file when the key is missing or of another kind. */
export function ggufString(file: GgufFile, key: string): string {
  const v = file.metadata.get(key);
  if (typeof v !== 'string') throw new FormatError(file.source.name, null, `metadata '${key}'`, v === undefined ? 'missing' : 'not a string');
  return v;
}

export function ggufNumber(file: GgufFile, key: string): number {
  const v = file.metadata.get(key);
  if (typeof v !== 'number') throw new FormatError(file.source.name, null, `metadata '${key}'`, v === undefined ? 'missing' : 'not a number');
  return v;
}
