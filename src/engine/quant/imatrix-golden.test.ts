// The block writers with importance weights against ggml's own: byte equality with ggml_quantize_chunk given
// per-column quant_weights (libggml-base of node-llama-cpp: the quantize_row_<type>_impl paths llama-quantize runs
// with an imatrix), and without them (the oracle's self-check: the same bytes as ggml-quantize-golden.json's
// writers). Vectors from test/fixtures/formats/ggml-imatrix-golden.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { quantize, quantizeIQ4_XS, type WritableDType } from './index.js';

interface Case {
  rows: number;
  input: string;
  weights: string;
  plain: Record<string, string>;
  weighted: Record<string, string>;
}
const golden = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/formats/ggml-imatrix-golden.json', import.meta.url), 'utf8'),
) as { cols: number; gauss: Case; corner: Case };

/** ggml's type name → the writer under test. */
const WRITERS: readonly [string, (x: Float32Array, w?: Float32Array) => Uint8Array][] = [
  ...(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'iq4_nl', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'] as const).map(
    (name): [string, (x: Float32Array, w?: Float32Array) => Uint8Array] => [name, (x, w) => quantize(name.toLowerCase() as WritableDType, x, w)],
  ),
  ['iq4_xs', quantizeIQ4_XS],
];

const f32Of = (hex: string): Float32Array => {
  const b = Buffer.from(hex, 'hex');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `first difference at byte ${i} of ${b.length}`;
  return 'equal';
}

for (const [name, write] of WRITERS) {
  void test(`${name} with importance weights quantizes byte for byte as ggml_quantize_chunk (and without them too)`, () => {
    for (const label of ['gauss', 'corner'] as const) {
      const c = golden[label];
      const x = f32Of(c.input);
      const w = f32Of(c.weights);
      assert.equal(w.length, golden.cols);
      for (const [kind, got] of [['plain', write(x)], ['weighted', write(x, w)]] as const) {
        const want = new Uint8Array(Buffer.from(c[kind][name] ?? '', 'hex'));
        assert.equal(got.length, want.length, `${label} ${kind}: length`);
        assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${label} ${kind}: ${firstDiff(got, want)}`);
      }
    }
  });
}

void test('importance weights must be one per column of whole blocks, and the values whole rows of them', () => {
  const x = new Float32Array(512);
  assert.throws(() => quantize('q4_k', x, new Float32Array(384)), /not a row of whole 256-value blocks/);
  assert.throws(() => quantize('q4_0', x, new Float32Array(48)), /not a row of whole 32-value blocks/);
  assert.throws(() => quantize('q5_0', new Float32Array(96), new Float32Array(64)), /not a whole number of rows of 64/);
  assert.equal(quantize('q8_0', x, new Float32Array(7)).length, 16 * 34); // q8_0 has no weighted path: ignored, as ggml does
});
