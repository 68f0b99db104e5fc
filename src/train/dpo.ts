// Preference tuning (DPO, IPO) of a LoRA adapter over a frozen base: pairs → a chosen and a rejected padded row each,
// reference log-probs computed once up front, then the Trainer with a preference objective (so accumulation,
// clipping, schedules, checkpoints, resume, metrics.jsonl and Ctrl-C are the same as for fine-tuning).
//
// The reference model is the policy as it starts, without a second copy of the weights: before the first step every
// pair's log-probs are computed once without a tape (TRL's precompute_ref_log_probs) and stored with the pair. A fresh
// LoRA has B = 0, so that reference is the base; an adapter continued from SFT makes the SFT model the reference.

import type { PreferencePair } from '../data/preference.js';
import { trainEvalSplit } from '../data/split.js';
import { noGrad, tidy } from '../engine/index.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { savePeftAdapter } from '../lora/peft.js';
import type { LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, collate, exampleRow, Loader, rowTargets, type Batch, type Row } from './batching.js';
import { preferenceLoss, sequenceLogProbs, type PreferenceLossConfig } from './dpo-loss.js';
import { conversationExample, dropoutStream, type FinetuneResult } from './finetune.js';
import { Trainer, type Stateful, type TrainConfig, type TrainerHooks } from './trainer.js';
import type { ForwardModel, NamedParam, Objective } from './types.js';

export const DPO_DEFAULTS: PreferenceLossConfig = { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 };

/** What a pair's row carries (Row.extra of its chosen row): both rows, their trained-token counts, the reference sums. */
export interface PairExtra {
  chosen: Row;
  rejected: Row;
  lengths: [number, number];
  /** Σ log p_ref over each row's reply tokens (NaN until referenceLogProbs ran) */
  ref: [number, number];
}

/** The chosen row of a pair, carrying the pair. */
export type PairRow = Row & { extra: PairExtra };

/**
 * A pair as two padded rows (prompt + chosen, prompt + rejected) with the loss on the continuation's assistant
 * tokens only; null when either continuation falls wholly past seqLen (nothing to compare).
 */
export function pairRow(tokenizer: Tokenizer, p: PreferencePair, seqLen: number, template?: string): PairRow | null {
  const row = (cont: PreferencePair['chosen']): Row => exampleRow(conversationExample(tokenizer, { messages: [...p.prompt, ...cont] }, template), seqLen);
  const chosen = row(p.chosen);
  const rejected = row(p.rejected);
  const lengths: [number, number] = [rowTargets(chosen), rowTargets(rejected)];
  if (lengths[0] === 0 || lengths[1] === 0) return null;
  return { ids: chosen.ids, labels: chosen.labels, extra: { chosen, rejected, lengths, ref: [NaN, NaN] } };
}

/** Rows of the pairs; `dropped` counts pairs whose chosen or rejected reply lies wholly past seqLen. */
export function pairRows(tokenizer: Tokenizer, pairs: readonly PreferencePair[], seqLen: number, template?: string): { rows: PairRow[]; dropped: number } {
  const rows: PairRow[] = [];
  for (const p of pairs) {
    const r = pairRow(tokenizer, p, seqLen, template);
    if (r !== null) rows.push(r);
  }
  return { rows, dropped: pairs.length - rows.length };
}

const extrasOf = (b: Batch): PairExtra[] => {
  if (b.extras === undefined || b.extras.some((e) => e === undefined)) throw new Error('dpo: a batch row carries no pair (rows must come from pairRows)');
  return b.extras as PairExtra[];
};

/** The concatenated batch of a micro-batch's pairs: P chosen rows, then P rejected rows, one forward for both. */
function concatenated(extras: readonly PairExtra[], padId: number): Batch {
  return collate([...extras.map((e) => e.chosen), ...extras.map((e) => e.rejected)], padId);
}

/** Policy log-prob sums of every row of the concatenated batch: [2P] on the tape when recording. */
function pairLogProbs(model: ForwardModel, extras: readonly PairExtra[], padId: number): ReturnType<typeof sequenceLogProbs> {
  const cat = concatenated(extras, padId);
  return sequenceLogProbs(model.forward(cat.ids, cat.B, cat.T), cat.labels, cat.B);
}

/**
 * Fills every pair's reference log-probs with the model as it is now, without a tape (call before training: this is
 * the frozen reference). Batches of `batchSize` pairs; returns Σ of all reference values (a fingerprint for resume).
 */
export function referenceLogProbs(model: ForwardModel, rows: readonly PairRow[], batchSize: number, padId = 0): number {
  let total = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const extras = rows.slice(i, i + batchSize).map((r) => r.extra);
    const sums = noGrad(() => tidy(() => pairLogProbs(model, extras, padId).toArray()));
    const P = extras.length;
    extras.forEach((e, k) => {
      e.ref = [sums[k], sums[P + k]];
      total += sums[k] + sums[P + k];
    });
  }
  return total;
}

/** The Trainer objective: DPO/IPO over a micro-batch of pairs (weight = pairs), with TRL's reward metrics. */
export function dpoObjective(cfg: PreferenceLossConfig, padId = 0): Objective {
  return {
    name: `dpo-${cfg.lossType}`,
    loss: (model, b) => {
      const extras = extrasOf(b);
      const ref: number[] = [...extras.map((e) => e.ref[0]), ...extras.map((e) => e.ref[1])];
      if (ref.some((x) => Number.isNaN(x))) throw new Error('dpo: reference log-probs missing (run referenceLogProbs before training)');
      const lengths = [...extras.map((e) => e.lengths[0]), ...extras.map((e) => e.lengths[1])];
      return preferenceLoss(pairLogProbs(model, extras, padId), ref, lengths, cfg);
    },
    weight: (b) => extrasOf(b).length,
  };
}

/**
 * The reference fingerprint in checkpoints: a resume whose starting adapter differs (another --init-adapter, a
 * changed base) would train against another reference, so it is refused.
 */
function referenceCheck(sum: number, pairs: number): Stateful {
  return {
    key: 'dpo_reference',
    save: () => ({ pairs, sum }),
    restore: (s) => {
      const o = s as { pairs?: unknown; sum?: unknown } | null;
      if (typeof o !== 'object' || o === null || typeof o.sum !== 'number' || o.pairs !== pairs) throw new Error(`resume: dpo_reference must be {pairs: ${pairs}, sum}, got ${JSON.stringify(s)}`);
      if (Math.abs(o.sum - sum) > 1e-3 * Math.max(1, Math.abs(sum))) {
        throw new Error(`resume: the reference log-probs (Σ ${sum.toFixed(3)}) differ from the checkpoint's (Σ ${o.sum.toFixed(3)}): the run must start from the same adapter and base`);
      }
    },
  };
}

export interface DpoOptions {
  /** the frozen base model */
  model: LlamaModel;
  /** the adapter to train, as it starts (fresh, or continued from SFT): it is also the reference */
  adapter: LoraAdapter;
  tokenizer: Tokenizer;
  pairs: readonly PreferencePair[];
  /** held-out pairs; absent: evalFraction of `pairs` is split off */
  evalPairs?: readonly PreferencePair[];
  evalFraction?: number; // default 0.05
  template?: string;
  seqLen: number; // positions per row (longer pairs are truncated)
  batchSize: number; // pairs per micro-batch (2× rows through the model)
  dpo?: Partial<PreferenceLossConfig>;
  dataSeed?: number; // default 0
  train: Partial<TrainConfig> & { steps: number };
  onStep?: TrainerHooks['onStep'];
}

export interface DpoResult extends FinetuneResult {
  /** pairs left out because a reply lies wholly past seqLen */
  droppedTrainPairs: number;
}

/** Trains the adapter on preference pairs over the frozen base; writes the PEFT adapter to train.outDir. */
export async function dpoFinetune(o: DpoOptions): Promise<DpoResult> {
  const { model, adapter } = o;
  const cfg: PreferenceLossConfig = { ...DPO_DEFAULTS, ...o.dpo };
  if (!(cfg.beta > 0)) throw new Error(`dpo: beta must be > 0, got ${cfg.beta}`);
  if (!(cfg.rpoAlpha >= 0)) throw new Error(`dpo: rpoAlpha must be ≥ 0, got ${cfg.rpoAlpha}`);
  if (adapter.attachedTo === null) adapter.attach(model);
  else if (adapter.attachedTo !== model) throw new Error(`dpo: adapter ${adapter.name} is attached to another model`);
  const params: NamedParam[] = adapter.namedParameters().map(([name, tensor]) => ({ name, tensor }));
  for (const [, t] of model.namedTensors()) t.requiresGrad = false;
  const split = o.evalPairs !== undefined ? { train: [...o.pairs], eval: [...o.evalPairs] } : trainEvalSplit(o.pairs, { evalFraction: o.evalFraction ?? 0.05, seed: o.dataSeed ?? 0 });
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const train = pairRows(o.tokenizer, split.train, o.seqLen, o.template);
  const evalRows = pairRows(o.tokenizer, split.eval, o.seqLen, o.template).rows;
  if (train.rows.length === 0) throw new Error(`dpo: no training pairs (none given, or every one has a reply wholly past seqLen ${o.seqLen}${train.dropped > 0 ? `: ${train.dropped} dropped` : ''})`);
  // the reference: the adapter as it starts (dropout is off without a tape)
  const refSum = referenceLogProbs(model, train.rows, o.batchSize, padId);
  referenceLogProbs(model, evalRows, o.batchSize, padId);
  const data = { train: new Loader(train.rows, o.batchSize, o.dataSeed ?? 0, padId), eval: batchesOf(evalRows, o.batchSize, padId) };
  const trainer: Trainer = new Trainer(model, params, data, o.train, {
    onStep: o.onStep, objective: dpoObjective(cfg, padId), stateful: [dropoutStream(adapter, () => trainer), referenceCheck(refSum, train.rows.length)],
  });
  const wasTraining = adapter.training;
  adapter.training = true;
  try {
    const result = await trainer.run();
    const out = o.train.outDir;
    if (out !== undefined && out !== null && !result.interrupted) savePeftAdapter(adapter, out);
    return { result, trainRows: train.rows.length, evalRows: evalRows.length, droppedTrainRows: train.dropped, droppedTrainPairs: train.dropped };
  } finally {
    adapter.training = wasTraining;
    trainer.dispose();
  }
}
