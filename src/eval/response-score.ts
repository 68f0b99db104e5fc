// Model-based data score (`nomoat data filter --score-model`): each record's mean negative log-likelihood per learned
// token under a reference model and whatever adapters are attached to it, the usual "loss under a model trained on a
// small trusted seed" filter: a reply the reference finds unlikely is more often wrong, junk or off-task.
//   loss: the mean NLL of the tokens a trainer learns: a chat's assistant tokens (the template's mask, end-of-turn
//         token included), every token after the first of a {"text"} record. Lower is better.
//   ifd:  Instruction-Following Difficulty (Li et al. 2024, "From quantity to quality"; Superfiltering, Li et al.
//         2024): loss(reply | prompt) / loss(reply alone), the reply alone being the chat with only its assistant
//         turns (the same tokens scored). Near or above 1 the prompt does not help predict the reply. The papers keep
//         the highest IFD below 1 (the hardest examples that still follow their prompt); it ranks difficulty, not
//         correctness. Chats only.
//   margin: the mean over learned tokens of log p(the model's most likely token) − log p(the reply's token): how far
//         the reference prefers something else, confident learning's (Northcutt et al. 2021) normalized margin at the
//         token level. A hard prompt the reference is unsure of scores near 0 whatever its loss; a reply contradicting
//         what it knows scores high. Lower is better. Ranks disagreement rather than difficulty.
//
// Letters: B rows in a forward, T positions, N scored rows, V vocab.
// Rows are tokenized, sorted by length (longest first: the first batch shows the peak memory, neighbours pad little),
// padded on the right (causal attention: padding after a position cannot change it) and run batchSize at a time.
// Only the rows that predict a learned token go through the LM head (scoreRows). A record longer than the model's
// context keeps its last maxLength + 1 tokens, as loglikelihoods does.

import { noGrad, tidy } from '../engine/context.js';
import type { Conversation } from '../data/types.js';
import type { LlamaModel } from '../models/llama.js';
import { tokenizeChat, type Tokenizer } from '../tokenizer/index.js';
import { scoreRows } from './score.js';

export type ScoreBy = 'loss' | 'ifd' | 'margin';
export const SCORE_BY: readonly ScoreBy[] = ['loss', 'ifd', 'margin'];

/** What is scored: a chat (its assistant turns) or a plain text (all of it). */
export type ScoreItem = { conversation: Conversation } | { text: string };

export interface ResponseScoreOptions {
  /** rows per forward (default 16) */
  batchSize?: number;
  /** longest input the model sees (default config.maxPositionEmbeddings) */
  maxLength?: number;
  /** default 'loss' */
  by?: ScoreBy;
  /** template override (default the tokenizer's chat template) */
  template?: string;
}

/** A record as ids [T] and the positions whose token is learned (t ≥ 1: row t − 1 predicts it). */
interface Tokens {
  ids: number[];
  learned: number[];
}

/** Ids and learned positions of a chat (assistant mask) or a text (every token after the first), left-truncated. */
function tokens(tok: Tokenizer, item: ScoreItem, maxLength: number, template: string | undefined): Tokens {
  let ids: number[];
  let mask: ArrayLike<number>;
  if ('conversation' in item) {
    const messages = item.conversation.messages.map((m) => ({ role: m.role, content: m.content }));
    const t = tokenizeChat(tok, messages, template !== undefined ? { template } : {});
    ids = t.ids;
    mask = t.assistantMask;
  } else {
    ids = tok.encode(item.text, { addBos: tok.bosId !== null }); // without a BOS the first token is context only
    mask = new Uint8Array(ids.length).fill(1);
  }
  const drop = Math.max(0, ids.length - (maxLength + 1));
  const learned: number[] = [];
  for (let t = drop + 1; t < ids.length; t++) if (mask[t] === 1) learned.push(t - drop);
  return { ids: ids.slice(drop), learned };
}

/** Mean NLL (or margin) of each item's learned tokens, batched; NaN for an item with no learned token. */
function meanLosses(model: LlamaModel, items: readonly Tokens[], batchSize: number, what: 'nll' | 'margin' = 'nll'): Float64Array {
  const out = new Float64Array(items.length).fill(NaN);
  const order = items.map((_, i) => i).filter((i) => items[i].learned.length > 0);
  order.sort((a, b) => items[b].ids.length - items[a].ids.length || a - b);
  for (let s = 0; s < order.length; s += batchSize) {
    const part = order.slice(s, s + batchSize);
    const B = part.length;
    const T = Math.max(...part.map((i) => items[i].ids.length - 1)); // the last token is only predicted, never input
    const ids = new Int32Array(B * T); // padding: token 0, never scored
    const rows: number[] = [];
    const targets: number[] = [];
    part.forEach((i, b) => {
      const x = items[i];
      ids.set(x.ids.slice(0, T), b * T);
      for (const t of x.learned) {
        rows.push(b * T + t - 1);
        targets.push(x.ids[t]);
      }
    });
    const scores = noGrad(() => tidy(() => scoreRows(model, model.hidden(ids, B, T), rows, targets)));
    let at = 0;
    for (const i of part) {
      const n = items[i].learned.length;
      let nll = 0;
      for (let j = at; j < at + n; j++) nll += what === 'nll' ? -scores[j].logprob : scores[j].margin;
      out[i] = nll / n;
      at += n;
    }
  }
  return out;
}

/** The chat with only its assistant turns: the reply without the prompt it answers (IFD's denominator). */
function repliesOnly(c: Conversation): Conversation {
  return { messages: c.messages.filter((m) => m.role === 'assistant') };
}

/**
 * Scores of the items in their order (see the file header): mean NLL per learned token, IFD or the mean margin. NaN marks an item
 * with no token to score (a text of one token). Throws for a text item under 'ifd' (no prompt to divide out).
 */
export function responseScores(model: LlamaModel, tok: Tokenizer, items: readonly ScoreItem[], opts: ResponseScoreOptions = {}): Float64Array {
  const batchSize = opts.batchSize ?? 16;
  const maxLength = opts.maxLength ?? model.config.maxPositionEmbeddings;
  const by = opts.by ?? 'loss';
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`responseScores: batchSize must be a positive integer (got ${batchSize})`);
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`responseScores: maxLength must be a positive integer (got ${maxLength})`);
  if (by === 'ifd') {
    const i = items.findIndex((x) => !('conversation' in x));
    if (i >= 0) throw new Error(`responseScores: item ${i} is plain text; IFD needs a chat (a prompt to divide out)`);
  }
  const conditioned = meanLosses(model, items.map((x) => tokens(tok, x, maxLength, opts.template)), batchSize, by === 'margin' ? 'margin' : 'nll');
  if (by !== 'ifd') return conditioned;
  const alone = items.map((x) => tokens(tok, { conversation: repliesOnly((x as { conversation: Conversation }).conversation) }, maxLength, opts.template));
  const unconditioned = meanLosses(model, alone, batchSize);
  return conditioned.map((c, i) => c / unconditioned[i]);
}
