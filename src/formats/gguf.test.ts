// GGUF writer → reader round trips: metadata types, every dtype, alignment, unsupported types, header validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emitGguf, encodeGguf, writeGguf, type GgufTensorSpec } from './gguf-write.js';
import { findGgufTensor, readGguf, readGgufTensor, readGgufTensorF32 } from './gguf.js';
import type { GgufKV } from './gguf-types.js';
import { MemorySource } from './source.js';
import { dequantize, quantize } from '../engine/quant/index.js';

function ramp(n: number, scale = 0.01): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37) * scale * (1 + (i % 7));
  return a;
}

const metadata: GgufKV[] = [
  { key: 'general.architecture', type: 'string', value: 'llama' },
  { key: 'general.name', type: 'string', value: 'tiny ünïcode ✓' },
  { key: 'llama.block_count', type: 'uint32', value: 2 },
  { key: 'llama.some_i32', type: 'int32', value: -5 },
  { key: 'u8', type: 'uint8', value: 255 },
  { key: 'i8', type: 'int8', value: -128 },
  { key: 'u16', type: 'uint16', value: 65535 },
  { key: 'i16', type: 'int16', value: -32768 },
  { key: 'f32', type: 'float32', value: 1e-5 },
  { key: 'f64', type: 'float64', value: 1e-300 },
  { key: 'b', type: 'bool', value: true },
  { key: 'u64', type: 'uint64', value: 2n ** 63n + 7n },
  { key: 'i64', type: 'int64', value: -42 },
  { key: 'tokens', type: { array: 'string' }, value: ['<s>', '</s>', 'héllo', ''] },
  { key: 'scores', type: { array: 'float32' }, value: [0, -1.5, 2.25] },
  { key: 'empty', type: { array: 'int32' }, value: [] },
];

const tensors: GgufTensorSpec[] = [
  { name: 'token_embd.weight', dtype: 'f32', shape: [3, 32], data: ramp(96) },
  { name: 'blk.0.attn_q.weight', dtype: 'f16', shape: [2, 5], data: ramp(10) },
  { name: 'blk.0.attn_k.weight', dtype: 'bf16', shape: [1, 2, 3, 4], data: ramp(24) },
  { name: 'blk.0.ffn_up.weight', dtype: 'q8_0', shape: [2, 64], data: ramp(128) },
  { name: 'blk.0.ffn_down.weight', dtype: 'q4_0', shape: [64, 32], data: ramp(2048) },
];

void test('metadata and tensors round-trip with exact types and f32-rounded values', () => {
  const bytes = encodeGguf({ metadata, tensors });
  const file = readGguf(new MemorySource('mem.gguf', bytes));
  assert.equal(file.version, 3);
  assert.equal(file.alignment, 32);
  assert.equal(file.dataOffset % 32, 0);
  for (const kv of metadata) {
    assert.deepEqual(file.metadataTypes.get(kv.key), kv.type, kv.key);
    const expected = kv.type === 'float32' ? Math.fround(kv.value as number) : kv.value;
    assert.deepEqual(file.metadata.get(kv.key), expected, kv.key);
  }
  assert.equal(file.tensors.length, tensors.length);
  for (const spec of tensors) {
    const info = findGgufTensor(file, spec.name);
    assert.ok(info, spec.name);
    assert.deepEqual(info.shape, spec.shape);
    assert.deepEqual(info.ne, [...spec.shape].reverse());
    assert.equal(info.dtype, spec.dtype);
    assert.equal(info.offset % 32, 0);
    const want = dequantize(spec.dtype, quantize(spec.dtype as 'f32', spec.data as Float32Array), info.nElements);
    assert.deepEqual(readGgufTensorF32(file, info), want, spec.name);
  }
  // packed in order with padding: what gguf.cpp demands
  const [a, b] = file.tensors;
  assert.ok(a && b);
  assert.equal(b.offset, a.offset + Math.ceil(a.byteLength / 32) * 32);
});

void test('large headers (header buffer growth) round-trip', () => {
  const tokens = Array.from({ length: 5000 }, (_, i) => `token-${i}-✓`);
  const ids = Array.from({ length: 3000 }, (_, i) => i * 1000 - 7);
  const md: GgufKV[] = [
    { key: 'tokenizer.ggml.tokens', type: { array: 'string' }, value: tokens },
    { key: 'ids', type: { array: 'int64' }, value: ids },
  ];
  const file = readGguf(new MemorySource('big.gguf', encodeGguf({ metadata: md, tensors: [tensors[0]] })));
  assert.deepEqual(file.metadata.get('tokenizer.ggml.tokens'), tokens);
  assert.deepEqual(file.metadata.get('ids'), ids);
  const info = file.tensors[0];
  assert.ok(info);
  assert.deepEqual(readGgufTensorF32(file, info), tensors[0]?.data);
});

void test('writeGguf writes atomically to disk and leaves no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-gguf-'));
  try {
    const path = join(dir, 'model.gguf');
    writeGguf(path, { metadata, tensors, alignment: 64 });
    assert.deepEqual(readdirSync(dir), ['model.gguf']);
    const file = readGguf(path);
    assert.equal(file.alignment, 64);
    assert.equal(file.metadataTypes.get('general.alignment'), 'uint32');
    for (const t of file.tensors) assert.equal(t.offset % 64, 0);
    assert.deepEqual(readFileSync(path), Buffer.from(encodeGguf({ metadata, tensors, alignment: 64 })));
    file.source.close?.();
    // a failing write leaves the old file intact and no temp file behind
    assert.throws(() => writeGguf(path, { metadata, tensors: [{ name: 'x', dtype: 'q8_0', shape: [3], data: ramp(3) }] }), /block size 32/);
    assert.deepEqual(readdirSync(dir), ['model.gguf']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('raw bytes for q4_K/q6_K are stored as given and decoded on read', () => {
  const raw = new Uint8Array(144);
  raw[0] = 0x00;
  raw[1] = 0x3c; // d = 1.0
  raw[4] = 1; // scale of sub-block 0 = 1, min 0
  raw[16] = 0x21; // first byte: low nibble 1, high nibble 2
  const file = readGguf(new MemorySource('k.gguf', encodeGguf({ metadata: [], tensors: [{ name: 'k', dtype: 'q4_k', shape: [256], data: raw }] })));
  const info = file.tensors[0];
  assert.ok(info);
  assert.equal(info.ggmlType, 12);
  assert.deepEqual(readGgufTensor(file, info), raw);
  const x = readGgufTensorF32(file, info);
  assert.equal(x[0], 1); // d·sc·q − dmin·m = 1·1·1 − 0
  assert.equal(x[32], 0); // sub-block 1 has scale 0
  assert.throws(() => encodeGguf({ metadata: [], tensors: [{ name: 'k', dtype: 'iq4_xs', shape: [256], data: ramp(256) }] }), /cannot quantize/);
});

void test('a type we cannot decode parses (dtype null), reads raw, and fails clearly as f32', () => {
  const bytes = encodeGguf({ metadata: [], tensors: [{ name: 'w', dtype: 'q8_0', shape: [32], data: ramp(32) }] });
  // patch the tensor's ggml type (the u32 after name and dims) from q8_0 (8) to q8_1 (9, 40-byte blocks: an
  // activation type that no GGUF mix writes)
  const typeAt = 4 + 4 + 8 + 8 + (8 + 1) + 4 + 8;
  assert.equal(bytes[typeAt], 8);
  bytes[typeAt] = 9;
  const file = readGguf(new MemorySource('q81.gguf', bytes));
  const info = file.tensors[0];
  assert.ok(info);
  assert.equal(info.dtype, null);
  assert.equal(info.typeName, 'q8_1');
  assert.equal(readGgufTensor(file, info).length, 40);
  assert.throws(() => readGgufTensorF32(file, info), /q81\.gguf: tensor 'w'.*q8_1 \(9\) cannot be decoded/);
});

void test('writer rejects bad metadata values and bad tensors before writing', () => {
  const bad = (kv: GgufKV): void => void encodeGguf({ metadata: [kv], tensors: [] });
  assert.throws(() => bad({ key: 'x', type: 'uint8', value: 256 }), /not a valid uint8/);
  assert.throws(() => bad({ key: 'x', type: 'int32', value: 1.5 }), /not a valid int32/);
  assert.throws(() => bad({ key: 'x', type: 'uint64', value: -1 }), /not a valid uint64/);
  assert.throws(() => bad({ key: 'x', type: { array: 'string' }, value: 'no' }), /needs an array/);
  assert.throws(() => encodeGguf({ metadata: [...metadata, metadata[0]], tensors: [] }), /duplicate key/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [tensors[0], tensors[0]] }), /duplicate name/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [{ name: 'a'.repeat(64), dtype: 'f32', shape: [1], data: ramp(1) }] }), /longer than 63/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [{ name: 'a', dtype: 'f32', shape: [2, 2], data: ramp(3) }] }), /needs 4 values/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [], alignment: 24 }), /power of two/);
});

void test('lazy tensor data is made when written, one tensor at a time, and gives the same file', () => {
  let sunk = 0; // tensors whose bytes the sink has received
  let made = 0;
  const lazy: GgufTensorSpec[] = tensors.map((t, i) => ({
    ...t,
    data: () => {
      // when tensor i is made, every earlier one was already written out: nothing else is held
      assert.equal(made, i, `${t.name} made out of order`);
      assert.ok(sunk >= i, `${t.name} made before the tensors ahead of it were written`);
      made++;
      return t.data as Float32Array;
    },
  }));
  const chunks: Uint8Array[] = [];
  emitGguf({ metadata, tensors: lazy }, (c) => {
    chunks.push(c);
    sunk = made; // every tensor made so far has reached the sink (the header comes before any)
  });
  assert.equal(made, tensors.length);
  const flat = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    flat.set(c, o);
    o += c.length;
  }
  assert.deepEqual(flat, encodeGguf({ metadata, tensors }));
});

void test('lazy tensor data of the wrong size fails naming the tensor, and leaves no file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-gguf-lazy-'));
  try {
    const path = join(dir, 'bad.gguf');
    const bad = tensors.map((t, i) => (i === 3 ? { ...t, data: () => ramp(100) } : t));
    assert.throws(() => writeGguf(path, { metadata, tensors: bad }), /GGUF tensor 'blk\.0\.ffn_up\.weight': shape \[2, 64\] needs 128 values .* got 100 values/);
    assert.deepEqual(readdirSync(dir), [], 'no file and no temp file left');
    const f32ToIq4xs = [{ name: 'x.weight', dtype: 'iq4_xs' as const, shape: [1, 256], data: () => ramp(256) }]; // read-only type
    assert.throws(() => encodeGguf({ metadata, tensors: f32ToIq4xs }), /cannot quantize f32 values to iq4_xs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
