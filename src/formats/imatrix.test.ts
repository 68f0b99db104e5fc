// llama.cpp's imatrix files, both formats, written here byte by byte as llama-imatrix writes them: values normalised as
// llama-quantize's load_imatrix does, and hostile files (truncated at every byte, lengths that overrun the file,
// non-finite or negative values, missing metadata) refused with a FormatError naming the file — never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeGguf } from './gguf-write.js';
import type { GgufKV } from './gguf-types.js';
import { encodeImatrixLegacy, readImatrix } from './imatrix.js';
import { FormatError, MemorySource } from './source.js';

const fr = Math.fround;
const ENTRIES = new Map([
  ['blk.0.attn_q.weight', new Float32Array([0.5, 2, 0.25, 8])],
  ['blk.0.ffn_down.weight', new Float32Array([1, 3, 0, 0.125, 7, 9, 1e-6, 42])],
]);
const legacy = (bytes: Uint8Array, name = 'im.dat'): ReturnType<typeof readImatrix> => readImatrix(new MemorySource(name, bytes));

/** A GGUF imatrix as llama-imatrix writes it: <name>.in_sum2 and <name>.counts (f32), imatrix.* metadata. */
function ggufImatrix(sums: Map<string, Float32Array>, counts: Map<string, number[]>, metadata?: GgufKV[]): Uint8Array {
  const tensors = [...sums].flatMap(([name, s]) => {
    const c = counts.get(name) ?? [1];
    return [
      { name: `${name}.in_sum2`, dtype: 'f32' as const, shape: [s.length], data: s },
      { name: `${name}.counts`, dtype: 'f32' as const, shape: [c.length], data: new Float32Array(c) },
    ];
  });
  return encodeGguf({
    metadata: metadata ?? [
      { key: 'general.type', type: 'string', value: 'imatrix' },
      { key: 'imatrix.datasets', type: { array: 'string' }, value: ['wiki.train.raw'] },
      { key: 'imatrix.chunk_count', type: 'uint32', value: 100 },
      { key: 'imatrix.chunk_size', type: 'uint32', value: 512 },
    ],
    tensors,
  });
}

void test('legacy .dat: values divided by ncall, the trailing chunk count and dataset read', () => {
  const m = legacy(encodeImatrixLegacy(ENTRIES, { ncall: 4, chunkCount: 10, dataset: 'wiki.txt' }));
  assert.equal(m.format, 'legacy');
  assert.equal(m.name, 'im.dat');
  assert.deepEqual([...m.entries.keys()], [...ENTRIES.keys()]);
  for (const [name, v] of ENTRIES) assert.deepEqual([...(m.entries.get(name) ?? [])], [...v], name);
  assert.equal(m.chunkCount, 10);
  assert.deepEqual(m.datasets, ['wiki.txt']);
  // ncall 3: the C divides the stored float by (float)3
  const three = legacy(encodeImatrixLegacy(new Map([['w', new Float32Array([1, 2.5])]]), { ncall: 3 }));
  assert.deepEqual([...(three.entries.get('w') ?? [])], [fr(fr(3) / 3), fr(fr(7.5) / 3)]);
  assert.equal(three.chunkCount, 0);
  assert.deepEqual(three.datasets, []);
});

void test('legacy .dat with ncall 0 keeps the values as stored', () => {
  const bytes = encodeImatrixLegacy(new Map([['w', new Float32Array([1.5, 2])]]), { ncall: 1 });
  new DataView(bytes.buffer).setInt32(4 + 4 + 1, 0, true); // ncall of the one entry (after n_entries, length, "w")
  assert.deepEqual([...(legacy(bytes).entries.get('w') ?? [])], [1.5, 2]);
});

void test('GGUF imatrix: in_sum2 / counts per tensor (count 0 gives 1s), datasets and chunk count', () => {
  const sums = new Map([
    ['blk.0.attn_q.weight', new Float32Array([3, 6, 1, 0])],
    ['blk.0.ffn_up.weight', new Float32Array([2, 4])],
  ]);
  const m = readImatrix(new MemorySource('im.gguf', ggufImatrix(sums, new Map([['blk.0.attn_q.weight', [3]], ['blk.0.ffn_up.weight', [0]]]))));
  assert.equal(m.format, 'gguf');
  assert.deepEqual([...(m.entries.get('blk.0.attn_q.weight') ?? [])], [1, 2, fr(1 / 3), 0]);
  assert.deepEqual([...(m.entries.get('blk.0.ffn_up.weight') ?? [])], [1, 1]);
  assert.deepEqual(m.datasets, ['wiki.train.raw']);
  assert.equal(m.chunkCount, 100);
  // per-expert counts: each expert's slice divided by its own count
  const e = readImatrix(new MemorySource('e.gguf', ggufImatrix(new Map([['x', new Float32Array([2, 4, 9, 3])]]), new Map([['x', [2, 3]]]))));
  assert.deepEqual([...(e.entries.get('x') ?? [])], [1, 2, 3, 1]);
});

/** Asserts `f` throws a FormatError whose message names the file and matches `re`. */
function refuses(f: () => unknown, file: string, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof FormatError, `not a FormatError: ${String(e)}`);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

void test('hostile legacy files: clear errors naming the file', () => {
  const good = encodeImatrixLegacy(ENTRIES, { ncall: 2, chunkCount: 5, dataset: 'd' });
  const edit = (at: number, v: number, as: 'i32' | 'f32' = 'i32'): Uint8Array => {
    const b = good.slice();
    const dv = new DataView(b.buffer);
    if (as === 'i32') dv.setInt32(at, v, true);
    else dv.setFloat32(at, v, true);
    return b;
  };
  const name0 = 4 + 4; // first entry's name
  const nval0 = name0 + 'blk.0.attn_q.weight'.length + 4;
  const val0 = nval0 + 4;
  refuses(() => legacy(edit(0, 0), 'bad.dat'), 'bad.dat', /entry count.*no entries/);
  refuses(() => legacy(edit(0, 1e9), 'bad.dat'), 'bad.dat', /1000000000 entries run past end of file/);
  refuses(() => legacy(edit(4, -5), 'bad.dat'), 'bad.dat', /name length.*negative length -5/);
  refuses(() => legacy(edit(4, 1 << 30), 'bad.dat'), 'bad.dat', /string length 1073741824 runs past end of file/);
  refuses(() => legacy(edit(nval0, 0), 'bad.dat'), 'bad.dat', /value count.*0: an entry needs at least one value/);
  refuses(() => legacy(edit(nval0, 1 << 28), 'bad.dat'), 'bad.dat', /268435456 float32 values run past end of file/);
  refuses(() => legacy(edit(val0 + 4, NaN, 'f32'), 'bad.dat'), 'bad.dat', /entry 'blk\.0\.attn_q\.weight'.*value 1 is NaN/);
  refuses(() => legacy(edit(val0, -Infinity, 'f32'), 'bad.dat'), 'bad.dat', /value 0 is -Infinity/);
  refuses(() => legacy(edit(val0 + 8, -1, 'f32'), 'bad.dat'), 'bad.dat', /value 2 is negative/);
  const dup = encodeImatrixLegacy(new Map([['a', new Float32Array([1])], ['b', new Float32Array([1])]]));
  dup[4 + (4 + 1 + 4 + 4 + 4) + 4] = 'a'.charCodeAt(0); // rename b to a
  refuses(() => legacy(dup, 'dup.dat'), 'dup.dat', /'a' appears twice/);
  refuses(() => legacy(new Uint8Array([1, 0])), 'im.dat', /entry count.*run past end of file/);
});

void test('a legacy file truncated at every byte: a FormatError, or (cut before the optional trailer) the entries', () => {
  const good = encodeImatrixLegacy(ENTRIES, { ncall: 2, chunkCount: 5, dataset: 'wiki' });
  const trailer = 4 + 4 + 'wiki'.length;
  for (let n = 0; n < good.length; n++) {
    const cut = good.subarray(0, n);
    if (n === good.length - trailer) {
      assert.equal(legacy(cut).entries.size, 2);
      continue;
    }
    assert.throws(() => legacy(cut), FormatError, `cut at ${n}`);
  }
});

void test('random byte flips in a legacy file: the entries or a FormatError, never anything else', () => {
  const good = encodeImatrixLegacy(ENTRIES, { ncall: 2, chunkCount: 5, dataset: 'wiki' });
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let refused = 0;
  for (let k = 0; k < 400; k++) {
    const b = good.slice();
    for (let f = 0; f < 1 + rand(3); f++) b[rand(b.length)] = rand(256);
    try {
      const m = legacy(b);
      for (const v of m.entries.values()) for (const x of v) assert.ok(Number.isFinite(x) && x >= 0);
    } catch (e) {
      assert.ok(e instanceof FormatError, `flip ${k}: ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 0);
});

void test('hostile GGUF imatrix files: missing metadata, unpaired or non-f32 tensors, bad counts, truncation', () => {
  const sums = new Map([['t', new Float32Array([1, 2])]]);
  const ones = new Map([['t', [1]]]);
  const read = (b: Uint8Array): unknown => readImatrix(new MemorySource('im.gguf', b));
  refuses(() => read(ggufImatrix(sums, ones, [{ key: 'imatrix.datasets', type: { array: 'string' }, value: ['x'] }])), 'im.gguf',
    /missing imatrix\.chunk_count, imatrix\.chunk_size: not an imatrix file/);
  refuses(() => read(ggufImatrix(sums, new Map([['t', [-2]]]))), 'im.gguf', /entry 't'.*count 0 is -2/);
  refuses(() => read(ggufImatrix(new Map([['t', new Float32Array([1, NaN])]]), ones)), 'im.gguf', /entry 't'.*value 1 is NaN/);
  refuses(() => read(ggufImatrix(new Map([['t', new Float32Array([1, 2, 3])]]), new Map([['t', [1, 1]]]))), 'im.gguf', /3 sums do not split into 2 counts/);
  const meta: GgufKV[] = [
    { key: 'imatrix.datasets', type: { array: 'string' }, value: [] },
    { key: 'imatrix.chunk_count', type: 'uint32', value: 1 },
    { key: 'imatrix.chunk_size', type: 'uint32', value: 512 },
  ];
  const unpaired = encodeGguf({ metadata: meta, tensors: [{ name: 't.in_sum2', dtype: 'f32', shape: [1, 2], data: new Float32Array([1, 2]) }] });
  refuses(() => read(unpaired), 'im.gguf', /entry 't'.*in_sum2 but no counts/);
  const f16 = encodeGguf({ metadata: meta, tensors: [
    { name: 't.in_sum2', dtype: 'f16', shape: [1, 2], data: new Float32Array([1, 2]) },
    { name: 't.counts', dtype: 'f32', shape: [1, 1], data: new Float32Array([1]) },
  ] });
  refuses(() => read(f16), 'im.gguf', /must be F32, got f16 and f32/);
  refuses(() => read(encodeGguf({ metadata: meta, tensors: [{ name: 'w', dtype: 'f32', shape: [2], data: new Float32Array(2) }] })), 'im.gguf', /no <name>\.in_sum2/);
  const good = ggufImatrix(sums, ones);
  // (the last 28 bytes are padding after the last tensor)
  for (let n = 4; n < good.length - 28; n += 7) assert.throws(() => read(good.subarray(0, n)), FormatError, `cut at ${n}`);
});
