// Conformance cases for the fused model kernels: embedding, RMSNorm, RoPE, attention and softmax.

import assert from 'node:assert/strict';
import type { AttentionParams, RopeMode } from '../backend.js';
import { precompute, type Case, type CaseGenerator } from './case.js';
import { EXACT, maxAbs, mismatches, Scope, type Draw } from './harness.js';

const ROWS = [1, 3, 7, 17, 33];
const COLS = [1, 3, 7, 8, 16, 17, 33, 65, 257];

// ---- embedding ---------------------------------------------------------------------------------------------

export const embeddingForwardCases: CaseGenerator = (d) =>
  Array.from({ length: 10 }, (): Case => {
    const rows = d.pick([1, 3, 17, 65]);
    const N = d.pick(ROWS);
    const C = d.pick(COLS);
    const table = d.normal(rows * C);
    const ids = d.ints(N, 0, rows - 1);
    return {
      kind: 'compare',
      name: `rows=${rows} N=${N} C=${C}`,
      run: (s) => {
        const out = s.zeros(N * C);
        s.be.embeddingForward(s.input(table), ids, out, N, C);
        return { out: s.read(out) };
      },
      tol: { out: EXACT },
    };
  });

/** Scatter-add into a non-zero table with many repeated ids (few rows, many tokens). */
export const embeddingBackwardCases: CaseGenerator = (d) =>
  Array.from({ length: 10 }, (): Case => {
    const rows = d.pick([1, 3, 17]);
    const N = d.pick([3, 17, 65]);
    const C = d.pick(COLS);
    const dout = d.normal(N * C);
    const ids = d.ints(N, 0, rows - 1);
    const table0 = d.normal(rows * C);
    return {
      kind: 'compare',
      name: `rows=${rows} N=${N} C=${C} (duplicate ids)`,
      run: (s) => {
        const dtable = s.input(table0);
        s.be.embeddingBackward(s.input(dout), ids, dtable, N, C);
        return { dtable: s.read(dtable) };
      },
      tol: { dtable: { rel: 1e-6, abs: 1e-6 * N * (maxAbs(dout) + maxAbs(table0)) } },
    };
  });

// ---- RMSNorm -----------------------------------------------------------------------------------------------

export const rmsnormForwardCases: CaseGenerator = (d) =>
  Array.from({ length: 12 }, (_, i): Case => {
    const N = d.pick(ROWS);
    const C = i < 10 ? d.pick(COLS) : 1024;
    const x = d.normal(N * C, d.pick([0.01, 1, 30]));
    const w = d.normal(C);
    const eps = d.pick([1e-5, 1e-6]);
    return {
      kind: 'compare',
      name: `N=${N} C=${C} eps=${eps} max|x|=${maxAbs(x).toPrecision(3)}`,
      run: (s) => {
        const out = s.zeros(N * C);
        const rstd = s.zeros(N);
        s.be.rmsnormForward(s.input(x), s.input(w), out, rstd, N, C, eps);
        return { out: s.read(out), rstd: s.read(rstd) };
      },
      tol: { out: { rel: 1e-5, abs: 1e-6 * maxAbs(w) }, rstd: { rel: 1e-5, abs: 0 } },
    };
  });

export const rmsnormBackwardCases: CaseGenerator = (d) =>
  Array.from({ length: 12 }, (_, i): Case => {
    const N = d.pick(ROWS);
    const C = i < 10 ? d.pick(COLS) : 1024;
    const x = d.normal(N * C);
    const w = d.normal(C);
    const dout = d.normal(N * C);
    const dw0 = d.normal(C);
    const { rstd } = precompute((s) => {
      const out = s.zeros(N * C);
      const r = s.zeros(N);
      s.be.rmsnormForward(s.input(x), s.input(w), out, r, N, C, 1e-5);
      return { rstd: s.read(r) };
    });
    return {
      kind: 'compare',
      name: `N=${N} C=${C} (dw accumulates)`,
      run: (s) => {
        const dx = s.zeros(N * C);
        const dw = s.input(dw0);
        s.be.rmsnormBackward(s.input(dout), s.input(x), s.input(w), s.input(rstd), dx, dw, N, C);
        return { dx: s.read(dx), dw: s.read(dw) };
      },
      // dx = r·w·dout − (r³/C)·x·Σ dout·w·x cancels (to ~0 when C = 1): error floor from the first term's size.
      tol: {
        dx: { rel: 1e-5, abs: 4e-6 * maxAbs(rstd) * maxAbs(w) * maxAbs(dout), ofMax: 1e-5 },
        dw: { rel: 1e-5, abs: 1e-6 * (N + maxAbs(dw0)) },
      },
    };
  });

// ---- RoPE --------------------------------------------------------------------------------------------------

interface RopeShape {
  B: number;
  T: number;
  H: number;
  D: number;
  mode: RopeMode;
  inverse: boolean;
  maxPos: number;
}

function ropeInputs(d: Draw, r: RopeShape): { x: Float64Array; positions: Int32Array; invFreq: Float64Array } {
  const base = d.pick([10000, 500000]);
  const invFreq = new Float64Array(r.D / 2).map((_, i) => Math.fround(Math.pow(base, (-2 * i) / r.D)));
  // Consecutive positions from a random start (a KV-cache chunk) or scattered ones (packed sequences).
  const start = d.int(0, r.maxPos - r.T);
  const positions = d.bool(0.7) ? Int32Array.from({ length: r.T }, (_, t) => start + t) : d.ints(r.T, 0, r.maxPos - 1);
  return { x: d.normal(r.B * r.T * r.H * r.D), positions, invFreq };
}

function ropeShapes(d: Draw): RopeShape[] {
  const shapes: RopeShape[] = [];
  for (const mode of ['interleaved', 'halves'] as const) {
    for (const inverse of [false, true]) {
      for (let i = 0; i < 4; i++) {
        shapes.push({ B: d.int(1, 2), T: d.pick([1, 3, 7, 17]), H: d.pick([1, 2, 3, 4]), D: d.pick([2, 8, 16, 64]), mode, inverse, maxPos: 64 });
      }
      // Long-context positions: the angle p·θ reaches thousands of radians.
      shapes.push({ B: 1, T: 5, H: 2, D: 128, mode, inverse, maxPos: 8192 });
    }
  }
  return shapes;
}

export const ropeCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  for (const r of ropeShapes(d)) {
    const { x, positions, invFreq } = ropeInputs(d, r);
    const n = x.length;
    // A float32 angle p·θ carries an absolute error of about p·θ·6e-8 rad; the reference forms it in double.
    const maxAngle = Math.max(...positions) * invFreq[0];
    const abs = (2e-6 + 1.2e-7 * maxAngle) * maxAbs(x);
    const name = `B=${r.B} T=${r.T} H=${r.H} D=${r.D} ${r.mode}${r.inverse ? ' inverse' : ''} maxPos=${Math.max(...positions)}`;
    cases.push({
      kind: 'compare',
      name,
      run: (s) => {
        const out = s.zeros(n);
        s.be.rope(s.input(x), out, r.B, r.T, r.H, r.D, positions, s.input(invFreq), r.mode, r.inverse);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 0, abs } },
    });
    if (r.inverse) continue;
    // inverse(rope(x)) = x on the backend itself, in place (out = x) for the inverse.
    cases.push({
      kind: 'property',
      name: `${name}: inverse(rope(x)) = x, in place`,
      check: (be) => {
        const s = new Scope(be);
        try {
          const y = s.zeros(n);
          const freq = s.input(invFreq);
          be.rope(s.input(x), y, r.B, r.T, r.H, r.D, positions, freq, r.mode, false);
          be.rope(y, y, r.B, r.T, r.H, r.D, positions, freq, r.mode, true);
          const diff = mismatches(s.read(y), x, { rel: 0, abs: 2 * abs });
          assert.equal(diff, '', diff);
        } finally {
          s.freeAll();
        }
      },
    });
  }
  return cases;
};

// ---- attention ---------------------------------------------------------------------------------------------

function attentionShapes(d: Draw): AttentionParams[] {
  const shapes: AttentionParams[] = [];
  const add = (B: number, Tq: number, Tk: number, H: number, G: number, D: number, causal: boolean): void => {
    shapes.push({ B, Tq, Tk, H, G, D, scale: 1 / Math.sqrt(D), qOffset: causal || d.bool() ? Tk - Tq : 0, causal });
  };
  for (const [H, G] of [[6, 2], [4, 4], [8, 1], [2, 1], [1, 1]] as const) {
    for (const causal of [true, false]) {
      for (let i = 0; i < 2; i++) {
        const T = d.pick([1, 3, 7, 17, 33]);
        add(d.int(1, 2), T, T, H, G, d.pick([8, 16, 64]), causal); // training: Tq = Tk
      }
      add(1, 1, d.pick([7, 17, 65]), H, G, d.pick([8, 16, 64]), causal); // decode: one query, KV cache
      add(d.int(1, 2), d.pick([3, 7]), d.pick([17, 33]), H, G, d.pick([8, 16, 64]), causal); // chunked prefill
    }
  }
  add(1, 129, 129, 4, 2, 64, true);
  add(1, 1, 257, 8, 2, 64, true);
  return shapes;
}

function attentionName(p: AttentionParams): string {
  return `B=${p.B} Tq=${p.Tq} Tk=${p.Tk} H=${p.H} G=${p.G} D=${p.D} qOffset=${p.qOffset}${p.causal ? ' causal' : ''}`;
}

export const attentionForwardCases: CaseGenerator = (d) =>
  attentionShapes(d).map((p): Case => {
    const q = d.normal(p.B * p.Tq * p.H * p.D);
    const k = d.normal(p.B * p.Tk * p.G * p.D);
    const v = d.normal(p.B * p.Tk * p.G * p.D);
    return {
      kind: 'compare',
      name: attentionName(p),
      run: (s) => {
        const out = s.zeros(q.length);
        const lse = s.zeros(p.B * p.H * p.Tq);
        s.be.attentionForward(s.input(q), s.input(k), s.input(v), out, lse, p);
        return { out: s.read(out), lse: s.read(lse) };
      },
      // out is a convex combination of value rows: its error follows max|v|.
      tol: { out: { rel: 1e-5, abs: 1e-5 * maxAbs(v) }, lse: { rel: 1e-5, abs: 1e-5 } },
    };
  });

export const attentionBackwardCases: CaseGenerator = (d) =>
  attentionShapes(d).map((p): Case => {
    const q = d.normal(p.B * p.Tq * p.H * p.D);
    const k = d.normal(p.B * p.Tk * p.G * p.D);
    const v = d.normal(p.B * p.Tk * p.G * p.D);
    const dout = d.normal(q.length);
    const saved = precompute((s) => {
      const out = s.zeros(q.length);
      const lse = s.zeros(p.B * p.H * p.Tq);
      s.be.attentionForward(s.input(q), s.input(k), s.input(v), out, lse, p);
      return { out: s.read(out), lse: s.read(lse) };
    });
    const garbage = { dq: d.normal(q.length), dk: d.normal(k.length), dv: d.normal(v.length) };
    // Gradients are sums over many rows that largely cancel: compare against the largest gradient element, with
    // a floor for ds = p·(dp − Δ), a difference of D-term dot products (exactly 0 when a row sees one key).
    const floor = 1e-6 * p.scale * Math.sqrt(p.D) * maxAbs(dout) * maxAbs(v) * Math.max(maxAbs(q), maxAbs(k));
    const tol = { rel: 1e-5, abs: floor, ofMax: 2e-5 };
    return {
      kind: 'compare',
      name: attentionName(p),
      run: (s) => {
        // Outputs start as garbage: the kernel writes them, it does not accumulate.
        const dq = s.input(garbage.dq);
        const dk = s.input(garbage.dk);
        const dv = s.input(garbage.dv);
        s.be.attentionBackward(s.input(q), s.input(k), s.input(v), s.input(saved.out), s.input(saved.lse), s.input(dout), dq, dk, dv, p);
        return { dq: s.read(dq), dk: s.read(dk), dv: s.read(dv) };
      },
      tol: { dq: tol, dk: tol, dv: tol },
    };
  });

// ---- softmax -----------------------------------------------------------------------------------------------

export const softmaxForwardCases: CaseGenerator = (d) =>
  Array.from({ length: 14 }, (_, i): Case => {
    const N = d.pick(ROWS);
    const C = i < 12 ? d.pick(COLS) : 4099;
    const x = d.normal(N * C, d.pick([1, 10]));
    return {
      kind: 'compare',
      name: `N=${N} C=${C} max|x|=${maxAbs(x).toPrecision(3)}`,
      run: (s) => {
        const out = s.zeros(N * C);
        s.be.softmaxForward(s.input(x), out, N, C);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-5, abs: 1e-7 } },
    };
  });

export const softmaxBackwardCases: CaseGenerator = (d) =>
  Array.from({ length: 14 }, (_, i): Case => {
    const N = d.pick(ROWS);
    const C = i < 12 ? d.pick(COLS) : 4099;
    const x = d.normal(N * C, 3);
    const dout = d.normal(N * C);
    const { y } = precompute((s) => {
      const out = s.zeros(N * C);
      s.be.softmaxForward(s.input(x), out, N, C);
      return { y: s.read(out) };
    });
    return {
      kind: 'compare',
      name: `N=${N} C=${C}`,
      run: (s) => {
        const dx = s.zeros(N * C);
        s.be.softmaxBackward(s.input(y), s.input(dout), dx, N, C);
        return { dx: s.read(dx) };
      },
      tol: { dx: { rel: 1e-5, abs: 1e-6 * maxAbs(dout) } },
    };
  });
