// `nomoat data validate`: every problem of every record as `file:line: field: what`; exit status 1 if any.

import { formatProblem } from '../data/records.js';
import { fileSize, readRecords } from '../data/stream.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { DATA_INPUT_FLAGS, inputFormat } from './data-common.js';

const { format, quiet } = DATA_INPUT_FLAGS;

export const command = defineCommand({
  name: 'data validate',
  summary: 'check every record; print each problem as file:line: field: what (exit 1 if any)',
  usage: 'FILE... [--format FMT] [--max-problems N]',
  description: 'Checks: valid UTF-8 and JSON, an object per line, one format per file, known roles, non-empty contents, turns that alternate user/assistant and end with an assistant turn. For Parquet the line is the row number.',
  flags: {
    format,
    'max-problems': { kind: 'int', metavar: 'N', help: 'stop printing after N problems (all are still counted); 0 = no limit', default: 0 },
    quiet,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet datasets', variadic: true }],
  examples: ['nomoat data validate train.jsonl', 'nomoat data validate a.jsonl b.parquet --max-problems 20'],
  async run({ flags, positionals }) {
    const fmt = inputFormat({ format: flags.format, quiet: flags.quiet, 'skip-bad-lines': true });
    const max = flags['max-problems'] ?? 0;
    let good = 0, bad = 0, printed = 0;
    for (const file of positionals) {
      try {
        fileSize(file);
        for await (const item of readRecords(file, { format: fmt })) {
          if (item.ok) good++;
          else {
            bad++;
            for (const p of item.problems) {
              if (max === 0 || printed < max) process.stdout.write(formatProblem(p) + '\n');
              printed++;
            }
          }
        }
      } catch (e) {
        // a file-level failure (missing, truncated Parquet) is one more problem, and the other files are still checked
        process.stdout.write(`${(e as Error).message}\n`);
        bad++;
      }
    }
    if (max > 0 && printed > max) process.stdout.write(`… and ${printed - max} more problems\n`);
    if (!flags.quiet) process.stderr.write(`${good} valid, ${bad} bad record${bad === 1 ? '' : 's'}\n`);
    if (good === 0 && bad === 0) throw new CliError(`${positionals.join(', ')}: no records`);
    return bad > 0 ? 1 : 0;
  },
});
