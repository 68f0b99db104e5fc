// ggml's block quantization formats and half-precision conversions, bit-exact with ggml's reference C code:
// the engine owns this arithmetic; src/formats only carries the bytes.

import type { DType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { checkLen, f32FromLeBytes, leBytesFromF32 } from './block.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half.js';
import {
  dequantizeIQ4_NL,
  dequantizeQ4_0,
  dequantizeQ4_1,
  dequantizeQ5_0,
  dequantizeQ5_1,
  dequantizeQ8_0,
  quantizeQ4_0,
  quantizeQ8_0,
} from './legacy.js';
import { quantizeIQ4_NL, quantizeQ4_0Weighted, quantizeQ4_1, quantizeQ5_0, quantizeQ5_1 } from './legacy-write.js';
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K } from './kquants-write.js';
import { dequantizeIQ4_XS, dequantizeQ2_K, dequantizeQ3_K, dequantizeQ4_K, dequantizeQ5_K, dequantizeQ6_K } from './kquants.js';

export * from './half.js';
export * from './legacy.js';
export * from './kquants.js';
export * from './legacy-write.js';
export * from './kquants-write.js';

// ---- by dtype --------------------------------------------------------------------------------------------------

/** Dtypes this project can write from f32 values, each bit-exact with ggml's writer (iq4_xs is read only). */
export type WritableDType = Exclude<DType, 'iq4_xs'>;

export function isWritableDType(d: DType): d is WritableDType {
  return d !== 'iq4_xs';
}

/** Types whose writer llama-quantize runs differently with an importance matrix (the others ignore one). */
export const IMATRIX_DTYPES: ReadonlySet<DType> = new Set<DType>(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl', 'iq4_xs', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k']);

/**
 * Encodes f32 values into `dtype` bytes. `weights`, when given, are importance weights (an imatrix row: one per
 * column, src being whole rows of weights.length values), used as ggml_quantize_chunk uses quant_weights; f32, f16,
 * bf16 and q8_0 ignore them, as ggml does.
 */
export function quantize(dtype: WritableDType, src: Float32Array, weights?: Float32Array): Uint8Array {
  switch (dtype) {
    case 'f32':
      return leBytesFromF32(src);
    case 'f16':
      return encodeF16(src);
    case 'bf16':
      return encodeBf16(src);
    case 'q8_0':
      return quantizeQ8_0(src);
    case 'q4_0':
      return weights === undefined ? quantizeQ4_0(src) : quantizeQ4_0Weighted(src, weights);
    case 'q4_1':
      return quantizeQ4_1(src, weights);
    case 'q5_0':
      return quantizeQ5_0(src, weights);
    case 'q5_1':
      return quantizeQ5_1(src, weights);
    case 'iq4_nl':
      return quantizeIQ4_NL(src, weights);
    case 'q2_k':
      return quantizeQ2_K(src, weights);
    case 'q3_k':
      return quantizeQ3_K(src, weights);
    case 'q4_k':
      return quantizeQ4_K(src, weights);
    case 'q5_k':
      return quantizeQ5_K(src, weights);
    case 'q6_k':
      return quantizeQ6_K(src, weights);
  }
}

/** Decodes n values of `dtype` from bytes (which must hold at least dtypeBytes(dtype, n)). */
export function dequantize(dtype: DType, bytes: Uint8Array, n: number): Float32Array {
  switch (dtype) {
    case 'f32':
      checkLen('f32', n, 1, n * 4, bytes.length);
      return f32FromLeBytes(bytes.subarray(0, n * 4));
    case 'f16':
      return decodeF16(bytes, n);
    case 'bf16':
      return decodeBf16(bytes, n);
    case 'q8_0':
      return dequantizeQ8_0(bytes, n);
    case 'q4_0':
      return dequantizeQ4_0(bytes, n);
    case 'q4_1':
      return dequantizeQ4_1(bytes, n);
    case 'q5_0':
      return dequantizeQ5_0(bytes, n);
    case 'q5_1':
      return dequantizeQ5_1(bytes, n);
    case 'q2_k':
      return dequantizeQ2_K(bytes, n);
    case 'q3_k':
      return dequantizeQ3_K(bytes, n);
    case 'q4_k':
      return dequantizeQ4_K(bytes, n);
    case 'q5_k':
      return dequantizeQ5_K(bytes, n);
    case 'q6_k':
      return dequantizeQ6_K(bytes, n);
    case 'iq4_nl':
      return dequantizeIQ4_NL(bytes, n);
    case 'iq4_xs':
      return dequantizeIQ4_XS(bytes, n);
  }
}

/** f32 values of any tensor: a copy of f32 data, or byte dtypes (f16, bf16, ggml blocks) decoded. */
export function tensorValues(t: Tensor): Float32Array {
  return t.dtype === 'f32' ? t.toArray() : dequantize(t.dtype, t.bytes, t.size);
}
