// Pieces shared by the `nomoat data` commands: the input flags, a scan over one or more files with a progress bar
// and the bad-record policy (stop at the first, naming file:line: field: what; or --skip-bad-lines: count, show a
// few, go on), and atomic outputs that are removed when the command fails.

import { ByteProgress } from '../data/progress.js';
import { formatProblem, OUTPUT_FORMATS, RECORD_FORMATS, type DataRecord, type OutputFormat, type RecordFormat, type RecordProblem } from '../data/records.js';
import { openSink, type RecordSink } from '../data/sink.js';
import { fileSize, readRecords } from '../data/stream.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { CliError } from './common.js';

export const DATA_INPUT_FLAGS = {
  format: { kind: 'string', metavar: 'FMT', help: `input record format: auto|${RECORD_FORMATS.join('|')}`, default: 'auto' },
  'skip-bad-lines': { kind: 'boolean', help: 'skip bad records (counted and the first few shown) instead of stopping at the first' },
  quiet: { kind: 'boolean', short: 'q', help: 'no progress bar and no summary on stderr' },
} as const satisfies FlagSpecs;

export type InputFlags = FlagValues<typeof DATA_INPUT_FLAGS>;

/** The --format value, checked. */
export function inputFormat(f: InputFlags): RecordFormat | 'auto' {
  const v = f.format ?? 'auto';
  if (v !== 'auto' && !(RECORD_FORMATS as readonly string[]).includes(v)) throw new UsageError(`--format must be auto|${RECORD_FORMATS.join('|')}, got ${JSON.stringify(v)}`);
  return v as RecordFormat | 'auto';
}

export function outputFormat(v: string | undefined, flag = '--to'): OutputFormat | undefined {
  if (v === undefined) return undefined;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(v)) throw new UsageError(`${flag} must be ${OUTPUT_FORMATS.join('|')}, got ${JSON.stringify(v)}`);
  return v as OutputFormat;
}

export interface ScanResult {
  records: number;
  skipped: number;
}

/** How many skipped records are printed before "… and N more". */
const SHOWN = 5;

/**
 * Calls onRecord for every good record of the files, in order. A bad record stops the scan with a CliError naming it
 * (file:line: field: what), unless --skip-bad-lines, where it is counted and the first few are printed on stderr.
 */
export async function scanRecords(files: readonly string[], f: InputFlags, label: string, onRecord: (r: DataRecord, index: number) => void | Promise<void>): Promise<ScanResult> {
  const format = inputFormat(f);
  const sizes = files.map((file) => {
    try {
      return fileSize(file);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  });
  const progress = new ByteProgress(label, sizes.reduce((a, b) => a + b, 0), { mode: f.quiet ? 'none' : 'auto' });
  let last = 0, records = 0, skipped = 0;
  const skip = (problems: RecordProblem[]): void => {
    if (!f['skip-bad-lines']) {
      progress.end();
      const more = problems.length > 1 ? `\n${problems.slice(1).map((p) => `  ${formatProblem(p)}`).join('\n')}` : '';
      throw new CliError(`${formatProblem(problems[0])}${more}\n  (fix the record, or pass --skip-bad-lines to skip and count bad records)`);
    }
    if (skipped < SHOWN && !f.quiet) {
      progress.end();
      process.stderr.write(`skipped ${problems.map(formatProblem).join('; ')}\n`);
    }
    skipped++;
  };
  try {
    for (let i = 0; i < files.length; i++) {
      last = 0;
      try {
        for await (const item of readRecords(files[i], { format, onBytes: (n) => (progress.add(n - last), (last = n)) })) {
          if (item.ok) await onRecord(item.record, records++);
          else skip(item.problems);
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError((e as Error).message);
      }
    }
  } finally {
    progress.end();
  }
  if (skipped > SHOWN && !f.quiet) process.stderr.write(`… and ${skipped - SHOWN} more\n`);
  if (records === 0 && skipped === 0) throw new CliError(`${files.join(', ')}: no records`);
  return { records, skipped };
}

/** Runs body with sinks that are committed when it succeeds and removed when it throws (or on Ctrl-C). */
export async function withSinks<T>(specs: readonly { path: string; format: OutputFormat | 'same' }[], body: (sinks: RecordSink[]) => Promise<T>): Promise<T> {
  const sinks: RecordSink[] = [];
  try {
    for (const s of specs) sinks.push(openSink(s.path, s.format));
    const out = await body(sinks);
    for (const s of sinks) await s.commit();
    return out;
  } catch (e) {
    for (const s of sinks) s.abort();
    throw e;
  }
}

/** Writes a record, turning a conversion failure into a CliError that names the record. */
export function writeRecord(sink: RecordSink, r: DataRecord): void {
  try {
    sink.write(r);
  } catch (e) {
    throw new CliError(`${r.where}: (record): ${(e as Error).message}`);
  }
}

/** The one-line summary on stderr. */
export function summary(f: InputFlags, s: string): void {
  if (!f.quiet) process.stderr.write(`${s}\n`);
}

/** "… (skipped N bad records)" when any were skipped. */
export function skippedNote(r: ScanResult): string {
  return r.skipped > 0 ? `; skipped ${r.skipped} bad record${r.skipped === 1 ? '' : 's'}` : '';
}

/** The -o path, required. */
export function requireOutput(o: string | undefined): string {
  if (o === undefined) throw new UsageError('missing -o OUT (the output file: .jsonl or .parquet)');
  return o;
}
