// `nomoat quantize --imatrix`: the tensors an importance matrix covers are written by ggml's weighted writers, as
// llama-quantize --imatrix writes them.
//
// Without Python: a file whose tensors hold the rows of test/fixtures/formats/ggml-imatrix-golden.json, quantized
// through the CLI with an imatrix of the golden weights (legacy .dat and GGUF), must give ggml_quantize_chunk's bytes
// for those weights, name the tensor the imatrix lacks, and record quantize.imatrix.*. With node-llama-cpp's libllama
// (scripts/llamacpp-quantize-imatrix.py: llama_model_quantize with the imatrix and quantize.cpp's metadata), whole
// files must match: eight 256-wide layers (Q4_K_M, and Q4_0, whose first-eighth ffn_down turn q4_1 with an imatrix)
// and a SmolLM-135M-shaped layer (576-wide rows fall back to q5_0 / q5_1 / q8_0, weighted too).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGguf, writeGguf } from '../src/formats/gguf-write.js';
import { readGguf, readGgufTensor, type GgufFile } from '../src/formats/gguf.js';
import { encodeImatrixLegacy } from '../src/formats/imatrix.js';
import { saveGguf } from '../src/models/convert.js';
import { mixTensorTypes } from '../src/models/quant-mix.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import type { LlamaConfig } from '../src/models/config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const NOMOAT = join(ROOT, 'bin', 'nomoat.js');
const ORACLE = join(ROOT, 'scripts', 'llamacpp-quantize-imatrix.py');
const LIBS = join(ROOT, 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins');

interface Case { rows: number; input: string; weights: string; plain: Record<string, string>; weighted: Record<string, string> }
const golden = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'formats', 'ggml-imatrix-golden.json'), 'utf8')) as { cols: number; gauss: Case };
const f32Of = (hex: string): Float32Array => {
  const b = Buffer.from(hex, 'hex');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const dir = mkdtempSync(join(tmpdir(), 'nomoat-imatrix-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function nomoat(...args: string[]): { status: number | null; stderr: string } {
  return spawnSync(process.execPath, [NOMOAT, 'quantize', ...args], { cwd: ROOT, encoding: 'utf8' });
}

const hex = (f: GgufFile, name: string): string => {
  const t = f.tensors.find((i) => i.name === name);
  assert.ok(t !== undefined, name);
  return Buffer.from(readGgufTensor(f, t)).toString('hex');
};
const typeOf = (f: GgufFile, name: string): string | undefined => f.tensors.find((i) => i.name === name)?.typeName;

/** One layer whose weights are the golden rows (3 × 512): attn_v (q6_K in Q4_K_M / Q5_K_M: the layer "uses more
 *  bits"), ffn_up (the mix's K-quant) and attn_q, which the imatrix will not cover. */
function goldenModel(path: string): void {
  const x = f32Of(golden.gauss.input);
  const shape = [golden.gauss.rows, golden.cols];
  writeGguf(path, {
    metadata: [
      { key: 'general.architecture', type: 'string', value: 'llama' },
      { key: 'llama.block_count', type: 'uint32', value: 1 },
    ],
    tensors: [
      { name: 'blk.0.attn_norm.weight', dtype: 'f32', shape: [golden.cols], data: new Float32Array(golden.cols).fill(1) },
      { name: 'blk.0.attn_q.weight', dtype: 'f32', shape, data: x },
      { name: 'blk.0.attn_v.weight', dtype: 'f32', shape, data: x },
      { name: 'blk.0.ffn_up.weight', dtype: 'f32', shape, data: x },
    ],
  });
}

test('--imatrix FILE (.dat): ggml\'s weighted bytes for the tensors it covers, a warning for the one it lacks, quantize.imatrix.* recorded', () => {
  const input = join(dir, 'golden-f32.gguf');
  goldenModel(input);
  const w = f32Of(golden.gauss.weights);
  const im = join(dir, 'golden.dat');
  // ncall 4: the file stores the weights times 4, and reading divides (exactly, a power of two)
  writeFileSync(im, encodeImatrixLegacy(new Map([
    ['blk.0.attn_v.weight', w], ['blk.0.ffn_up.weight', w], ['blk.7.ffn_up.weight', new Float32Array(8).fill(1)],
  ]), { ncall: 4, chunkCount: 7, dataset: 'calibration.txt' }));
  const out = join(dir, 'golden-Q4_K_M.gguf');
  const r = nomoat(input, out, 'Q4_K_M', '--imatrix', im, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /3 importance matrix entries from .*golden\.dat computed on 7 chunks of calibration\.txt/);
  assert.match(r.stderr, /warning: no importance matrix data for 1 tensors, quantized without: blk\.0\.attn_q\.weight/);
  const f = readGguf(out);
  assert.equal(typeOf(f, 'blk.0.ffn_up.weight'), 'q4_K');
  assert.equal(typeOf(f, 'blk.0.attn_v.weight'), 'q6_K');
  assert.equal(hex(f, 'blk.0.ffn_up.weight'), golden.gauss.weighted.q4_K, 'ffn_up: ggml_quantize_chunk with the weights');
  assert.equal(hex(f, 'blk.0.attn_v.weight'), golden.gauss.weighted.q6_K, 'attn_v: ggml_quantize_chunk with the weights');
  assert.equal(hex(f, 'blk.0.attn_q.weight'), golden.gauss.plain.q4_K, 'attn_q: no imatrix entry, the reference writer');
  assert.equal(f.metadata.get('quantize.imatrix.file'), im);
  assert.equal(f.metadata.get('quantize.imatrix.dataset'), 'calibration.txt');
  assert.equal(f.metadata.get('quantize.imatrix.entries_count'), 3);
  assert.equal(f.metadata.get('quantize.imatrix.chunks_count'), 7);
  assert.equal(f.metadataTypes.get('quantize.imatrix.entries_count'), 'uint32');
  assert.equal(f.metadataTypes.get('quantize.imatrix.chunks_count'), 'uint32');
  f.source.close?.();
});

test('--imatrix FILE (GGUF in_sum2 / counts): the same weights give the same bytes (Q5_K_M)', () => {
  const input = join(dir, 'golden-f32.gguf');
  if (!existsSync(input)) goldenModel(input);
  const w = f32Of(golden.gauss.weights);
  const sums = w.map((v) => v * 2); // count 2
  const im = join(dir, 'golden.imatrix');
  writeFileSync(im, encodeGguf({
    metadata: [
      { key: 'general.type', type: 'string', value: 'imatrix' },
      { key: 'imatrix.datasets', type: { array: 'string' }, value: [] },
      { key: 'imatrix.chunk_count', type: 'uint32', value: 0 },
      { key: 'imatrix.chunk_size', type: 'uint32', value: 512 },
    ],
    tensors: ['blk.0.attn_q.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_up.weight'].flatMap((n) => [
      { name: `${n}.in_sum2`, dtype: 'f32' as const, shape: [1, golden.cols], data: sums },
      { name: `${n}.counts`, dtype: 'f32' as const, shape: [1, 1], data: new Float32Array([2]) },
    ]),
  }));
  const out = join(dir, 'golden-Q5_K_M.gguf');
  const r = nomoat(input, out, 'Q5_K_M', '--imatrix', im, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);
  const f = readGguf(out);
  assert.equal(hex(f, 'blk.0.ffn_up.weight'), golden.gauss.weighted.q5_K);
  assert.equal(hex(f, 'blk.0.attn_q.weight'), golden.gauss.weighted.q5_K);
  assert.equal(hex(f, 'blk.0.attn_v.weight'), golden.gauss.weighted.q6_K);
  assert.equal(f.metadata.get('quantize.imatrix.entries_count'), 3);
  assert.equal(f.metadata.has('quantize.imatrix.dataset'), false); // no dataset, no chunk count: not written, as llama-quantize
  assert.equal(f.metadata.has('quantize.imatrix.chunks_count'), false);
  f.source.close?.();
});

test('bad --imatrix files: clear errors naming the file, no output written', () => {
  const input = join(dir, 'golden-f32.gguf');
  if (!existsSync(input)) goldenModel(input);
  const out = join(dir, 'bad-out.gguf');
  const missing = nomoat(input, out, 'Q4_K_M', '--imatrix', join(dir, 'nope.dat'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /imatrix file not found: .*nope\.dat/);
  const full = encodeImatrixLegacy(new Map([['blk.0.ffn_up.weight', f32Of(golden.gauss.weights)]]), { ncall: 1 });
  const cut = join(dir, 'cut.dat');
  writeFileSync(cut, full.subarray(0, full.length - 9));
  const t = nomoat(input, out, 'Q4_K_M', '--imatrix', cut);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /cannot read the importance matrix: .*cut\.dat: entry 0 \(blk\.0\.ffn_up\.weight\) values at offset \d+: 512 float32 values run past end of file/);
  const nan = join(dir, 'nan.dat');
  const bad = full.slice();
  new DataView(bad.buffer).setFloat32(bad.length - 4, NaN, true);
  writeFileSync(nan, bad);
  assert.match(nomoat(input, out, 'Q4_K_M', '--imatrix', nan).stderr, /nan\.dat: entry 'blk\.0\.ffn_up\.weight': value 511 is NaN/);
  const short = join(dir, 'short.dat');
  writeFileSync(short, encodeImatrixLegacy(new Map([['blk.0.ffn_up.weight', new Float32Array(256).fill(1)]])));
  const s = nomoat(input, out, 'Q4_K_M', '--imatrix', short);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /short\.dat: the imatrix entry for blk\.0\.ffn_up\.weight has 256 values, but the tensor's rows have 512/);
  assert.equal(existsSync(out), false);
});

test('with an imatrix Q4_0 gives q4_1 to the first eighth of ffn_down (llama_tensor_get_type); the K mixes do not change', () => {
  const tensors = [...Array(16).keys()].flatMap((i) => [
    { name: `blk.${i}.ffn_down.weight`, shape: [256, 512] },
    { name: `blk.${i}.attn_v.weight`, shape: [256, 256] },
  ]);
  const withIm = mixTensorTypes('q4_0', tensors, { imatrix: true });
  const q41 = [...withIm].filter(([, t]) => t === 'q4_1').map(([n]) => n);
  assert.deepEqual(q41, ['blk.0.ffn_down.weight', 'blk.1.ffn_down.weight']);
  assert.ok([...mixTensorTypes('q4_0', tensors)].every(([, t]) => t === 'q4_0'));
  assert.ok([...mixTensorTypes('q4_0', tensors, { imatrix: true, pure: true })].every(([, t]) => t === 'q4_0'));
  for (const mix of ['q4_k_m', 'q4_k_s', 'q5_k_m', 'q5_k_s', 'q6_k', 'q8_0'] as const) {
    assert.deepEqual(mixTensorTypes(mix, tensors, { imatrix: true }), mixTensorTypes(mix, tensors), mix);
  }
});

// ---- against llama.cpp's own quantizer ----------------------------------------------------------------------------

const python = spawnSync('python3', ['-c', 'import ctypes'], { encoding: 'utf8' }).status === 0;
const skipOracle = !python ? 'python3 not found' : !existsSync(LIBS) ? `${LIBS} absent (node-llama-cpp's prebuilt binaries)` : false;

/** An imatrix for every blk.* weight of a file: seeded positive values spread over decades (ncall 3, so reading
 *  divides in float32 as llama-quantize does). output.weight and token_embd are left out, as llama-imatrix does. */
function imatrixFor(path: string, seed: number): Uint8Array {
  const f = readGguf(path);
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const entries = new Map<string, Float32Array>();
  for (const t of f.tensors) {
    if (!t.name.startsWith('blk.') || t.ne.length < 2) continue;
    entries.set(t.name, Float32Array.from({ length: t.ne[0] ?? 0 }, () => Math.exp(12 * rand() - 6)));
  }
  f.source.close?.();
  return encodeImatrixLegacy(entries, { ncall: 3, chunkCount: 12, dataset: 'wiki.train.raw' });
}

function assertSameFile(ours: string, theirs: string, what: string): string {
  const a = readGguf(ours);
  const b = readGguf(theirs);
  const counts = new Map<string, number>();
  assert.deepEqual(a.tensors.map((t) => t.name).sort(), b.tensors.map((t) => t.name).sort(), `${what}: names`);
  for (const t of a.tensors) {
    assert.equal(t.typeName, typeOf(b, t.name), `${what}: type of ${t.name}`);
    const x = hex(a, t.name);
    const y = hex(b, t.name);
    let i = 0;
    while (i < x.length && x[i] === y[i]) i++;
    assert.ok(x === y, `${what}: ${t.name} (${t.typeName}) bytes differ from byte ${i >> 1} of ${y.length >> 1}`);
    counts.set(t.typeName, (counts.get(t.typeName) ?? 0) + 1);
  }
  for (const key of ['quantize.imatrix.file', 'quantize.imatrix.dataset', 'quantize.imatrix.entries_count', 'quantize.imatrix.chunks_count']) {
    assert.equal(a.metadata.get(key), b.metadata.get(key), `${what}: ${key}`);
    assert.deepEqual(a.metadataTypes.get(key), b.metadataTypes.get(key), `${what}: type of ${key}`);
  }
  a.source.close?.();
  b.source.close?.();
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

function compareWithLlama(label: string, cfg: LlamaConfig, mixes: readonly [string, number][]): void {
  const f32 = join(dir, `${label}-f32.gguf`);
  const model = randomModel(cfg, 5, 0.1);
  saveGguf(model, tinyTokenizer(), f32, { dtype: 'f32' });
  model.dispose();
  const im = join(dir, `${label}.dat`);
  writeFileSync(im, imatrixFor(f32, 11));
  for (const [mix, ftype] of mixes) {
    const ours = join(dir, `${label}-${mix}-ours.gguf`);
    const ref = join(dir, `${label}-${mix}-ref.gguf`);
    const q = spawnSync('python3', [ORACLE, f32, ref, String(ftype), im], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(q.status, 0, `llamacpp-quantize-imatrix.py ${mix} failed:\n${q.stdout}\n${q.stderr}`);
    const r = nomoat(f32, ours, mix, '--imatrix', im, '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /quantized without: (token_embd|output)\.weight/); // not in the imatrix, as llama-imatrix leaves them
    const types = assertSameFile(ours, ref, `${label} ${mix}`);
    console.log(`# ${label} ${mix} --imatrix: ${types}: identical to llama-quantize --imatrix`);
  }
}

test('eight 256-wide layers with an imatrix: Q4_K_M and Q4_0 files identical to llama-quantize --imatrix', { skip: skipOracle }, () => {
  compareWithLlama('eight', testConfig({ hiddenSize: 256, intermediateSize: 512, numHeads: 4, numKvHeads: 2, headDim: 64, numLayers: 8, tieWordEmbeddings: false }),
    [['Q4_K_M', 15], ['Q4_0', 2]]);
});

test('a SmolLM-135M-shaped layer with an imatrix: fallbacks weighted too (Q4_K_M, Q5_K_S, Q6_K), identical to llama-quantize', { skip: skipOracle }, () => {
  compareWithLlama('smol', testConfig({ hiddenSize: 576, intermediateSize: 1536, numHeads: 9, numKvHeads: 3, headDim: 64, numLayers: 1 }),
    [['Q4_K_M', 15], ['Q5_K_S', 16], ['Q6_K', 18]]);
});
