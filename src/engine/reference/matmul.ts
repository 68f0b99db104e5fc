// Reference batched matmul: the textbook triple loop, one dot product per output element, summed in double.

import type { Buf, MatmulParams } from '../backend.js';
import { needCount } from './check.js';

/**
 * C[b] (+)= op(A[b]) · op(B[b]) for b < batch, C[b] is [M, N] row-major.
 * A[b] starts at offA + b·strideA and is [M, K] (or [K, M] when transA: op(A) = Aᵀ).
 * B[b] starts at offB + b·strideB and is [K, N] (or [N, K] when transB: op(B) = Bᵀ, the y = x·Wᵀ layout).
 * A stride of 0 reuses one matrix for every batch item.
 *   C[i, j] = Σ_k op(A)[i, k] · op(B)[k, j]
 */
export function matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
  const { batch, M, N, K, transA, transB, strideA, strideB, strideC, offA, offB, offC, accumulate } = p;
  for (const [name, v] of [['batch', batch], ['M', M], ['N', N], ['K', K]] as const) needCount('matmul', name, v);
  checkExtent('A', a, offA, strideA, batch, M * K);
  checkExtent('B', b, offB, strideB, batch, K * N);
  checkExtent('C', c, offC, strideC, batch, M * N);
  for (let bi = 0; bi < batch; bi++) {
    const aBase = offA + bi * strideA;
    const bBase = offB + bi * strideB;
    const cBase = offC + bi * strideC;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const aik = transA ? a[aBase + k * M + i] : a[aBase + i * K + k];
          const bkj = transB ? b[bBase + j * K + k] : b[bBase + k * N + j];
          sum += aik * bkj;
        }
        const ci = cBase + i * N + j;
        c[ci] = accumulate ? c[ci] + sum : sum;
      }
    }
  }
}

/** Throws unless every batch item's matrix of `size` elements lies inside `buf`. */
function checkExtent(name: string, buf: Buf, off: number, stride: number, batch: number, size: number): void {
  if (batch === 0 || size === 0) return;
  const end = off + (batch - 1) * stride + size;
  if (off < 0 || stride < 0 || end > buf.length) {
    throw new RangeError(`reference matmul: ${name} (offset ${off}, batch stride ${stride}, ${batch} × ${size} elements) overruns its buffer of ${buf.length}`);
  }
}
