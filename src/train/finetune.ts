// Fine-tuning: conversations → chat-template ids + assistant mask → packed or padded rows → only the given
// trainable tensors (LoRA adapters) updated over a frozen base; loss only on assistant tokens.
//
// Interface with src/lora (not written yet when this was): the caller attaches adapters to the model (LoRA
// deltas on Linear.deltas) and passes their tensors as NamedParam[] under PEFT names
// (base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight …). `saveAdapter` writes the final adapter
// (adapter_model.safetensors + adapter_config.json); without it only the tensors are written.

import { join } from 'node:path';
import type { Conversation } from '../data/types.js';
import { trainEvalSplit } from '../data/split.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { LlamaModel } from '../models/llama.js';
import { tokenizeChat } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, Loader, packExamples, padRows, type Example, type Row } from './batching.js';
import { Trainer, type TrainConfig, type TrainResult } from './trainer.js';
import type { NamedParam } from './types.js';

export type BatchMode = 'packed' | 'padded';

export interface FinetuneOptions {
  /** the base model with adapters attached; every tensor not in `params` is frozen */
  model: LlamaModel;
  /** trainable tensors (requiresGrad, kept) under their PEFT names */
  params: readonly NamedParam[];
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
  /** writes the final adapter to a folder (src/lora's saver); default: adapter_model.safetensors of params */
  saveAdapter?: (dir: string) => void;
}

export interface FinetuneResult {
  result: TrainResult;
  trainRows: number;
  evalRows: number;
}

/** A conversation as ids with its loss mask (assistant tokens, or all tokens with trainOnPrompt). */
export function conversationExample(tokenizer: Tokenizer, c: Conversation, template?: string, trainOnPrompt = false): Example {
  const t = tokenizeChat(tokenizer, c.messages.map((m) => ({ role: m.role, content: m.content })), template === undefined ? {} : { template });
  return trainOnPrompt ? { ids: t.ids } : { ids: t.ids, mask: t.assistantMask };
}

function toRows(examples: readonly Example[], mode: BatchMode, seqLen: number, padId: number): Row[] {
  // Chat templates end every turn with their own end-of-turn token, so packing adds no separator.
  return mode === 'packed' ? packExamples(examples, { seqLen, eosId: null, padId }) : padRows(examples, seqLen);
}

/** Trains the adapter tensors on conversations over the frozen base. */
export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const trainable = new Set(o.params.map((p) => p.tensor));
  for (const p of o.params) if (!p.tensor.requiresGrad) throw new Error(`finetune: parameter ${p.name} does not require grad`);
  for (const [, t] of o.model.namedTensors()) if (!trainable.has(t)) t.requiresGrad = false;
  const split = o.evalConversations !== undefined ? { train: [...o.conversations], eval: [...o.evalConversations] } : trainEvalSplit(o.conversations, { evalFraction: o.evalFraction ?? 0.05, seed: o.dataSeed ?? 0 });
  const ex = (cs: readonly Conversation[]): Example[] => cs.map((c) => conversationExample(o.tokenizer, c, o.template, o.trainOnPrompt ?? false));
  const mode = o.mode ?? 'packed';
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const trainRows = toRows(ex(split.train), mode, o.seqLen, padId);
  const evalRows = toRows(ex(split.eval), mode, o.seqLen, padId);
  if (trainRows.length === 0) throw new Error('finetune: no training rows (no conversations, or all shorter than 2 tokens)');
  const trainer = new Trainer(o.model, o.params, { train: new Loader(trainRows, o.batchSize, o.dataSeed ?? 0, padId), eval: batchesOf(evalRows, o.batchSize, padId) }, o.train);
  try {
    const result = await trainer.run();
    const out = o.train.outDir;
    if (out !== undefined && out !== null && !result.interrupted) {
      if (o.saveAdapter !== undefined) o.saveAdapter(out);
      else writeSafetensors(join(out, 'adapter_model.safetensors'), o.params.map((p) => ({ name: p.name, dtype: 'F32', shape: [...p.tensor.shape], data: Float32Array.from(p.tensor.data) })), { format: 'pt' });
    }
    return { result, trainRows: trainRows.length, evalRows: evalRows.length };
  } finally {
    trainer.dispose();
  }
}
