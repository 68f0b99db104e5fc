// Arena ratings from a battle log, as FastChat's elo_analysis.py computes them: online Elo in log order
// (compute_elo), Bradley–Terry by maximum likelihood (compute_mle_elo) and bootstrap 95 % intervals
// (get_bootstrap_result), on the Elo scale (SCALE 400, BASE 10, INIT_RATING 1000).

import { Rng } from '../engine/rng.js';

/** FastChat's four verdicts: the two ties count alike (half a win each way). */
export type Winner = 'model_a' | 'model_b' | 'tie' | 'tie (bothbad)';
export const WINNERS: readonly Winner[] = ['model_a', 'model_b', 'tie', 'tie (bothbad)'];

/** The fields of a battle that ratings read. */
export interface Battle {
  model_a: string;
  model_b: string;
  winner: Winner;
}

export const SCALE = 400;
export const BASE = 10;
export const INIT_RATING = 1000;

/** model_a's score in a battle: 1, 0 or ½. */
export function scoreA(w: Winner): number {
  return w === 'model_a' ? 1 : w === 'model_b' ? 0 : 0.5;
}

/**
 * Online Elo, battle by battle in log order (FastChat's compute_elo; its default K is 4 so that the result depends
 * little on the order). Expected score eA = 1 / (1 + 10^((rB − rA)/400)); rA += K(sA − eA), rB += K(1 − sA − eB).
 */
export function onlineElo(battles: readonly Battle[], k = 4): Map<string, number> {
  const r = new Map<string, number>();
  for (const b of battles) {
    const ra = r.get(b.model_a) ?? INIT_RATING;
    const rb = r.get(b.model_b) ?? INIT_RATING;
    const ea = 1 / (1 + BASE ** ((rb - ra) / SCALE));
    const eb = 1 / (1 + BASE ** ((ra - rb) / SCALE));
    const sa = scoreA(b.winner);
    r.set(b.model_a, ra + k * (sa - ea));
    r.set(b.model_b, rb + k * (1 - sa - eb));
  }
  return r;
}

/** Where the Bradley–Terry scale is pinned: the models' mean at 1000 (FastChat's default), or one model at 1000. */
export type Anchor = { kind: 'mean' } | { kind: 'model'; model: string; rating?: number };

export interface BtResult {
  ratings: Map<string, number>;
  /** true when the plain MLE does not exist (a model, or a group of models, never won or never lost against the
   *  rest) and a prior of one virtual tie per pair that met was added so that the ratings stay finite */
  regularized: boolean;
  iterations: number;
}

/** Sorted model names of a log. */
export function modelsOf(battles: readonly Battle[]): string[] {
  const s = new Set<string>();
  for (const b of battles) s.add(b.model_a).add(b.model_b);
  return [...s].sort();
}

/** wins[i][j]: how often i beat j, a tie counting ½ to each; games[i][j] = games[j][i]: battles between them. */
function tally(battles: readonly Battle[], index: Map<string, number>, m: number): { wins: Float64Array[]; games: Float64Array[] } {
  const wins = Array.from({ length: m }, () => new Float64Array(m));
  const games = Array.from({ length: m }, () => new Float64Array(m));
  for (const b of battles) {
    const i = index.get(b.model_a);
    const j = index.get(b.model_b);
    if (i === undefined || j === undefined || i === j) continue; // a model against itself says nothing
    const s = scoreA(b.winner);
    wins[i][j] += s;
    wins[j][i] += 1 - s;
    games[i][j] += 1;
    games[j][i] += 1;
  }
  return { wins, games };
}

/** Whether every model can reach every other along "i won something against j" edges: the condition for the
 *  Bradley–Terry MLE to exist (Zermelo 1929; Hunter 2004, assumption 1). */
function stronglyConnected(wins: Float64Array[]): boolean {
  const m = wins.length;
  const reach = (forward: boolean): boolean => {
    const seen = new Uint8Array(m);
    const stack = [0];
    seen[0] = 1;
    while (stack.length > 0) {
      const i = stack.pop() ?? 0;
      for (let j = 0; j < m; j++) {
        if (seen[j] === 0 && (forward ? wins[i][j] : wins[j][i]) > 0) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    return seen.every((v) => v === 1);
  };
  return m <= 1 || (reach(true) && reach(false));
}

/** Solves A x = b (A symmetric positive definite here) by Gaussian elimination with partial pivoting. */
function solve(a: Float64Array[], b: Float64Array): Float64Array {
  const n = b.length;
  const A = a.map((r) => Float64Array.from(r));
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    [x[c], x[p]] = [x[p], x[c]];
    const d = A[c][c];
    if (d === 0) throw new Error('Bradley–Terry: singular system (models not connected by battles)');
    for (let r = c + 1; r < n; r++) {
      const f = A[r][c] / d;
      if (f === 0) continue;
      for (let k = c; k < n; k++) A[r][k] -= f * A[c][k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= A[c][k] * x[k];
    x[c] = s / A[c][c];
  }
  return x;
}

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * Bradley–Terry strengths θ (natural log) maximizing Σ_ij wins[i][j]·log σ(θi − θj), by Newton's method with θ0
 * pinned at 0 (the likelihood only sees differences) and step halving, which keeps every step an ascent. Ties
 * enter as half a win each way, as FastChat's compute_mle_elo weights them.
 */
function btNewton(wins: Float64Array[], games: Float64Array[]): { theta: Float64Array; iterations: number } {
  const m = wins.length;
  const theta = new Float64Array(m);
  const ll = (t: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (wins[i][j] > 0) s += wins[i][j] * Math.log(sigmoid(t[i] - t[j]));
    return s;
  };
  let cur = ll(theta);
  let it = 0;
  for (; it < 100 && m > 1; it++) {
    const g = new Float64Array(m - 1);
    const H = Array.from({ length: m - 1 }, () => new Float64Array(m - 1));
    for (let i = 1; i < m; i++) {
      for (let j = 0; j < m; j++) {
        if (j === i || games[i][j] === 0) continue;
        const p = sigmoid(theta[i] - theta[j]);
        g[i - 1] += wins[i][j] - games[i][j] * p;
        const w = games[i][j] * p * (1 - p);
        H[i - 1][i - 1] += w; // the negated Hessian: positive definite
        if (j > 0) H[i - 1][j - 1] -= w;
      }
    }
    const step = solve(H, g);
    let t = 1;
    let next = theta;
    let nextLl = -Infinity;
    for (let h = 0; h < 30; h++, t /= 2) {
      next = Float64Array.from(theta, (v, i) => (i === 0 ? 0 : v + t * step[i - 1]));
      nextLl = ll(next);
      if (nextLl >= cur - 1e-12) break;
    }
    const moved = Math.max(...Array.from(step, (s) => Math.abs(t * s)));
    theta.set(next);
    cur = nextLl;
    if (moved < 1e-10) break;
  }
  return { theta, iterations: it };
}

/** Natural-log strengths θ to Elo-scale ratings, pinned as the anchor says. */
function toElo(models: readonly string[], theta: Float64Array, anchor: Anchor): Map<string, number> {
  const r = Array.from(theta, (t) => (SCALE * t) / Math.log(BASE));
  let shift: number;
  if (anchor.kind === 'mean') {
    shift = INIT_RATING - r.reduce((s, v) => s + v, 0) / Math.max(1, r.length);
  } else {
    const k = models.indexOf(anchor.model);
    if (k < 0) throw new Error(`Bradley–Terry: the anchor model ${JSON.stringify(anchor.model)} is not in the battles (models: ${models.join(', ')})`);
    shift = (anchor.rating ?? INIT_RATING) - r[k];
  }
  const out = new Map(models.map((name, i) => [name, r[i] + shift]));
  if (anchor.kind === 'model') out.set(anchor.model, anchor.rating ?? INIT_RATING); // exactly, not up to rounding
  return out;
}

/**
 * Bradley–Terry ratings on the Elo scale: P(i beats j) = 1 / (1 + 10^((Rj − Ri)/400)). Where the MLE does not
 * exist (see BtResult.regularized) one virtual tie per pair that met is added (half a win each way).
 */
export function bradleyTerry(battles: readonly Battle[], anchor: Anchor = { kind: 'mean' }, models = modelsOf(battles)): BtResult {
  const index = new Map(models.map((n, i) => [n, i]));
  const { wins, games } = tally(battles, index, models.length);
  const regularized = !stronglyConnected(wins);
  if (regularized) {
    for (let i = 0; i < models.length; i++) {
      for (let j = 0; j < models.length; j++) {
        if (i !== j && games[i][j] > 0) {
          wins[i][j] += 0.5;
          games[i][j] += 1;
        }
      }
    }
  }
  if (!stronglyConnected(wins)) {
    // still apart: some models never met the others at all, so their ratings have no common scale
    throw new Error(`Bradley–Terry: the models do not form one connected group of battles (${models.join(', ')}); rate each group on its own`);
  }
  const { theta, iterations } = btNewton(wins, games);
  return { ratings: toElo(models, theta, anchor), regularized, iterations };
}

export interface Interval {
  lo: number;
  hi: number;
}

/** The q-quantile of sorted values, linearly interpolated (numpy's and pandas' default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Bootstrap 95 % intervals (FastChat's get_bootstrap_result): `rounds` times, resample the battles with replacement
 * (as many as there are), rate the sample, and take the 2.5th and 97.5th percentiles of each model's ratings. A
 * model missing from a sample is left out of that round's ratings for it. Deterministic for a seed.
 */
export function bootstrap(
  battles: readonly Battle[],
  rate: (sample: readonly Battle[]) => Map<string, number>,
  rounds = 1000,
  seed = 0,
): Map<string, Interval & { samples: number }> {
  const rng = new Rng(seed);
  const per = new Map<string, number[]>();
  const n = battles.length;
  for (let r = 0; r < rounds && n > 0; r++) {
    const sample = Array.from({ length: n }, () => battles[rng.int(n)]);
    for (const [m, v] of rate(sample)) {
      const list = per.get(m) ?? [];
      list.push(v);
      per.set(m, list);
    }
  }
  const out = new Map<string, Interval & { samples: number }>();
  for (const [m, vs] of per) {
    vs.sort((a, b) => a - b);
    out.set(m, { lo: quantile(vs, 0.025), hi: quantile(vs, 0.975), samples: vs.length });
  }
  return out;
}

/** Battles and win rate (wins + ½ ties over battles) of each model. */
export function records(battles: readonly Battle[]): Map<string, { battles: number; wins: number; ties: number; losses: number }> {
  const out = new Map<string, { battles: number; wins: number; ties: number; losses: number }>();
  const get = (m: string): { battles: number; wins: number; ties: number; losses: number } => {
    let r = out.get(m);
    if (r === undefined) out.set(m, (r = { battles: 0, wins: 0, ties: 0, losses: 0 }));
    return r;
  };
  for (const b of battles) {
    const a = get(b.model_a);
    const c = get(b.model_b);
    a.battles++;
    c.battles++;
    if (b.winner === 'model_a') [a.wins, c.losses] = [a.wins + 1, c.losses + 1];
    else if (b.winner === 'model_b') [c.wins, a.losses] = [c.wins + 1, a.losses + 1];
    else [a.ties, c.ties] = [a.ties + 1, c.ties + 1];
  }
  return out;
}
