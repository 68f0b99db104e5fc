// Hand-made hostile files: each must be rejected with a message naming the file, the offset and what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeGguf, MemorySource, readGguf, readLlama2c, readLlama2cTokenizer } from '../src/formats/index.js';

// One f32 tensor 'w' of shape [32] and no metadata. Byte map: 0 magic | 4 version | 8 n_tensors | 16 n_kv |
// 24 name length | 32 'w' | 33 n_dims | 37 ne[0] | 45 type | 49 offset | 57 padding to 64 | 64 data (128 bytes)
const TENSOR_FILE = encodeGguf({ metadata: [], tensors: [{ name: 'w', dtype: 'f32', shape: [32], data: new Float32Array(32) }] });
// One metadata entry k = uint32 1 and no tensors: 24 key length | 32 'k' | 33 value type | 37 value
const KV_FILE = encodeGguf({ metadata: [{ key: 'k', type: 'uint32', value: 1 }], tensors: [] });

function patched(base: Uint8Array, edits: [number, 'u32' | 'u64' | 'u8', number | bigint][], extra = 0): MemorySource {
  const b = new Uint8Array(base.length + extra);
  b.set(base);
  const v = new DataView(b.buffer);
  for (const [at, kind, value] of edits) {
    if (kind === 'u8') v.setUint8(at, Number(value));
    else if (kind === 'u32') v.setUint32(at, Number(value), true);
    else v.setBigUint64(at, BigInt(value), true);
  }
  return new MemorySource('evil.gguf', b);
}

void test('GGUF hostile headers', () => {
  assert.equal(readGguf(patched(TENSOR_FILE, [])).tensors[0]?.offset, 64, 'the byte map above is right');
  const cases: [MemorySource, RegExp][] = [
    [patched(TENSOR_FILE, [[0, 'u32', 0x46554746]]), /evil\.gguf: magic at offset 0: bad magic 0x46554746, expected "GGUF"/],
    [patched(TENSOR_FILE, [[4, 'u32', 1]]), /version at offset 4: GGUF v1 is not supported/],
    [patched(TENSOR_FILE, [[4, 'u32', 0x03000000]]), /big-endian GGUF file is not supported/],
    [patched(TENSOR_FILE, [[4, 'u32', 4]]), /unsupported GGUF version 4/],
    [patched(TENSOR_FILE, [[8, 'u64', 2n ** 40n]]), /header at offset 8: 1099511627776 tensors .* cannot fit/],
    [patched(TENSOR_FILE, [[16, 'u64', 2n ** 62n]]), /metadata count at offset 16: value 4611686018427387904 exceeds 2\^53 - 1/],
    [patched(TENSOR_FILE, [[24, 'u64', 99999999]]), /tensor 0 name at offset 24: string length 99999999 exceeds the limit 63/],
    [patched(KV_FILE, [[24, 'u64', 99999999]]), /metadata 0 key at offset 24: string length 99999999 runs past end of file \(size \d+\)/],
    [patched(TENSOR_FILE, [[32, 'u8', 0xff]]), /tensor 0 name at offset 32: invalid UTF-8/],
    [patched(TENSOR_FILE, [[33, 'u32', 5]]), /tensor 'w' n_dims at offset 33: 5 dimensions, at most 4 allowed/],
    [patched(TENSOR_FILE, [[37, 'u64', 0]]), /tensor 'w' ne\[0\] at offset 37: dimension is 0, must be positive/],
    [patched(TENSOR_FILE, [[37, 'u64', 2n ** 40n]]), /tensor 'w' data at offset 64: 4398046511104 bytes run past end of file/],
    [patched(TENSOR_FILE, [[45, 'u32', 4]]), /tensor 'w' type at offset 45: unknown ggml type id 4/],
    [patched(TENSOR_FILE, [[37, 'u64', 33], [45, 'u32', 8]]), /tensor 'w' type at offset 45: row of 33 values is not a multiple of q8_0's block size 32/],
    [patched(TENSOR_FILE, [[49, 'u64', 16]]), /tensor 'w' offset at offset 49: data offset 16 is not a multiple of the alignment 32/],
    [patched(TENSOR_FILE, [[49, 'u64', 64]]), /tensor 'w' data at offset 128: 128 bytes run past end of file \(size 192\)/],
    [patched(KV_FILE, [[33, 'u32', 13]]), /metadata 'k' type at offset 33: invalid value type 13/],
    [patched(KV_FILE, [[33, 'u32', 7], [37, 'u8', 2]]), /metadata 'k' at offset 37: bool byte is 2/],
    [patched(KV_FILE, [[33, 'u32', 9], [37, 'u32', 9]]), /array item type at offset 37: nested arrays are not supported/],
    [patched(KV_FILE, [[33, 'u32', 9], [37, 'u32', 8], [41, 'u64', 2n ** 50n]], 8), /array count at offset 41: 1125899906842624 string items cannot fit/],
    [new MemorySource('evil.gguf', TENSOR_FILE.subarray(0, 50)), /tensor 'w' offset at offset 49: 8 bytes run past end of file \(size 50\)/],
  ];
  for (const [src, re] of cases) assert.throws(() => readGguf(src), re);

  // two tensors whose data overlap; a duplicate name; a duplicate key; a bad general.alignment
  const two = encodeGguf({
    metadata: [],
    tensors: [
      { name: 'a', dtype: 'f32', shape: [8], data: new Float32Array(8) },
      { name: 'b', dtype: 'f32', shape: [8], data: new Float32Array(8) },
    ],
  });
  // second tensor info: 24 + (8+1+4+8+4+8) = 57 → name length at 57, name at 65, offset at 65+1+4+8+4 = 82
  assert.throws(() => readGguf(patched(two, [[82, 'u64', 0]])), /tensor 'b' data at offset \d+: overlaps tensor 'a'/);
  assert.throws(() => readGguf(patched(two, [[65, 'u8', 0x61]])), /tensor 1 name at offset 57: duplicate tensor name 'a'/);
  const twoKv = encodeGguf({ metadata: [{ key: 'k', type: 'uint8', value: 1 }, { key: 'j', type: 'uint8', value: 1 }], tensors: [] });
  assert.throws(() => readGguf(patched(twoKv, [[46, 'u8', 0x6b]])), /metadata 1 key at offset 38: duplicate key 'k'/);
  // general.alignment (17-byte key at 32): value type at 49, value at 53
  const align = encodeGguf({ metadata: [{ key: 'general.alignment', type: 'uint32', value: 64 }], tensors: [] });
  assert.equal(readGguf(patched(align, [])).alignment, 64);
  assert.throws(() => readGguf(patched(align, [[49, 'u32', 5]])), /evil\.gguf: general\.alignment: must be a uint32 power of two, got int32 64/);
  assert.throws(() => readGguf(patched(align, [[53, 'u32', 24]])), /must be a uint32 power of two, got uint32 24/);
});

function llama2c(header: number[], floats: number): MemorySource {
  const b = new Uint8Array(28 + floats * 4);
  const v = new DataView(b.buffer);
  header.forEach((x, i) => v.setInt32(i * 4, x, true));
  return new MemorySource('evil.bin', b);
}

void test('llama2.c hostile checkpoints and tokenizers', () => {
  // dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 4, seq 2 → floats: embedding 4·8, rms 8, wq/wk/wv/wo 64 each,
  // rms 8, w1/w2/w3 128 each, final rms 8, two RoPE tables of 2·2: 704 in all
  const ok = [8, 16, 1, 2, 2, 4, 2];
  const n = 4 * 8 + 8 + 64 * 4 + 8 + 16 * 8 * 3 + 8 + 2 * 2 * 2;
  assert.equal(readLlama2c(llama2c(ok, n)).config.sharedClassifier, true);
  assert.equal(readLlama2c(llama2c([8, 16, 1, 2, 2, -4, 2], n + 32)).tensors.has('lm_head.weight'), true);
  assert.throws(() => readLlama2c(llama2c(ok, n + 1)), /evil\.bin: size: the header implies \d+ bytes but the file has \d+/);
  assert.throws(() => readLlama2c(llama2c([8, 16, 1, 3, 3, 4, 2], n)), /dim 8 is not divisible by n_heads 3/);
  assert.throws(() => readLlama2c(llama2c([8, 16, 1, 2, 0, 4, 2], n)), /header n_kv_heads at offset 16: invalid value 0/);
  assert.throws(() => readLlama2c(llama2c([0x616b3432, 1, 1, 1, 1, 1, 1], 0)), /versioned llama2\.c export/);
  const short = new Uint8Array(10);
  new DataView(short.buffer).setInt32(0, 8, true);
  new DataView(short.buffer).setInt32(4, 16, true);
  assert.throws(() => readLlama2c(new MemorySource('evil.bin', short)), /evil\.bin: header n_layers at offset 8: 4 bytes run past end of file \(size 10\)/);

  const tok = new Uint8Array(4 + 4 + 4 + 2);
  const v = new DataView(tok.buffer);
  v.setInt32(0, 8, true);
  v.setInt32(8, 99, true);
  assert.throws(() => readLlama2cTokenizer(new MemorySource('tok.bin', tok)), /tok\.bin: token 0 length at offset 8: length 99 is outside 0\.\.8/);
  v.setInt32(8, 2, true);
  tok[12] = 0xc3; // a lone UTF-8 lead byte
  assert.throws(() => readLlama2cTokenizer(new MemorySource('tok.bin', tok)), /tok\.bin: token 0 bytes at offset 12: invalid UTF-8/);
  assert.throws(() => readLlama2cTokenizer(new MemorySource('tok.bin', tok), 1000), /tokens at offset 4: 1000 tokens run past end/);
});
