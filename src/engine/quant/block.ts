// Helpers shared by the ggml block codecs: little-endian reads and length checks.

/** The little-endian u16 at byte i. */
export function u16At(b: Uint8Array, i: number): number {
  return (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
}

/** Stores the f16 bits h little-endian at byte o. */
export function putU16(b: Uint8Array, o: number, h: number): void {
  b[o] = h & 0xff;
  b[o + 1] = (h >>> 8) & 0xff;
}

/** Throws unless n is a whole number of blocks and `have` bytes hold them (`bytes`). */
export function checkLen(what: string, n: number, blockSize: number, bytes: number, have: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new Error(`${what}: ${n} values is not a multiple of the block size ${blockSize}`);
  }
  if (have < bytes) throw new Error(`${what}: need ${bytes} bytes for ${n} values, got ${have}`);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian f32 bytes → Float32Array (a copy). */
export function f32FromLeBytes(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 2;
  if (LITTLE_ENDIAN) return new Float32Array(bytes.slice(0, n * 4).buffer);
  const out = new Float32Array(n);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = v.getFloat32(i * 4, true);
  return out;
}

/** Float32Array → little-endian bytes (a view when the host is little-endian). */
export function leBytesFromF32(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) v.setFloat32(i * 4, data[i] ?? 0, true);
  return out;
}

const nearF32 = new Float32Array(1);
const nearU32 = new Uint32Array(nearF32.buffer);

/** ggml's nearest_int: the float32 sum x + 1.5·2²³ (ties to even), its low 23 bits − 2²², as C reads them. In range
 *  (|x| < 2²²) that is x rounded half to even; outside it the same bit trick as the C, so out-of-range garbage matches. */
export function nearestInt(x: number): number {
  const v = Math.fround(x + 12582912);
  if (v >= 8388608 && v < 16777216) return v - 12582912;
  nearF32[0] = v;
  return ((nearU32[0] ?? 0) & 0x7fffff) - 0x400000;
}

/** Checks per-column importance weights (an imatrix row) against n values of a tensor: one weight per column of
 *  whole blocks, and n whole rows of that width. Returns the number of rows. */
export function checkWeights(what: string, n: number, weights: Float32Array, blockSize: number): number {
  const cols = weights.length;
  if (cols === 0 || cols % blockSize !== 0) throw new Error(`${what}: ${cols} importance weights is not a row of whole ${blockSize}-value blocks`);
  if (n % cols !== 0) throw new Error(`${what}: ${n} values is not a whole number of rows of ${cols} (one importance weight per column)`);
  return n / cols;
}
