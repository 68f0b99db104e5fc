// Perplexity of a token stream longer than the model's context, by rolling windows. Two conventions, because the
// numbers people compare against come from two tools and differ by design:
//
// 'hf' (default) — Hugging Face's perplexity guide ("Perplexity of fixed-length models"): windows of ctx tokens whose
//   starts move by stride; each token is scored exactly once, in the first window that reaches it, so every token
//   after the first window sees at least ctx − stride tokens of context (stride = ctx: disjoint windows, the cheapest
//   and the worst; stride = 1: the most context and one window per token). The first window scores all its tokens
//   but the first (nothing predicts token 0), so N tokens give N − 1 scores whenever stride < ctx; with stride = ctx
//   each window's first token has no context inside its window and is not scored either, as in the guide (N − windows
//   scores). This is the default because it uses (nearly) every token of the text and its context rule is one
//   parameter. (The guide's code weights each window's mean by its scored count less one even when stride < ctx,
//   where nothing more was dropped; here each token counts once.)
//
// 'llama.cpp' — llama-perplexity: the text is cut into ⌊N / ctx⌋ disjoint chunks of ctx tokens (the tail is dropped),
//   each chunk's first token replaced by BOS when the model adds one (`bos`), and only each chunk's second half is
//   scored: the logits at positions ⌊ctx/2⌋ … ctx − 2 predict the tokens after them, so every scored token has at
//   least ctx/2 tokens of context. `stride` is not used. Use it to compare with llama-perplexity's "[1]x,[2]y" output
//   (its -c is ctx), with ids tokenized as it does (BOS first). llama-perplexity refuses texts under 2·ctx tokens;
//   here one chunk is enough.
//
// Both: ppl = exp(mean NLL over the scored tokens), the NLL summed in float64. Windows of the same length run
// batchSize at a time; only scored rows go through the LM head (scoreRows).
//
// Letters: N tokens in the stream, B windows per forward, T window length.

import { noGrad, tidy } from '../engine/context.js';
import type { LlamaModel } from '../models/llama.js';
import { scoreRows } from './score.js';

export interface PerplexityOptions {
  ctx: number; // window length in tokens (llama.cpp's n_ctx)
  stride: number; // 'hf': tokens between window starts, 1 ≤ stride ≤ ctx; 'llama.cpp': unused
  batchSize?: number; // windows per forward (default 4)
  mode?: 'hf' | 'llama.cpp'; // default 'hf'
  bos?: number; // 'llama.cpp': the token written over each chunk's first (llama-perplexity does when the vocab adds BOS)
  onProgress?: (done: number, total: number) => void; // windows
}

export interface PerplexityResult {
  ppl: number; // exp(nll)
  nll: number; // mean negative log-likelihood per scored token, nats
  tokens: number; // tokens scored
  windows: number; // forwards of one window each
}

/** One window: its input tokens and which positions score which targets. */
export interface Window {
  input: number[]; // [T]
  rows: number[]; // positions of input whose logits are scored
  targets: number[]; // the token each row predicts
}

/** Hugging Face's sliding windows over ids (see the header). */
export function hfWindows(ids: readonly number[], ctx: number, stride: number): Window[] {
  const N = ids.length;
  const out: Window[] = [];
  let prevEnd = 0;
  for (let begin = 0; ; begin += stride) {
    const end = Math.min(begin + ctx, N);
    const w: Window = { input: ids.slice(begin, end), rows: [], targets: [] };
    for (let i = Math.max(prevEnd, begin + 1); i < end; i++) {
      w.rows.push(i - 1 - begin); // position i − 1 predicts token i
      w.targets.push(ids[i]);
    }
    if (w.rows.length > 0) out.push(w); // stride = ctx can leave a last window of one token: nothing to score
    prevEnd = end;
    if (end === N) return out;
  }
}

/** llama-perplexity's chunks over ids (see the header). */
export function llamaCppWindows(ids: readonly number[], ctx: number, bos?: number): Window[] {
  const chunks = Math.floor(ids.length / ctx);
  const first = Math.floor(ctx / 2);
  const out: Window[] = [];
  for (let c = 0; c < chunks; c++) {
    const input = ids.slice(c * ctx, (c + 1) * ctx);
    const w: Window = { input, rows: [], targets: [] };
    for (let j = first; j < ctx - 1; j++) {
      w.rows.push(j);
      w.targets.push(input[j + 1]); // read before the BOS write: position 0 is never a target
    }
    if (bos !== undefined) input[0] = bos;
    out.push(w);
  }
  return out;
}

/** Perplexity of ids under the model with rolling windows of opts.ctx tokens (see the header for the conventions). */
export function perplexity(model: LlamaModel, ids: readonly number[], opts: PerplexityOptions): PerplexityResult {
  const { ctx, stride } = opts;
  const mode = opts.mode ?? 'hf';
  const batchSize = opts.batchSize ?? 4;
  const V = model.config.vocabSize;
  const maxLength = model.config.maxPositionEmbeddings;
  if (mode !== 'hf' && mode !== 'llama.cpp') throw new Error(`perplexity: mode must be 'hf' or 'llama.cpp' (got ${String(mode)})`);
  if (!Number.isInteger(ctx) || ctx < 2) throw new Error(`perplexity: ctx must be an integer ≥ 2 (got ${ctx})`);
  if (ctx > maxLength) throw new Error(`perplexity: ctx ${ctx} exceeds the model's context of ${maxLength} positions`);
  if (mode === 'hf' && (!Number.isInteger(stride) || stride < 1 || stride > ctx)) throw new Error(`perplexity: stride must be an integer in [1, ctx = ${ctx}] (got ${stride})`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`perplexity: batchSize must be a positive integer (got ${batchSize})`);
  if (opts.bos !== undefined && !(Number.isInteger(opts.bos) && opts.bos >= 0 && opts.bos < V)) throw new Error(`perplexity: bos ${opts.bos} is not a token id in [0, ${V})`);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`perplexity: ids[${i}] = ${id} is not a token id in [0, ${V})`);
  });
  if (mode === 'hf' && ids.length < 2) throw new Error(`perplexity: need at least 2 tokens (got ${ids.length})`);
  if (mode === 'llama.cpp' && ids.length < ctx) throw new Error(`perplexity: llama.cpp mode needs at least one chunk of ctx = ${ctx} tokens (got ${ids.length})`);

  const windows = mode === 'hf' ? hfWindows(ids, ctx, stride) : llamaCppWindows(ids, ctx, opts.bos);
  let nll = 0;
  let tokens = 0;
  for (let w0 = 0; w0 < windows.length; w0 += batchSize) {
    const part = windows.slice(w0, w0 + batchSize);
    for (const s of scoreWindows(model, part)) {
      nll -= s;
      tokens++;
    }
    opts.onProgress?.(Math.min(w0 + batchSize, windows.length), windows.length);
  }
  const mean = nll / tokens;
  return { ppl: Math.exp(mean), nll: mean, tokens, windows: windows.length };
}

/** Log-probabilities of every target of the windows, one forward [B, T] padded on the right to the longest. */
function scoreWindows(model: LlamaModel, part: readonly Window[]): number[] {
  const B = part.length;
  const T = Math.max(...part.map((w) => w.input.length));
  const ids = new Int32Array(B * T);
  const rows: number[] = [];
  const targets: number[] = [];
  part.forEach((w, b) => {
    ids.set(w.input, b * T);
    w.rows.forEach((r, j) => {
      rows.push(b * T + r);
      targets.push(w.targets[j]);
    });
  });
  return noGrad(() => tidy(() => scoreRows(model, model.hidden(ids, B, T), rows, targets).map((s) => s.logprob)));
}
