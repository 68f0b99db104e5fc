// GGUF constants: ggml tensor type ids with their block layouts, and GGUF metadata value types.
//
// Sources: llama.cpp ggml/include/ggml.h (enum ggml_type), ggml/src/ggml.c (type_traits: block size, bytes per
// block), gguf-py/gguf/constants.py (GGML_QUANT_SIZES, GGUFValueType). Ids are part of the file format: never renumber.

import type { DType } from '../engine/dtype.js';

export interface GgmlTypeInfo {
  /** ggml's name, as printed by llama.cpp (e.g. q4_K) */
  name: string;
  /** values per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
  /** our dtype when this project can decode it, else null */
  dtype: DType | null;
}

/** Every ggml type id that may appear in a GGUF file (removed ids 4, 5, 31–33, 36–38 are absent on purpose). */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map<number, GgmlTypeInfo>([
  [0, { name: 'f32', blockSize: 1, typeSize: 4, dtype: 'f32' }],
  [1, { name: 'f16', blockSize: 1, typeSize: 2, dtype: 'f16' }],
  [2, { name: 'q4_0', blockSize: 32, typeSize: 18, dtype: 'q4_0' }],
  [3, { name: 'q4_1', blockSize: 32, typeSize: 20, dtype: 'q4_1' }],
  [6, { name: 'q5_0', blockSize: 32, typeSize: 22, dtype: 'q5_0' }],
  [7, { name: 'q5_1', blockSize: 32, typeSize: 24, dtype: 'q5_1' }],
  [8, { name: 'q8_0', blockSize: 32, typeSize: 34, dtype: 'q8_0' }],
  [9, { name: 'q8_1', blockSize: 32, typeSize: 40, dtype: null }],
  [10, { name: 'q2_K', blockSize: 256, typeSize: 84, dtype: 'q2_k' }],
  [11, { name: 'q3_K', blockSize: 256, typeSize: 110, dtype: 'q3_k' }],
  [12, { name: 'q4_K', blockSize: 256, typeSize: 144, dtype: 'q4_k' }],
  [13, { name: 'q5_K', blockSize: 256, typeSize: 176, dtype: 'q5_k' }],
  [14, { name: 'q6_K', blockSize: 256, typeSize: 210, dtype: 'q6_k' }],
  [15, { name: 'q8_K', blockSize: 256, typeSize: 292, dtype: null }],
  [16, { name: 'iq2_xxs', blockSize: 256, typeSize: 66, dtype: null }],
  [17, { name: 'iq2_xs', blockSize: 256, typeSize: 74, dtype: null }],
  [18, { name: 'iq3_xxs', blockSize: 256, typeSize: 98, dtype: null }],
  [19, { name: 'iq1_s', blockSize: 256, typeSize: 50, dtype: null }],
  [20, { name: 'iq4_nl', blockSize: 32, typeSize: 18, dtype: 'iq4_nl' }],
  [21, { name: 'iq3_s', blockSize: 256, typeSize: 110, dtype: null }],
  [22, { name: 'iq2_s', blockSize: 256, typeSize: 82, dtype: null }],
  [23, { name: 'iq4_xs', blockSize: 256, typeSize: 136, dtype: 'iq4_xs' }],
  [24, { name: 'i8', blockSize: 1, typeSize: 1, dtype: null }],
  [25, { name: 'i16', blockSize: 1, typeSize: 2, dtype: null }],
  [26, { name: 'i32', blockSize: 1, typeSize: 4, dtype: null }],
  [27, { name: 'i64', blockSize: 1, typeSize: 8, dtype: null }],
  [28, { name: 'f64', blockSize: 1, typeSize: 8, dtype: null }],
  [29, { name: 'iq1_m', blockSize: 256, typeSize: 56, dtype: null }],
  [30, { name: 'bf16', blockSize: 1, typeSize: 2, dtype: 'bf16' }],
  [34, { name: 'tq1_0', blockSize: 256, typeSize: 54, dtype: null }],
  [35, { name: 'tq2_0', blockSize: 256, typeSize: 66, dtype: null }],
  [39, { name: 'mxfp4', blockSize: 32, typeSize: 17, dtype: null }],
  [40, { name: 'nvfp4', blockSize: 64, typeSize: 36, dtype: null }],
  [41, { name: 'q1_0', blockSize: 128, typeSize: 18, dtype: null }],
  [42, { name: 'q2_0', blockSize: 64, typeSize: 18, dtype: null }],
]);

/** ggml type id for each of our dtypes. */
export const GGML_TYPE_OF: Readonly<Record<DType, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q2_k: 10,
  q3_k: 11,
  q4_k: 12,
  q5_k: 13,
  q6_k: 14,
  iq4_nl: 20,
  iq4_xs: 23,
  bf16: 30,
};

/** GGUF metadata scalar types; the index in this list is the id written in the file (9 = array, handled apart). */
export const GGUF_SCALAR_TYPES = [
  'uint8', // 0
  'int8', // 1
  'uint16', // 2
  'int16', // 3
  'uint32', // 4
  'int32', // 5
  'float32', // 6
  'bool', // 7
  'string', // 8
  'array', // 9: not a scalar; a placeholder so indexes equal ids
  'uint64', // 10
  'int64', // 11
  'float64', // 12
] as const;

export const GGUF_TYPE_ARRAY = 9;

export type GgufScalarType = Exclude<(typeof GGUF_SCALAR_TYPES)[number], 'array'>;
/** A metadata value's type. Arrays of arrays are not allowed (llama.cpp's gguf.cpp rejects them too). */
export type GgufType = GgufScalarType | { array: GgufScalarType };

/** 64-bit integers are numbers when they fit exactly (|v| ≤ 2^53 − 1), bigints otherwise. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufScalar[];

/** One metadata entry with its exact type, so uint32 vs int32 survives a round trip. */
export interface GgufKV {
  key: string;
  type: GgufType;
  value: GgufValue;
}

/** File id of a scalar type. */
export function ggufTypeId(t: GgufScalarType): number {
  return GGUF_SCALAR_TYPES.indexOf(t);
}

/** Bytes a scalar takes in the file (strings: the minimum, an empty string's u64 length). */
export function ggufScalarSize(t: GgufScalarType): number {
  switch (t) {
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'uint16':
    case 'int16':
      return 2;
    case 'uint32':
    case 'int32':
    case 'float32':
      return 4;
    case 'uint64':
    case 'int64':
    case 'float64':
    case 'string':
      return 8;
  }
}

export function ggufTypeName(t: GgufType): string {
  return typeof t === 'string' ? t : `array<${t.array}>`;
}

/** GGUF's default data alignment when general.alignment is absent (gguf.h GGUF_DEFAULT_ALIGNMENT). */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Tensor names must be shorter than ggml's GGML_MAX_NAME (64 bytes including the NUL). */
export const GGUF_MAX_NAME_BYTES = 63;
