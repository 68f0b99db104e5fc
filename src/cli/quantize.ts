// `nomoat quantize`: GGUF → GGUF with q8_0/q4_0 weights (or f32/f16/bf16), positional like llama.cpp's
// `llama-quantize in out type`.

import { existsSync } from 'node:fs';
import { detectFormat } from '../models/load.js';
import { OUT_TYPES, quantizeGguf, type OutType } from '../models/convert.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, MODEL_KINDS } from './common.js';

const FLAGS = {
  'allow-requantize': { kind: 'boolean', help: 'also requantize tensors that are already quantized (loses quality twice)' },
  force: { kind: 'boolean', help: 'overwrite OUTPUT if it exists' },
} as const satisfies FlagSpecs;

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;

export const command = defineCommand({
  name: 'quantize',
  summary: 'requantize a GGUF file to q8_0 or q4_0',
  usage: 'INPUT.gguf OUTPUT.gguf TYPE [--allow-requantize]',
  description:
    'Quantizes every 2-D weight (token embedding and output included, like llama-quantize --pure); 1-D tensors and\n' +
    'metadata are copied unchanged. A weight whose rows do not split into 32-value blocks is written as f16.\n' +
    `For Hugging Face folders or llama2.c checkpoints use \`nomoat convert INPUT OUTPUT.gguf --outtype TYPE\`.`,
  flags: FLAGS,
  positionals: [
    { name: 'input', help: 'the GGUF file to read' },
    { name: 'output', help: 'the GGUF file to write' },
    { name: 'type', help: `${OUT_TYPES.join(', ')}` },
  ],
  examples: ['nomoat quantize model-f16.gguf model-q8_0.gguf q8_0', 'nomoat quantize model-f32.gguf model-q4_0.gguf q4_0'],
  run({ flags: f, positionals: [input, output, type] }) {
    const t = type.toLowerCase();
    if (!(OUT_TYPES as readonly string[]).includes(t)) throw new UsageError(`TYPE must be one of ${OUT_TYPES.join(', ')}; got ${JSON.stringify(type)}`);
    if (!existsSync(input)) throw new CliError(`input not found: ${input}`);
    if (detectFormat(input) !== 'gguf') throw new CliError(`${input} is not a GGUF file (${MODEL_KINDS} are read by \`nomoat convert INPUT OUTPUT.gguf --outtype ${t}\`)`);
    if (existsSync(output) && !f.force) throw new CliError(`${output} exists; pass --force to overwrite it`);
    const t0 = performance.now();
    const r = quantizeGguf(input, output, t as OutType, { allowRequantize: f['allow-requantize'] });
    process.stderr.write(
      `nomoat quantize: ${r.quantized} tensors → ${t}, ${r.kept.length} copied as they were; ${mib(r.inBytes)} → ${mib(r.outBytes)} ` +
      `of tensor data in ${Math.round(performance.now() - t0)} ms\n`,
    );
  },
});
