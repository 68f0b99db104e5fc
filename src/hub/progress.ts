// A download progress bar on stderr: bytes done of total, rate and time left. On a terminal it redraws one line
// (at most 10 times a second); into a pipe or file it writes a line per 10 % so logs stay short.

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** 1234567 → "1.2 MB" (decimal units, as `hf download` and curl print them). */
export function formatBytes(n: number): string {
  let i = 0;
  let x = n;
  while (x >= 1000 && i < UNITS.length - 1) {
    x /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ${UNITS[i]}`;
}

/** 3725 → "1:02:05", 65 → "1:05". */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** One progress line: `name  [#####-----]  45%  1.2 MB/2.7 MB  3.4 MB/s  ETA 0:01`. */
export function progressLine(name: string, done: number, total: number, bytesPerS: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const fill = Math.round(frac * width);
  const eta = bytesPerS > 0 ? formatEta((total - done) / bytesPerS) : '--:--';
  return `${name}  [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ` +
    `${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(Math.round(bytesPerS))}/s  ETA ${eta}`;
}

export class ProgressBar {
  private readonly t0 = performance.now();
  private lastDraw = 0;
  private lastDecile = -1;

  /** `resumed` bytes were already on disk: they count as done but not in the rate. */
  constructor(private readonly name: string, private readonly total: number, private readonly resumed = 0, private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(done: number, final = false): void {
    const now = performance.now();
    const rate = ((done - this.resumed) / Math.max(1e-3, now - this.t0)) * 1000;
    if (this.out.isTTY) {
      if (!final && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(`\r${progressLine(this.name, done, this.total, rate)}\x1b[K${final ? '\n' : ''}`);
      return;
    }
    const decile = this.total > 0 ? Math.floor((done / this.total) * 10) : 10;
    if (decile === this.lastDecile && !final) return;
    if (final && decile === this.lastDecile && decile === 10) return;
    this.lastDecile = decile;
    this.out.write(`${progressLine(this.name, done, this.total, rate)}\n`);
  }
}
