// `nomoat inspect`: what a model file holds — metadata or config, the tensor table, the parameter count — read
// from headers only (no weights are decoded), as a table or as JSON.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../formats/gguf.js';
import type { GgufValue } from '../formats/gguf-types.js';
import { readLlama2c } from '../formats/llama2c.js';
import { openSafetensorsModel, SAFETENSORS_DTYPE_BYTES } from '../formats/safetensors.js';
import { detectFormat, type ModelFormat } from '../models/load.js';
import type { FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, MODEL_KINDS, modelPathOf } from './common.js';

const FLAGS = {
  json: { kind: 'boolean', help: 'print one JSON object {format, metadata, tensors, parameters, bytes}' },
  'no-tensors': { kind: 'boolean', help: 'leave out the tensor table' },
  'max-array': { kind: 'int', metavar: 'N', help: 'show at most N items of array metadata (vocabularies…)', default: 8 },
} as const satisfies FlagSpecs;

interface TensorRow {
  name: string;
  type: string;
  shape: number[];
  bytes: number;
}

interface Report {
  format: ModelFormat;
  path: string;
  metadata: Record<string, unknown>;
  tensors: TensorRow[];
  parameters: number;
  bytes: number;
}

/** Metadata values printable as JSON: bigints as strings, long arrays cut to their first items plus a count. */
function shown(v: GgufValue, maxArray: number): unknown {
  const one = (x: unknown): unknown => (typeof x === 'bigint' ? x.toString() : x);
  if (!Array.isArray(v)) return one(v);
  if (v.length <= maxArray) return v.map(one);
  return { length: v.length, first: v.slice(0, maxArray).map(one) };
}

function inspectGguf(path: string, maxArray: number): Report {
  const f = readGguf(path);
  const metadata: Record<string, unknown> = { 'gguf.version': f.version };
  for (const [k, v] of f.metadata) metadata[k] = shown(v, maxArray);
  const tensors = f.tensors.map((t) => ({ name: t.name, type: t.typeName, shape: t.shape, bytes: t.byteLength }));
  const parameters = f.tensors.reduce((s, t) => s + t.nElements, 0);
  return { format: 'gguf', path, metadata, tensors, parameters, bytes: tensors.reduce((s, t) => s + t.bytes, 0) };
}

function inspectHf(dir: string): Report {
  const cfgPath = join(dir, 'config.json');
  let metadata: Record<string, unknown> = {};
  if (existsSync(cfgPath)) {
    try {
      metadata = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`${cfgPath}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const st = openSafetensorsModel(dir);
  try {
    const tensors = st.names.map((name) => {
      const e = st.get(name)!.entry;
      const n = e.shape.reduce((a, b) => a * b, 1);
      return { name, type: e.dtype, shape: e.shape, bytes: n * (SAFETENSORS_DTYPE_BYTES[e.dtype] ?? 0) };
    });
    const parameters = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    return { format: 'hf', path: dir, metadata, tensors, parameters, bytes: tensors.reduce((s, t) => s + t.bytes, 0) };
  } finally {
    st.close();
  }
}

function inspectLlama2c(path: string): Report {
  const ck = readLlama2c(path);
  const metadata: Record<string, unknown> = { ...ck.config, ropeLayout: ck.ropeLayout };
  const tensors = [...ck.tensors].map(([name, t]) => ({ name, type: 'F32', shape: t.shape, bytes: t.data.length * 4 }));
  const parameters = tensors.reduce((s, t) => s + t.bytes / 4, 0);
  return { format: 'llama2c', path, metadata, tensors, parameters, bytes: parameters * 4 };
}

function human(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

function table(r: Report, withTensors: boolean): string {
  const lines = [`${r.path}: ${r.format}, ${r.tensors.length} tensors, ${human(r.parameters)} parameters (${r.parameters}), ${(r.bytes / 2 ** 20).toFixed(2)} MiB of tensor data`, ''];
  const keys = Object.keys(r.metadata);
  if (keys.length > 0) {
    const w = Math.min(48, Math.max(...keys.map((k) => k.length)) + 2);
    lines.push('Metadata:', ...keys.map((k) => `  ${k.padEnd(w)}${JSON.stringify(r.metadata[k])}`), '');
  }
  if (withTensors && r.tensors.length > 0) {
    const nw = Math.max(4, ...r.tensors.map((t) => t.name.length)) + 2;
    const tw = Math.max(4, ...r.tensors.map((t) => t.type.length)) + 2;
    const sw = Math.max(5, ...r.tensors.map((t) => t.shape.join(' × ').length)) + 2;
    lines.push('Tensors:', `  ${'name'.padEnd(nw)}${'type'.padEnd(tw)}${'shape'.padEnd(sw)}bytes`);
    for (const t of r.tensors) lines.push(`  ${t.name.padEnd(nw)}${t.type.padEnd(tw)}${t.shape.join(' × ').padEnd(sw)}${t.bytes}`);
    lines.push('');
  }
  return lines.join('\n');
}

export const command = defineCommand({
  name: 'inspect',
  summary: 'show a model\'s metadata, tensors and parameter count',
  usage: 'MODEL [--json] [--no-tensors]',
  description: 'Reads headers only, so it is fast on large files. Long arrays (vocabularies, merges) are cut to --max-array items.',
  flags: FLAGS,
  positionals: [{ name: 'model', help: 'GGUF file, Hugging Face folder or llama2.c .bin' }],
  examples: ['nomoat inspect model.gguf', 'nomoat inspect ./my-hf-model --no-tensors', 'nomoat inspect model.gguf --json | jq .parameters'],
  run({ flags: f, positionals: [spec] }) {
    const path = modelPathOf(spec);
    if (!existsSync(path)) throw new CliError(`model not found: ${path} (inspect reads ${MODEL_KINDS})`);
    const maxArray = f['max-array'] ?? 8;
    const format = detectFormat(path);
    const r = format === 'gguf' ? inspectGguf(path, maxArray) : format === 'hf' ? inspectHf(path) : inspectLlama2c(path);
    const out = f['no-tensors'] ? { ...r, tensors: undefined, tensor_count: r.tensors.length } : { ...r, tensor_count: r.tensors.length };
    process.stdout.write(f.json ? JSON.stringify(out) + '\n' : table(r, !f['no-tensors']));
  },
});
