// GGUF v3 writer: header in memory, tensor data streamed one tensor at a time, file replaced atomically.
// The layout written is the one gguf.ts documents; tensors are packed in the given order, each padded to the
// alignment, which is what llama.cpp's gguf.cpp requires (it checks offset == running padded size).

import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_NAME_BYTES, GGUF_TYPE_ARRAY, GGML_TYPE_OF, ggufTypeId, ggufTypeName } from './gguf-types.js';
import type { GgufKV, GgufScalar, GgufScalarType } from './gguf-types.js';
import { isWritableDType, quantize } from '../engine/quant/index.js';
import { DTYPES, dtypeBytes, type DType } from '../engine/dtype.js';
import { ByteWriter, collect, writeFileAtomic, type Sink } from './writer.js';

export interface GgufTensorSpec {
  name: string;
  /** any dtype for raw bytes; f32 values can be encoded to any dtype but iq4_xs (engine/quant's writers) */
  dtype: DType;
  /** row-major shape (the last dimension is contiguous); written as ne = shape reversed */
  shape: number[];
  /**
   * f32 values (encoded by the writer) or bytes already in `dtype`; or a function giving them, called when the
   * tensor is written, so a file is made holding one tensor's data at a time (a 7B model's f32 values would not fit)
   */
  data: TensorData | (() => TensorData);
}

type TensorData = Float32Array | Uint8Array;

export interface GgufWriteSpec {
  metadata: GgufKV[];
  tensors: GgufTensorSpec[];
  /** data alignment, a power of two; default general.alignment from metadata, else 32 */
  alignment?: number;
}

const INT_RANGES: Partial<Record<GgufScalarType, [number, number]>> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

function writeScalar(w: ByteWriter, t: GgufScalarType, v: GgufScalar, field: string): void {
  const bad = (): never => {
    throw new Error(`GGUF metadata '${field}': value ${String(v)} is not a valid ${t}`);
  };
  const range = INT_RANGES[t];
  if (range !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1])) bad();
  switch (t) {
    case 'uint8':
      return w.u8(v as number);
    case 'int8':
      return w.i8(v as number);
    case 'uint16':
      return w.u16(v as number);
    case 'int16':
      return w.i16(v as number);
    case 'uint32':
      return w.u32(v as number);
    case 'int32':
      return w.i32(v as number);
    case 'float32':
      return typeof v === 'number' ? w.f32(v) : bad();
    case 'float64':
      return typeof v === 'number' ? w.f64(v) : bad();
    case 'bool':
      return typeof v === 'boolean' ? w.u8(v ? 1 : 0) : bad();
    case 'string':
      if (typeof v !== 'string') bad();
      return writeString(w, v as string);
    case 'uint64':
    case 'int64': {
      if (typeof v !== 'number' && typeof v !== 'bigint') return bad();
      if (typeof v === 'number' && !Number.isSafeInteger(v)) return bad();
      const b = BigInt(v);
      const [lo, hi] = t === 'uint64' ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
      if (b < lo || b > hi) bad();
      return t === 'uint64' ? w.u64(b) : w.i64(b);
    }
  }
}

function writeString(w: ByteWriter, s: string): void {
  const b = Buffer.from(s, 'utf8');
  w.u64(b.length);
  w.bytes(b);
}

interface Planned {
  spec: GgufTensorSpec;
  values: number; // elements of the shape
  byteLength: number;
  offset: number; // relative to the data section
}

function plan(spec: GgufWriteSpec): { alignment: number; metadata: GgufKV[]; tensors: Planned[] } {
  const keys = new Set<string>();
  for (const kv of spec.metadata) {
    if (keys.has(kv.key)) throw new Error(`GGUF metadata: duplicate key '${kv.key}'`);
    keys.add(kv.key);
  }
  const metadata = [...spec.metadata];
  const alignKv = metadata.find((kv) => kv.key === 'general.alignment');
  let alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (alignKv !== undefined) {
    if (alignKv.type !== 'uint32' || typeof alignKv.value !== 'number') throw new Error('GGUF metadata: general.alignment must be a uint32');
    if (spec.alignment !== undefined && spec.alignment !== alignKv.value) {
      throw new Error(`GGUF: alignment ${spec.alignment} disagrees with general.alignment ${alignKv.value}`);
    }
    alignment = alignKv.value;
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.push({ key: 'general.alignment', type: 'uint32', value: alignment });
  }
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`GGUF: alignment ${alignment} is not a power of two`);
  }

  const names = new Set<string>();
  const tensors: Planned[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    const where = `GGUF tensor '${t.name}'`;
    if (names.has(t.name)) throw new Error(`${where}: duplicate name`);
    names.add(t.name);
    if (Buffer.byteLength(t.name, 'utf8') > GGUF_MAX_NAME_BYTES) throw new Error(`${where}: name longer than ${GGUF_MAX_NAME_BYTES} bytes`);
    if (t.shape.length < 1 || t.shape.length > 4 || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
      throw new Error(`${where}: shape [${t.shape.join(', ')}] must have 1 to 4 positive dimensions`);
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    const row = t.shape[t.shape.length - 1] ?? 1;
    const block = DTYPES[t.dtype].blockSize;
    if (row % block !== 0) throw new Error(`${where}: rows of ${row} values are not a multiple of ${t.dtype}'s block size ${block}`);
    const byteLength = dtypeBytes(t.dtype, n);
    if (typeof t.data !== 'function') checkData(t, t.data, n, byteLength); // before any file exists; lazy data: when made
    tensors.push({ spec: t, values: n, byteLength, offset });
    offset += Math.ceil(byteLength / alignment) * alignment;
  }
  return { alignment, metadata, tensors };
}

/** The values or bytes fit the tensor's shape and dtype. */
function checkData(t: GgufTensorSpec, data: TensorData, n: number, byteLength: number): void {
  const where = `GGUF tensor '${t.name}'`;
  if (data instanceof Float32Array ? data.length !== n : data.length !== byteLength) {
    const got = data instanceof Float32Array ? `${data.length} values` : `${data.length} bytes`;
    throw new Error(`${where}: shape [${t.shape.join(', ')}] needs ${n} values (${byteLength} bytes of ${t.dtype}), got ${got}`);
  }
  if (data instanceof Float32Array && !isWritableDType(t.dtype)) {
    throw new Error(`${where}: cannot quantize f32 values to ${t.dtype} (pass its bytes instead)`);
  }
}

function header(metadata: GgufKV[], tensors: Planned[], alignment: number): Uint8Array {
  const w = new ByteWriter();
  w.u32(0x46554747); // "GGUF"
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const kv of metadata) {
    writeString(w, kv.key);
    if (typeof kv.type === 'string') {
      w.u32(ggufTypeId(kv.type));
      writeScalar(w, kv.type, kv.value as GgufScalar, kv.key);
    } else {
      if (!Array.isArray(kv.value)) throw new Error(`GGUF metadata '${kv.key}': ${ggufTypeName(kv.type)} needs an array value`);
      w.u32(GGUF_TYPE_ARRAY);
      w.u32(ggufTypeId(kv.type.array));
      w.u64(kv.value.length);
      for (const v of kv.value) writeScalar(w, kv.type.array, v, kv.key);
    }
  }
  for (const t of tensors) {
    writeString(w, t.spec.name);
    w.u32(t.spec.shape.length);
    for (let d = t.spec.shape.length - 1; d >= 0; d--) w.u64(t.spec.shape[d] ?? 1);
    w.u32(GGML_TYPE_OF[t.spec.dtype]);
    w.u64(t.offset);
  }
  w.zeros((alignment - (w.length % alignment)) % alignment);
  return w.result();
}

/** Emits a whole GGUF file to `sink`, making (if lazy) and encoding one tensor at a time. */
export function emitGguf(spec: GgufWriteSpec, sink: Sink): void {
  const { alignment, metadata, tensors } = plan(spec);
  sink(header(metadata, tensors, alignment));
  for (const t of tensors) {
    const { dtype } = t.spec;
    const data = typeof t.spec.data === 'function' ? t.spec.data() : t.spec.data;
    checkData(t.spec, data, t.values, t.byteLength); // O(1); what makes the cast below safe
    const bytes = data instanceof Float32Array && isWritableDType(dtype) ? quantize(dtype, data) : (data as Uint8Array);
    sink(bytes);
    const pad = (alignment - (bytes.length % alignment)) % alignment;
    if (pad > 0) sink(new Uint8Array(pad));
  }
}

/** Writes a GGUF v3 file atomically (temp file, fsync, rename). */
export function writeGguf(path: string, spec: GgufWriteSpec): void {
  plan(spec); // validate everything before creating any file
  writeFileAtomic(path, (sink) => emitGguf(spec, sink));
}

/** The bytes of a GGUF file, in memory (tests and small files). */
export function encodeGguf(spec: GgufWriteSpec): Uint8Array {
  return collect((sink) => emitGguf(spec, sink));
}
