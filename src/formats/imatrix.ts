// llama.cpp's importance-matrix files (llama-imatrix's output, read by llama-quantize --imatrix): per weight tensor,
// the mean squared input activation of each column, which llama-quantize passes to ggml's writers as quant_weights.
//
// Two formats, told apart by the GGUF magic (common/imatrix-loader.cpp in llama.cpp):
// - legacy `.dat`: int32 n_entries; per entry int32 name length, the name, int32 ncall, int32 nval, float32[nval]
//   (sums already divided by their count, times ncall); optionally int32 chunk count, int32 length + dataset name;
// - GGUF (`.imatrix` / `.gguf`): tensors `<name>.in_sum2` (f32 sums of x², ne0 × n_expert) and `<name>.counts` (f32,
//   n_expert), metadata imatrix.datasets (string array), imatrix.chunk_count, imatrix.chunk_size (u32).
// Values are normalised as llama-quantize's load_imatrix does: legacy sums / ncall (when ncall > 0), GGUF sums /
// round(count) per expert (1 where the count is 0). Hostile files fail with a FormatError naming the file, the offset
// or entry and what is wrong; non-finite or negative values are refused (llama.cpp refuses non-finite ones).

import { readGguf, readGgufTensorF32 } from './gguf.js';
import { ByteReader, FormatError, toSource, type ByteSource } from './source.js';

export interface Imatrix {
  /** the file (or source label) it was read from */
  name: string;
  format: 'legacy' | 'gguf';
  /** tensor name → one importance value per column (per expert, one row width after another), normalised */
  entries: Map<string, Float32Array>;
  /** the text files it was computed on (llama-quantize records the first) */
  datasets: string[];
  /** how many chunks of text it was computed on; 0 when the file does not say */
  chunkCount: number;
}

const fr = Math.fround;

/** Reads an imatrix file in either format. */
export function readImatrix(src: ByteSource | string): Imatrix {
  const source = toSource(src);
  try {
    const magic = source.size >= 4 ? source.read(0, 4) : new Uint8Array(0);
    const isGguf = magic.length === 4 && String.fromCharCode(...magic) === 'GGUF';
    const m = isGguf ? readGgufImatrix(source) : readLegacyImatrix(source);
    for (const [name, values] of m.entries) checkValues(source.name, name, values);
    return m;
  } finally {
    source.close?.();
  }
}

function checkValues(file: string, name: string, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    if (!Number.isFinite(v)) throw new FormatError(file, null, `entry '${name}'`, `value ${i} is ${v} (an importance matrix holds finite mean squares)`);
    if (v < 0) throw new FormatError(file, null, `entry '${name}'`, `value ${i} is negative (${v}); an importance matrix holds mean squares`);
  }
}

// ---- legacy .dat -------------------------------------------------------------------------------------------------

function readLegacyImatrix(source: ByteSource): Imatrix {
  const r = new ByteReader(source);
  const nEntries = r.i32('entry count');
  if (nEntries < 1) r.fail('entry count', `${nEntries}: no entries (not an imatrix file?)`, 0);
  // each entry takes at least 4 + 4 + 4 + 4 bytes (empty name, ncall, nval, one value)
  r.need(nEntries * 16, 'entries', `${nEntries} entries`);
  const entries = new Map<string, Float32Array>();
  for (let i = 0; i < nEntries; i++) {
    const field = `entry ${i}`;
    const lenAt = r.pos;
    const len = r.i32(`${field} name length`);
    if (len < 0) r.fail(`${field} name length`, `negative length ${len}`, lenAt);
    let name = r.utf8(len, `${field} name`, lenAt);
    const nul = name.indexOf('\0');
    if (nul >= 0) name = name.slice(0, nul); // the C reads it as a C string
    const ncall = r.i32(`${field} (${name}) ncall`);
    const nvalAt = r.pos;
    const nval = r.i32(`${field} (${name}) value count`);
    if (nval < 1) r.fail(`${field} (${name}) value count`, `${nval}: an entry needs at least one value`, nvalAt);
    r.need(nval * 4, `${field} (${name}) values`, `${nval} float32 values`);
    if (entries.has(name)) r.fail(`${field} name`, `'${name}' appears twice`, lenAt);
    const values = new Float32Array(nval);
    for (let j = 0; j < nval; j++) values[j] = r.f32(`${field} (${name}) values`);
    // load_imatrix: the values are sums/count·ncall, so dividing by ncall gives the mean (float / int in the C)
    if (ncall > 0) {
      const n = fr(ncall);
      for (let j = 0; j < nval; j++) values[j] = fr((values[j] ?? 0) / n);
    }
    entries.set(name, values);
  }
  let chunkCount = 0;
  const datasets: string[] = [];
  if (r.remaining > 0) {
    chunkCount = r.i32('chunk count');
    const lenAt = r.pos;
    const len = r.i32('dataset name length');
    if (len > 0) datasets.push(r.utf8(len, 'dataset name', lenAt));
  }
  return { name: source.name, format: 'legacy', entries, datasets, chunkCount };
}

// ---- GGUF --------------------------------------------------------------------------------------------------------

/** C's lround: half away from zero. */
const lround = (v: number): number => Math.sign(v) * Math.round(Math.abs(v));

function readGgufImatrix(source: ByteSource): Imatrix {
  const file = readGguf(source);
  const fail: (field: string, detail: string) => never = (field, detail) => {
    throw new FormatError(source.name, null, field, detail);
  };
  if (file.tensors.length < 1) fail('tensors', 'none: no imatrix data in this GGUF file');
  const datasets = file.metadata.get('imatrix.datasets');
  const chunkCount = file.metadata.get('imatrix.chunk_count');
  const chunkSize = file.metadata.get('imatrix.chunk_size');
  if (datasets === undefined || chunkCount === undefined || chunkSize === undefined) {
    const missing = ['imatrix.datasets', 'imatrix.chunk_count', 'imatrix.chunk_size'].filter((k) => !file.metadata.has(k));
    fail('metadata', `missing ${missing.join(', ')}: not an imatrix file (llama-quantize refuses it too)`);
  }
  if (!Array.isArray(datasets) || !datasets.every((d) => typeof d === 'string')) fail('metadata imatrix.datasets', 'not an array of strings');
  if (typeof chunkCount !== 'number' || !Number.isInteger(chunkCount) || chunkCount < 0) fail('metadata imatrix.chunk_count', `not a count: ${String(chunkCount)}`);
  const pairs = new Map<string, { sums?: (typeof file.tensors)[number]; counts?: (typeof file.tensors)[number] }>();
  for (const t of file.tensors) {
    const suffix = t.name.endsWith('.in_sum2') ? '.in_sum2' : t.name.endsWith('.counts') ? '.counts' : null;
    if (suffix === null || t.name === suffix) continue;
    const name = t.name.slice(0, -suffix.length);
    const p = pairs.get(name) ?? {};
    if (suffix === '.in_sum2') p.sums = t;
    else p.counts = t;
    pairs.set(name, p);
  }
  const entries = new Map<string, Float32Array>();
  for (const [name, { sums, counts }] of pairs) {
    if (sums === undefined || counts === undefined) fail(`entry '${name}'`, `has ${sums === undefined ? 'counts but no in_sum2' : 'in_sum2 but no counts'} tensor`);
    if (sums.dtype !== 'f32' || counts.dtype !== 'f32') fail(`entry '${name}'`, `sums and counts must be F32, got ${sums.typeName} and ${counts.typeName}`);
    const nval = sums.nElements;
    const ncounts = counts.nElements;
    if (nval < 1 || ncounts < 1 || nval % ncounts !== 0) fail(`entry '${name}'`, `${nval} sums do not split into ${ncounts} counts`);
    const s = readGgufTensorF32(file, sums);
    const c = readGgufTensorF32(file, counts);
    const ne0 = nval / ncounts;
    const values = new Float32Array(nval);
    for (let j = 0; j < ncounts; j++) {
      const cj = c[j] ?? 0;
      if (!Number.isFinite(cj) || cj < 0) fail(`entry '${name}'`, `count ${j} is ${cj}`);
      const count = fr(lround(cj));
      for (let i = 0; i < ne0; i++) values[j * ne0 + i] = count > 0 ? fr((s[j * ne0 + i] ?? 0) / count) : 1;
    }
    entries.set(name, values);
  }
  if (entries.size === 0) fail('tensors', 'no <name>.in_sum2 / <name>.counts pairs: no imatrix data in this GGUF file');
  return { name: source.name, format: 'gguf', entries, datasets, chunkCount };
}

/** The legacy `.dat` bytes of an imatrix (as llama-imatrix wrote it before GGUF): each entry's values are stored
 *  times `ncall`, as there, so reading them back divides by it. For tests and tools; names in insertion order. */
export function encodeImatrixLegacy(
  entries: ReadonlyMap<string, Float32Array>, opts: { ncall?: number; chunkCount?: number; dataset?: string } = {},
): Uint8Array {
  const ncall = opts.ncall ?? 1;
  const parts: Buffer[] = [];
  const i32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return b;
  };
  parts.push(i32(entries.size));
  for (const [name, values] of entries) {
    const nb = Buffer.from(name, 'utf8');
    parts.push(i32(nb.length), nb, i32(ncall), i32(values.length));
    const v = Buffer.alloc(values.length * 4);
    for (let j = 0; j < values.length; j++) v.writeFloatLE(fr((values[j] ?? 0) * ncall), j * 4);
    parts.push(v);
  }
  if (opts.chunkCount !== undefined) {
    const ds = Buffer.from(opts.dataset ?? '', 'utf8');
    parts.push(i32(opts.chunkCount), i32(ds.length), ds);
  }
  return new Uint8Array(Buffer.concat(parts));
}
