// The loss curve as a self-contained SVG (no dependency): train loss per step, eval loss where it was measured,
// axes with tick labels, a legend. Long runs are thinned to at most maxPoints by averaging neighbouring steps.

import type { HistoryPoint } from './checkpoint.js';

export interface LossCurveOptions {
  width?: number; // default 720
  height?: number; // default 400
  title?: string; // default "Loss"
  /** most points per curve (default 1000); longer curves are bucket-averaged */
  maxPoints?: number;
}

type Pt = [number, number];

/** Averages consecutive points into at most n buckets. */
export function thin(points: readonly Pt[], n: number): Pt[] {
  if (points.length <= n) return [...points];
  const out: Pt[] = [];
  for (let b = 0; b < n; b++) {
    const lo = Math.floor((b * points.length) / n);
    const hi = Math.floor(((b + 1) * points.length) / n);
    let sx = 0;
    let sy = 0;
    for (let i = lo; i < hi; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (hi - lo), sy / (hi - lo)]);
  }
  return out;
}

/** Round tick values covering [lo, hi] ("nice numbers": steps of 1, 2 or 5 × 10^k). */
export function ticks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function label(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** Renders the train and eval loss curves of a run's history. */
export function lossCurveSvg(history: readonly HistoryPoint[], opts: LossCurveOptions = {}): string {
  const W = opts.width ?? 720;
  const H = opts.height ?? 400;
  const max = opts.maxPoints ?? 1000;
  const train = thin(history.filter((h) => h.loss !== undefined && Number.isFinite(h.loss)).map((h): Pt => [h.step, h.loss ?? 0]), max);
  const evals = thin(history.filter((h) => h.evalLoss !== undefined && Number.isFinite(h.evalLoss)).map((h): Pt => [h.step, h.evalLoss ?? 0]), max);
  const all = [...train, ...evals];
  const [ml, mr, mt, mb] = [64, 20, 36, 48]; // margins: left (tick labels), right, top (title), bottom (axis label)
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  const y0 = ys.length ? Math.min(...ys) : 0;
  const y1 = ys.length ? Math.max(...ys) : 1;
  const pad = (y1 - y0) * 0.05 || 0.5;
  const [ylo, yhi] = [y0 - pad, y1 + pad];
  const [xlo, xhi] = x1 > x0 ? [x0, x1] : [x0 - 1, x0 + 1];
  const px = (x: number): number => ml + ((x - xlo) / (xhi - xlo)) * (W - ml - mr);
  const py = (y: number): number => H - mb - ((y - ylo) / (yhi - ylo)) * (H - mt - mb);
  const f = (v: number): string => v.toFixed(1);
  const poly = (pts: Pt[]): string => pts.map(([x, y]) => `${f(px(x))},${f(py(y))}`).join(' ');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title ?? 'Loss')}</text>`);
  // axes
  out.push(`<g class="axes" stroke="#333" stroke-width="1">`);
  out.push(`<line x1="${ml}" y1="${H - mb}" x2="${W - mr}" y2="${H - mb}"/>`);
  out.push(`<line x1="${ml}" y1="${mt}" x2="${ml}" y2="${H - mb}"/>`);
  out.push(`</g>`);
  out.push(`<g class="ticks" fill="#333">`);
  for (const t of ticks(xlo, xhi)) {
    out.push(`<line x1="${f(px(t))}" y1="${H - mb}" x2="${f(px(t))}" y2="${H - mb + 4}" stroke="#333"/>`);
    out.push(`<text x="${f(px(t))}" y="${H - mb + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of ticks(ylo, yhi)) {
    out.push(`<line x1="${ml - 4}" y1="${f(py(t))}" x2="${ml}" y2="${f(py(t))}" stroke="#333"/>`);
    out.push(`<line x1="${ml}" y1="${f(py(t))}" x2="${W - mr}" y2="${f(py(t))}" stroke="#eee"/>`);
    out.push(`<text x="${ml - 6}" y="${f(py(t) + 4)}" text-anchor="end">${label(t)}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${(ml + W - mr) / 2}" y="${H - 10}" text-anchor="middle">step</text>`);
  out.push(`<text x="14" y="${(mt + H - mb) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(mt + H - mb) / 2})">loss</text>`);
  // curves
  if (train.length > 0) out.push(`<polyline class="train" fill="none" stroke="#1f77b4" stroke-width="1.5" points="${poly(train)}"/>`);
  if (evals.length > 0) {
    out.push(`<polyline class="eval" fill="none" stroke="#d62728" stroke-width="1.5" points="${poly(evals)}"/>`);
    out.push(`<g class="eval-points" fill="#d62728">`);
    for (const [x, y] of evals) out.push(`<circle cx="${f(px(x))}" cy="${f(py(y))}" r="2.5"/>`);
    out.push(`</g>`);
  }
  // legend
  const lx = W - mr - 110;
  out.push(`<g class="legend">`);
  out.push(`<line x1="${lx}" y1="${mt + 8}" x2="${lx + 20}" y2="${mt + 8}" stroke="#1f77b4" stroke-width="2"/><text x="${lx + 26}" y="${mt + 12}">train</text>`);
  if (evals.length > 0) out.push(`<line x1="${lx}" y1="${mt + 24}" x2="${lx + 20}" y2="${mt + 24}" stroke="#d62728" stroke-width="2"/><text x="${lx + 26}" y="${mt + 28}">eval</text>`);
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
