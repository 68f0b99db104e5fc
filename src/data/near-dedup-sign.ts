// The per-batch work of near-duplicate detection (run in worker threads or inline): for each text its exact key
// and its LSH band hashes (word n-gram shingles → MinHash → one hash per band).

import { bandHashes, exactKey, minhash, permutations, wordShingles } from './lsh.js';

export interface SignParams {
  ngram: number;
  numPerm: number;
  bands: number;
  rows: number;
  seed: number;
}

export interface SignRequest extends SignParams {
  id: number;
  texts: string[];
}

export interface SignResult {
  id: number;
  /** texts.length × bands band hashes, record-major */
  bands: Uint32Array;
  /** exact-duplicate keys (see exactKey) */
  exact: Float64Array;
}

let cached: { seed: number; numPerm: number; perm: ReturnType<typeof permutations> } | null = null;

export function signBatch(req: SignRequest): SignResult {
  if (cached === null || cached.seed !== req.seed || cached.numPerm !== req.numPerm) cached = { seed: req.seed, numPerm: req.numPerm, perm: permutations(req.numPerm, req.seed) };
  const { perm } = cached;
  const bands = new Uint32Array(req.texts.length * req.bands);
  const exact = new Float64Array(req.texts.length);
  req.texts.forEach((t, i) => {
    exact[i] = exactKey(t);
    bands.set(bandHashes(minhash(wordShingles(t, req.ngram), perm), req.bands, req.rows), i * req.bands);
  });
  return { id: req.id, bands, exact };
}
