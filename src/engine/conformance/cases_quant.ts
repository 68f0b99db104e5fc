// Conformance cases for products with frozen byte-dtype weights (f16, bf16, ggml q8_0/q4_0/q4_1/q5_0/q5_1, the
// k-quants q2_k…q6_k, iq4_nl/iq4_xs).
// Decode-shaped q8_0/q4_0/q4_1/q5_0/q5_1/iq4_nl products (M ≤ INT8_DOT_MAX_M) quantize x to int8 blocks first, on every backend alike:
// one value rounded differently moves a result by ~max|x|/127 · |w|, far past the tolerance, so these cases check
// the rounding bit for bit (ties included) and the integer dots over odd and even block counts. (The fall back to
// the float path for a non-finite x is tested in native/quant.test.ts: the harness bounds are not made for inf.)
// With inference (no tape) every M takes the int8 path: cases past one 64-row tile of the native task, with a
// remainder, check that rows stay independent of how they are tiled and chunked.
// The k-quants (q2_k … q6_k) take the int8 path too, x as q8_K superblocks of 256, and their float steps follow one
// fixed order (native/src/kernels_kquant.h), so those cases are exact: every SIMD level must give the reference's
// bits. Their shapes cover each kernel's register blocks (up to 4 weight rows × 4 x rows, with remainders) and
// superblock counts 1..4; their ties sit at superblock granularity (one ±127 per 256 values).
// f16/bf16 weights take two native paths by M (a row dot converted in registers up to 16 rows, in chunks of 4;
// past that a GEMM whose B panels are converted as they are packed): cases on both sides of each boundary, with K
// past the SIMD widths' tails and past one KC block, weights holding ±0 and subnormals; gatherQuant (embedding
// rows) must convert every value exactly, the largest finite values included. With inference, bf16 products round
// x to bf16 first (llama.cpp's vec_dot_type): one value rounded the other way moves a result by ~2⁻⁸·|x|·|w|, so
// cases whose x sits exactly halfway between two bf16 values check ties to even on every path.
// Training products (a tape, M past the int8 path) dequantize the weight in panels: the forward packs x once per
// panel of up to 256K values (so a 2048-wide weight of 300 rows is three panels, the last short), the backward sums
// panels of 256 rows into dx; panelShapes cover both with a remainder, for a type of each family.

import type { DType } from '../dtype.js';
import { DTYPES, dtypeBytes } from '../dtype.js';
import { dequantize, encodeBf16, encodeF16, f32ToF16Bits } from '../quant/index.js';
import type { Case, CaseGenerator } from './case.js';
import { EXACT, maxAbs, type Draw } from './harness.js';
import { INT8_DOT_MAX_M } from '../reference/quant.js';

type ByteDType = Exclude<DType, 'f32'>;
/** The int8 path's weights (x quantized to q8 blocks; the rest are repacked into q8_0 blocks natively). */
const INT8_DTYPES = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl'] as const;
/** The k-quant int8 path's weights (x quantized to q8_K superblocks; exact, see the header). */
const KQUANT_DTYPES: readonly ByteDType[] = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];

/** Whether a product takes the k-quant int8 path (and must then match the reference exactly). */
function kquantInt8(q: QuantShape): boolean {
  return KQUANT_DTYPES.includes(q.dtype) && (q.M <= INT8_DOT_MAX_M || q.inference === true);
}
const BYTE_DTYPES: readonly ByteDType[] = [
  'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs',
];

/** Where each block keeps its f16 scale(s), in bytes from the block start (ggml layouts; see dtype.ts). */
const SCALE_OFFSETS: Readonly<Record<ByteDType, readonly number[]>> = {
  f16: [], bf16: [], q8_0: [0], q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q2_k: [80, 82], q3_k: [108],
  q4_k: [0, 2], q5_k: [0, 2], q6_k: [208], iq4_nl: [0], iq4_xs: [0],
};

/** Values that test a half conversion: ±0, the smallest subnormals, the largest finite values, ±1. */
const HALF_SPECIALS: Readonly<Record<'f16' | 'bf16', readonly number[]>> = {
  f16: [0, -0, 2 ** -24, -(2 ** -24), 1023 * 2 ** -24, 2 ** -14, 65504, -65504, 1, -1],
  bf16: [0, -0, 2 ** -133, -(2 ** -133), 2 ** -126, 127 * 2 ** -133, 3.3895313892515355e38, -3.3895313892515355e38, 1, -1],
};

/** n normal values with every `every`-th one replaced by a special (big ones only when `big`). */
function halfValues(d: Draw, dtype: 'f16' | 'bf16', n: number, every: number, big: boolean): Float32Array {
  const v = Float32Array.from(d.normal(n));
  const specials = HALF_SPECIALS[dtype].filter((x) => big || Math.abs(x) <= 1);
  for (let i = d.int(0, every - 1); i < n; i += every) v[i] = d.pick(specials);
  return v;
}

/** A weight [N, K] in `dtype`: floats encoded for f16/bf16 (with small specials); random quants with sane f16 scales. */
function randomWeight(d: Draw, dtype: ByteDType, N: number, K: number): Uint8Array {
  if (dtype === 'f16') return encodeF16(halfValues(d, dtype, N * K, 7, false));
  if (dtype === 'bf16') return encodeBf16(halfValues(d, dtype, N * K, 7, false));
  const bytes = Uint8Array.from({ length: dtypeBytes(dtype, N * K) }, () => d.int(0, 255));
  const { blockBytes } = DTYPES[dtype];
  for (let o = 0; o < bytes.length; o += blockBytes) {
    for (const at of SCALE_OFFSETS[dtype]) {
      const h = f32ToF16Bits(d.uniform(1, 0.001, 0.05)[0]);
      bytes[o + at] = h & 0xff;
      bytes[o + at + 1] = h >>> 8;
    }
  }
  return bytes;
}

interface QuantShape {
  dtype: ByteDType;
  M: number;
  N: number;
  K: number;
  w: Uint8Array;
  /** max |dequant(w)|, for the tolerance */
  wMax: number;
  /** x rounded as llama.cpp does (no tape): the int8 path at every M, bf16 x for bf16 weights */
  inference?: boolean;
}

function quantShapes(d: Draw): QuantShape[] {
  const shapes: QuantShape[] = [];
  for (const dtype of BYTE_DTYPES) {
    const block = DTYPES[dtype].blockSize;
    for (let i = 0; i < 3; i++) {
      const M = d.pick([1, 1, 3, 7, 17]); // M = 1 is decode
      const N = d.pick([1, 3, 17, 33]);
      const K = block === 1 ? d.pick([1, 7, 33, 65]) : block * d.int(1, 2);
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)) });
    }
  }
  for (const dtype of ['f16', 'bf16'] as const) {
    // row dots (M ≤ 16: chunks of 4 and remainders), then the GEMM (M ≥ 17, past its 12-row micro-tile); K across
    // the 8/16/32-value SIMD steps and their tails, and past one 384-deep KC block; N past one 32-column panel
    for (const M of [1, 2, 4, 5, 13, 16, 17, 40]) {
      const N = d.pick([1, 3, 33, 70]);
      const K = d.pick([8, 15, 16, 17, 31, 32, 47, 64, 100, 400]);
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)) });
    }
  }
  for (const M of [1, 7, 16, 17, 40]) { // bf16 with x rounded to bf16: both paths
    const [N, K] = [d.pick([3, 33]), d.pick([17, 64, 100])];
    const w = randomWeight(d, 'bf16', N, K);
    shapes.push({ dtype: 'bf16', M, N, K, w, wMax: maxAbs(dequantize('bf16', w, N * K)), inference: true });
  }
  for (const dtype of INT8_DTYPES) {
    for (let i = 0; i < 3; i++) { // the int8 path: every M it takes, block counts 3..9 (pairs and a last odd one)
      // the first: one full chunk of the kernels' QDOT_MAX_M = INT8_DOT_MAX_M / 2 rows and a one-row remainder
      const M = i === 0 ? INT8_DOT_MAX_M / 2 + 1 : d.int(1, INT8_DOT_MAX_M);
      const N = d.pick([1, 17, 33]);
      const K = 32 * d.int(3, 9);
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)) });
    }
    // prefill-shaped with inference: just past the decode limit, and two tiles of 64 rows with a chunk remainder
    for (const M of [INT8_DOT_MAX_M + 1, 64 + 4 * d.int(1, 15) + d.int(1, 3)]) {
      const [N, K] = [d.pick([3, 17]), 32 * d.int(2, 5)];
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)), inference: true });
    }
  }
  for (const dtype of KQUANT_DTYPES) {
    // decode: a full 4 × 4 register block with remainders (N = 4k + 1..3 weight rows, M = 5), then random shapes
    for (const [M, N] of [[INT8_DOT_MAX_M / 2 + 1, 4 * d.int(1, 4) + d.int(1, 3)], [d.int(1, INT8_DOT_MAX_M), d.pick([1, 2, 3, 8, 17])]]) {
      const K = 256 * d.int(1, 4);
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)) });
    }
    // prefill-shaped with inference: just past the decode limit, and two tiles of 64 rows with a chunk remainder
    for (const M of [INT8_DOT_MAX_M + 1, 64 + 4 * d.int(1, 15) + d.int(1, 3)]) {
      const [N, K] = [d.pick([3, 6, 9]), 256 * d.int(1, 2)];
      const w = randomWeight(d, dtype, N, K);
      shapes.push({ dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)), inference: true });
    }
  }
  return shapes;
}

/** Training-shaped products over several weight panels (see the header), one type of each family. */
function panelShapes(d: Draw): QuantShape[] {
  return (['q8_0', 'q5_0', 'q4_k', 'q6_k', 'iq4_xs'] as const).map((dtype) => {
    const [M, N, K] = [INT8_DOT_MAX_M + d.int(9, 15), 300, 2048];
    const w = randomWeight(d, dtype, N, K);
    return { dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)) };
  });
}

/**
 * x[M, K] for the int8 path's rounding, in blocks of `block` values (32: q8 blocks; 256: q8_K superblocks): in each
 * even block one value ±127 (so the quantization step is exactly 1) and the rest halves k + 0.5 (ties, which round
 * to even), block 1 all zero, and the other blocks normal values scaled by 2^i (the step is then no round number).
 */
function tieRows(d: Draw, M: number, K: number, block = 32): Float64Array {
  const x = d.normal(M * K);
  for (let m = 0; m < M; m++) {
    for (let b = 0; b < K / block; b++) {
      const o = m * K + b * block;
      if (b === 1) x.fill(0, o, o + block);
      else if (b % 2 === 0) {
        for (let j = 0; j < block; j++) x[o + j] = d.int(-127, 126) + 0.5;
        x[o + d.int(0, block - 1)] = d.bool() ? 127 : -127;
      } else {
        for (let j = 0; j < block; j++) x[o + j] = Math.fround(x[o + j] * 2 ** (b % 7));
      }
    }
  }
  return x;
}

/** n values, every other one exactly halfway between two bf16 values (the low 16 bits 0x8000; odd and even highs). */
function bf16TieRows(d: Draw, n: number): Float64Array {
  const x = d.normal(n);
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  for (let i = 0; i < n; i += 2) {
    f[0] = x[i];
    bits[0] = (bits[0] & 0xffff0000) | 0x8000;
    x[i] = f[0];
  }
  return x;
}

function quantCase(q: QuantShape, x: Float64Array, what: string): Case {
  return {
    kind: 'compare',
    name: `${q.dtype} M=${q.M} N=${q.N} K=${q.K}${q.inference === true ? ' inference' : ''}${what}`,
    run: (s) => {
      const out = s.input(new Float64Array(q.M * q.N).fill(3)); // garbage: written, not accumulated
      s.be.matmulQuant(s.input(x), q.w, q.dtype, out, q.M, q.N, q.K, q.inference === true);
      return { out: s.read(out) };
    },
    tol: { out: kquantInt8(q) ? EXACT : { rel: 1e-6, abs: 1e-6 * q.K * maxAbs(x) * q.wMax } },
  };
}

export const matmulQuantCases: CaseGenerator = (d) => {
  const cases = [...quantShapes(d), ...panelShapes(d)].map((q) => quantCase(q, d.normal(q.M * q.K), ''));
  for (const dtype of INT8_DTYPES) {
    for (const [M, inference] of [[INT8_DOT_MAX_M, false], [INT8_DOT_MAX_M * 9 + 3, true]] as const) {
      const [N, K] = [17, 32 * 7];
      const w = randomWeight(d, dtype, N, K);
      const q: QuantShape = { dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)), inference };
      cases.push(quantCase(q, tieRows(d, M, K), ' (ties)'));
    }
  }
  for (const dtype of KQUANT_DTYPES) {
    for (const [M, inference] of [[INT8_DOT_MAX_M, false], [INT8_DOT_MAX_M * 9 + 3, true]] as const) {
      const [N, K] = [7, 256 * 4];
      const w = randomWeight(d, dtype, N, K);
      const q: QuantShape = { dtype, M, N, K, w, wMax: maxAbs(dequantize(dtype, w, N * K)), inference };
      cases.push(quantCase(q, tieRows(d, M, K, 256), ' (ties)'));
    }
  }
  for (const M of [3, 40]) { // bf16 inference: every other x exactly halfway between two bf16 values
    const [N, K] = [17, 47];
    const w = randomWeight(d, 'bf16', N, K);
    const q: QuantShape = { dtype: 'bf16', M, N, K, w, wMax: maxAbs(dequantize('bf16', w, N * K)), inference: true };
    cases.push(quantCase(q, bf16TieRows(d, M * K), ' (ties)'));
  }
  return cases;
};

export const matmulQuantTCases: CaseGenerator = (d) =>
  [...quantShapes(d), ...panelShapes(d)].map((q): Case => {
    const dy = d.normal(q.M * q.N);
    return {
      kind: 'compare',
      name: `${q.dtype} M=${q.M} N=${q.N} K=${q.K}`,
      run: (s) => {
        const dx = s.input(new Float64Array(q.M * q.K).fill(3)); // garbage: written, not accumulated
        s.be.matmulQuantT(s.input(dy), q.w, q.dtype, dx, q.M, q.N, q.K);
        return { dx: s.read(dx) };
      },
      tol: { dx: { rel: 1e-6, abs: 1e-6 * q.N * maxAbs(dy) * q.wMax } },
    };
  });

/** Rows of a table in every byte dtype, exact: the half types with their specials at full range, odd widths. */
export const gatherQuantCases: CaseGenerator = (d) =>
  BYTE_DTYPES.flatMap((dtype) => [0, 1, 2].map((i): Case => {
    const block = DTYPES[dtype].blockSize;
    const V = d.pick([1, 5, 17]);
    const C = block === 1 ? [1, 17, 75][i] : block * d.int(1, 3);
    const table = dtype === 'f16' || dtype === 'bf16'
      ? (dtype === 'f16' ? encodeF16 : encodeBf16)(halfValues(d, dtype, V * C, 3, true))
      : randomWeight(d, dtype, V, C);
    const N = d.pick([1, 4, 9]);
    const ids = d.ints(N, 0, V - 1);
    return {
      kind: 'compare',
      name: `${dtype} V=${V} C=${C} N=${N}`,
      run: (s) => {
        const out = s.input(new Float64Array(N * C).fill(3)); // garbage: written
        s.be.gatherQuant(table, dtype, ids, out, N, C);
        return { out: s.read(out) };
      },
      tol: { out: EXACT },
    };
  }));

/** Low-rank deltas on chosen rows (repeats and gaps included), ranks and widths past the SIMD steps. */
export const lowRankRowsCases: CaseGenerator = (d) =>
  [[1, 3, 16, 17, 4], [5, 33, 8, 70, 16], [9, 100, 16, 33, 1]].map(([R, K, r, N, G]): Case => {
    const [x, A, B, out0] = [d.normal(R * K), d.normal(r * K), d.normal(N * r), d.normal(R * N)];
    const rows = d.ints(G, 0, R - 1);
    const k = d.uniform(1, -2, 2)[0];
    return {
      kind: 'compare',
      name: `R=${R} K=${K} r=${r} N=${N} rows=[${rows.join(',')}]`,
      run: (s) => {
        const out = s.input(out0);
        s.be.lowRankRows(s.input(x), rows, s.input(A), s.input(B), out, K, N, r, k);
        return { out: s.read(out) };
      },
      tol: { out: { rel: 1e-5, abs: 1e-5 * K * r * G * maxAbs(x) * maxAbs(A) * maxAbs(B) * Math.max(1, Math.abs(k)) } },
    };
  });
