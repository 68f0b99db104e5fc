// Loglikelihood scoring, the request type of lm-eval's multiple-choice and perplexity-style tasks: for each request,
// Σ log p(continuation | context) and whether every continuation token is the model's argmax ("greedy", lm-eval's
// is_greedy).
//
// Letters: B sequences in a forward, T positions, C hidden, V vocab, N rows scored, P cached context positions.
//
// How the work is cut (lm-eval's HFLM does the same, less the cache):
// - The model sees context ++ continuation[:-1]; position t's logits predict token t+1, so only the last |cont|
//   positions are scored. A request longer than the model's context keeps its last maxLength+1 tokens (truncated
//   from the left, as lm-eval does).
// - Only the scored rows go through the LM head and a log-softmax: the hidden states [B, T, C] are gathered to
//   [N, C] first, so a 200-token context with a 3-token continuation costs 3 rows of V, not 203.
// - Requests that share a context (a multiple-choice question and its k answers) prefill the context once into a KV
//   cache, copy it to k rows and run only the k continuations, one forward: P + k·|cont| positions instead of
//   k·(P + |cont|). The contexts of up to batchSize such groups (longest first, within PREFILL_TOKENS positions)
//   are prefilled together, padded on the right: one [G, Pmax] forward runs faster per token than G of [1, P].
// - Requests alone with their context are sorted by length, longest first (the first batch shows the peak memory, and
//   neighbours pad little), padded on the right (causal attention: padding after a position cannot change it), and
//   run batchSize at a time. Results come back in the requests' order.

import { noGrad, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { KVCache } from '../models/kvcache.js';
import type { LlamaModel } from '../models/llama.js';

export interface LoglikelihoodRequest {
  context: readonly number[]; // token ids, non-empty
  continuation: readonly number[]; // token ids, non-empty
}

/** Context positions prefilled together at most (G contexts padded to the longest), bounding the shared KV cache. */
const PREFILL_TOKENS = 4096;

export interface LoglikelihoodResult {
  logprob: number; // Σ log p(continuation | context)
  greedy: boolean; // each continuation token is the argmax of its row
}

export interface LoglikelihoodOptions {
  /** sequences per forward (default 8) */
  batchSize?: number;
  /** longest input the model sees (default config.maxPositionEmbeddings) */
  maxLength?: number;
  onProgress?: (done: number, total: number) => void;
}

/** One scored row: the log-probability of its target and whether the target is the row's argmax. */
export interface RowScore {
  logprob: number;
  greedy: boolean;
  /** log-probability of the row's most likely token minus the target's (≥ 0; 0 when the target is the argmax) */
  margin: number;
}

/**
 * Scores rows of hidden states: h [B, T, C] (final-norm output), rows[n] = flat index b·T + t of a position whose
 * logits predict targets[n]. Only these rows go through the LM head ([N, C] → [N, V]); the log-softmax is computed
 * in float64 per row. Call inside noGrad/tidy.
 */
export function scoreRows(model: LlamaModel, h: Tensor, rows: readonly number[], targets: readonly number[]): RowScore[] {
  const C = model.config.hiddenSize;
  const N = rows.length;
  if (N === 0) return [];
  const src = h.isContiguous ? h.data : h.contiguousCopy().data;
  const picked = Tensor.zeros([N, C], h.backend);
  const dst = picked.data;
  for (let n = 0; n < N; n++) dst.set(src.subarray(rows[n] * C, rows[n] * C + C), n * C);
  const logits = model.lmHead.forward(picked).data; // [N, V]
  const V = logits.length / N;
  const out: RowScore[] = [];
  for (let n = 0; n < N; n++) {
    const off = n * V;
    const target = targets[n];
    let max = -Infinity;
    let best = 0;
    for (let v = 0; v < V; v++) {
      const x = logits[off + v];
      if (x > max) [max, best] = [x, v]; // first index of the maximum, as torch.argmax
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[off + v] - max);
    out.push({ logprob: logits[off + target] - max - Math.log(sum), greedy: best === target, margin: max - logits[off + target] });
  }
  return out;
}

/** Throws unless ids is a non-empty list of token ids of a vocabulary of size V. */
function checkIds(ids: readonly number[], V: number, what: string): void {
  if (ids.length === 0) throw new Error(`loglikelihoods: ${what} is empty`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`loglikelihoods: ${what}[${i}] = ${id} is not a token id in [0, ${V})`);
  }
}

/** A request as the model sees it: ctx (truncated context) ++ cont, cont scored. */
interface Prepared {
  index: number; // position in the caller's list
  ctx: number[]; // the context after left truncation (non-empty)
  cont: readonly number[];
}

/** lm-eval's truncation: (context ++ continuation)[-(maxLength+1):]; the model sees all but the last token. */
function prepare(r: LoglikelihoodRequest, index: number, maxLength: number): Prepared {
  const n = r.context.length + r.continuation.length;
  if (r.continuation.length > maxLength) throw new Error(`loglikelihoods: request ${index}'s continuation has ${r.continuation.length} tokens, more than the model's context of ${maxLength}`);
  const drop = Math.max(0, n - (maxLength + 1));
  return { index, ctx: r.context.slice(drop), cont: r.continuation };
}

/**
 * Σ log p(continuation | context) of each request, and whether the continuation is the greedy one. Requests that share
 * a context are run from one prefill; the others are batched by length. Results are in the requests' order.
 */
export function loglikelihoods(model: LlamaModel, requests: readonly LoglikelihoodRequest[], opts: LoglikelihoodOptions = {}): LoglikelihoodResult[] {
  const batchSize = opts.batchSize ?? 8;
  const maxLength = opts.maxLength ?? model.config.maxPositionEmbeddings;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`loglikelihoods: batchSize must be a positive integer (got ${batchSize})`);
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`loglikelihoods: maxLength must be a positive integer (got ${maxLength})`);
  const V = model.config.vocabSize;
  requests.forEach((r, i) => {
    checkIds(r.context, V, `request ${i}'s context`);
    checkIds(r.continuation, V, `request ${i}'s continuation`);
  });
  const total = requests.length;
  const results: LoglikelihoodResult[] = new Array<LoglikelihoodResult>(total);
  let done = 0;
  const report = (n: number): void => {
    done += n;
    opts.onProgress?.(done, total);
  };

  // group by the (truncated) context: a group of several shares one prefill
  const groups = new Map<string, Prepared[]>();
  requests.forEach((r, i) => {
    const p = prepare(r, i, maxLength);
    const key = p.ctx.join(',');
    const g = groups.get(key);
    if (g === undefined) groups.set(key, [p]);
    else g.push(p);
  });
  const singles: Prepared[] = [];
  const shared: Prepared[][] = [];
  for (const g of groups.values()) {
    if (g.length === 1) singles.push(g[0]);
    else shared.push(g);
  }
  // contexts longest first, so that the contexts prefilled together pad little
  shared.sort((a, b) => b[0].ctx.length - a[0].ctx.length || a[0].index - b[0].index);
  const onPart = (part: readonly Prepared[], res: LoglikelihoodResult[]): void => {
    res.forEach((r, j) => (results[part[j].index] = r));
    report(part.length);
  };
  for (let i = 0; i < shared.length; ) {
    // up to batchSize contexts per prefill, within PREFILL_TOKENS positions (the first alone may exceed it)
    let n = 1;
    while (n < batchSize && i + n < shared.length && (n + 1) * shared[i][0].ctx.length <= PREFILL_TOKENS) n++;
    scoreShared(model, shared.slice(i, i + n), batchSize, onPart);
    i += n;
  }
  // longest first (lm-eval's order); ties keep the requests' order, so the result does not depend on the sort
  singles.sort((a, b) => b.ctx.length + b.cont.length - (a.ctx.length + a.cont.length) || a.index - b.index);
  for (let i = 0; i < singles.length; i += batchSize) {
    const part = singles.slice(i, i + batchSize);
    scoreBatch(model, part).forEach((res, j) => (results[part[j].index] = res));
    report(part.length);
  }
  return results;
}

/** Sums per-token row scores into a request's result. */
function sum(scores: readonly RowScore[]): LoglikelihoodResult {
  let logprob = 0;
  let greedy = true;
  for (const s of scores) {
    logprob += s.logprob;
    greedy &&= s.greedy;
  }
  return { logprob, greedy };
}

/** Independent requests in one forward: inputs ctx ++ cont[:-1] padded on the right to the longest, [B, T]. */
function scoreBatch(model: LlamaModel, part: readonly Prepared[]): LoglikelihoodResult[] {
  const B = part.length;
  const T = Math.max(...part.map((p) => p.ctx.length + p.cont.length - 1));
  const ids = new Int32Array(B * T); // padding: token 0, never scored
  const rows: number[] = [];
  const targets: number[] = [];
  part.forEach((p, b) => {
    const input = [...p.ctx, ...p.cont.slice(0, -1)];
    ids.set(input, b * T);
    // position ctx.length − 1 + j predicts cont[j]
    p.cont.forEach((tok, j) => {
      rows.push(b * T + p.ctx.length - 1 + j);
      targets.push(tok);
    });
  });
  const scores = noGrad(() => tidy(() => scoreRows(model, model.hidden(ids, B, T), rows, targets)));
  return splitScores(part, scores);
}

/** Row scores (in part's order, |cont| each) back to one result per request. */
function splitScores(part: readonly Prepared[], scores: readonly RowScore[]): LoglikelihoodResult[] {
  let at = 0;
  return part.map((p) => {
    const r = sum(scores.slice(at, at + p.cont.length));
    at += p.cont.length;
    return r;
  });
}

/**
 * Groups of requests, each group with one context: the G contexts are prefilled together, padded on the right to the
 * longest, Pmax, into a [G, Pmax] cache (row g valid for its P_g positions). For each group, and each part of at most
 * batchSize of its continuations, row g's keys and values are copied to k rows of a second cache and the k
 * continuations' inputs cont[:-1] run after it as one [k, Tc] forward. A context's last position predicts each of its
 * continuations' first token. `done` receives each part's results.
 */
function scoreShared(model: LlamaModel, groups: readonly (readonly Prepared[])[], batchSize: number, done: (part: readonly Prepared[], res: LoglikelihoodResult[]) => void): void {
  const G = groups.length;
  const Pmax = Math.max(...groups.map((g) => g[0].ctx.length));
  const ids = new Int32Array(G * Pmax); // padding: token 0, never read (causal, and the copies stop at P_g)
  const rows: number[] = [];
  const targets: number[] = [];
  groups.forEach((g, b) => {
    ids.set(g[0].ctx, b * Pmax);
    for (const p of g) {
      rows.push(b * Pmax + p.ctx.length - 1);
      targets.push(p.cont[0]);
    }
  });
  const prefilled = new KVCache(model.config, G, Pmax);
  try {
    const first = noGrad(() => tidy(() => scoreRows(model, model.hidden(ids, G, Pmax, prefilled), rows, targets)));
    let at = 0;
    groups.forEach((g, b) => {
      for (let i = 0; i < g.length; i += batchSize) {
        const part = g.slice(i, i + batchSize);
        done(part, scoreAfter(model, part, first.slice(at + i, at + i + part.length), prefilled, b));
      }
      at += g.length;
    });
  } finally {
    prefilled.dispose();
  }
}

/**
 * The continuations of part after the context prefilled in row `src` of `prefilled` (its ctx.length positions);
 * `first` scores each continuation's token 0.
 */
function scoreAfter(model: LlamaModel, part: readonly Prepared[], first: readonly RowScore[], prefilled: KVCache, src: number): LoglikelihoodResult[] {
  const cfg = model.config;
  const row = cfg.numKvHeads * cfg.headDim;
  const P = part[0].ctx.length;
  const k = part.length;
  const Tc = Math.max(...part.map((p) => p.cont.length - 1)); // 0 when every continuation is one token
  if (Tc === 0) return first.map((s) => sum([s]));
  const many = new KVCache(cfg, k, P + Tc);
  try {
    const from = src * prefilled.maxLength * row;
    for (let l = 0; l < cfg.numLayers; l++) {
      const a = prefilled.layerBuffers(l);
      const d = many.layerBuffers(l);
      for (let b = 0; b < k; b++) {
        d.k.set(a.k.subarray(from, from + P * row), b * (P + Tc) * row);
        d.v.set(a.v.subarray(from, from + P * row), b * (P + Tc) * row);
      }
    }
    many.advance(P);
    const ids = new Int32Array(k * Tc);
    const rows: number[] = [];
    const targets: number[] = [];
    part.forEach((p, b) => {
      ids.set(p.cont.slice(0, -1), b * Tc);
      for (let j = 1; j < p.cont.length; j++) {
        rows.push(b * Tc + j - 1); // input cont[j−1] predicts cont[j]
        targets.push(p.cont[j]);
      }
    });
    const rest = noGrad(() => tidy(() => scoreRows(model, model.hidden(ids, k, Tc, many), rows, targets)));
    let at = 0;
    return part.map((p, b) => {
      const r = sum([first[b], ...rest.slice(at, at + p.cont.length - 1)]);
      at += p.cont.length - 1;
      return r;
    });
  } finally {
    many.dispose();
  }
}
