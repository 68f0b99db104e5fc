// Fine-tuning: conversations → chat-template ids + assistant mask → packed or padded rows → only a LoRA adapter's
// A/B tensors updated over the frozen base; loss only on assistant tokens; the result saved as a PEFT adapter.
// Training conversations stream from a ConversationSource (an indexed file, or an array): rows are made a batch at
// a time (stream-rows.ts), so a dataset of any size costs the same memory; only the eval set is held as rows.

import { arraySource, readConversation, splitIndices, subsetSource, type BadRecordHandler, type ConversationSource } from '../data/conversation-source.js';
import type { Conversation } from '../data/types.js';
import { trainEvalSplit } from '../data/split.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { savePeftAdapter } from '../lora/peft.js';
import type { LlamaModel } from '../models/llama.js';
import { tokenizeChat } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, finetuneRows, type BatchMode, type Example } from './batching.js';
import { countRows, ExampleCache, StreamLoader } from './stream-rows.js';
import { Trainer, type Stateful, type TrainConfig, type TrainerHooks, type TrainResult } from './trainer.js';
import type { NamedParam } from './types.js';

export { finetuneRows, type BatchMode } from './batching.js';

export interface FinetuneOptions {
  /** the frozen base model */
  model: LlamaModel;
  /** the adapter to train (LoraAdapter.create(model, …) or a loaded one); attached here if it is not yet */
  adapter: LoraAdapter;
  tokenizer: Tokenizer;
  /** training conversations: in memory, or a source read as training goes (an indexed JSONL file) */
  conversations: readonly Conversation[] | ConversationSource;
  /** held-out conversations; absent: evalFraction of `conversations` is split off */
  evalConversations?: readonly Conversation[];
  evalFraction?: number; // default 0.05
  /** chat template (default: the tokenizer's) */
  template?: string;
  /** 'packed' (default): conversations concatenated into full rows; 'padded': one conversation per row */
  mode?: BatchMode;
  seqLen: number; // positions per row (padded mode truncates longer conversations)
  batchSize: number; // rows per micro-batch
  /** also train on system/user tokens (default false: loss only on assistant replies) */
  trainOnPrompt?: boolean;
  dataSeed?: number; // default 0
  /** a bad record met while training (a source checks records when it reads them): called, and skipped; absent:
   *  training stops with an error naming file:line */
  onBadRecord?: BadRecordHandler;
  /** the tokenized examples of `conversations` made so far (trainingCache), so that they are not made twice */
  cache?: ExampleCache;
  train: Partial<TrainConfig> & { steps: number };
  onStep?: TrainerHooks['onStep'];
}

export interface FinetuneResult {
  result: TrainResult;
  /** rows one epoch of the training conversations makes (estimated from a sample for a large source) */
  trainRows: number;
  evalRows: number;
  /** training rows with no trained token, left out (see finetuneRows; estimated as trainRows is) */
  droppedTrainRows: number;
}

/** A conversation as ids with its loss mask (assistant tokens, or all tokens with trainOnPrompt). */
export function conversationExample(tokenizer: Tokenizer, c: Conversation, template?: string, trainOnPrompt = false): Example {
  const t = tokenizeChat(tokenizer, c.messages.map((m) => ({ role: m.role, content: m.content })), template === undefined ? {} : { template });
  return trainOnPrompt ? { ids: t.ids } : { ids: t.ids, mask: t.assistantMask };
}

/** The example cache training reads through: the source's conversations, tokenized as finetune() does. */
export function trainingCache(tokenizer: Tokenizer, source: ConversationSource, o: { template?: string; trainOnPrompt?: boolean; onBadRecord?: BadRecordHandler } = {}): ExampleCache {
  return new ExampleCache(source, (c) => conversationExample(tokenizer, c, o.template, o.trainOnPrompt ?? false), o.onBadRecord ?? null);
}

/**
 * LoRA dropout draws one seed per module per training forward from the adapter's counter-based stream, so its
 * position after a resume is (forwards so far) × (modules): replayed by drawing that many seeds.
 */
export function dropoutStream(adapter: LoraAdapter, trainer: () => Trainer): Stateful {
  return {
    key: 'lora_dropout_seeds',
    save: () => (adapter.dropout > 0 ? trainer().forwardCount * adapter.modules.size : 0),
    restore: (s) => {
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 0) throw new Error(`resume: lora_dropout_seeds must be a count, got ${JSON.stringify(s)}`);
      for (let i = 0; i < s; i++) adapter.nextSeed();
    },
  };
}

/** Trains the adapter on conversations over the frozen base; writes the PEFT adapter to train.outDir. */
export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const { model, adapter } = o;
  if (adapter.attachedTo === null) adapter.attach(model);
  else if (adapter.attachedTo !== model) throw new Error(`finetune: adapter ${adapter.name} is attached to another model`);
  const params: NamedParam[] = adapter.namedParameters().map(([name, tensor]) => ({ name, tensor }));
  for (const [, t] of model.namedTensors()) t.requiresGrad = false; // the base stays frozen: no gradients computed for it
  const { train, evalConvs } = trainAndEval(o);
  const ex = (cs: readonly Conversation[]): Example[] => cs.map((c) => conversationExample(o.tokenizer, c, o.template, o.trainOnPrompt ?? false));
  const mode = o.mode ?? 'packed';
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const cache = o.cache?.source === train ? o.cache : trainingCache(o.tokenizer, train, o);
  const count = countRows(cache, mode, o.seqLen, padId);
  const evalRows = finetuneRows(ex(evalConvs), mode, o.seqLen, padId).rows;
  if (count.exact && count.rows === 0) {
    throw new Error(`finetune: no training rows (no conversations, all shorter than 2 tokens, or every reply past seqLen ${o.seqLen}${count.dropped > 0 ? `: ${count.dropped} row(s) dropped` : ''})`);
  }
  const loader = new StreamLoader(cache, { mode, seqLen: o.seqLen, batchSize: o.batchSize, seed: o.dataSeed ?? 0, padId });
  const data = { train: loader, eval: batchesOf(evalRows, o.batchSize, padId) };
  const trainer: Trainer = new Trainer(model, params, data, o.train, { onStep: o.onStep, stateful: [dropoutStream(adapter, () => trainer)] });
  const wasTraining = adapter.training;
  adapter.training = true; // dropout on while recording gradients (evaluation runs without a tape, so without dropout)
  try {
    const result = await trainer.run();
    const out = o.train.outDir;
    if (out !== undefined && out !== null && !result.interrupted) savePeftAdapter(adapter, out);
    return { result, trainRows: count.rows, evalRows: evalRows.length, droppedTrainRows: count.dropped };
  } finally {
    adapter.training = wasTraining;
    trainer.dispose();
  }
}

/** The training source and eval conversations: as given, or evalFraction of the conversations split off (seeded). */
function trainAndEval(o: FinetuneOptions): { train: ConversationSource; evalConvs: readonly Conversation[] } {
  const c = o.conversations;
  const frac = o.evalFraction ?? 0.05;
  if (isArray(c)) {
    if (o.evalConversations !== undefined) return { train: arraySource(c), evalConvs: o.evalConversations };
    const split = trainEvalSplit(c, { evalFraction: frac, seed: o.dataSeed ?? 0 });
    return { train: arraySource(split.train), evalConvs: split.eval };
  }
  if (o.evalConversations !== undefined) return { train: c, evalConvs: o.evalConversations };
  if (!(frac >= 0 && frac <= 1)) throw new Error(`evalFraction must be in [0, 1], got ${frac}`);
  const ids = splitIndices(c.size, Math.round(frac * c.size), o.dataSeed ?? 0);
  const evalConvs = Array.from(ids.eval, (i) => readConversation(c, i, o.onBadRecord ?? null)).filter((x) => x !== null);
  return { train: subsetSource(c, ids.train), evalConvs };
}

function isArray(c: readonly Conversation[] | ConversationSource): c is readonly Conversation[] {
  return Array.isArray(c);
}
