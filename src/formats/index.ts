// Public surface of the file formats: GGUF, safetensors, llama2.c, ggml quantization, HF ↔ GGUF naming.

export { FormatError, FileSource, MemorySource, ByteReader, toSource, type ByteSource } from './source.js';
export {
  f32ToF16Bits,
  f16BitsToF32,
  f32ToBf16Bits,
  bf16BitsToF32,
  encodeF16,
  decodeF16,
  encodeBf16,
  decodeBf16,
  quantizeQ8_0,
  dequantizeQ8_0,
  quantizeQ4_0,
  dequantizeQ4_0,
  dequantizeQ4_K,
  dequantizeQ6_K,
  quantize,
  dequantize,
  isWritableDType,
  type WritableDType,
} from '../engine/quant/index.js';
export {
  GGML_TYPES,
  GGML_TYPE_OF,
  GGUF_DEFAULT_ALIGNMENT,
  type GgmlTypeInfo,
  type GgufKV,
  type GgufScalar,
  type GgufScalarType,
  type GgufType,
  type GgufValue,
} from './gguf-types.js';
export {
  readGguf,
  readGgufTensor,
  readGgufTensorF32,
  findGgufTensor,
  ggufString,
  ggufNumber,
  type GgufFile,
  type GgufTensorInfo,
} from './gguf.js';
export { writeGguf, encodeGguf, emitGguf, type GgufTensorSpec, type GgufWriteSpec } from './gguf-write.js';
export {
  readSafetensors,
  readSafetensorsBytes,
  readSafetensorsF32,
  openSafetensorsModel,
  writeSafetensors,
  encodeSafetensors,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsModel,
  type SafetensorsTensorSpec,
} from './safetensors.js';
export {
  readLlama2c,
  readLlama2cTokenizer,
  type Llama2cConfig,
  type Llama2cModel,
  type Llama2cTokenizer,
  type NamedTensor,
} from './llama2c.js';
export {
  hfToGgufName,
  ggufToHfName,
  qkHalvesToInterleaved,
  qkInterleavedToHalves,
  ggufPermutesQK,
  hfConfigToGgufMetadata,
  ggufMetadataToHfConfig,
  GGUF_FILE_TYPE,
  type HfLlamaConfig,
  type LlamaArch,
} from './names.js';
export { readImatrix, type Imatrix } from './imatrix.js';
export { writeFileAtomic, type Sink } from './writer.js';
