// A byte-based progress bar for the data tools: done/total MB, rate (MB/s) and ETA on stderr, redrawn at most
// five times a second, through the shared display (src/util/progress.ts). Off a terminal it stays silent.

import { drawBar, etaSeconds, formatDuration, fraction, ProgressDisplay } from '../util/progress.js';

export interface ProgressOptions {
  /** 'auto' (default): a bar when stderr is a terminal, nothing otherwise (pipes and tests stay clean) */
  mode?: 'auto' | 'bar' | 'none';
  write?: (s: string) => void;
  /** injectable clock (ms), for tests */
  now?: () => number;
  /** whether stderr is a terminal (for 'auto'); default stderr's */
  isTty?: boolean;
}

export class ByteProgress {
  private readonly display: ProgressDisplay;
  private done = 0;

  constructor(private readonly label: string, private total: number, opts: ProgressOptions = {}) {
    this.display = new ProgressDisplay({ ...opts, offTerminal: 'none', redrawMs: 200 });
  }

  /** Adds n processed bytes; redraws when 200 ms have passed. */
  add(n: number): void {
    this.done += n;
    if (this.display.due()) this.display.redraw(this.line(), true);
  }

  /** The status text: "label [=====>    ] 12.0/48.0 MB 35.1 MB/s ETA 1s". */
  line(t = this.display.now()): string {
    const rate = this.display.rate(this.done, 0, t);
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    const eta = rate > 0 ? formatDuration(etaSeconds(this.done, this.total, rate)) : '0s';
    return `${this.label} [${drawBar(fraction(this.done, this.total))}] ${mb(this.done)}/${mb(this.total)} MB ${mb(rate)} MB/s ETA ${eta}`;
  }

  /** Clears the bar (call before printing results). */
  end(): void {
    this.display.end(true);
  }
}

/** "1h02m", "3m05s", "12s" (kept under its old name for the data commands). */
export const formatSeconds = formatDuration;
