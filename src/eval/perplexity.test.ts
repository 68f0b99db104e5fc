// perplexity on tiny random weights: the window plans against their definitions, and the numbers against an oracle
// that scores each token by its own plain forward over exactly the context the convention gives it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tidy } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { hfWindows, llamaCppWindows, perplexity } from './perplexity.js';

function tinyModel(): LlamaModel {
  const cfg = tinyConfig({ maxPositionEmbeddings: 32 });
  const w = initWeights(cfg, 9, 0.3);
  return new LlamaModel(cfg, (n) => w.get(n));
}

/** log p(target | context) from one plain forward of the context (float64 log-softmax of its last row). */
function logp(model: LlamaModel, context: readonly number[], target: number): number {
  const V = model.config.vocabSize;
  const input = Int32Array.from(context);
  const logits = noGrad(() => tidy(() => model.forward(input, 1, input.length).toArray()));
  const row = Float64Array.from(logits.subarray((input.length - 1) * V));
  const max = Math.max(...row);
  return row[target] - max - Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
}

const ids = (n: number, seed = 1): number[] => {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(64));
};

test('HF windows score every token but the first exactly once (stride < ctx), with at least ctx − stride tokens of context', () => {
  for (const [N, ctx, stride] of [[10, 4, 2], [10, 4, 4], [9, 4, 4], [10, 4, 1], [3, 8, 2], [17, 6, 5], [6, 6, 3]]) {
    const stream = Array.from({ length: N }, (_, i) => 100 + i); // token = 100 + its index
    const ws = hfWindows(stream, ctx, stride);
    const expected = N <= ctx ? 1 : 1 + Math.ceil((N - ctx) / stride) - (stride === ctx && N % ctx === 1 ? 1 : 0);
    assert.equal(ws.length, expected, `windows of N=${N} ctx=${ctx} stride=${stride}`);
    const scored = ws.flatMap((w) => w.targets.map((t) => t - 100));
    // stride = ctx: a window's first token has nothing before it in its window and is not scored
    const want = Array.from({ length: N - 1 }, (_, i) => i + 1).filter((i) => stride < ctx || i % ctx !== 0);
    assert.deepEqual(scored, want, 'each token after the first once, in order');
    ws.forEach((w, k) => {
      assert.ok(w.input.length <= ctx);
      assert.deepEqual(w.input, stream.slice(k * stride, k * stride + w.input.length));
      w.rows.forEach((r, j) => {
        assert.equal(w.input[r + 1], w.targets[j], 'a row predicts the token after it');
        if (k > 0) assert.ok(r + 1 >= ctx - stride, 'context of a later window');
      });
    });
  }
});

test('llama.cpp chunks: ⌊N/ctx⌋ disjoint chunks, second half scored, first token replaced by BOS', () => {
  const stream = Array.from({ length: 23 }, (_, i) => 100 + i);
  const ws = llamaCppWindows(stream, 8, 1);
  assert.equal(ws.length, 2);
  assert.deepEqual(ws[1].input, [1, ...stream.slice(9, 16)]);
  assert.deepEqual(ws[1].rows, [4, 5, 6]);
  assert.deepEqual(ws[1].targets, [113, 114, 115]);
  assert.deepEqual(llamaCppWindows(stream, 7).map((w) => w.targets.length), [3, 3, 3]); // ctx 7: positions 3..5 score 4..6
  assert.deepEqual(llamaCppWindows(stream, 7)[0].input, stream.slice(0, 7), 'no bos: tokens kept');
});

test('perplexity (HF) equals exp(mean NLL) of each token scored alone over its window\'s context', () => {
  const model = tinyModel();
  const stream = ids(29);
  for (const [ctx, stride] of [[8, 3], [8, 8], [12, 5], [32, 1]]) {
    let nll = 0;
    let n = 0;
    let begin = 0;
    for (let i = 1; i < stream.length; i++) {
      // the window that scores token i is the first whose end passes i
      while (Math.min(begin + ctx, stream.length) <= i) begin += stride;
      if (begin === i) continue; // first of a disjoint window: no context, not scored
      nll -= logp(model, stream.slice(begin, i), stream[i]);
      n++;
    }
    const want = Math.exp(nll / n);
    for (const batchSize of [1, 3]) {
      const r = perplexity(model, stream, { ctx, stride, batchSize });
      assert.equal(r.tokens, n);
      if (stride < ctx) assert.equal(r.tokens, stream.length - 1);
      assert.ok(Math.abs(r.ppl - want) <= 1e-5 * want, `ctx ${ctx} stride ${stride} batch ${batchSize}: ${r.ppl} vs ${want}`);
      assert.ok(Math.abs(Math.exp(r.nll) - r.ppl) <= 1e-12 * r.ppl);
    }
  }
  model.dispose();
});

test('perplexity (llama.cpp) equals the oracle over its chunks', () => {
  const model = tinyModel();
  const stream = ids(40, 2);
  const ctx = 12;
  let nll = 0;
  let n = 0;
  for (let c = 0; c + ctx <= stream.length; c += ctx) {
    const chunk = [1, ...stream.slice(c + 1, c + ctx)];
    for (let j = ctx / 2 + 1; j < ctx; j++, n++) nll -= logp(model, chunk.slice(0, j), chunk[j]);
  }
  const r = perplexity(model, stream, { ctx, stride: 0, mode: 'llama.cpp', bos: 1, batchSize: 2 });
  assert.equal(r.windows, 3);
  assert.equal(r.tokens, n);
  assert.ok(Math.abs(r.ppl - Math.exp(nll / n)) <= 1e-5 * r.ppl, `${r.ppl} vs ${Math.exp(nll / n)}`);
  model.dispose();
});

test('perplexity rejects bad options with a clear error, and reports progress', () => {
  const model = tinyModel();
  const stream = ids(20);
  assert.throws(() => perplexity(model, stream, { ctx: 1, stride: 1 }), /ctx must be an integer ≥ 2/);
  assert.throws(() => perplexity(model, stream, { ctx: 64, stride: 8 }), /exceeds the model's context of 32/);
  assert.throws(() => perplexity(model, stream, { ctx: 8, stride: 9 }), /stride must be an integer in \[1, ctx = 8\]/);
  assert.throws(() => perplexity(model, [5], { ctx: 8, stride: 4 }), /at least 2 tokens/);
  assert.throws(() => perplexity(model, [5, 64], { ctx: 8, stride: 4 }), /ids\[1\] = 64 is not a token id/);
  assert.throws(() => perplexity(model, stream, { ctx: 32, stride: 4, mode: 'llama.cpp' }), /at least one chunk of ctx = 32/);
  assert.throws(() => perplexity(model, stream, { ctx: 8, stride: 4, mode: 'x' as 'hf' }), /mode must be/);
  const seen: number[] = [];
  const r = perplexity(model, stream, { ctx: 8, stride: 4, batchSize: 2, onProgress: (d, t) => seen.push(d / t) });
  assert.equal(r.windows, 4);
  assert.equal(seen.at(-1), 1);
  model.dispose();
});
