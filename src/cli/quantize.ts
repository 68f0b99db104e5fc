// `nomoat quantize`: GGUF → GGUF in one of llama-quantize's mixes (Q4_K_M, Q5_K_S, Q6_K, Q8_0, …), positional like
// llama.cpp's `llama-quantize in out type [--imatrix FILE]`, each tensor's type and bytes as llama-quantize writes them.

import { existsSync } from 'node:fs';
import { detectFormat } from '../models/load.js';
import { quantizeGguf } from '../models/convert.js';
import { readImatrix, type Imatrix } from '../formats/imatrix.js';
import { FormatError } from '../formats/source.js';
import { QUANT_MIXES, type QuantMix } from '../models/quant-mix.js';
import { ProgressBar } from '../hub/progress.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, MODEL_KINDS } from './common.js';

const FLAGS = {
  'allow-requantize': { kind: 'boolean', help: 'also requantize tensors that are already quantized (loses quality twice)' },
  pure: { kind: 'boolean', help: 'every weight in the mix\'s own type: no q6_k output or more-bits layers (llama-quantize --pure)' },
  imatrix: {
    kind: 'string',
    metavar: 'FILE',
    help: 'importance matrix from llama.cpp\'s llama-imatrix (.dat or GGUF .imatrix): weights each covered tensor\'s fit, as llama-quantize --imatrix',
  },
  force: { kind: 'boolean', help: 'overwrite OUTPUT if it exists' },
  quiet: { kind: 'boolean', short: 'q', help: 'no progress bar' },
} as const satisfies FlagSpecs;

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
const MIX_NAMES = QUANT_MIXES.map((m) => m.toUpperCase()).join(', ');

export const command = defineCommand({
  name: 'quantize',
  summary: 'requantize a GGUF file to a llama-quantize mix (Q4_K_M, Q5_K_M, Q6_K, Q8_0, …)',
  usage: 'INPUT.gguf OUTPUT.gguf TYPE [--imatrix FILE] [--pure] [--allow-requantize]',
  description:
    'Writes what llama.cpp\'s llama-quantize writes: each 2-D weight gets the type the mix\n' +
    'gives it (Q4_K_M: q6_k for output.weight, and for attn_v and ffn_down in the first and last eighth of the layers\n' +
    'and every third between; q4_k elsewhere), rows that do not split into 256-value blocks fall back (q4_k → q5_0,\n' +
    'q5_k → q5_1, q6_k → q8_0), and the bytes are those of ggml\'s reference quantizers. 1-D tensors, norms and\n' +
    'metadata are copied unchanged (general.file_type set to the mix).\n' +
    'With --imatrix FILE (made by llama.cpp\'s `llama-imatrix -m model.gguf -f text.txt`), every tensor the file covers\n' +
    'is written by ggml\'s weighted writers with its importance values, byte for byte as llama-quantize --imatrix (and\n' +
    'Q4_0 gives q4_1 to the first eighth of ffn_down, as it does); tensors it does not cover are named on stderr, and\n' +
    'quantize.imatrix.file / .dataset / .entries_count / .chunks_count are recorded in the output.\n' +
    `For Hugging Face folders or llama2.c checkpoints use \`nomoat convert INPUT OUTPUT.gguf --outtype TYPE\` first.`,
  flags: FLAGS,
  positionals: [
    { name: 'input', help: 'the GGUF file to read' },
    { name: 'output', help: 'the GGUF file to write' },
    { name: 'type', help: `${MIX_NAMES} (any case; Q4_K and Q5_K mean the _M mixes, as in llama-quantize)` },
  ],
  examples: [
    'nomoat quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M',
    'nomoat quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M --imatrix imatrix.gguf',
    'nomoat quantize model-f32.gguf model-q8_0.gguf q8_0',
  ],
  run({ flags: f, positionals: [input, output, type] }) {
    // llama-quantize's aliases: Q4_K and Q5_K name the _M mixes
    const mix = ({ q4_k: 'q4_k_m', q5_k: 'q5_k_m' } as Record<string, string>)[type.toLowerCase()] ?? type.toLowerCase();
    if (!(QUANT_MIXES as readonly string[]).includes(mix)) throw new UsageError(`TYPE must be one of ${MIX_NAMES}; got ${JSON.stringify(type)}`);
    if (!existsSync(input)) throw new CliError(`input not found: ${input}`);
    if (detectFormat(input) !== 'gguf') throw new CliError(`${input} is not a GGUF file (${MODEL_KINDS} are read by \`nomoat convert INPUT OUTPUT.gguf --outtype f16\`)`);
    if (existsSync(output) && !f.force) throw new CliError(`${output} exists; pass --force to overwrite it`);
    let imatrix: Imatrix | undefined;
    if (f.imatrix !== undefined) {
      if (!existsSync(f.imatrix)) throw new CliError(`imatrix file not found: ${f.imatrix}`);
      try {
        imatrix = readImatrix(f.imatrix);
      } catch (e) {
        if (e instanceof FormatError) throw new CliError(`cannot read the importance matrix: ${e.message}`);
        throw e;
      }
      const chunks = imatrix.chunkCount > 0 ? ` computed on ${imatrix.chunkCount} chunks` : '';
      const on = imatrix.datasets.length > 0 ? ` of ${imatrix.datasets.join(', ')}` : '';
      process.stderr.write(`nomoat quantize: ${imatrix.entries.size} importance matrix entries from ${f.imatrix}${chunks}${on}\n`);
    }
    const t0 = performance.now();
    let bar: ProgressBar | null = null;
    const r = quantizeGguf(input, output, mix as QuantMix, {
      allowRequantize: f['allow-requantize'],
      pure: f.pure,
      onProgress: f.quiet ? undefined : (done, total) => (bar ??= new ProgressBar(`quantize ${type}`, total)).update(done, done === total),
      imatrix,
    });
    if (r.withoutImatrix.length > 0) {
      process.stderr.write(`nomoat quantize: warning: no importance matrix data for ${r.withoutImatrix.length} tensors, quantized without: ${r.withoutImatrix.join(', ')}\n`);
    }
    const types = [...r.types].map(([t, n]) => `${n} ${t}`).join(', ');
    process.stderr.write(
      `nomoat quantize: ${r.quantized} tensors requantized, ${r.kept.length} copied as they were (${types}); ` +
      `${mib(r.inBytes)} → ${mib(r.outBytes)} of tensor data in ${Math.round(performance.now() - t0)} ms\n`,
    );
  },
});
