// `nomoat data dedup`: exact (normalized) and near-duplicate (MinHash-LSH over word n-grams, confirmed by exact
// Jaccard) removal, streaming in three passes (signatures, candidate sets, output), signatures on worker threads.

import { DEFAULT_LSH_WEIGHTS, planDedup, type DedupConfig } from '../data/near-dedup.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { DATA_INPUT_FLAGS, requireOutput, scanRecords, skippedNote, summary, withSinks, writeRecord } from './data-common.js';

function parseWeights(v: string | undefined): readonly [number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map(Number);
  if (parts.length !== 2 || !parts.every((x) => Number.isFinite(x) && x >= 0) || parts[0] + parts[1] === 0) throw new UsageError(`--lsh-weights expects FP,FN (two non-negative numbers), got ${JSON.stringify(v)}`);
  return [parts[0], parts[1]];
}

export const command = defineCommand({
  name: 'data dedup',
  summary: 'remove exact and near-duplicate records (MinHash-LSH, confirmed by exact Jaccard), with a cluster report',
  usage: 'FILE -o OUT [--threshold 0.8] [--ngram 5] [--num-perm 128] [--report clusters.jsonl] [options]',
  description: [
    'Records are compared by their role-tagged text (every turn), normalized (NFKC, lower case, whitespace runs).',
    'Near-duplicates: word n-gram sets; MinHash signatures; LSH bands and rows derived from --threshold the way',
    `datasketch does (minimising weighted false positive and negative probabilities; weights ${DEFAULT_LSH_WEIGHTS.join(',')} favour`,
    'recall, since every candidate pair is then confirmed by its exact Jaccard ≥ threshold). Clusters are joined with',
    'union-find; the first record of each cluster is kept. The same --seed gives the same output.',
  ].join('\n'),
  flags: {
    output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'deduplicated output (.jsonl or .parquet), records unchanged' },
    report: { kind: 'string', metavar: 'FILE', help: 'JSONL of clusters: kept and removed records (file:line) with their Jaccard' },
    threshold: { kind: 'number', metavar: 'J', help: 'Jaccard similarity of word n-gram sets at or above which records are duplicates', default: 0.8 },
    ngram: { kind: 'int', metavar: 'N', help: 'words per shingle', default: 5 },
    'num-perm': { kind: 'int', metavar: 'N', help: 'MinHash functions', default: 128 },
    bands: { kind: 'int', metavar: 'B', help: 'LSH bands (with --rows; default derived from --threshold)' },
    rows: { kind: 'int', metavar: 'R', help: 'rows per LSH band (with --bands)' },
    'lsh-weights': { kind: 'string', metavar: 'FP,FN', help: 'weights of false positives and negatives when deriving bands/rows (0.5,0.5 = datasketch\'s default)', default: DEFAULT_LSH_WEIGHTS.join(',') },
    'exact-only': { kind: 'boolean', help: 'remove exact (normalized) duplicates only' },
    seed: { kind: 'int', short: 's', metavar: 'N', help: 'MinHash seed', default: 1 },
    workers: { kind: 'int', short: 't', metavar: 'N', help: 'worker threads for signatures (default: all cores; 0 = none)' },
    ...DATA_INPUT_FLAGS,
  },
  positionals: [{ name: 'file', help: 'JSONL or Parquet dataset' }],
  examples: [
    'nomoat data dedup train.jsonl -o dedup.jsonl',
    'nomoat data dedup train.jsonl -o dedup.jsonl --threshold 0.7 --report clusters.jsonl',
    'nomoat data dedup train.parquet -o dedup.parquet --exact-only',
  ],
  async run({ flags, positionals }) {
    const out = requireOutput(flags.output);
    if ((flags.bands === undefined) !== (flags.rows === undefined)) throw new UsageError('give --bands and --rows together (or neither: derived from --threshold)');
    const cfg: DedupConfig = {
      threshold: flags.threshold ?? 0.8,
      ngram: flags.ngram ?? 5,
      numPerm: flags['num-perm'] ?? 128,
      bands: flags.bands,
      rows: flags.rows,
      weights: parseWeights(flags['lsh-weights']),
      seed: flags.seed ?? 1,
      workers: flags.workers,
      exactOnly: flags['exact-only'],
    };
    if (flags.workers !== undefined && flags.workers < 0) throw new UsageError(`--workers must be ≥ 0, got ${flags.workers}`);
    let pass = 0;
    let scan = { records: 0, skipped: 0 };
    const plan = await planDedup(async (visit) => {
      pass++;
      // the first pass reports bad records; later passes see the same file and skip them silently
      scan = await scanRecords(positionals, pass === 1 ? flags : { ...flags, quiet: true, 'skip-bad-lines': true }, pass === 1 ? 'dedup: signatures' : `dedup: pass ${pass}`, (r, i) => visit(r.text, i));
    }, cfg).catch((e: unknown) => {
      if (e instanceof CliError || e instanceof UsageError) throw e;
      throw new CliError((e as Error).message);
    });
    // file:line of every cluster member, for the report only (nothing held per record without it)
    const members = new Map<number, string>();
    if (flags.report !== undefined) {
      for (const c of plan.clusters) {
        members.set(c.kept, '');
        for (const r of c.removed) members.set(r.index, '');
      }
    }
    const sinks = [{ path: out, format: 'same' as const }, ...(flags.report !== undefined ? [{ path: flags.report, format: 'same' as const }] : [])];
    await withSinks(sinks, async ([sink, report]) => {
      await scanRecords(positionals, { ...flags, 'skip-bad-lines': true, quiet: flags.quiet }, 'dedup: write', (r, i) => {
        if (members.has(i)) members.set(i, r.where);
        if (plan.removed[i] === 0) writeRecord(sink, r);
      });
      if (report === undefined) return;
      plan.clusters.forEach((c, k) => report.writeObject({
        cluster: k,
        kind: c.kind,
        size: c.removed.length + 1,
        kept: members.get(c.kept),
        removed: c.removed.map((r) => ({ id: members.get(r.index), jaccard: r.jaccard })),
      }));
    });
    const nRemoved = plan.clusters.reduce((a, c) => a + c.removed.length, 0);
    const exact = plan.clusters.filter((c) => c.kind === 'exact').reduce((a, c) => a + c.removed.length, 0);
    const lsh = cfg.exactOnly ? 'exact only' : `LSH ${plan.bands} bands × ${plan.rows} rows, ${plan.candidatePairs} candidate pairs, ${plan.confirmedPairs} confirmed`;
    summary(flags, `kept ${plan.total - nRemoved} of ${plan.total} records → ${out}; removed ${nRemoved} (${exact} in exact clusters) in ${plan.clusters.length} clusters; ${lsh}${skippedNote(scan)}`);
  },
});
