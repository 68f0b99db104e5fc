// safetensors: round trips, HF header conventions, sharded folders, and rejection of malformed headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  emitSafetensors,
  encodeSafetensors,
  openSafetensorsModel,
  readSafetensors,
  readSafetensorsBytes,
  readSafetensorsF32,
  writeSafetensors,
} from './safetensors.js';
import { MemorySource } from './source.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../engine/quant/index.js';

const vals = (n: number, k = 1): Float32Array => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.125 * k);

function file(header: string, data: Uint8Array = new Uint8Array(0)): MemorySource {
  const h = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return new MemorySource('t.safetensors', out);
}

void test('hand-made file in the reference layout parses (I32 tensor, metadata)', () => {
  const data = new Uint8Array(16);
  new DataView(data.buffer).setInt32(4, -7, true);
  const header = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"foo":"bar"}}';
  const f = readSafetensors(file(header, data));
  assert.deepEqual(f.metadata, { foo: 'bar' });
  const t = f.tensors.get('test');
  assert.deepEqual(t, { dtype: 'I32', shape: [2, 2], begin: 8 + header.length, end: 8 + header.length + 16 });
  assert.deepEqual(readSafetensorsBytes(f, 'test'), data);
  assert.throws(() => readSafetensorsF32(f, 'test'), /dtype I32 is not a float type/);
});

void test('writer output: padded header, HF order, exact values per dtype', () => {
  const tensors = [
    { name: 'b', dtype: 'F16' as const, shape: [2, 3], data: vals(6) },
    { name: '10', dtype: 'F32' as const, shape: [4], data: vals(4, 3) },
    { name: 'a', dtype: 'BF16' as const, shape: [3], data: vals(3, 0.1) },
    { name: '2', dtype: 'F32' as const, shape: [], data: vals(1) },
    { name: 'empty', dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
  ];
  const bytes = encodeSafetensors(tensors, { format: 'pt' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
  assert.match(header, /^\{"__metadata__":\{"format":"pt"\},"10":.*\} *$/);
  // F32 first (largest dtype), by name, then the 2-byte dtypes by name
  assert.deepEqual(Object.keys(JSON.parse(header) as object).filter((k) => k !== '__metadata__').sort(), ['10', '2', 'a', 'b', 'empty']);
  assert.ok(header.indexOf('"10"') < header.indexOf('"2"') && header.indexOf('"2"') < header.indexOf('"empty"'));
  assert.ok(header.indexOf('"empty"') < header.indexOf('"a"') && header.indexOf('"a"') < header.indexOf('"b"'));
  const f = readSafetensors(new MemorySource('w.safetensors', bytes));
  assert.deepEqual(f.metadata, { format: 'pt' });
  assert.deepEqual(readSafetensorsF32(f, '10'), vals(4, 3));
  assert.deepEqual(readSafetensorsF32(f, 'b'), decodeF16(encodeF16(vals(6))));
  assert.deepEqual(readSafetensorsF32(f, 'a'), decodeBf16(encodeBf16(vals(3, 0.1))));
  assert.deepEqual(f.tensors.get('2')?.shape, []);
  assert.equal(readSafetensorsF32(f, 'empty').length, 0);
});

void test('malformed headers fail with messages naming the file and field', () => {
  const d16 = new Uint8Array(16);
  const cases: [MemorySource, RegExp][] = [
    [file('[1,2]'), /header.*does not start with "\{"/],
    [file('{"a":'), /invalid JSON/],
    [file('{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}', d16.subarray(0, 1)), /tensor 'a'.*unknown dtype 'Q9'/],
    [file('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', d16), /needs 12/],
    [file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), /non-negative integers/],
    [file('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', d16.subarray(0, 8)), /runs past the 8-byte data buffer/],
    [file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', d16.subarray(0, 12)), /gap or overlap/],
    [file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /expected 0/],
    [file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d16), /cover 8 bytes but the data buffer has 16/],
    [file('{"__metadata__":{"x":1}}'), /__metadata__\.x.*not a string/],
  ];
  for (const [src, re] of cases) {
    assert.throws(() => readSafetensors(src), (e: Error) => e.message.startsWith('t.safetensors: ') && re.test(e.message), re.source);
  }
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 200_000_000n, true);
  assert.throws(() => readSafetensors(new MemorySource('h.st', huge)), /h\.st: header length at offset 0: 200000000 bytes exceeds/);
  new DataView(huge.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => readSafetensors(new MemorySource('h.st', huge)), /h\.st: header at offset 8: header of 1000 bytes run past end of file/);
  const badUtf8 = file('{"x":1}');
  const raw = badUtf8.read(0, badUtf8.size);
  raw[10] = 0xff;
  assert.throws(() => readSafetensors(new MemorySource('u.st', raw)), /u\.st: header at offset 8: invalid UTF-8/);
});

void test('model folders: single file and sharded index', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-st-'));
  try {
    writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'w', dtype: 'F32', shape: [2], data: vals(2) }]);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    let m = openSafetensorsModel(dir);
    assert.deepEqual(m.names, ['w']);
    const hit = m.get('w');
    assert.ok(hit);
    assert.deepEqual(readSafetensorsF32(hit.file, 'w'), vals(2));
    m.close();

    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: vals(1) }]);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'y', dtype: 'BF16', shape: [2], data: vals(2) }]);
    const index = { metadata: { total_size: 8 }, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } };
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    m = openSafetensorsModel(dir);
    assert.deepEqual(m.names.sort(), ['x', 'y']);
    assert.equal(m.files.size, 2);
    assert.equal(m.get('y')?.entry.dtype, 'BF16');
    assert.equal(m.get('w'), undefined);
    m.close();

    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../etc/passwd' } }));
    assert.throws(() => openSafetensorsModel(dir), /not a plain file name/);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { z: 'model-00001-of-00002.safetensors' } }));
    assert.throws(() => openSafetensorsModel(dir), /tensor 'z'.*absent from the shard/);
    assert.throws(() => openSafetensorsModel(join(dir, 'nope')), /neither model\.safetensors/);
    assert.throws(() => writeSafetensors(join(dir, 'bad.safetensors'), [{ name: 'q', dtype: 'F32', shape: [3], data: vals(2) }]), /does not match 2 values/);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp-')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('lazy tensor values are made when written, one at a time, and give the same file', () => {
  const specs = [
    { name: 'a', dtype: 'F32' as const, shape: [2, 3], data: vals(6) },
    { name: 'b', dtype: 'F16' as const, shape: [4], data: vals(4, 2) },
    { name: 'c', dtype: 'BF16' as const, shape: [5], data: vals(5, 3) },
  ];
  let sunk = 0; // tensors made when the sink last received bytes
  let made = 0;
  const lazy = specs.map((t) => ({
    ...t,
    data: (): Float32Array => {
      // when a tensor is made, every tensor made before it has reached the sink: nothing else is held
      assert.equal(sunk, made, `${t.name} made before the tensor ahead of it was written`);
      made++;
      return t.data;
    },
  }));
  const chunks: Uint8Array[] = [];
  emitSafetensors(lazy, { format: 'pt' }, (c) => {
    chunks.push(c);
    sunk = made;
  });
  assert.equal(made, 3);
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(encodeSafetensors(specs, { format: 'pt' })));
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-st-lazy-'));
  try {
    const bad = [{ name: 'q', dtype: 'F32' as const, shape: [3], data: () => vals(2) }];
    assert.throws(() => writeSafetensors(join(dir, 'bad.safetensors'), bad), /safetensors tensor 'q': shape \[3\] does not match 2 values/);
    assert.deepEqual(readdirSync(dir), [], 'no file and no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
