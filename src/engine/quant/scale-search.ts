// ggml's scale searches (make_qx_quants, make_q3_quants, make_qkx2_quants / make_qkx3_quants, make_qp_quants in
// ggml-quants.c): for a group of values, the scale (and min) whose levels fit them best under a weighting. The
// reference writers weight by x², |x| or av_x + |x|; with an importance matrix the weights come from it.
// float32 arithmetic as in the C, one Math.fround per operation in source order (see kquants-write.ts).

import { nearestInt } from './block.js';

const fr = Math.fround;
export const GROUP_MAX_EPS = fr(1e-15);
const F01 = fr(0.1);

/** make_qx_quants with rmse_type 1: symmetric levels −nmax…nmax−1 for x[o..o+n), stored + nmax in L[o..]; the scale
 *  among 19 trial inverse scales with the best weighted fit. Weights qw[wo..wo+n) (ggml's `qw`), or x² without them.
 *  Returns the scale. */
export function makeQxQuants(
  n: number, nmax: number, x: Float32Array, o: number, L: Int8Array | Uint8Array, qw: Float32Array | null = null, wo = 0,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i] ?? 0);
    if (ax > amax) {
      amax = ax;
      max = x[o + i] ?? 0;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      if (store) L[o + i] = l + nmax;
      const w = qw === null ? fr(xi * xi) : (qw[wo + i] ?? 0);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(fr(-nmax / max), true);
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(F01 * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      fit(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants with do_rmse: levels −nmax…nmax−1 (stored + nmax), then up to 5 passes moving single values to the
 *  level that improves the x²-weighted fit. Returns the scale. */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, o: number, L: Int8Array): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i] ?? 0);
    if (ax > amax) {
      amax = ax;
      max = x[o + i] ?? 0;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[o + i] ?? 0;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[o + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const li = L[o + i] ?? 0;
      const w = fr(xi * xi);
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const nl = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(fr(xi * sl2) / slx))));
        if (nl !== li) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[o + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[o + i] = (L[o + i] ?? 0) + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** make_qkx2_quants (and make_qkx3_quants, the same search when it is given weights): asymmetric levels 0…nmax with x ≈ scale·l − min, min ≤ 0 clipped; nstep+1 trial inverse
 *  scales, each refit by weighted least squares for (scale, min), the best by weighted |error| (useMad) or error².
 *  Levels in L[o..], −min in out[0]; returns the scale. */
export function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, o: number, weights: Float32Array, L: Uint8Array, Laux: Uint8Array,
  out: Float32Array, rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  let min = x[o] ?? 0;
  let max = min;
  let sumW = weights[0] ?? 0;
  let sumX = fr(sumW * min);
  for (let i = 1; i < n; i++) {
    const xi = x[o + i] ?? 0;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i] ?? 0;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[o + i] = 0;
    out[0] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  const err = (d: number): number => (useMad ? Math.abs(d) : fr(d * d));
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[o + i] ?? 0;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[o + i] = l;
    bestError = fr(bestError + fr((weights[i] ?? 0) * err(fr(fr(fr(scale * l) + min) - xi))));
  }
  if (nstep < 1) {
    out[0] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min)); // min as updated by the best fit so far
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i] ?? 0;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const wl = fr((weights[i] ?? 0) * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const d = fr(fr(fr(thisScale * (Laux[i] ?? 0)) + thisMin) - (x[o + i] ?? 0));
        curError = fr(curError + fr((weights[i] ?? 0) * err(d)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[o + i] = Laux[i] ?? 0;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out[0] = -min;
  return scale;
}

/** make_qp_quants: levels 0…nmax for the non-negative x[0..n) (sub-block scales or mins), the scale from 9 trial
 *  inverse scales by weighted squared error, then up to 5 passes moving single levels; weights qw. Levels in L (stored
 *  as the C's uint8_t, so a negative level wraps as there). Returns the scale. */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i] ?? 0);
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  let iscale = fr(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(fr(iscale * (x[i] ?? 0)));
  const scale = fr(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr((x[i] ?? 0) - fr(scale * (L[i] ?? 0)));
    bestMse = fr(bestMse + fr(fr((qw[i] ?? 0) * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fr(fr(fr(F01 * is) + nmax) / max);
    const scaleIs = fr(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(fr(iscaleIs * (x[i] ?? 0))));
      const diff = fr((x[i] ?? 0) - fr(scaleIs * l));
      mse = fr(mse + fr(fr((qw[i] ?? 0) * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i] ?? 0;
    const l = Math.min(nmax, nearestInt(fr(iscale * xi)));
    L[i] = l;
    const w = qw[i] ?? 0;
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i] ?? 0;
      const li = L[i] ?? 0;
      const w = qw[i] ?? 0;
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      let sl2 = fr(suml2 - fr(fr(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        const nl = Math.min(nmax, nearestInt(fr(fr(xi * sl2) / slx)));
        if (nl !== li) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}
