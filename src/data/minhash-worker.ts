// Worker thread for `data dedup`: turns a batch of texts into LSH band hashes and exact-duplicate keys, so that
// signatures (the expensive part) are computed on every core. Pure function of its inputs: deterministic.

import { parentPort } from 'node:worker_threads';
import { signBatch, type SignRequest } from './near-dedup-sign.js';

parentPort?.on('message', (req: SignRequest) => {
  const res = signBatch(req);
  parentPort?.postMessage(res, [res.bands.buffer as ArrayBuffer, res.exact.buffer as ArrayBuffer]);
});
