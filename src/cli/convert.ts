// `nomoat convert`: Hugging Face folder ↔ GGUF, llama2.c → GGUF or Hugging Face, with the weight type to write.

import { existsSync, statSync } from 'node:fs';
import type { DType } from '../engine/dtype.js';
import { OUT_TYPES, hfDtypeOf, saveGguf, saveHfFolder, type OutType } from '../models/convert.js';
import type { LlamaModel } from '../models/llama.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli } from './common.js';

const FLAGS = {
  outtype: { kind: 'string', metavar: 'TYPE', help: `weight type: auto, ${OUT_TYPES.join(', ')} (Hugging Face: f32, f16, bf16)`, default: 'auto' },
  to: { kind: 'string', metavar: 'FORMAT', help: 'gguf or hf (default: gguf when OUTPUT ends in .gguf, else hf)' },
  tokenizer: { kind: 'string', metavar: 'FILE', help: 'tokenizer.bin for a llama2.c checkpoint (default: beside it)' },
  name: { kind: 'string', metavar: 'NAME', help: 'general.name written into a GGUF file' },
  force: { kind: 'boolean', help: 'overwrite OUTPUT if it exists' },
} as const satisfies FlagSpecs;

/** `auto`: keep the precision the weights have (bf16 stays bf16, q8_0 stays q8_0; types nomoat cannot write → f16),
 *  as convert_hf_to_gguf.py's `--outtype auto` keeps a bf16 checkpoint bf16. */
function autoType(model: LlamaModel): OutType {
  const counts = new Map<DType, number>();
  for (const [, t] of model.namedTensors()) if (t.shape.length === 2) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + t.size);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'f32';
  return (OUT_TYPES as readonly string[]).includes(top) ? (top as OutType) : 'f16'; // types we read but do not write: f16
}

export const command = defineCommand({
  name: 'convert',
  summary: 'convert between Hugging Face folders, GGUF and llama2.c',
  usage: 'INPUT OUTPUT [--outtype TYPE]',
  description:
    'GGUF output uses llama.cpp\'s tensor names and metadata (Q/K rows in llama.cpp\'s RoPE layout); norms stay f32 and a\n' +
    'weight whose rows do not split into 32-value blocks falls back to f16, as llama.cpp\'s converter does. auto keeps\n' +
    'the type of the 2-D weights (a bf16 checkpoint stays bf16; q4_K/q6_K become f16; HF output: q8_0/q4_0 become f32).\n' +
    'Hugging Face output: config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json.',
  flags: FLAGS,
  positionals: [
    { name: 'input', help: 'GGUF file, Hugging Face folder or llama2.c .bin' },
    { name: 'output', help: 'a .gguf file, or a folder for Hugging Face output' },
  ],
  examples: [
    'nomoat convert ./TinyLlama-1.1B model-f16.gguf --outtype f16',
    'nomoat convert ./my-hf-model model-q8.gguf --outtype q8_0',
    'nomoat convert ./SmolLM2-135M model-bf16.gguf --outtype bf16',
    'nomoat convert model.gguf ./hf-out',
    'nomoat convert stories15M.bin stories15M.gguf --tokenizer tokenizer.bin --outtype f32',
  ],
  run({ flags: f, positionals: [input, output] }) {
    const to = f.to ?? (output.endsWith('.gguf') ? 'gguf' : 'hf');
    if (to !== 'gguf' && to !== 'hf') throw new UsageError(`--to must be gguf or hf, got ${JSON.stringify(to)}`);
    const want = f.outtype ?? 'auto';
    if (want !== 'auto' && !(OUT_TYPES as readonly string[]).includes(want)) throw new UsageError(`--outtype must be auto, ${OUT_TYPES.join(', ')}; got ${JSON.stringify(want)}`);
    if (to === 'hf' && want !== 'auto' && hfDtypeOf(want as OutType) === null) throw new UsageError(`Hugging Face folders hold f32/f16/bf16 safetensors; --outtype ${want} is for GGUF output (name it .gguf)`);
    if (existsSync(output) && !f.force && (to === 'gguf' || !statSync(output).isDirectory() || existsSync(`${output}/model.safetensors`))) {
      throw new CliError(`${output} exists; pass --force to overwrite it`);
    }
    const loaded = loadForCli(input, f.tokenizer);
    const model = loaded.model;
    const auto = autoType(model);
    const t0 = performance.now();
    let type: OutType;
    if (to === 'gguf') {
      type = want === 'auto' ? auto : (want as OutType);
      saveGguf(model, loaded.tokenizer, output, { dtype: type, ...(f.name !== undefined ? { name: f.name } : {}) });
    } else {
      type = want === 'auto' ? (hfDtypeOf(auto) !== null ? auto : 'f32') : (want as OutType);
      saveHfFolder(model, loaded.tokenizer, output, { dtype: hfDtypeOf(type) ?? 'F32' });
    }
    const what = `${loaded.format} → ${to} (${type}${loaded.tokenizer === null ? ', no tokenizer' : ''})`;
    process.stderr.write(`nomoat convert: ${input} → ${output}: ${what} in ${Math.round(performance.now() - t0)} ms\n`);
    model.dispose();
  },
});
