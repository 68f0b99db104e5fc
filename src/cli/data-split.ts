// `nomoat data split`: a seeded train/eval split in two streaming passes (count, then write), so the records never
// sit in memory; the eval indices come from the same trainEvalSplit the trainers use, so the same seed gives the
// same split here and in `nomoat finetune`.

import { trainEvalSplit } from '../data/split.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { DATA_INPUT_FLAGS, scanRecords, skippedNote, summary, withSinks, writeRecord } from './data-common.js';

export const command = defineCommand({
  name: 'data split',
  summary: 'split a dataset into train and eval files (seeded; --eval-fraction or --eval-size)',
  usage: 'FILE --train TRAIN --eval EVAL [--eval-fraction F | --eval-size N] [--seed N]',
  description: 'Both outputs keep the input order and each record\'s format; the container follows each output\'s extension.',
  flags: {
    train: { kind: 'string', metavar: 'FILE', help: 'train output (.jsonl or .parquet)' },
    eval: { kind: 'string', metavar: 'FILE', help: 'eval output (.jsonl or .parquet)' },
    'eval-fraction': { kind: 'number', metavar: 'F', help: 'share of records for eval, in [0, 1]', default: 0.1 },
    'eval-size': { kind: 'int', metavar: 'N', help: 'exactly N eval records (instead of --eval-fraction)' },
    seed: { kind: 'int', short: 's', metavar: 'N', help: 'shuffle seed', default: 0 },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet dataset' }],
  examples: ['nomoat data split all.jsonl --train train.jsonl --eval eval.jsonl --eval-size 200 --seed 1', 'nomoat data split all.parquet --train train.parquet --eval eval.parquet --eval-fraction 0.05'],
  async run({ flags, positionals }) {
    if (flags.train === undefined || flags.eval === undefined) throw new UsageError('missing --train FILE and --eval FILE');
    if (flags['eval-size'] !== undefined && flags['eval-fraction'] !== undefined) throw new UsageError('give --eval-size or --eval-fraction, not both');
    const frac = flags['eval-fraction'] ?? 0.1;
    if (!(frac >= 0 && frac <= 1)) throw new UsageError(`--eval-fraction must be in [0, 1], got ${frac}`);
    const quiet = { ...flags, quiet: true, 'skip-bad-lines': flags['skip-bad-lines'] };
    const counted = await scanRecords(positionals, quiet, 'count', () => undefined);
    const n = counted.records;
    if (flags['eval-size'] !== undefined && (flags['eval-size'] < 0 || flags['eval-size'] > n)) throw new CliError(`--eval-size ${flags['eval-size']}: the file has ${n} records`);
    const { evalIndices } = trainEvalSplit(Array.from({ length: n }, (_, i) => i), { evalFraction: frac, evalCount: flags['eval-size'], seed: flags.seed ?? 0 });
    const isEval = new Uint8Array(n);
    for (const i of evalIndices) isEval[i] = 1;
    const scan = await withSinks([{ path: flags.train, format: 'same' }, { path: flags.eval, format: 'same' }], ([train, ev]) =>
      scanRecords(positionals, flags, 'split', (r, i) => writeRecord(isEval[i] ? ev : train, r)),
    );
    summary(flags, `${n - evalIndices.length} train records → ${flags.train}, ${evalIndices.length} eval records → ${flags.eval}${skippedNote(scan)}`);
  },
});
