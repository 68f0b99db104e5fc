// Perplexity and loglikelihoods against llama.cpp (node-llama-cpp 3.21.1) on the same GGUF file and the same token
// ids: the bundled model written as an F32 GGUF, a TinyStories text. llama.cpp's side is its own next-token
// distributions (controlledEvaluate with generateNext.probabilities: the full softmax over the vocabulary at
// temperature 0, in float32), read at the actual next token, over exactly the windows our perplexity uses; the
// window plans themselves are checked against their definitions in src/eval/perplexity.test.ts. The KV cache is f32
// and flash attention off, as in the other parity tests (see llama-oracle.ts for what each moves).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Llama, LlamaContextSequence } from 'node-llama-cpp';
import { hfWindows, llamaCppWindows, loglikelihoods, perplexity, type Window } from '../src/eval/index.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
import { useLlamaOracle } from './llama-oracle.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const THREADS = 1;
const CTX = 128;
const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const TEXT = sharedPath('corpus', 'tinystories-sample-200KB.txt');
const oracle = useLlamaOracle('eval-ppl', THREADS);

/** llama.cpp's log p(target) for every row of one window, from a fresh sequence state. */
async function llamaWindow(seq: LlamaContextSequence, w: Window, V: number): Promise<number[]> {
  await seq.clearHistory();
  const wanted = new Map(w.rows.map((r, j) => [r, w.targets[j]]));
  const input = w.input.map((tok, i) => (wanted.has(i) ? ([tok, { generateNext: { probabilities: true } }] as const) : tok));
  const out = await seq.controlledEvaluate(input as never);
  return w.rows.map((r) => {
    const probs = out[r]?.next.probabilities;
    assert.ok(probs !== undefined, `llama.cpp gave no probabilities at position ${r}`);
    assert.equal(probs.size, V, 'llama.cpp returned the whole distribution');
    const p = probs.get(wanted.get(r) as never);
    assert.ok(p !== undefined && p > 0, `llama.cpp's probability of token ${wanted.get(r)} at position ${r}: ${p}`);
    return Math.log(p);
  });
}

async function withSequence<T>(llama: Llama, path: string, fn: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: CTX, batchSize: CTX, threads: THREADS, sequences: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
  });
  try {
    return await fn(ctx.getSequence());
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

test('perplexity equals llama.cpp\'s over the same windows (HF sliding and llama-perplexity chunks), within 1e-3', existsSync(join(BUNDLED, 'config.json')) ? needsShared(TEXT) : { skip: 'assets/default-model absent' }, async (t) => {
  requireShared(TEXT);
  if (oracle.unavailable(t)) return;
  const llama = oracle.llama;
  assert.ok(llama !== null);
  const hf = loadModel(BUNDLED);
  assert.ok(hf.tokenizer !== null);
  const path = join(oracle.dir, 'default-f32.gguf');
  saveGguf(hf.model, hf.tokenizer, path, { dtype: 'f32' });
  const tokenizer = hf.tokenizer;
  hf.model.dispose();
  const ours = loadModel(path).model;
  const V = ours.config.vocabSize;
  const ids = tokenizer.encode(readFileSync(TEXT, 'utf8').slice(0, 2500)); // ~600 tokens, BOS first
  assert.ok(ids.length > 3 * CTX, `text gave ${ids.length} tokens`);
  const bos = tokenizer.bosId ?? undefined;

  const cases = [
    { label: `hf ctx ${CTX} stride ${CTX / 2}`, windows: hfWindows(ids, CTX, CTX / 2), opts: { ctx: CTX, stride: CTX / 2 } },
    { label: `hf ctx ${CTX} stride ${CTX}`, windows: hfWindows(ids, CTX, CTX), opts: { ctx: CTX, stride: CTX } },
    { label: `llama.cpp ctx ${CTX}`, windows: llamaCppWindows(ids, CTX, bos), opts: { ctx: CTX, stride: CTX, mode: 'llama.cpp' as const, ...(bos !== undefined ? { bos } : {}) } },
  ];
  await withSequence(llama, path, async (seq) => {
    for (const c of cases) {
      let nll = 0;
      let n = 0;
      for (const w of c.windows) {
        for (const lp of await llamaWindow(seq, w, V)) {
          nll -= lp;
          n++;
        }
      }
      const want = Math.exp(nll / n);
      const got = perplexity(ours, ids, { ...c.opts, batchSize: 3 });
      const rel = Math.abs(got.ppl - want) / want;
      console.log(`# ${c.label}: nomoat ${got.ppl.toFixed(5)} llama.cpp ${want.toFixed(5)} (relative ${rel.toExponential(2)}; ${got.tokens} tokens, ${got.windows} windows)`);
      assert.equal(got.tokens, n);
      assert.equal(got.windows, c.windows.length);
      assert.ok(rel <= 1e-3, `${c.label}: ppl ${got.ppl} vs llama.cpp ${want}`);
    }
  });

  // loglikelihoods of multiple-choice requests (shared context) and single ones against the same distributions
  const reqs = [0, 1, 2, 3].map((k) => ({ context: ids.slice(0, 60), continuation: ids.slice(60 + 7 * k, 64 + 7 * k) }));
  reqs.push({ context: ids.slice(100, 190), continuation: ids.slice(190, 196) }, { context: ids.slice(5, 9), continuation: ids.slice(9, 10) });
  const got = loglikelihoods(ours, reqs, { batchSize: 4 });
  let worst = 0;
  await withSequence(llama, path, async (seq) => {
    for (const [i, r] of reqs.entries()) {
      const input = [...r.context, ...r.continuation.slice(0, -1)];
      const rows = r.continuation.map((_, j) => r.context.length - 1 + j);
      const lps = await llamaWindow(seq, { input, rows, targets: [...r.continuation] }, V);
      const want = lps.reduce((a, x) => a + x, 0);
      worst = Math.max(worst, Math.abs(got[i].logprob - want));
      assert.ok(Math.abs(got[i].logprob - want) <= 1e-3 * Math.max(1, Math.abs(want)), `request ${i}: ${got[i].logprob} vs llama.cpp ${want}`);
    }
  });
  console.log(`# loglikelihoods: ${reqs.length} requests, largest |Δ logprob| vs llama.cpp ${worst.toExponential(2)}`);
  ours.dispose();
});
