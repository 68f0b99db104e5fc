// A byte-based progress bar for the data tools: done/total MB, rate (MB/s) and ETA on stderr, redrawn at most
// five times a second. Kept here rather than reusing src/train's step-based Progress: src/data sits below train.

export interface ProgressOptions {
  /** 'auto' (default): a bar when stderr is a terminal, nothing otherwise (pipes and tests stay clean) */
  mode?: 'auto' | 'bar' | 'none';
  write?: (s: string) => void;
  /** injectable clock (ms), for tests */
  now?: () => number;
}

export class ByteProgress {
  private readonly on: boolean;
  private readonly write: (s: string) => void;
  private readonly now: () => number;
  private readonly start: number;
  private last = -Infinity;
  private drawn = false;
  private done = 0;

  constructor(private readonly label: string, private total: number, opts: ProgressOptions = {}) {
    const mode = opts.mode ?? 'auto';
    this.on = mode === 'bar' || (mode === 'auto' && process.stderr.isTTY === true);
    this.write = opts.write ?? ((s) => void process.stderr.write(s));
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
  }

  /** Adds n processed bytes; redraws when 200 ms have passed. */
  add(n: number): void {
    this.done += n;
    if (!this.on) return;
    const t = this.now();
    if (t - this.last < 200) return;
    this.last = t;
    this.write(`\r\x1b[K${this.line(t)}`);
    this.drawn = true;
  }

  /** The status text: "label [=====>    ] 12.0/48.0 MB 35.1 MB/s ETA 1s". */
  line(t = this.now()): string {
    const s = Math.max(1e-3, (t - this.start) / 1000);
    const rate = this.done / s;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const width = 24, filled = Math.round(width * frac);
    const bar = '='.repeat(filled) + (filled < width ? '>' + ' '.repeat(width - filled - 1) : '');
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    const eta = rate > 0 && this.total > this.done ? formatSeconds((this.total - this.done) / rate) : '0s';
    return `${this.label} [${bar}] ${mb(this.done)}/${mb(this.total)} MB ${mb(rate)} MB/s ETA ${eta}`;
  }

  /** Clears the bar (call before printing results). */
  end(): void {
    if (this.drawn) this.write('\r\x1b[K');
    this.drawn = false;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
