// Conformance cases for batched matmul: every transposition, batches with a broadcast operand, padded batch
// strides, offsets, accumulate, odd sizes that leave remainders in every tiling, and the skinny shapes of LoRA.

import type { MatmulParams } from '../backend.js';
import type { Case, CaseGenerator } from './case.js';
import { maxAbs, type Draw } from './harness.js';

interface MatmulShape {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  broadcastA: boolean;
  broadcastB: boolean;
  accumulate: boolean;
  /** extra elements before the first matrix / between batch items */
  offset: number;
  pad: number;
}

function matmulCase(d: Draw, m: MatmulShape): Case {
  const { batch, M, N, K, offset, pad } = m;
  // Batch strides: M·K (+ padding) per item, or 0 to reuse one matrix for the whole batch.
  const strideA = m.broadcastA ? 0 : M * K + pad;
  const strideB = m.broadcastB ? 0 : K * N + pad;
  const strideC = M * N + pad;
  const p: MatmulParams = {
    batch, M, N, K, transA: m.transA, transB: m.transB, strideA, strideB, strideC,
    offA: offset, offB: 2 * offset, offC: offset, accumulate: m.accumulate,
  };
  const extent = (stride: number, items: number) => (batch - 1) * stride + items;
  const a = d.normal(p.offA + extent(strideA, M * K));
  const b = d.normal(p.offB + extent(strideB, K * N));
  const c0 = d.normal(p.offC + extent(strideC, M * N));
  // Each element is a K-term dot product: bound its float32 error by K · max|a| · max|b| (plus the old C).
  const abs = 1e-6 * K * maxAbs(a) * maxAbs(b) + (m.accumulate ? 1e-6 * maxAbs(c0) : 0);
  const flags = [m.transA && 'transA', m.transB && 'transB', m.broadcastA && 'strideA=0', m.broadcastB && 'strideB=0', m.accumulate && 'accumulate']
    .filter((f) => f)
    .join(' ');
  return {
    kind: 'compare',
    name: `batch=${batch} M=${M} N=${N} K=${K} off=${offset} pad=${pad} ${flags}`,
    run: (s) => {
      // Without accumulate C starts as garbage the kernel must overwrite; gaps between items must survive.
      const c = s.input(c0);
      s.be.matmul(s.input(a), s.input(b), c, p);
      return { c: s.read(c) };
    },
    tol: { c: { rel: 1e-6, abs } },
  };
}

export const matmulCases: CaseGenerator = (d) => {
  const cases: Case[] = [];
  const dims = [1, 2, 3, 7, 8, 16, 17, 33, 65];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      // Plain single products over mixed odd sizes.
      for (let i = 0; i < 6; i++) {
        cases.push(matmulCase(d, {
          batch: 1, M: d.pick(dims), N: d.pick(dims), K: d.pick(dims), transA, transB,
          broadcastA: false, broadcastB: false, accumulate: false, offset: 0, pad: 0,
        }));
      }
      // Batches, broadcast B (a shared weight), offsets, padding between items, accumulate.
      for (let i = 0; i < 6; i++) {
        cases.push(matmulCase(d, {
          batch: d.int(2, 4), M: d.pick(dims), N: d.pick(dims), K: d.pick(dims), transA, transB,
          broadcastA: i === 5, broadcastB: i % 2 === 0, accumulate: d.bool(), offset: d.int(1, 9), pad: d.pick([0, 3]),
        }));
      }
    }
  }
  // Shapes of real layers: a vector times a matrix (decode), a tall thin product, and two larger squares.
  const big: Array<[number, number, number, boolean, boolean]> = [
    [1, 257, 129, false, true],
    [129, 3, 257, false, false],
    [129, 129, 129, true, false],
    [65, 257, 129, false, true],
  ];
  for (const [M, N, K, transA, transB] of big) {
    cases.push(matmulCase(d, { batch: 1, M, N, K, transA, transB, broadcastA: false, broadcastB: false, accumulate: d.bool(), offset: 0, pad: 0 }));
  }
  // Skinny products of a rank-16 adapter (LoRA): N <= 16 (the narrow kernel, full and masked widths), K = 16, M = 16,
  // and M = 1..3 rows; the 257-row ones are large enough to be split over threads, with a row tail.
  const skinny: Array<[number, number, number]> = [
    [77, 16, 40], [77, 13, 40], [257, 16, 65], [257, 9, 65], [77, 40, 16], [16, 77, 40], [1, 16, 40], [2, 16, 16], [3, 40, 16],
  ];
  for (const [M, N, K] of skinny) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        cases.push(matmulCase(d, { batch: 1, M, N, K, transA, transB, broadcastA: false, broadcastB: false, accumulate: d.bool(), offset: 0, pad: 0 }));
      }
    }
  }
  return cases;
};
