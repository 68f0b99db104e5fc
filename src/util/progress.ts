// The one progress display every long command shares (training steps, downloads, data bytes): the mode ('auto'
// picks a redrawn bar on a terminal, plain periodic lines or nothing elsewhere), throttled redraws, rate and ETA from
// an injectable clock, notes below the bar, and end() finishing or clearing the line. It imports nothing, so any
// layer may use it; each caller keeps its own text (steps and loss, bytes, MB) and decides when a plain line is due.

/** 'auto': a bar on a terminal, otherwise the caller's off-terminal choice; 'bar', 'lines' and 'none' force one. */
export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export interface DisplayOptions {
  /** default 'auto' */
  mode?: ProgressMode;
  /** what 'auto' becomes off a terminal: 'lines' (default; logs under CI) or 'none' (pipes and tests stay clean) */
  offTerminal?: 'lines' | 'none';
  /** where the text goes; default stderr */
  write?: (s: string) => void;
  /** whether the output is a terminal; default stderr's */
  isTty?: boolean;
  /** the clock in ms; default performance.now */
  now?: () => number;
  /** the bar redraws at most this often (ms) unless forced; default 0, every update */
  redrawMs?: number;
}

/** "1h02m", "3m05s", "12s"; "?" when unknown. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s);
  if (t >= 3600) return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
  if (t >= 60) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${t}s`;
}

/** 3725 → "1:02:05", 65 → "1:05"; "--:--" when unknown. */
export function formatClock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** 1234567 → "1.23 MB" (decimal units, as `hf download` and curl print them). */
export function formatBytes(n: number): string {
  let i = 0;
  let x = n;
  while (x >= 1000 && i < UNITS.length - 1) {
    x /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ${UNITS[i]}`;
}

/** done/total clamped to [0, 1] (0 when the total is unknown). */
export function fraction(done: number, total: number): number {
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
}

/** "  5%", " 50%", "100%" (floored, so 100 % only when done). */
export function formatPercent(frac: number): string {
  return `${String(Math.floor(frac * 100)).padStart(3)}%`;
}

/** The bar's inside, `width` characters: 'arrow' "=====>    " (training, data), 'blocks' "#####-----" (downloads). */
export function drawBar(frac: number, width = 24, style: 'arrow' | 'blocks' = 'arrow'): string {
  const filled = Math.round(width * Math.min(1, Math.max(0, frac)));
  if (style === 'blocks') return '#'.repeat(filled) + '-'.repeat(width - filled);
  return '='.repeat(filled) + (filled < width ? '>' + ' '.repeat(width - filled - 1) : '');
}

/** Seconds left at `perS` units a second; Infinity when the rate is not known yet. */
export function etaSeconds(done: number, total: number, perS: number): number {
  if (done >= total) return 0;
  return perS > 0 ? (total - done) / perS : Infinity;
}

/** Mode, clock and drawing state of one progress display; the caller renders the text. */
export class ProgressDisplay {
  /** what this display does: redraw one line, print lines, or stay silent */
  readonly kind: 'bar' | 'lines' | 'none';
  private readonly out: (s: string) => void;
  private readonly clock: () => number;
  private readonly redrawMs: number;
  private readonly t0: number;
  private lastDraw = -Infinity;
  private drawn = false;

  constructor(o: DisplayOptions = {}) {
    const mode = o.mode ?? 'auto';
    const tty = o.isTty ?? process.stderr.isTTY === true;
    this.kind = mode === 'auto' ? (tty ? 'bar' : (o.offTerminal ?? 'lines')) : mode;
    this.out = o.write ?? ((s) => void process.stderr.write(s));
    this.clock = o.now ?? (() => performance.now());
    this.redrawMs = o.redrawMs ?? 0;
    this.t0 = this.clock();
  }

  /** The clock now (ms). */
  now(): number {
    return this.clock();
  }

  /** Seconds since the display was made (at least 1 ms, so rates stay finite). */
  elapsedS(t = this.clock()): number {
    return Math.max(1e-3, (t - this.t0) / 1000);
  }

  /** Units a second since the start; `base` units were done before it (a resumed download) and do not count. */
  rate(done: number, base = 0, t = this.clock()): number {
    return (done - base) / this.elapsedS(t);
  }

  /** Whether a bar redraw would show now (bar mode, and the throttle has passed or `force`). */
  due(force = false, t = this.clock()): boolean {
    return this.kind === 'bar' && (force || t - this.lastDraw >= this.redrawMs);
  }

  /** Redraws the bar's line with `text` (bar mode only, throttled unless `force`); returns whether it drew. */
  redraw(text: string, force = false): boolean {
    const t = this.clock();
    if (!this.due(force, t)) return false;
    this.lastDraw = t;
    this.out(`\r\x1b[K${text}`);
    this.drawn = true;
    return true;
  }

  /** A plain line (lines mode only); the caller decides when one is due. */
  line(text: string): void {
    if (this.kind === 'lines') this.out(text + '\n');
  }

  /** A line of its own below the bar (saved checkpoint, interruption), in any mode but 'none'. */
  note(text: string): void {
    if (this.kind === 'none') return;
    if (this.drawn) this.out('\n');
    this.drawn = false;
    this.out(text + '\n');
  }

  /** Finishes the bar: keeps its last state on its own line, or with `clear` erases it (before printing results). */
  end(clear = false): void {
    if (this.drawn) this.out(clear ? '\r\x1b[K' : '\n');
    this.drawn = false;
  }
}
