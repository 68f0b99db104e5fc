// The leaderboard as a self-contained SVG (no dependency), in the house style of src/train/svg.ts: one row per
// model, best first, its rating as a dot and its 95 % bootstrap interval as a bar on a shared rating axis.

import { ticks } from '../train/svg.js';
import type { Interval } from './ratings.js';

export interface ChartRow {
  model: string;
  rating: number;
  ci: Interval;
}

export interface ChartOptions {
  width?: number; // default 720
  title?: string; // default "Arena ratings (95 % CI)"
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Renders the ratings with their intervals; rows are sorted by rating here, so any order may be passed. */
export function ratingsSvg(input: readonly ChartRow[], opts: ChartOptions = {}): string {
  const rows = [...input].filter((r) => Number.isFinite(r.rating)).sort((a, b) => b.rating - a.rating || a.model.localeCompare(b.model));
  const W = opts.width ?? 720;
  const rowH = 24;
  const longest = Math.max(0, ...rows.map((r) => r.model.length));
  const [ml, mr, mt, mb] = [Math.min(260, 16 + 7 * longest), 24, 40, 44]; // margins: left (names), right, top (title), bottom (axis)
  const H = mt + mb + rowH * Math.max(1, rows.length);
  const vals = rows.flatMap((r) => [r.rating, r.ci.lo, r.ci.hi]).filter(Number.isFinite);
  const v0 = vals.length ? Math.min(...vals) : 900;
  const v1 = vals.length ? Math.max(...vals) : 1100;
  const pad = (v1 - v0) * 0.05 || 10;
  const [lo, hi] = [v0 - pad, v1 + pad];
  const px = (v: number): number => ml + ((v - lo) / (hi - lo)) * (W - ml - mr);
  const py = (i: number): number => mt + rowH * (i + 0.5);
  const f = (v: number): string => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title ?? 'Arena ratings (95 % CI)')}</text>`);
  out.push(`<g class="axes" stroke="#333" stroke-width="1">`);
  out.push(`<line x1="${ml}" y1="${H - mb}" x2="${W - mr}" y2="${H - mb}"/>`);
  out.push(`</g>`);
  out.push(`<g class="ticks" fill="#333">`);
  for (const t of ticks(lo, hi)) {
    out.push(`<line x1="${f(px(t))}" y1="${mt}" x2="${f(px(t))}" y2="${H - mb}" stroke="#eee"/>`);
    out.push(`<line x1="${f(px(t))}" y1="${H - mb}" x2="${f(px(t))}" y2="${H - mb + 4}" stroke="#333"/>`);
    out.push(`<text x="${f(px(t))}" y="${H - mb + 16}" text-anchor="middle">${String(Number(t.toPrecision(6)))}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${(ml + W - mr) / 2}" y="${H - 10}" text-anchor="middle">rating (Elo scale)</text>`);
  out.push(`<g class="models">`);
  rows.forEach((r, i) => {
    const y = f(py(i));
    const ci = Number.isFinite(r.ci.lo) && Number.isFinite(r.ci.hi) ? r.ci : { lo: r.rating, hi: r.rating };
    out.push(`<g class="model"><title>${esc(`${r.model}: ${r.rating.toFixed(0)} (${ci.lo.toFixed(0)} – ${ci.hi.toFixed(0)})`)}</title>`);
    out.push(`<text x="${ml - 8}" y="${f(py(i) + 4)}" text-anchor="end">${esc(r.model)}</text>`);
    out.push(`<line class="ci" x1="${f(px(ci.lo))}" y1="${y}" x2="${f(px(ci.hi))}" y2="${y}" stroke="#1f77b4" stroke-width="2"/>`);
    for (const e of [ci.lo, ci.hi]) out.push(`<line x1="${f(px(e))}" y1="${f(py(i) - 5)}" x2="${f(px(e))}" y2="${f(py(i) + 5)}" stroke="#1f77b4" stroke-width="2"/>`);
    out.push(`<circle class="rating" cx="${f(px(r.rating))}" cy="${y}" r="4" fill="#d62728"/></g>`);
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
