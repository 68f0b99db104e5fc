// Deterministic random numbers shared by every backend: a counter-based hash (no state), so that dropout
// masks and initializations are identical in TypeScript and C for the same seed and index.

/** lowbias32 (Chris Wellons' integer hash): a good 32-bit mixer. Mirrored in native/src/kernels_generic.c. */
export function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

/** Uniform 32-bit integer for (seed, index). */
export function hashIndex(seed: number, index: number): number {
  return hash32((index + hash32(seed >>> 0)) >>> 0);
}

/** Dropout threshold: an element is dropped when hashIndex(seed, i) < threshold. */
export function dropoutThreshold(p: number): number {
  return Math.min(4294967295, Math.floor(p * 4294967296));
}

/** Whether element i is kept by dropout with drop probability p. */
export function dropoutKeep(seed: number, index: number, p: number): boolean {
  return hashIndex(seed, index) >= dropoutThreshold(p);
}

/** A small seeded generator (mulberry32) for initialization and data shuffling in TypeScript. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
