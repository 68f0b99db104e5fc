// `nomoat data decontaminate`: drop training records that overlap evaluation sets (GPT-3 / lm-evaluation-harness
// style word 13-grams; short eval items matched whole against turns), with a report of which record, which eval
// item and the shared n-gram.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ContaminationIndex, stringLeaves } from '../data/decontam.js';
import { readLines } from '../data/lines.js';
import { BENCH_SKILLS, skillSplit } from '../data/skills.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { DATA_INPUT_FLAGS, requireOutput, scanRecords, skippedNote, summary, withSinks, writeRecord } from './data-common.js';

/** The demo's held-out skill prompts (what `nomoat demo` and the built-in "skills" eval task measure). */
const DEMO_TEST = fileURLToPath(new URL('../../../assets/data/demo-test.jsonl', import.meta.url));

/** Indexes an eval JSONL: every string field of every record (prompt, question, answer, turns…). */
async function addJsonl(idx: ContaminationIndex, file: string, only?: (field: string) => boolean): Promise<void> {
  if (!existsSync(file)) throw new CliError(`--against ${file}: no such file (a JSONL of eval items, or skills / skills-hard)`);
  for await (const l of readLines(file)) {
    const where = `${file}:${l.line}`;
    if ('error' in l) throw new CliError(`${where}: (line): ${l.error}`);
    let v: unknown;
    try {
      v = JSON.parse(l.text);
    } catch (e) {
      throw new CliError(`${where}: (line): invalid JSON (${(e as Error).message})`);
    }
    for (const { field, text } of stringLeaves(v)) if (only === undefined || only(field)) idx.add(text, { where, field });
  }
}

export const command = defineCommand({
  name: 'data decontaminate',
  summary: 'drop training records that share a 13-gram with eval sets (GPT-3 / lm-eval-harness style), with a report',
  usage: 'FILE -o OUT --against EVAL... [--report FILE] [--ngram 13]',
  description: [
    'Text is lower-cased, punctuation removed and split into words; a training record sharing any word n-gram with an',
    'eval item is dropped. Eval items shorter than --ngram words are matched whole, against each turn (so a copied',
    'short prompt is caught without flagging every text that contains its words). --against takes any JSONL (every',
    'string field is indexed: ../shared/data/eval/gsm8k-test.jsonl, mt_bench-question.jsonl, …), "skills" (the demo\'s',
    'held-out prompts, assets/data/demo-test.jsonl) or "skills-hard" (the benchmark skills\' test prompts).',
  ].join('\n'),
  flags: {
    output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'clean records (.jsonl or .parquet), unchanged' },
    against: { kind: 'list', metavar: 'EVAL', help: 'an eval JSONL, or skills / skills-hard' },
    report: { kind: 'string', metavar: 'FILE', help: 'JSONL of dropped records: where, eval item, field, shared n-gram' },
    ngram: { kind: 'int', metavar: 'N', help: 'words per n-gram', default: 13 },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet training data' }],
  examples: [
    'nomoat data decontaminate train.jsonl -o clean.jsonl --against ../shared/data/eval/gsm8k-test.jsonl --report hits.jsonl',
    'nomoat data decontaminate train.jsonl -o clean.jsonl --against skills --against ../shared/data/eval/mt_bench-question.jsonl',
  ],
  async run({ flags, positionals }) {
    const out = requireOutput(flags.output);
    if (flags.against.length === 0) throw new UsageError('missing --against EVAL (an eval JSONL, skills or skills-hard)');
    const idx = new ContaminationIndex(flags.ngram ?? 13);
    for (const a of flags.against) {
      if (a === 'skills') await addJsonl(idx, DEMO_TEST, (field) => /^messages\[\d+\]\.content$/u.test(field));
      else if (a === 'skills-hard') {
        BENCH_SKILLS.forEach((s, i) => skillSplit(s, { train: 0, test: 40, seed: 1000 + i }).test.forEach((e, k) => idx.add(e.prompt, { where: `skills-hard ${s} #${k}`, field: 'prompt' })));
      } else await addJsonl(idx, a);
    }
    if (idx.items === 0) throw new CliError(`--against ${flags.against.join(' ')}: no eval text to compare with`);
    let dropped = 0;
    const sinks = [{ path: out, format: 'same' as const }, ...(flags.report !== undefined ? [{ path: flags.report, format: 'same' as const }] : [])];
    const scan = await withSinks(sinks, ([sink, report]) => scanRecords(positionals, flags, 'decontaminate', (r) => {
      const hit = idx.check(r.conversation === null ? [r.text] : r.conversation.messages.map((m) => m.content));
      if (hit === null) return writeRecord(sink, r);
      dropped++;
      report?.writeObject({ where: r.where, eval: hit.ref.where, field: hit.ref.field, kind: hit.kind, ngram: hit.ngram });
    }));
    summary(flags, `kept ${scan.records - dropped} of ${scan.records} records → ${out}; dropped ${dropped} overlapping ${idx.items} eval items${skippedNote(scan)}`);
  },
});
