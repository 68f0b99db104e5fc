// loglikelihoods on tiny random weights against an oracle that shares none of its shortcuts: one plain forward of
// the whole input (every position through the LM head), a float64 log-softmax of each scored row, summed by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tidy } from '../engine/index.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import type { LlamaConfig } from '../models/config.js';
import { Rng } from '../engine/rng.js';
import { loglikelihoods, type LoglikelihoodRequest, type LoglikelihoodResult } from './score.js';

function tinyModel(over: Partial<LlamaConfig> = {}): LlamaModel {
  const cfg = tinyConfig(over);
  const w = initWeights(cfg, 7, 0.3);
  return new LlamaModel(cfg, (n) => w.get(n));
}

/** The oracle: (context ++ continuation)[-(maxLength+1):] through one plain forward, each scored row log-softmaxed. */
function oracle(model: LlamaModel, r: LoglikelihoodRequest, maxLength = model.config.maxPositionEmbeddings): LoglikelihoodResult {
  const all = [...r.context, ...r.continuation].slice(-(maxLength + 1));
  const input = Int32Array.from(all.slice(0, -1));
  const logits = noGrad(() => tidy(() => model.forward(input, 1, input.length).toArray())); // [T, V]
  const V = model.config.vocabSize;
  let logprob = 0;
  let greedy = true;
  for (let j = 0; j < r.continuation.length; j++) {
    const t = all.length - r.continuation.length - 1 + j; // row predicting continuation[j]
    const row = Float64Array.from(logits.subarray(t * V, (t + 1) * V));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
    logprob += row[r.continuation[j]] - lse;
    greedy &&= row.indexOf(max) === r.continuation[j];
  }
  return { logprob, greedy };
}

function randomIds(rng: Rng, n: number, V: number): number[] {
  return Array.from({ length: n }, () => rng.int(V));
}

function assertClose(got: readonly LoglikelihoodResult[], want: readonly LoglikelihoodResult[], tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => {
    assert.ok(Math.abs(g.logprob - want[i].logprob) <= tol * (1 + Math.abs(want[i].logprob)), `${what} request ${i}: ${g.logprob} vs ${want[i].logprob}`);
    assert.equal(g.greedy, want[i].greedy, `${what} request ${i}: greedy`);
  });
}

/** Independent requests of different lengths, and a multiple-choice group (one context, four answers). */
function mixedRequests(V: number): LoglikelihoodRequest[] {
  const rng = new Rng(3);
  const shared = randomIds(rng, 11, V);
  return [
    { context: randomIds(rng, 5, V), continuation: randomIds(rng, 3, V) },
    { context: shared, continuation: randomIds(rng, 2, V) },
    { context: randomIds(rng, 1, V), continuation: randomIds(rng, 1, V) },
    { context: shared, continuation: randomIds(rng, 5, V) },
    { context: randomIds(rng, 17, V), continuation: randomIds(rng, 4, V) },
    { context: shared, continuation: randomIds(rng, 1, V) },
    { context: randomIds(rng, 9, V), continuation: randomIds(rng, 7, V) },
    { context: shared, continuation: randomIds(rng, 3, V) },
  ];
}

test('loglikelihoods equals a log-softmax sum from one plain forward, in the requests\' order', () => {
  const model = tinyModel();
  const reqs = mixedRequests(model.config.vocabSize);
  const want = reqs.map((r) => oracle(model, r));
  for (const batchSize of [1, 3, 8]) assertClose(loglikelihoods(model, reqs, { batchSize }), want, 1e-5, `batchSize ${batchSize}`);
  model.dispose();
});

// Not bit-identical: a batch of B sequences runs the matmuls on B·T rows and the shared-context path runs the
// continuations after a KV cache, and the kernels' blocking (and so the order of float sums) depends on the row count
// and on the attention length; each row is the same computation up to f32 rounding, ~1e-7 relative, well inside 1e-5.
test('batched equals unbatched within 1e-5 (grouped, sorted and padded vs one request per forward)', () => {
  const model = tinyModel({ numLayers: 3 });
  const V = model.config.vocabSize;
  const rng = new Rng(11);
  const reqs: LoglikelihoodRequest[] = [];
  for (let q = 0; q < 6; q++) {
    const ctx = randomIds(rng, 3 + rng.int(30), V);
    for (let a = 0; a < 4; a++) reqs.push({ context: ctx, continuation: randomIds(rng, 1 + rng.int(6), V) });
    reqs.push({ context: randomIds(rng, 2 + rng.int(40), V), continuation: randomIds(rng, 1 + rng.int(5), V) });
  }
  const one = reqs.map((r) => loglikelihoods(model, [r], { batchSize: 1 })[0]);
  const many = loglikelihoods(model, reqs, { batchSize: 16 });
  assertClose(many, one, 1e-5, 'batched');
  // batchSize 3: two prefills of 3 contexts, each context's 4 answers in parts of 3 and 1
  assertClose(loglikelihoods(model, reqs, { batchSize: 3 }), one, 1e-5, 'batchSize 3');
  let worst = 0;
  many.forEach((m, i) => (worst = Math.max(worst, Math.abs(m.logprob - one[i].logprob))));
  console.log(`# batched vs unbatched: largest |Δ logprob| ${worst.toExponential(2)}`);
  model.dispose();
});

test('greedy is true exactly when every continuation token is the argmax', () => {
  const model = tinyModel();
  const V = model.config.vocabSize;
  const context = [3, 14, 15, 9, 26];
  // the greedy continuation, built one token at a time from the oracle forward
  const cont: number[] = [];
  for (let s = 0; s < 4; s++) {
    const input = Int32Array.from([...context, ...cont]);
    const logits = noGrad(() => tidy(() => model.forward(input, 1, input.length).toArray()));
    const last = Array.from(logits.subarray((input.length - 1) * V));
    cont.push(last.indexOf(Math.max(...last)));
  }
  const wrongLast = [...cont.slice(0, -1), (cont[3] + 1) % V];
  const wrongFirst = [(cont[0] + 1) % V, ...cont.slice(1)];
  const reqs = [cont, wrongLast, wrongFirst, cont.slice(0, 1)].map((c) => ({ context, continuation: c }));
  const got = loglikelihoods(model, reqs);
  assert.deepEqual(got.map((r) => r.greedy), [true, false, false, true]);
  // alone (not sharing the context) the same answers
  assert.deepEqual(reqs.map((r) => loglikelihoods(model, [r])[0].greedy), [true, false, false, true]);
  assertClose(got, reqs.map((r) => oracle(model, r)), 1e-5, 'greedy requests');
  model.dispose();
});

test('requests longer than the context are truncated from the left, as lm-eval does', () => {
  const model = tinyModel();
  const V = model.config.vocabSize;
  const rng = new Rng(5);
  const maxLength = 12;
  const shared = randomIds(rng, 20, V);
  const reqs = [
    { context: randomIds(rng, 30, V), continuation: randomIds(rng, 4, V) },
    { context: shared, continuation: randomIds(rng, 3, V) },
    { context: shared, continuation: randomIds(rng, 3, V) },
    { context: randomIds(rng, 2, V), continuation: randomIds(rng, 12, V) }, // continuation as long as the window
  ];
  const got = loglikelihoods(model, reqs, { maxLength });
  assertClose(got, reqs.map((r) => oracle(model, r, maxLength)), 1e-5, 'truncated');
  // truncation changed the answer (the oracle on the untruncated input differs)
  assert.ok(Math.abs(got[0].logprob - oracle(model, reqs[0]).logprob) > 1e-4);
  model.dispose();
});

test('loglikelihoods rejects bad requests with a clear error, and reports progress', () => {
  const model = tinyModel();
  assert.throws(() => loglikelihoods(model, [{ context: [], continuation: [1] }]), /request 0's context is empty/);
  assert.throws(() => loglikelihoods(model, [{ context: [1], continuation: [] }]), /request 0's continuation is empty/);
  assert.throws(() => loglikelihoods(model, [{ context: [1], continuation: [2] }, { context: [1, 64], continuation: [2] }]), /request 1's context\[1\] = 64 is not a token id in \[0, 64\)/);
  assert.throws(() => loglikelihoods(model, [{ context: [1], continuation: [2.5] }]), /not a token id/);
  assert.throws(() => loglikelihoods(model, [{ context: [1], continuation: [2, 3, 4] }], { maxLength: 2 }), /continuation has 3 tokens, more than the model's context of 2/);
  assert.throws(() => loglikelihoods(model, [], { batchSize: 0 }), /batchSize must be a positive integer/);
  assert.deepEqual(loglikelihoods(model, []), []);
  const seen: [number, number][] = [];
  loglikelihoods(model, mixedRequests(64), { batchSize: 2, onProgress: (d, t) => seen.push([d, t]) });
  assert.deepEqual(seen.at(-1), [8, 8]);
  assert.ok(seen.every(([d], i) => i === 0 || d > seen[i - 1][0]), 'progress increases');
  model.dispose();
});
