// The engine's public surface: tensors, autograd, ops, optimizers, and the backend choice.
//
// The default backend is `native` (C, SIMD, threads) when the addon is built, else `reference` (TypeScript).
// NOMOAT_BACKEND=reference|native forces one.

import type { Backend } from './backend.js';
import { setBackend } from './context.js';
import { ReferenceBackend } from './reference/index.js';

export type { Backend, Buf, RopeMode, AttentionParams, MatmulParams } from './backend.js';
export { getBackend, setBackend, withBackend, noGrad, isGradEnabled, tidy } from './context.js';
export { Tensor, Storage, numel, contiguousStrides } from './tensor.js';
export { backward, record, Node, type BackwardOptions } from './autograd.js';
export { DTYPES, dtypeBytes, type DType } from './dtype.js';
export { Rng, hashIndex } from './rng.js';
export { AdamW, ADAMW_DEFAULTS, zeroGrad, clipGradNorm, type AdamWConfig } from './optim.js';
export { ReferenceBackend } from './reference/index.js';
export * from './ops/index.js';

let nativeBackend: Backend | null | undefined;

/** The native backend, or null when the addon is not built (the reason is in nativeLoadError). */
export async function loadNative(): Promise<Backend | null> {
  if (nativeBackend !== undefined) return nativeBackend;
  try {
    const path = './native/index.js'; // a variable: the module may be absent from partial builds
    const mod = (await import(path)) as Record<string, unknown>;
    const make = Object.values(mod).find((v): v is new () => Backend => typeof v === 'function' && /Native/.test(v.name));
    if (make === undefined) throw new Error('native/index.js exports no NativeBackend');
    nativeBackend = new make();
  } catch (e) {
    nativeLoadError = e instanceof Error ? e.message : String(e);
    nativeBackend = null;
  }
  return nativeBackend;
}

export let nativeLoadError = '';

async function pickDefault(): Promise<Backend> {
  const want = process.env.NOMOAT_BACKEND;
  if (want === 'reference') return new ReferenceBackend();
  const native = await loadNative();
  if (native !== null) return native;
  if (want === 'native') throw new Error(`NOMOAT_BACKEND=native but the native addon did not load: ${nativeLoadError}. Run \`npm ci\` (or \`npm run build\`).`);
  return new ReferenceBackend();
}

setBackend(await pickDefault());
