// Checks f16/bf16 conversion and the q8_0/q4_0/q4_K/q6_K codecs bit-for-bit against vectors made by ggml's C code,
// and the decoders of the types nomoat only reads (q4_1, q5_0, q5_1, q2_K, q3_K, q5_K, iq4_nl, iq4_xs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  bf16BitsToF32,
  decodeBf16,
  decodeF16,
  dequantize,
  dequantizeQ4_0,
  dequantizeQ4_K,
  dequantizeQ6_K,
  dequantizeQ8_0,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32ToF16Bits,
  quantize,
  quantizeQ4_0,
  quantizeQ8_0,
} from './index.js';
import { dtypeBytes, type DType } from '../dtype.js';

// Produced by test/fixtures/formats/ggml-golden.c (ggml's quantize_row_*_ref / dequantize_row_* / fp16 macros).
interface Golden {
  n: number;
  input_f32_bits: number[];
  q8_0: string;
  q8_0_dequant_bits: number[];
  q4_0: string;
  q4_0_dequant_bits: number[];
  q4_K: string;
  q4_K_dequant_bits: number[];
  q6_K: string;
  q6_K_dequant_bits: number[];
  f16: string;
  bf16: string;
  special_f32_bits: number[];
  special_f16: string;
  special_bf16: string;
}
const golden = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/formats/ggml-quant-golden.json', import.meta.url), 'utf8'),
) as Golden;

const fromBits = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer);
const bitsOf = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const input = fromBits(golden.input_f32_bits);

void test('q8_0 quantize and dequantize match ggml bit for bit', () => {
  assert.equal(hex(quantizeQ8_0(input)), golden.q8_0);
  assert.deepEqual(bitsOf(dequantizeQ8_0(unhex(golden.q8_0), golden.n)), golden.q8_0_dequant_bits);
});

void test('q4_0 quantize and dequantize match ggml bit for bit', () => {
  assert.equal(hex(quantizeQ4_0(input)), golden.q4_0);
  assert.deepEqual(bitsOf(dequantizeQ4_0(unhex(golden.q4_0), golden.n)), golden.q4_0_dequant_bits);
});

void test('q4_K and q6_K dequantize match ggml bit for bit', () => {
  assert.deepEqual(bitsOf(dequantizeQ4_K(unhex(golden.q4_K), golden.n)), golden.q4_K_dequant_bits);
  assert.deepEqual(bitsOf(dequantizeQ6_K(unhex(golden.q6_K), golden.n)), golden.q6_K_dequant_bits);
});

void test('f16 and bf16 rounding match ggml, including ties, subnormals, overflow and NaN', () => {
  assert.equal(hex(encodeF16(input)), golden.f16);
  assert.equal(hex(encodeBf16(input)), golden.bf16);
  const special = fromBits(golden.special_f32_bits);
  assert.equal(hex(encodeF16(special)), golden.special_f16);
  assert.equal(hex(encodeBf16(special)), golden.special_bf16);
});

void test('f16 decoding is exact and inverts encoding for every finite half', () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = f16BitsToF32(h);
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToF16Bits(x), h, `half 0x${h.toString(16)}`);
  }
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0xfbff), -65504);
  assert.equal(bf16BitsToF32(0x3f80), 1);
  const back = decodeF16(encodeF16(new Float32Array([1.5, -2, 65504])));
  assert.deepEqual(Array.from(back), [1.5, -2, 65504]);
  assert.deepEqual(Array.from(decodeBf16(encodeBf16(new Float32Array([1.5, -3])))), [1.5, -3]);
});

void test('dequantize(quantize(x)) stays within the format error bound', () => {
  for (const dtype of ['q8_0', 'q4_0', 'f16', 'bf16', 'f32'] as const) {
    const y = dequantize(dtype, quantize(dtype, input), input.length);
    for (let b = 0; b < input.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(input[b + j] ?? 0));
      // q8_0: half a step (amax/127) plus the f16 rounding of the stored scale (2^-11 relative, up to 127 steps).
      // q4_0: the scale maps the extreme value to -8, so the other sign clamps at +7: up to one step (amax/8).
      // f16/bf16: half an ulp relative to the value (11 and 8 significant bits).
      const tol = { q8_0: (amax / 127) * 0.57, q4_0: (amax / 8) * 1.01, f16: amax / 2048, bf16: amax / 256, f32: 0 }[dtype];
      for (let j = 0; j < 32; j++) {
        const err = Math.abs((y[b + j] ?? 0) - (input[b + j] ?? 0));
        assert.ok(err <= tol + 1e-12, `${dtype} value ${b + j}: error ${err} > ${tol}`);
      }
    }
  }
});

void test('codecs reject lengths that are not whole blocks or exceed the bytes given', () => {
  assert.throws(() => quantizeQ8_0(new Float32Array(31)), /multiple of the block size 32/);
  assert.throws(() => dequantizeQ4_K(new Uint8Array(143), 256), /need 144 bytes/);
  assert.throws(() => dequantize('q6_k', new Uint8Array(210), 128), /multiple of the block size 256/);
});

// Produced by test/fixtures/formats/ggml-dequant-golden.py: ggml's quantize_row_<type>_ref blocks and random blocks
// with sane scales, dequantized by ggml's dequantize_row_<type> (node-llama-cpp's libggml-base).
const dequantGolden = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/formats/ggml-dequant-golden.json', import.meta.url), 'utf8'),
) as Record<string, string | number | number[]>;

const READ_ONLY: readonly [string, DType][] = [
  ['q4_1', 'q4_1'], ['q5_0', 'q5_0'], ['q5_1', 'q5_1'], ['q2_K', 'q2_k'], ['q3_K', 'q3_k'], ['q5_K', 'q5_k'],
  ['iq4_nl', 'iq4_nl'], ['iq4_xs', 'iq4_xs'],
];

for (const [ggmlName, dtype] of READ_ONLY) {
  void test(`${ggmlName} dequantizes bit for bit as ggml's dequantize_row_${ggmlName}`, () => {
    const n = dequantGolden.n as number;
    for (const label of ['', '_random']) {
      const bytes = unhex(dequantGolden[ggmlName + label] as string);
      assert.equal(bytes.length, dtypeBytes(dtype, n));
      assert.deepEqual(bitsOf(dequantize(dtype, bytes, n)), dequantGolden[`${ggmlName}${label}_dequant_bits`], label || 'ref');
    }
    // the ggml-quantized blocks are close to the input they came from (a wrong layout would not be)
    const ref = dequantize(dtype, unhex(dequantGolden[ggmlName] as string), n);
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs((ref[i] ?? 0) - (input2[i] ?? 0)));
    assert.ok(err < 1.2, `max error ${err}`);
  });
}
const input2 = fromBits(dequantGolden.input_f32_bits as number[]);
