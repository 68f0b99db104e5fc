// A download progress bar on stderr: bytes done of total, rate and time left, drawn through the shared display
// (src/util/progress.ts). On a terminal it redraws one line (at most 10 times a second); into a pipe or file it writes
// a line per 10 % so logs stay short.

import { drawBar, etaSeconds, formatBytes, formatClock, formatPercent, fraction, ProgressDisplay } from '../util/progress.js';

export { formatBytes };

/** 3725 → "1:02:05", 65 → "1:05". */
export const formatEta = formatClock;

/** One progress line: `name  [#####-----]  45%  1.2 MB/2.7 MB  3.4 MB/s  ETA 0:01`. */
export function progressLine(name: string, done: number, total: number, bytesPerS: number, width = 24): string {
  const frac = fraction(done, total);
  const eta = bytesPerS > 0 ? formatClock(etaSeconds(done, total, bytesPerS)) : '--:--';
  return `${name}  [${drawBar(frac, width, 'blocks')}] ${formatPercent(frac)}  ` +
    `${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(Math.round(bytesPerS))}/s  ETA ${eta}`;
}

export class ProgressBar {
  private readonly display: ProgressDisplay;
  private lastDecile = -1;

  /** `resumed` bytes were already on disk: they count as done but not in the rate. */
  constructor(private readonly name: string, private readonly total: number, private readonly resumed = 0, out: NodeJS.WriteStream = process.stderr, now?: () => number) {
    this.display = new ProgressDisplay({ write: (s) => void out.write(s), isTty: out.isTTY === true, redrawMs: 100, ...(now ? { now } : {}) });
  }

  update(done: number, final = false): void {
    const text = (): string => progressLine(this.name, done, this.total, this.display.rate(done, this.resumed));
    if (this.display.kind === 'bar') {
      if (!this.display.due(final)) return;
      this.display.redraw(text(), true);
      if (final) this.display.end();
      return;
    }
    const decile = this.total > 0 ? Math.floor((done / this.total) * 10) : 10;
    if (decile === this.lastDecile && !final) return;
    if (final && decile === this.lastDecile && decile === 10) return;
    this.lastDecile = decile;
    this.display.line(text());
  }
}
