// Training telemetry: one JSON object per line in metrics.jsonl, and a progress display on stderr
// (a redrawn bar when stderr is a terminal, plain periodic lines otherwise, e.g. under CI or `2> log`).

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { drawBar, formatDuration, fraction, ProgressDisplay, type ProgressMode } from '../util/progress.js';

/** One line of metrics.jsonl. Keys are snake_case, as HF Trainer's log history. */
export interface MetricsRecord {
  /** optimizer updates completed (1 after the first update) */
  step: number;
  /** mean cross-entropy over the update's trained tokens */
  loss: number;
  /** learning rate the update used */
  lr: number;
  /** global gradient L2 norm before clipping */
  grad_norm: number;
  /** input positions (B·T, padding included) processed per second during this update */
  tokens_per_s: number;
  /** seconds of training since the run began (over resumed segments) */
  elapsed_s: number;
  /** mean eval loss, on the steps where evaluation ran */
  eval_loss?: number;
  /** an objective's own numbers (DPO's rewards/accuracies, …; eval_ prefixed for evaluation) */
  [metric: string]: number | undefined;
}

/** Appends records synchronously, so a killed run leaves every completed line on disk. */
export class MetricsWriter {
  constructor(readonly path: string) {}

  /** Starts the file: empty for a fresh run, or cut back to the lines up to `step` when resuming from there. */
  start(resumeStep: number | null): void {
    if (resumeStep === null || !existsSync(this.path)) {
      writeFileSync(this.path, '');
      return;
    }
    const kept = readMetrics(this.path).filter((r) => r.step <= resumeStep);
    writeFileSync(this.path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  append(r: MetricsRecord): void {
    appendFileSync(this.path, JSON.stringify(r) + '\n');
  }
}

/** Parses metrics.jsonl, naming the line of any malformed record. A torn last line (killed mid-write) is dropped. */
export function readMetrics(path: string): MetricsRecord[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return; // no trailing newline: the write was cut short
      throw new Error(`${path}:${i + 1}: not valid JSON`);
    }
    const rec = r as Partial<MetricsRecord>;
    for (const k of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'elapsed_s'] as const) {
      if (typeof rec[k] !== 'number') throw new Error(`${path}:${i + 1}: field "${k}" must be a number`);
    }
    out.push(r as MetricsRecord);
  });
  return out;
}

export { formatDuration, type ProgressMode };

export interface ProgressInfo {
  step: number;
  total: number;
  loss: number;
  lr: number;
  tokensPerS: number;
  etaS: number;
  evalLoss?: number;
}

/** The training progress display (steps, loss, lr, tokens/s, ETA); write and the terminal test are injectable. */
export class Progress {
  private readonly display: ProgressDisplay;

  constructor(
    mode: ProgressMode,
    private readonly logEvery: number,
    write: (s: string) => void = (s) => process.stderr.write(s),
    isTty: boolean = process.stderr.isTTY === true,
  ) {
    this.display = new ProgressDisplay({ mode, write, isTty });
  }

  update(p: ProgressInfo): void {
    const text = `loss ${p.loss.toFixed(4)}${p.evalLoss !== undefined ? ` eval ${p.evalLoss.toFixed(4)}` : ''} | lr ${p.lr.toExponential(2)} | ${Math.round(p.tokensPerS)} tok/s | ETA ${formatDuration(p.etaS)}`;
    const bar = drawBar(fraction(p.step, Math.max(1, p.total)));
    this.display.redraw(`${String(p.step).padStart(String(p.total).length)}/${p.total} [${bar}] ${text}`);
    if (p.step % this.logEvery === 0 || p.step === p.total || p.evalLoss !== undefined) this.display.line(`step ${p.step}/${p.total} ${text}`);
  }

  /** A line of its own (saved checkpoint, interruption), below the bar. */
  note(s: string): void {
    this.display.note(s);
  }

  end(): void {
    this.display.end();
  }
}
