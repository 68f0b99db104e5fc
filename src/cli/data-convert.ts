// `nomoat data convert`: rewrite a dataset in another record format (alpaca|sharegpt|messages|text) and/or
// container (JSONL ↔ Parquet), streaming, written atomically.

import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { DATA_INPUT_FLAGS, outputFormat, requireOutput, scanRecords, skippedNote, summary, withSinks, writeRecord } from './data-common.js';

export const command = defineCommand({
  name: 'data convert',
  summary: 'convert between Alpaca, ShareGPT, OpenAI messages, plain text, JSONL and Parquet',
  usage: 'FILE... -o OUT --to alpaca|sharegpt|messages|text|parquet',
  description: '--to parquet keeps each record\'s format and writes Parquet (OUT must end in .parquet); any other --to with OUT.parquet writes that format as Parquet. Alpaca holds single-turn chats only; a multi-turn chat stops the conversion (or is skipped and counted with --skip-bad-lines).',
  flags: {
    output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'output file (.jsonl or .parquet)' },
    to: { kind: 'string', metavar: 'FMT', help: 'alpaca|sharegpt|messages|text|parquet' },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet datasets (concatenated in order)', variadic: true }],
  examples: [
    'nomoat data convert alpaca.jsonl -o chats.jsonl --to messages',
    'nomoat data convert train-00000.parquet -o train.jsonl --to sharegpt',
    'nomoat data convert train.jsonl -o train.parquet --to parquet',
  ],
  async run({ flags, positionals }) {
    const out = requireOutput(flags.output);
    if (flags.to === undefined) throw new UsageError('missing --to alpaca|sharegpt|messages|text|parquet');
    const toParquet = flags.to === 'parquet';
    if (toParquet && !/\.parquet$/iu.test(out)) throw new UsageError(`--to parquet writes Parquet: name the output *.parquet, got ${out}`);
    const fmt = toParquet ? 'same' : outputFormat(flags.to)!;
    let failed = 0;
    const scan = await withSinks([{ path: out, format: fmt }], ([sink]) =>
      scanRecords(positionals, flags, 'convert', (r) => {
        if (!flags['skip-bad-lines']) return writeRecord(sink, r);
        try {
          sink.write(r);
        } catch (e) {
          if (failed++ < 5 && !flags.quiet) process.stderr.write(`skipped ${r.where}: (record): ${(e as Error).message}\n`);
        }
      }),
    );
    const skipped = { ...scan, skipped: scan.skipped + failed };
    summary(flags, `wrote ${scan.records - failed} records to ${out}${skippedNote(skipped)}`);
  },
});
