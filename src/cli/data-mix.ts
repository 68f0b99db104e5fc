// `nomoat data mix`: a seeded mixture of datasets in given shares. Two streaming passes: count each file, then
// write the chosen records (a seeded sample without replacement; with --size larger than a file allows, that file
// is passed over again in a fresh order, as mixReplay does). Files are written one after another: trainers shuffle.

import { Rng } from '../engine/rng.js';
import type { OutputFormat } from '../data/records.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { DATA_INPUT_FLAGS, outputFormat, requireOutput, scanRecords, summary, withSinks, writeRecord } from './data-common.js';

/** "FILE:SHARE" → [file, share]; the share is after the last colon (paths may hold colons). */
export function parseShare(arg: string): [string, number] {
  const at = arg.lastIndexOf(':');
  const share = at > 0 ? Number(arg.slice(at + 1)) : NaN;
  if (at <= 0 || arg.slice(at + 1).trim() === '' || !Number.isFinite(share) || share <= 0) throw new UsageError(`expected FILE:SHARE with a positive share, got ${JSON.stringify(arg)}`);
  return [arg.slice(0, at), share];
}

/** How many times each of n items is drawn for k picks: seeded passes over fresh permutations. */
export function pickCounts(n: number, k: number, rng: Rng): Uint16Array {
  const counts = new Uint16Array(n);
  let left = k;
  while (left > 0) {
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let i = 0; i < Math.min(n, left); i++) counts[order[i]]++;
    left -= Math.min(n, left);
  }
  return counts;
}

export const command = defineCommand({
  name: 'data mix',
  summary: 'mix datasets in given shares (seeded), e.g. 70 % task data and 30 % general chat',
  usage: 'FILE:SHARE... -o OUT [--size N] [--seed N] [--to FMT]',
  description: 'Shares are weights (normalized to sum to 1). Without --size the mixture is as large as it can be without repeating a record; with --size a file that is too small is repeated. Records are written in the first file\'s format unless --to says otherwise.',
  flags: {
    output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'output file (.jsonl or .parquet)' },
    size: { kind: 'int', metavar: 'N', help: 'records in the mixture' },
    seed: { kind: 'int', short: 's', metavar: 'N', help: 'sampling seed', default: 0 },
    to: { kind: 'string', metavar: 'FMT', help: 'output record format: alpaca|sharegpt|messages|text (default: the first file\'s)' },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file:share', help: 'a dataset and its share', variadic: true }],
  examples: ['nomoat data mix task.jsonl:0.7 general.jsonl:0.3 -o mix.jsonl --seed 1', 'nomoat data mix a.parquet:1 b.jsonl:1 -o mix.jsonl --size 10000 --to messages'],
  async run({ flags, positionals }) {
    const out = requireOutput(flags.output);
    const parts = positionals.map(parseShare);
    const total = parts.reduce((a, [, s]) => a + s, 0);
    const counts: number[] = [];
    let first: OutputFormat | undefined = outputFormat(flags.to);
    for (const [file] of parts) {
      const r = await scanRecords([file], { ...flags, quiet: true }, 'count', (rec, i) => {
        if (i === 0 && first === undefined) first = rec.format === 'openai' ? 'messages' : rec.format;
      });
      if (r.records === 0) throw new CliError(`${file}: no valid records`);
      counts.push(r.records);
    }
    const size = flags.size ?? Math.floor(Math.min(...parts.map(([, s], i) => counts[i] / (s / total))));
    if (!(size > 0)) throw new UsageError(`--size must be positive, got ${size}`);
    // largest remainder: the counts sum to exactly --size
    const exact = parts.map(([, s]) => (size * s) / total);
    const want = exact.map(Math.floor);
    const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (let r = size - want.reduce((a, b) => a + b, 0), k = 0; r > 0; r--, k++) want[order[k][1]]++;
    const rng = new Rng(flags.seed ?? 0);
    const picks = parts.map((_, i) => pickCounts(counts[i], want[i], rng));
    await withSinks([{ path: out, format: first ?? 'messages' }], async ([sink]) => {
      for (let f = 0; f < parts.length; f++) {
        await scanRecords([parts[f][0]], flags, 'mix', (r, i) => {
          for (let c = 0; c < picks[f][i]; c++) writeRecord(sink, r);
        });
      }
    });
    summary(flags, `wrote ${want.reduce((a, b) => a + b, 0)} records to ${out}: ${parts.map(([file], i) => `${want[i]} from ${file}`).join(', ')}`);
  },
});
