// The engine's public surface: tensors, autograd, ops, optimizers, and the backend choice.
//
// The default backend is `native` (C, SIMD, threads) when the addon is built, else `reference` (TypeScript);
// see default.ts.

export type { Backend, Buf, RopeMode, AttentionParams, MatmulParams } from './backend.js';
export { getBackend, setBackend, withBackend, noGrad, isGradEnabled, tidy } from './context.js';
export { Tensor, Storage, numel, contiguousStrides } from './tensor.js';
export { backward, record, Node, type BackwardOptions } from './autograd.js';
export { DTYPES, dtypeBytes, type DType } from './dtype.js';
export { Rng, hashIndex } from './rng.js';
export { AdamW, ADAMW_DEFAULTS, zeroGrad, clipGradNorm, type AdamWConfig } from './optim.js';
export { ReferenceBackend } from './reference/index.js';
export * from './ops/index.js';

export { nativeBackend, nativeLoadError, defaultBackend } from './default.js';
