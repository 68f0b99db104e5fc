// The `perplexity` task: a text file's perplexity by rolling windows (src/eval/perplexity.ts), reported in the
// results object beside harness tasks with lm-eval's wikitext metric names: token_perplexity (exp of the mean NLL per
// scored token), word_perplexity and byte_perplexity (the same total NLL over the text's words, split on whitespace
// as lm-eval's count_words, and UTF-8 bytes) and bits_per_byte. The first token is predicted by nothing, so the
// total covers every token but it (the word and byte counts are the whole text's: the difference is one token).

import { readFileSync } from 'node:fs';
import type { LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { perplexity } from './perplexity.js';
import type { EvalResults } from './run.js';
import { TaskError } from './task.js';

export interface PerplexityTaskOptions {
  ctx?: number; // window length (default: the model's context)
  stride?: number; // tokens between window starts (default ctx / 2)
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PerplexityTaskResult {
  results: Record<string, string | number>;
  config: Record<string, unknown>;
  count: { original: number; effective: number };
}

export function perplexityTask(model: LlamaModel, tokenizer: Tokenizer, file: string, o: PerplexityTaskOptions = {}): PerplexityTaskResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskError(`cannot read the perplexity text ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const ids = tokenizer.encode(text, { addBos: tokenizer.bosId !== null });
  const ctx = o.ctx ?? model.config.maxPositionEmbeddings;
  const stride = o.stride ?? Math.max(1, Math.floor(ctx / 2));
  if (!Number.isInteger(ctx) || ctx < 2 || ctx > model.config.maxPositionEmbeddings) throw new TaskError(`perplexity: --ctx must be between 2 and the model's context of ${model.config.maxPositionEmbeddings}, got ${ctx}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > ctx) throw new TaskError(`perplexity: --stride must be between 1 and --ctx (${ctx}), got ${stride}`);
  if (ids.length < 2) throw new TaskError(`perplexity: ${file} encodes to ${ids.length} token(s); at least 2 are needed`);
  const r = perplexity(model, ids, { ctx, stride, ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}), ...(o.onProgress !== undefined ? { onProgress: o.onProgress } : {}) });
  const total = r.nll * r.tokens;
  const words = text.split(/\s+/).length; // Python's re.split(r"\s+", doc): a leading/trailing space counts an empty word
  const bytes = new TextEncoder().encode(text).length;
  return {
    results: {
      alias: 'perplexity',
      'token_perplexity,none': r.ppl, 'token_perplexity_stderr,none': 'N/A',
      'word_perplexity,none': Math.exp(total / words), 'word_perplexity_stderr,none': 'N/A',
      'byte_perplexity,none': Math.exp(total / bytes), 'byte_perplexity_stderr,none': 'N/A',
      'bits_per_byte,none': total / bytes / Math.LN2, 'bits_per_byte_stderr,none': 'N/A',
    },
    config: { task: 'perplexity', dataset_path: file, output_type: 'loglikelihood_rolling', ctx, stride, tokens: ids.length, scored_tokens: r.tokens, windows: r.windows, nll: r.nll },
    count: { original: ids.length, effective: r.tokens },
  };
}

/** Adds a perplexity result to a results object (lower is better for every one of its metrics). */
export function addPerplexity(out: EvalResults, p: PerplexityTaskResult): void {
  out.results.perplexity = p.results;
  out.versions.perplexity = null;
  out['n-shot'].perplexity = 0;
  out.configs.perplexity = p.config;
  out.higher_is_better.perplexity = { token_perplexity: false, word_perplexity: false, byte_perplexity: false, bits_per_byte: false };
  out['n-samples'].perplexity = p.count;
}
