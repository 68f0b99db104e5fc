// The block writers against ggml's own: byte equality with ggml_quantize_chunk (libggml-base of node-llama-cpp, no
// importance matrix) on gaussian rows with outliers and a row of corner cases, for every type llama-quantize's
// mixes write. Vectors from test/fixtures/formats/ggml-quantize-golden.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dtypeBytes, type DType } from '../dtype.js';
import { dequantize, quantize, type WritableDType } from './index.js';

interface Case {
  rows: number;
  input: string;
  [type: string]: string | number;
}
const golden = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/formats/ggml-quantize-golden.json', import.meta.url), 'utf8'),
) as { cols: number; gauss: Case; corner: Case };

const TYPES: readonly [string, WritableDType][] = [
  ['q4_0', 'q4_0'], ['q4_1', 'q4_1'], ['q5_0', 'q5_0'], ['q5_1', 'q5_1'], ['q8_0', 'q8_0'], ['iq4_nl', 'iq4_nl'],
  ['q2_K', 'q2_k'], ['q3_K', 'q3_k'], ['q4_K', 'q4_k'], ['q5_K', 'q5_k'], ['q6_K', 'q6_k'],
];

const f32Of = (hex: string): Float32Array => {
  const b = Buffer.from(hex, 'hex');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** Index of the first differing block, for a message that says where. */
function firstBlockDiff(a: Uint8Array, b: Uint8Array, dtype: DType): string {
  const bb = dtypeBytes(dtype, dtype.endsWith('_k') ? 256 : 32);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first difference at byte ${i} (block ${Math.floor(i / bb)}, offset ${i % bb})`;
  }
  return 'equal';
}

for (const [name, dtype] of TYPES) {
  void test(`${name} quantizes byte for byte as ggml_quantize_chunk`, () => {
    for (const label of ['gauss', 'corner'] as const) {
      const c = golden[label];
      const x = f32Of(c.input);
      assert.equal(x.length, c.rows * golden.cols);
      const want = new Uint8Array(Buffer.from(c[name] as string, 'hex'));
      const got = quantize(dtype, x);
      assert.equal(got.length, want.length, `${label}: length`);
      assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${label}: ${firstBlockDiff(got, want, dtype)}`);
    }
  });
}

void test('writers refuse rows that are not whole blocks', () => {
  for (const [, dtype] of TYPES) {
    const block = dtype.endsWith('_k') ? 256 : 32;
    assert.throws(() => quantize(dtype, new Float32Array(block + 16)), /not a multiple of the block size/, dtype);
  }
});

void test('written blocks decode close to their input (a layout slip would not)', () => {
  const x = f32Of(golden.gauss.input);
  // relative RMS error bounds per type, loose: a wrong nibble order or scale packing gives errors near 1
  const bound: Record<string, number> = { q2_k: 0.6, q3_k: 0.35, q4_k: 0.15, q5_k: 0.08, q6_k: 0.04, q4_0: 0.2, q4_1: 0.15, q5_0: 0.1, q5_1: 0.08, q8_0: 0.01, iq4_nl: 0.15 };
  for (const [, dtype] of TYPES) {
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    let num = 0;
    let den = 0;
    for (let i = 0; i < x.length; i++) {
      num += ((y[i] ?? 0) - (x[i] ?? 0)) ** 2;
      den += (x[i] ?? 0) ** 2;
    }
    const rel = Math.sqrt(num / den);
    assert.ok(rel < (bound[dtype] ?? 0), `${dtype}: relative RMS error ${rel.toFixed(4)}`);
  }
});

void test('the blocks in the older golden files (ggml-golden.c, ggml-dequant-golden.py) are what these writers write', () => {
  const dir = '../../../../test/fixtures/formats/';
  const read = (f: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(dir + f, import.meta.url), 'utf8')) as Record<string, unknown>;
  const a = read('ggml-quant-golden.json');
  const xa = new Float32Array(new Uint32Array(a.input_f32_bits as number[]).buffer);
  for (const [name, dtype] of [['q4_K', 'q4_k'], ['q6_K', 'q6_k']] as const) {
    assert.equal(Buffer.from(quantize(dtype, xa)).toString('hex'), a[name], name);
  }
  // (its iq4_nl blocks come from quantize_row_iq4_nl_ref, ntry −1; llama-quantize runs quantize_iq4_nl, ntry 7)
  const b = read('ggml-dequant-golden.json');
  const xb = new Float32Array(new Uint32Array(b.input_f32_bits as number[]).buffer);
  for (const [name, dtype] of [['q4_1', 'q4_1'], ['q5_0', 'q5_0'], ['q5_1', 'q5_1'], ['q2_K', 'q2_k'], ['q3_K', 'q3_k'], ['q5_K', 'q5_k']] as const) {
    assert.equal(Buffer.from(quantize(dtype, xb)).toString('hex'), b[name], name);
  }
});
