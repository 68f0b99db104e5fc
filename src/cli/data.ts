// `nomoat data`: the group entry. Its subcommands are registered one per line in commands.ts; this prints them.

import { suggest, UsageError } from './args.js';
import { defineCommand } from './command.js';
import { COMMANDS } from './commands.js';

const DESCRIPTION = [
  'Subcommands (each has --help):',
  ...COMMANDS.filter((c) => c.name.startsWith('data ')).map((c) => `  ${c.name.padEnd(22)}${c.summary}`),
  '',
  'Inputs: JSONL (Alpaca, ShareGPT, OpenAI messages or plain {"text"} records, one format per file) or Parquet.',
  'Outputs are written atomically (a temporary file renamed into place), so a failed run leaves nothing behind.',
].join('\n');

export const command = defineCommand({
  name: 'data',
  summary: 'inspect, validate, convert, split, mix, deduplicate, filter, decontaminate and synthesize instruction data',
  usage: '<subcommand> [options]',
  description: DESCRIPTION,
  flags: {},
  positionals: [{ name: 'subcommand', help: 'one of the subcommands above', optional: true, variadic: true }],
  examples: ['nomoat data stats train.jsonl', 'nomoat data dedup train.jsonl -o dedup.jsonl --report clusters.jsonl', 'nomoat data filter dedup.jsonl -o clean.jsonl --explain removed.jsonl'],
  run({ positionals }) {
    const subs = COMMANDS.filter((c) => c.name.startsWith('data ')).map((c) => c.name.slice(5));
    if (positionals.length > 0) {
      const hint = suggest(positionals[0], subs);
      throw new UsageError(`unknown subcommand "${positionals[0]}"${hint !== null ? ` (did you mean "data ${hint}"?)` : ''}`);
    }
    process.stdout.write(`Usage: nomoat data <subcommand> [options]\n\n${DESCRIPTION}\n`);
    return 2;
  },
});
