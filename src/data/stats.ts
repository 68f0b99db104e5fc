// Dataset statistics accumulated one record at a time (memory: one hash per distinct record for the duplicate
// count, nothing else per record): counts by format, turns, characters, token lengths, exact duplicates, and a
// length histogram drawn as text for the terminal and as an SVG picture.

import { createHash } from 'node:crypto';
import { normalizeText } from './dedup.js';
import { contentText, type DataRecord, type RecordFormat } from './records.js';

/** Running min / max / sum / count. */
export class Summary {
  n = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  add(x: number): void {
    this.n++;
    this.sum += x;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }
  get mean(): number {
    return this.n === 0 ? 0 : this.sum / this.n;
  }
  toJSON(): { min: number; mean: number; max: number; total: number } {
    return this.n === 0 ? { min: 0, mean: 0, max: 0, total: 0 } : { min: this.min, mean: Math.round(this.mean * 10) / 10, max: this.max, total: this.sum };
  }
}

/** Power-of-two buckets: bucket b counts lengths in [2^(b-1), 2^b) (bucket 0: length 0). */
export class Log2Histogram {
  readonly counts: number[] = [];
  add(x: number): void {
    const b = x <= 0 ? 0 : Math.floor(Math.log2(x)) + 1;
    while (this.counts.length <= b) this.counts.push(0);
    this.counts[b]++;
  }
  /** [lo, hi) of bucket b */
  static range(b: number): [number, number] {
    return b === 0 ? [0, 1] : [2 ** (b - 1), 2 ** b];
  }
  /** Non-empty span of buckets, as rows {label, count}. */
  rows(): { label: string; count: number }[] {
    const first = this.counts.findIndex((c) => c > 0);
    if (first < 0) return [];
    let last = this.counts.length - 1;
    while (last > first && this.counts[last] === 0) last--;
    const out = [];
    for (let b = first; b <= last; b++) {
      const [lo, hi] = Log2Histogram.range(b);
      out.push({ label: hi - lo <= 1 ? `${lo}` : `${lo}–${hi - 1}`, count: this.counts[b] });
    }
    return out;
  }
}

export interface StatsOptions {
  /** token counter (a tokenizer's encode().length); lengths are counted in tokens when given, else characters */
  countTokens?: (text: string) => number;
}

export interface DatasetStats {
  records: number;
  formats: Partial<Record<RecordFormat, number>>;
  turns: ReturnType<Summary['toJSON']>;
  characters: ReturnType<Summary['toJSON']>;
  tokens?: ReturnType<Summary['toJSON']>;
  /** records whose normalized text equals an earlier record's */
  exactDuplicates: number;
  /** histogram of the unit below (tokens with a tokenizer, else characters) */
  lengthUnit: 'tokens' | 'characters';
  histogram: { label: string; count: number }[];
}

export class StatsAccumulator {
  private readonly formats: Partial<Record<RecordFormat, number>> = {};
  private readonly turns = new Summary();
  private readonly chars = new Summary();
  private readonly tokens = new Summary();
  private readonly seen = new Set<string>();
  private readonly hist = new Log2Histogram();
  private records = 0;
  private dups = 0;

  constructor(private readonly opts: StatsOptions = {}) {}

  add(r: DataRecord): void {
    this.records++;
    this.formats[r.format] = (this.formats[r.format] ?? 0) + 1;
    const text = contentText(r);
    // turns: user→assistant exchanges (a text document counts as none)
    const turns = r.conversation === null ? 0 : r.conversation.messages.filter((m) => m.role === 'assistant').length;
    this.turns.add(turns);
    const nChars = [...text].length;
    this.chars.add(nChars);
    let len = nChars;
    if (this.opts.countTokens !== undefined) {
      len = this.opts.countTokens(text);
      this.tokens.add(len);
    }
    this.hist.add(len);
    // 16 bytes of SHA-1 per distinct record: enough to tell records apart, small enough for millions of them
    const key = createHash('sha1').update(normalizeText(r.text)).digest('base64').slice(0, 22);
    if (this.seen.has(key)) this.dups++;
    else this.seen.add(key);
  }

  result(): DatasetStats {
    return {
      records: this.records,
      formats: this.formats,
      turns: this.turns.toJSON(),
      characters: this.chars.toJSON(),
      ...(this.opts.countTokens !== undefined ? { tokens: this.tokens.toJSON() } : {}),
      exactDuplicates: this.dups,
      lengthUnit: this.opts.countTokens !== undefined ? 'tokens' : 'characters',
      histogram: this.hist.rows(),
    };
  }
}

/** The histogram as terminal rows: "  64–127  ████████▌ 1234". */
export function textHistogram(rows: readonly { label: string; count: number }[], width = 40): string {
  if (rows.length === 0) return '  (no records)\n';
  const max = Math.max(...rows.map((r) => r.count));
  const lw = Math.max(...rows.map((r) => r.label.length));
  const blocks = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  return rows.map((r) => {
    const eighths = Math.round((r.count / max) * width * 8);
    const bar = '█'.repeat(Math.floor(eighths / 8)) + blocks[eighths % 8];
    return `  ${r.label.padStart(lw)} ${bar} ${r.count}`;
  }).join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/gu, '&amp;').replace(/</gu, '&lt;').replace(/>/gu, '&gt;');

/** The histogram as a standalone SVG bar chart (no scripts, no external fonts). */
export function svgHistogram(rows: readonly { label: string; count: number }[], title: string, unit: string): string {
  const W = 640, H = 360, left = 60, right = 20, top = 40, bottom = 70;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const bw = rows.length === 0 ? 0 : (W - left - right) / rows.length;
  const y = (c: number): number => top + (H - top - bottom) * (1 - c / max);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${left - 8}" y="${top + 4}" text-anchor="end">${max}</text>`,
    `<text x="${left - 8}" y="${H - bottom + 4}" text-anchor="end">0</text>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">length (${esc(unit)})</text>`,
  ];
  rows.forEach((r, i) => {
    const x = left + i * bw;
    parts.push(`<rect x="${(x + 1).toFixed(1)}" y="${y(r.count).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(H - bottom - y(r.count)).toFixed(1)}" fill="#4a78b5"><title>${esc(r.label)}: ${r.count}</title></rect>`);
    parts.push(`<text transform="translate(${(x + bw / 2).toFixed(1)},${H - bottom + 12}) rotate(35)" font-size="10">${esc(r.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
