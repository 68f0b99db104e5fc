// Picks the default backend synchronously at first use: native (C, SIMD, threads) when the addon is built,
// else the TypeScript reference. NOMOAT_BACKEND=reference|native forces one.

import type { Backend } from './backend.js';
import { NativeBackend } from './native/index.js';
import { ReferenceBackend } from './reference/index.js';

let nativeError = '';
let native: Backend | null | undefined;

/** The process-wide native backend, or null when the addon is not built (see nativeLoadError()). */
export function nativeBackend(): Backend | null {
  if (native === undefined) {
    try {
      native = new NativeBackend();
    } catch (e) {
      nativeError = e instanceof Error ? e.message : String(e);
      native = null;
    }
  }
  return native;
}

export function nativeLoadError(): string {
  return nativeError;
}

export function defaultBackend(): Backend {
  const want = process.env.NOMOAT_BACKEND;
  if (want === 'reference') return new ReferenceBackend();
  const n = nativeBackend();
  if (n !== null) return n;
  if (want === 'native') throw new Error(`NOMOAT_BACKEND=native but the native addon did not load: ${nativeError}. Run \`npm ci\` (or \`npm run build\`).`);
  return new ReferenceBackend();
}
