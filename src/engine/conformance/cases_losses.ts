// Conformance cases for the losses (cross-entropy, distillation KL) and the optimizer kernels.

import type { AdamWParams } from '../backend.js';
import { precompute, type Case, type CaseGenerator } from './case.js';
import { EXACT, maxAbs, type Draw } from './harness.js';

const ROWS = [1, 3, 7, 17, 33];
const VOCAB = [1, 2, 3, 7, 17, 33, 65, 257];

// ---- cross-entropy -----------------------------------------------------------------------------------------

interface CeInputs {
  N: number;
  V: number;
  ignoreIndex: number;
  logits: Float64Array;
  targets: Int32Array;
}

/** Logits, targets with about a quarter of the rows ignored; ignoreIndex is −100 or a real id (a pad token). */
function ceInputs(d: Draw, big: boolean): CeInputs {
  const N = big ? 9 : d.pick(ROWS);
  const V = big ? 4099 : d.pick(VOCAB);
  const ignoreIndex = d.bool(0.7) ? -100 : d.int(0, V - 1);
  const logits = d.normal(N * V, d.pick([1, 8]));
  const targets = d.ints(N, 0, V - 1);
  for (let n = 0; n < N; n++) if (d.bool(0.25)) targets[n] = ignoreIndex;
  return { N, V, ignoreIndex, logits, targets };
}

function ceName(c: CeInputs): string {
  const ignored = c.targets.filter((t) => t === c.ignoreIndex).length;
  return `N=${c.N} V=${c.V} ignoreIndex=${c.ignoreIndex} ignored=${ignored} max|logit|=${maxAbs(c.logits).toPrecision(3)}`;
}

export const crossEntropyForwardCases: CaseGenerator = (d) =>
  Array.from({ length: 16 }, (_, i): Case => {
    const c = ceInputs(d, i >= 14);
    const { N, V } = c;
    // loss = lse − logit: absolute error of a few ulp of the larger term.
    const scale = maxAbs(c.logits) + Math.log(V) + 1;
    return {
      kind: 'compare',
      name: ceName(c),
      run: (s) => {
        const losses = s.input(new Float64Array(N).fill(7)); // garbage: ignored rows must be written 0
        const lse = s.zeros(N);
        const counted = s.be.crossEntropyForward(s.input(c.logits), c.targets, losses, lse, N, V, c.ignoreIndex);
        // lse of ignored rows is not part of the contract (nothing reads it): compare counted rows only.
        const lseCounted = s.read(lse).filter((_, n) => c.targets[n] !== c.ignoreIndex);
        return { counted, losses: s.read(losses), lse: lseCounted };
      },
      tol: { counted: EXACT, losses: { rel: 1e-6, abs: 2e-6 * scale }, lse: { rel: 1e-6, abs: 2e-6 * scale } },
    };
  });

export const crossEntropyBackwardCases: CaseGenerator = (d) =>
  Array.from({ length: 16 }, (_, i): Case => {
    const c = ceInputs(d, i >= 14);
    const { N, V } = c;
    const dloss = d.normal(N);
    const garbage = d.normal(N * V);
    const { lse } = precompute((s) => {
      const l = s.zeros(N);
      s.be.crossEntropyForward(s.input(c.logits), c.targets, s.zeros(N), l, N, V, c.ignoreIndex);
      return { lse: s.read(l) };
    });
    return {
      kind: 'compare',
      name: ceName(c),
      run: (s) => {
        const dlogits = s.input(garbage);
        s.be.crossEntropyBackward(s.input(c.logits), c.targets, s.input(lse), s.input(dloss), dlogits, N, V, c.ignoreIndex);
        return { dlogits: s.read(dlogits) };
      },
      tol: { dlogits: { rel: 1e-5, abs: 1e-6 * maxAbs(dloss) } },
    };
  });

// ---- distillation KL ---------------------------------------------------------------------------------------

interface KlInputs {
  N: number;
  V: number;
  T: number;
  student: Float64Array;
  teacher: Float64Array;
}

function klInputs(d: Draw, big: boolean): KlInputs {
  const N = big ? 5 : d.pick(ROWS);
  const V = big ? 4099 : d.pick(VOCAB);
  const T = d.pick([1, 2, 0.5, 4]);
  const teacher = d.normal(N * V, 4);
  // A student near its teacher (the usual case late in distillation) or unrelated to it.
  const noise = d.normal(N * V, d.pick([0.1, 4]));
  const student = d.bool() ? teacher.map((t, i) => Math.fround(t + noise[i])) : noise;
  return { N, V, T, student, teacher };
}

const klName = (k: KlInputs): string => `N=${k.N} V=${k.V} T=${k.T}`;

export const klDivForwardCases: CaseGenerator = (d) =>
  Array.from({ length: 14 }, (_, i): Case => {
    const k = klInputs(d, i >= 12);
    // KL = Σ p_t·(log p_t − log p_s): each log-probability carries a few ulp of (max|z|/T + log V).
    const abs = 4e-6 * k.T * k.T * ((maxAbs(k.student) + maxAbs(k.teacher)) / k.T + Math.log(k.V) + 1);
    return {
      kind: 'compare',
      name: klName(k),
      run: (s) => {
        const losses = s.zeros(k.N);
        s.be.klDivForward(s.input(k.student), s.input(k.teacher), losses, k.N, k.V, k.T);
        return { losses: s.read(losses) };
      },
      tol: { losses: { rel: 1e-5, abs } },
    };
  });

export const klDivBackwardCases: CaseGenerator = (d) =>
  Array.from({ length: 14 }, (_, i): Case => {
    const k = klInputs(d, i >= 12);
    const dloss = d.normal(k.N);
    const garbage = d.normal(k.N * k.V);
    return {
      kind: 'compare',
      name: klName(k),
      run: (s) => {
        const dstudent = s.input(garbage);
        s.be.klDivBackward(s.input(k.student), s.input(k.teacher), s.input(dloss), dstudent, k.N, k.V, k.T);
        return { dstudent: s.read(dstudent) };
      },
      tol: { dstudent: { rel: 1e-5, abs: 2e-6 * k.T * maxAbs(dloss) } },
    };
  });

// ---- optimizer ---------------------------------------------------------------------------------------------

export const adamwCases: CaseGenerator = (d) =>
  [1, 3, 7, 8, 17, 33, 65, 257, 1000].map((n): Case => {
    const param = d.normal(n);
    const grad = d.normal(n, d.pick([1e-3, 1]));
    const m0 = d.normal(n, 0.1);
    const v0 = d.uniform(n, 0.01, 1); // second moments are non-negative
    const p: AdamWParams = {
      lr: d.pick([1e-3, 3e-4, 1e-2]), beta1: 0.9, beta2: d.pick([0.999, 0.95]), eps: 1e-8,
      weightDecay: d.pick([0, 0.01, 0.1]), step: d.pick([1, 2, 10, 1000]),
    };
    const mTol = { rel: 1e-6, abs: 1e-7 * (maxAbs(m0) + maxAbs(grad)) };
    const vTol = { rel: 1e-6, abs: 1e-7 * (maxAbs(v0) + maxAbs(grad) ** 2) };
    return {
      kind: 'compare',
      name: `n=${n} lr=${p.lr} beta2=${p.beta2} wd=${p.weightDecay} step=${p.step}`,
      run: (s) => {
        const pb = s.input(param);
        const mb = s.input(m0);
        const vb = s.input(v0);
        s.be.adamw(pb, s.input(grad), mb, vb, n, p);
        return { param: s.read(pb), m: s.read(mb), v: s.read(vb) };
      },
      // The update is lr · O(1) on parameters of O(1): a few ulp of the parameter plus 1e-5 of the step.
      tol: { param: { rel: 1e-6, abs: 1e-5 * p.lr * (1 + p.weightDecay * maxAbs(param)) + 1e-7 * maxAbs(param) }, m: mTol, v: vTol },
    };
  });

export const sumSquaresCases: CaseGenerator = (d) =>
  [1, 3, 7, 8, 17, 33, 65, 257, 4099, 100003].map((n): Case => {
    const x = d.normal(n, d.pick([1e-3, 1, 100]));
    return {
      kind: 'compare',
      name: `n=${n}`,
      run: (s) => ({ sum: s.be.sumSquares(s.input(x), n) }),
      // Squares of float32 values are exact in double; only the summation order differs.
      tol: { sum: { rel: 1e-9, abs: 0 } },
    };
  });
