// Fuzzing the GGUF and safetensors parsers: 12,000 mutated files must parse or fail with a clean, named Error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeGguf,
  encodeSafetensors,
  FormatError,
  MemorySource,
  readGguf,
  readGgufTensor,
  readGgufTensorF32,
  readSafetensors,
  readSafetensorsBytes,
  readSafetensorsF32,
  type GgufKV,
} from '../src/formats/index.js';

// mulberry32: a small seeded generator so every run mutates the same way
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function values(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
}

function bases(): { kind: 'gguf' | 'st'; bytes: Uint8Array }[] {
  const r = rng(1);
  const md: GgufKV[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'llama.block_count', type: 'uint32', value: 2 },
    { key: 'f', type: 'float32', value: 0.5 },
    { key: 'b', type: 'bool', value: false },
    { key: 'big', type: 'uint64', value: 2n ** 60n },
    { key: 'tokens', type: { array: 'string' }, value: ['<s>', 'a', 'bc', 'é'] },
    { key: 'scores', type: { array: 'float32' }, value: [0.5, -1, 2] },
    { key: 'types', type: { array: 'int32' }, value: [1, 2, 3] },
  ];
  const raw = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  return [
    {
      kind: 'gguf',
      bytes: encodeGguf({
        metadata: md,
        tensors: [
          { name: 'a', dtype: 'f32', shape: [2, 4], data: values(8, r) },
          { name: 'b', dtype: 'f16', shape: [3], data: values(3, r) },
          { name: 'c', dtype: 'q8_0', shape: [2, 32], data: values(64, r) },
          { name: 'd', dtype: 'q4_0', shape: [32], data: values(32, r) },
          { name: 'e', dtype: 'bf16', shape: [1, 1, 2, 2], data: values(4, r) },
        ],
      }),
    },
    {
      kind: 'gguf',
      bytes: encodeGguf({
        metadata: md.slice(0, 2),
        alignment: 64,
        tensors: [
          { name: 'k4', dtype: 'q4_k', shape: [256], data: raw(144) },
          { name: 'k6', dtype: 'q6_k', shape: [256], data: raw(210) },
        ],
      }),
    },
    { kind: 'gguf', bytes: encodeGguf({ metadata: md, tensors: [] }) },
    {
      kind: 'st',
      bytes: encodeSafetensors(
        [
          { name: 'w', dtype: 'F32', shape: [2, 3], data: values(6, r) },
          { name: 'h', dtype: 'F16', shape: [4], data: values(4, r) },
          { name: 'g', dtype: 'BF16', shape: [2, 1], data: values(2, r) },
        ],
        { format: 'pt' },
      ),
    },
    { kind: 'st', bytes: encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [3], data: values(3, r) }]) },
  ];
}

type Mutation = (b: Uint8Array, r: () => number) => Uint8Array;

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const at = (b: Uint8Array, r: () => number): number => Math.floor(r() * b.length);

const MUTATIONS: Record<string, Mutation> = {
  bitflip: (b, r) => {
    const o = b.slice();
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      const i = at(o, r);
      o[i] = (o[i] ?? 0) ^ (1 << Math.floor(r() * 8));
    }
    return o;
  },
  overwrite: (b, r) => {
    const o = b.slice();
    const v = pick(r, [0x00, 0xff, -1]);
    for (let k = 1 + Math.floor(r() * 4), i = at(o, r); k > 0 && i < o.length; k--, i++) o[i] = v < 0 ? Math.floor(r() * 256) : v;
    return o;
  },
  truncate: (b, r) => b.slice(0, at(b, r)),
  inflate: (b, r) => {
    // a length or count field made huge: at a random 4-aligned place or at a known header field
    const o = b.slice();
    const i = r() < 0.5 ? pick(r, [0, 8, 16, 24]) : at(o, r) & ~3;
    const big = pick(r, [0xffffffffn, 2n ** 32n, 2n ** 53n - 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(b.length * 2), 1n << BigInt(Math.floor(r() * 64))]);
    const v = new DataView(o.buffer);
    if (i + 8 <= o.length) v.setBigUint64(i, big & (2n ** 64n - 1n), true);
    return o;
  },
  insert: (b, r) => {
    const i = at(b, r);
    const ins = Uint8Array.from({ length: 1 + Math.floor(r() * 16) }, () => Math.floor(r() * 256));
    const o = new Uint8Array(b.length + ins.length);
    o.set(b.subarray(0, i));
    o.set(ins, i);
    o.set(b.subarray(i), i + ins.length);
    return o;
  },
  delete: (b, r) => {
    const i = at(b, r);
    const j = Math.min(b.length, i + 1 + Math.floor(r() * 8));
    const o = new Uint8Array(b.length - (j - i));
    o.set(b.subarray(0, i));
    o.set(b.subarray(j), i);
    return o;
  },
};

/** Parses and reads everything; returns a problem description, or null when the outcome is acceptable. */
function exercise(kind: 'gguf' | 'st', name: string, bytes: Uint8Array): string | null {
  const clean = (e: unknown): string | null => {
    if (!(e instanceof Error)) return `threw a non-Error ${String(e)}`;
    if (e.constructor !== Error && !(e instanceof FormatError)) return `threw ${e.constructor.name}: ${e.message}`;
    if (!e.message.includes(name)) return `message does not name the source: ${e.message}`;
    return null;
  };
  const src = new MemorySource(name, bytes);
  try {
    if (kind === 'gguf') {
      const f = readGguf(src);
      for (const t of f.tensors) {
        try {
          readGgufTensor(f, t);
          if (t.dtype !== null) readGgufTensorF32(f, t);
        } catch (e) {
          const p = clean(e);
          if (p !== null) return `tensor ${t.name}: ${p}`;
        }
      }
    } else {
      const f = readSafetensors(src);
      for (const [n, t] of f.tensors) {
        try {
          if (['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) readSafetensorsF32(f, n);
          else readSafetensorsBytes(f, n);
        } catch (e) {
          const p = clean(e);
          if (p !== null) return `tensor ${n}: ${p}`;
        }
      }
    }
    return null;
  } catch (e) {
    return clean(e);
  }
}

void test('12,000 mutated GGUF/safetensors files parse or fail cleanly, naming the source', () => {
  const files = bases();
  for (const f of files) assert.equal(exercise(f.kind, 'base', f.bytes), null, 'base files must parse');
  const r = rng(20240601);
  const names = Object.keys(MUTATIONS);
  const problems: string[] = [];
  const outcomes = { parsed: 0, rejected: 0 };
  const started = Date.now();
  const N = 12000;
  for (let i = 0; i < N; i++) {
    const base = pick(r, files);
    let bytes = base.bytes;
    const applied: string[] = [];
    for (let k = 1 + Math.floor(r() * 2); k > 0; k--) {
      const m = pick(r, names);
      applied.push(m);
      bytes = (MUTATIONS[m])(bytes, r);
    }
    const name = `fuzz-${i}.${base.kind === 'gguf' ? 'gguf' : 'safetensors'}`;
    const problem = exercise(base.kind, name, bytes);
    if (problem !== null) problems.push(`${name} (${applied.join('+')}): ${problem}`);
    let ok = true;
    try {
      if (base.kind === 'gguf') readGguf(new MemorySource(name, bytes));
      else readSafetensors(new MemorySource(name, bytes));
    } catch {
      ok = false;
    }
    outcomes[ok ? 'parsed' : 'rejected']++;
  }
  assert.deepEqual(problems.slice(0, 10), []);
  // both outcomes must occur in quantity, or the mutations are not exercising anything
  assert.ok(outcomes.parsed > 500 && outcomes.rejected > 3000, JSON.stringify(outcomes));
  assert.ok(Date.now() - started < 20000, `fuzzing took ${Date.now() - started} ms`);
  assert.ok(process.memoryUsage().arrayBuffers < 512 * 2 ** 20, 'absurd allocation during fuzzing');
});
