// `nomoat data stats`: counts, turns, characters, token lengths, exact duplicates and a length histogram (text in
// the terminal, SVG with --svg), streamed so that a multi-GB file needs no more memory than a small one.

import { existsSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../formats/writer.js';
import { StatsAccumulator, svgHistogram, textHistogram, type DatasetStats } from '../data/stats.js';
import { HfTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, requireTokenizer } from './common.js';
import { DATA_INPUT_FLAGS, scanRecords, skippedNote } from './data-common.js';

/** A tokenizer from a tokenizer.json (or a folder holding one) or from any model nomoat loads. */
function loadTokenizer(path: string): Tokenizer {
  if (!existsSync(path)) throw new CliError(`tokenizer not found: ${path} (a tokenizer.json, a folder with one, or a model)`);
  if (path.endsWith('.json')) {
    const dir = path.slice(0, Math.max(0, path.lastIndexOf('/'))) || '.';
    if (!path.endsWith('tokenizer.json')) throw new CliError(`${path}: expected a file named tokenizer.json`);
    return HfTokenizer.fromDirectory(dir);
  }
  if (statSync(path).isDirectory() && existsSync(`${path}/tokenizer.json`) && !existsSync(`${path}/config.json`)) return HfTokenizer.fromDirectory(path);
  const m = loadForCli(path);
  const t = requireTokenizer(m);
  return t;
}

function report(s: DatasetStats, files: readonly string[]): string {
  const r = (x: { min: number; mean: number; max: number; total: number }): string => `min ${x.min}  mean ${x.mean}  max ${x.max}  total ${x.total}`;
  const formats = Object.entries(s.formats).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `${files.join(', ')}`,
    `  records            ${s.records} (${formats})`,
    `  turns              ${r(s.turns)}`,
    `  characters         ${r(s.characters)}`,
    ...(s.tokens !== undefined ? [`  tokens             ${r(s.tokens)}`] : []),
    `  exact duplicates   ${s.exactDuplicates}${s.records > 0 ? ` (${((100 * s.exactDuplicates) / s.records).toFixed(1)} %)` : ''}`,
    '',
    `length histogram (${s.lengthUnit} per record):`,
    textHistogram(s.histogram),
  ].join('\n');
}

export const command = defineCommand({
  name: 'data stats',
  summary: 'count records, turns, characters and tokens; exact duplicates; a length histogram (text and SVG)',
  usage: 'FILE... [--tokenizer tokenizer.json|MODEL] [--svg hist.svg] [--json]',
  description: 'Turns are assistant replies per record. Lengths count every message content; with --tokenizer they are token counts.',
  flags: {
    tokenizer: { kind: 'string', metavar: 'PATH', help: 'count tokens with a tokenizer.json (or a folder with one) or a model\'s tokenizer' },
    svg: { kind: 'string', metavar: 'FILE', help: 'write the length histogram as an SVG picture' },
    json: { kind: 'boolean', help: 'print the statistics as JSON on stdout' },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet datasets', variadic: true }],
  examples: ['nomoat data stats train.jsonl', 'nomoat data stats train.parquet --tokenizer ./model --svg lengths.svg', 'nomoat data stats a.jsonl b.jsonl --json'],
  async run({ flags, positionals }) {
    const tok = flags.tokenizer !== undefined ? loadTokenizer(flags.tokenizer) : undefined;
    const acc = new StatsAccumulator(tok !== undefined ? { countTokens: (t) => tok.encode(t).length } : {});
    const scan = await scanRecords(positionals, flags, 'stats', (r) => acc.add(r));
    const s = acc.result();
    if (flags.svg !== undefined) {
      const svg = svgHistogram(s.histogram, `${positionals.join(', ')}: ${s.records} records`, s.lengthUnit);
      writeFileAtomic(flags.svg, (sink) => sink(Buffer.from(svg, 'utf8')));
    }
    process.stdout.write(flags.json ? JSON.stringify({ ...s, skipped: scan.skipped }, null, 2) + '\n' : report(s, positionals));
    if (scan.skipped > 0 && !flags.quiet) process.stderr.write(`nomoat data stats: ${skippedNote(scan).slice(2)}\n`);
  },
});
