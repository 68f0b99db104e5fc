// Fine-tuning: conversations → chat-template ids + assistant mask → packed or padded rows → only a LoRA adapter's
// A/B tensors updated over the frozen base; loss only on assistant tokens; the result saved as a PEFT adapter.

import type { Conversation } from '../data/types.js';
import { trainEvalSplit } from '../data/split.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { savePeftAdapter } from '../lora/peft.js';
import type { LlamaModel } from '../models/llama.js';
import { tokenizeChat } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, dropUntrained, Loader, packExamples, padRows, type Example, type Row } from './batching.js';
import { Trainer, type Stateful, type TrainConfig, type TrainerHooks, type TrainResult } from './trainer.js';
import type { NamedParam } from './types.js';

export type BatchMode = 'packed' | 'padded';

export interface FinetuneOptions {
  /** the frozen base model */
  model: LlamaModel;
  /** the adapter to train (LoraAdapter.create(model, …) or a loaded one); attached here if it is not yet */
  adapter: LoraAdapter;
  tokenizer: Tokenizer;
  conversations: readonly Conversation[];
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
  train: Partial<TrainConfig> & { steps: number };
  onStep?: TrainerHooks['onStep'];
}

export interface FinetuneResult {
  result: TrainResult;
  trainRows: number;
  evalRows: number;
  /** training rows with no trained token, left out (see finetuneRows) */
  droppedTrainRows: number;
}

/** A conversation as ids with its loss mask (assistant tokens, or all tokens with trainOnPrompt). */
export function conversationExample(tokenizer: Tokenizer, c: Conversation, template?: string, trainOnPrompt = false): Example {
  const t = tokenizeChat(tokenizer, c.messages.map((m) => ({ role: m.role, content: m.content })), template === undefined ? {} : { template });
  return trainOnPrompt ? { ids: t.ids } : { ids: t.ids, mask: t.assistantMask };
}

/**
 * Training rows of the examples (packed or one per example), without the rows that have no trained token: in padded
 * mode an example whose whole reply falls past seqLen, in packed mode a row holding only prompt tokens of a
 * conversation longer than seqLen. `dropped` counts them (a larger seqLen keeps them).
 */
export function finetuneRows(examples: readonly Example[], mode: BatchMode, seqLen: number, padId = 0): { rows: Row[]; dropped: number } {
  // Chat templates end every turn with their own end-of-turn token, so packing adds no separator.
  return dropUntrained(mode === 'packed' ? packExamples(examples, { seqLen, eosId: null, padId }) : padRows(examples, seqLen));
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
  const split = o.evalConversations !== undefined ? { train: [...o.conversations], eval: [...o.evalConversations] } : trainEvalSplit(o.conversations, { evalFraction: o.evalFraction ?? 0.05, seed: o.dataSeed ?? 0 });
  const ex = (cs: readonly Conversation[]): Example[] => cs.map((c) => conversationExample(o.tokenizer, c, o.template, o.trainOnPrompt ?? false));
  const mode = o.mode ?? 'packed';
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const train = finetuneRows(ex(split.train), mode, o.seqLen, padId);
  const trainRows = train.rows;
  const evalRows = finetuneRows(ex(split.eval), mode, o.seqLen, padId).rows;
  if (trainRows.length === 0) {
    throw new Error(`finetune: no training rows (no conversations, all shorter than 2 tokens, or every reply past seqLen ${o.seqLen}${train.dropped > 0 ? `: ${train.dropped} row(s) dropped` : ''})`);
  }
  const data = { train: new Loader(trainRows, o.batchSize, o.dataSeed ?? 0, padId), eval: batchesOf(evalRows, o.batchSize, padId) };
  const trainer: Trainer = new Trainer(model, params, data, o.train, { onStep: o.onStep, stateful: [dropoutStream(adapter, () => trainer)] });
  const wasTraining = adapter.training;
  adapter.training = true; // dropout on while recording gradients (evaluation runs without a tape, so without dropout)
  try {
    const result = await trainer.run();
    const out = o.train.outDir;
    if (out !== undefined && out !== null && !result.interrupted) savePeftAdapter(adapter, out);
    return { result, trainRows: trainRows.length, evalRows: evalRows.length, droppedTrainRows: train.dropped };
  } finally {
    adapter.training = wasTraining;
    trainer.dispose();
  }
}
