// Element types a tensor may hold. Compute happens in f32; the others are storage formats for frozen weights
// (the layouts of ggml/llama.cpp for the block-quantized ones, so GGUF tensors are used without conversion).

export type DType =
  | 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'iq4_nl' | 'iq4_xs';

export interface DTypeInfo {
  /** elements per block (1 for plain floats) */
  blockSize: number;
  /** bytes per block */
  blockBytes: number;
}

// q8_0: f16 scale + 32 int8. q4_0: f16 scale + 16 bytes of nibbles. q4_k: 256-element super-blocks of
// 2×f16 + 12 bytes scales + 128 bytes nibbles. q6_k: 128 ql + 64 qh + 16 scales + f16 d. The others (q4_1, q5_0,
// q5_1, q2_k, q3_k, q5_k, iq4_nl, iq4_xs): read from llama.cpp's mixes; layouts in engine/quant/legacy.ts.
export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f32: { blockSize: 1, blockBytes: 4 },
  f16: { blockSize: 1, blockBytes: 2 },
  bf16: { blockSize: 1, blockBytes: 2 },
  q8_0: { blockSize: 32, blockBytes: 34 },
  q4_0: { blockSize: 32, blockBytes: 18 },
  q4_1: { blockSize: 32, blockBytes: 20 },
  q5_0: { blockSize: 32, blockBytes: 22 },
  q5_1: { blockSize: 32, blockBytes: 24 },
  q2_k: { blockSize: 256, blockBytes: 84 },
  q3_k: { blockSize: 256, blockBytes: 110 },
  q4_k: { blockSize: 256, blockBytes: 144 },
  q5_k: { blockSize: 256, blockBytes: 176 },
  q6_k: { blockSize: 256, blockBytes: 210 },
  iq4_nl: { blockSize: 32, blockBytes: 18 },
  iq4_xs: { blockSize: 256, blockBytes: 136 },
};

/** Bytes needed for n elements of dtype (n must be a multiple of the block size). */
export function dtypeBytes(dtype: DType, n: number): number {
  const info = DTYPES[dtype];
  if (n % info.blockSize !== 0) {
    throw new Error(`${n} elements is not a multiple of ${dtype}'s block size ${info.blockSize}`);
  }
  return (n / info.blockSize) * info.blockBytes;
}
