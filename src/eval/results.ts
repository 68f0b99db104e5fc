// Results as lm-eval prints and writes them: the Markdown table of make_table (pytablewriter's layout: headers
// centred, number columns right-aligned), results.json, and samples_<task>.jsonl for --log-samples. Files are
// written atomically (temp + rename), so a reader never sees half a results file.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../formats/writer.js';
import type { EvalResults } from './run.js';

/** Python's str.center (the odd space goes right unless the width is odd and the padding too). */
function center(s: string, width: number): string {
  const pad = width - [...s].length;
  if (pad <= 0) return s;
  const left = Math.floor(pad / 2) + (pad & width & 1);
  return ' '.repeat(left) + s + ' '.repeat(pad - left);
}

const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : String(v));

/** lm-eval's make_table: one row per task, filter and metric (stderr beside its metric), sorted by metric key. */
export function makeTable(r: Pick<EvalResults, 'results' | 'versions' | 'n-shot' | 'higher_is_better'>): string {
  const headers = ['Tasks', 'Version', 'Filter', 'n-shot', 'Metric', '', 'Value', '', 'Stderr'];
  const rightAligned = new Set([1, 3, 6, 8]); // numbers
  const rows: string[][] = [];
  for (const [task, dic] of Object.entries(r.results)) {
    let name = typeof dic.alias === 'string' ? dic.alias : task;
    const v = r.versions[task];
    let version = v === undefined || v === null ? 'N/A' : fmt(v);
    const n = String(r['n-shot'][task] ?? ' ');
    const keys = Object.keys(dic).filter((k) => k !== 'alias').sort();
    for (const mf of keys) {
      const [m, f = ''] = mf.split(',', 2);
      if (m.endsWith('_stderr')) continue;
      const hib = r.higher_is_better[task]?.[m] === false ? '↓' : '↑';
      const value = typeof dic[mf] === 'number' ? (dic[mf]).toFixed(4) : String(dic[mf]);
      const seKey = `${m}_stderr,${f}`;
      if (seKey in dic) {
        const se = dic[seKey];
        rows.push([name, version, f, n, m, hib, value, '±', se === 'N/A' || typeof se !== 'number' ? '   N/A' : se.toFixed(4)]);
      } else {
        rows.push([name, version, f, n, m, hib, value, '', '']);
      }
      name = '';
      version = '';
    }
  }
  const widths = headers.map((h, i) => Math.max(3, [...h].length, ...rows.map((row) => [...row[i]].length)));
  const cell = (s: string, i: number): string => (rightAligned.has(i) ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const lines = [
    `|${headers.map((h, i) => center(h, widths[i])).join('|')}|`,
    `|${widths.map((w, i) => (rightAligned.has(i) ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join('|')}|`,
    ...rows.map((row) => `|${row.map(cell).join('|')}|`),
  ];
  return lines.join('\n') + '\n';
}

const enc = new TextEncoder();

/** Writes text to path atomically. */
export function writeTextAtomic(path: string, text: string): void {
  writeFileAtomic(path, (sink) => sink(enc.encode(text)));
}

/** A task name as a file name (lm-eval's sanitize_task_name: every non-word character becomes _). */
export const sanitizeTaskName = (name: string): string => name.replace(/\W/g, '_');

/**
 * Writes DIR/results.json (everything but the samples) and, when the results hold samples, DIR/samples_<task>.jsonl;
 * returns the paths written.
 */
export function writeResults(dir: string, r: EvalResults): string[] {
  mkdirSync(dir, { recursive: true });
  const { samples, ...rest } = r;
  const paths: string[] = [];
  const resultsPath = join(dir, 'results.json');
  writeTextAtomic(resultsPath, JSON.stringify(rest, null, 2) + '\n');
  paths.push(resultsPath);
  for (const [task, lines] of Object.entries(samples ?? {})) {
    const p = join(dir, `samples_${sanitizeTaskName(task)}.jsonl`);
    writeTextAtomic(p, lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length > 0 ? '\n' : ''));
    paths.push(p);
  }
  return paths;
}
