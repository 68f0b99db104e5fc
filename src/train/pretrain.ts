// Pretraining from scratch: a text corpus → one token stream (EOS between documents) → packed rows → every
// parameter of a freshly initialized Llama model trained; the result is saved as a Hugging Face model folder.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { LlamaConfig } from '../models/config.js';
import { configToHf } from '../models/config.js';
import { initWeights } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { trainEvalSplit } from '../data/split.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, Loader, packExamples, type Example } from './batching.js';
import { Trainer, type TrainConfig, type TrainResult } from './trainer.js';
import type { NamedParam } from './types.js';

export interface PretrainOptions {
  config: LlamaConfig;
  /** documents as text (needs tokenizer) … */
  texts?: readonly string[];
  /** … or already tokenized */
  documents?: readonly ArrayLike<number>[];
  tokenizer?: Pick<Tokenizer, 'encode' | 'eosId'>;
  /** document separator (default tokenizer.eosId, else config.eosTokenId[0]) */
  eosId?: number;
  seqLen: number; // positions per packed row
  batchSize: number; // rows per micro-batch
  /** fraction of packed rows held out for evaluation (default 0.05; 0 = none) */
  evalFraction?: number;
  dataSeed?: number; // row shuffling and the eval split (default 0)
  initSeed?: number; // weight initialization (default 0)
  initStd?: number; // default 0.02
  /** initial weights (HF names) instead of initWeights; they are trained in place */
  weights?: Map<string, Tensor>;
  train: Partial<TrainConfig> & { steps: number };
}

export interface PretrainResult {
  model: LlamaModel;
  result: TrainResult;
  trainRows: number;
  evalRows: number;
}

/** Tokenizes documents (text via the tokenizer, with its default BOS handling). */
function toExamples(o: PretrainOptions): Example[] {
  const docs: Example[] = (o.documents ?? []).map((ids) => ({ ids }));
  if (o.texts !== undefined) {
    if (o.tokenizer === undefined) throw new Error('pretrain: texts need a tokenizer');
    const tok = o.tokenizer;
    for (const t of o.texts) docs.push({ ids: tok.encode(t, { addEos: false }) });
  }
  if (docs.length === 0) throw new Error('pretrain: no documents (give texts with a tokenizer, or documents)');
  return docs;
}

/** Trains every parameter of a new (or given) model; writes model.safetensors + config.json to train.outDir. */
export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const eos = o.eosId ?? o.tokenizer?.eosId ?? o.config.eosTokenId[0] ?? null;
  const rows = packExamples(toExamples(o), { seqLen: o.seqLen, eosId: eos });
  const split = trainEvalSplit(rows, { evalFraction: o.evalFraction ?? 0.05, seed: o.dataSeed ?? 0 });
  if (split.train.length === 0) throw new Error(`pretrain: the corpus packs into ${rows.length} rows of ${o.seqLen}, none left to train on`);
  const weights = o.weights ?? initWeights(o.config, o.initSeed ?? 0, o.initStd ?? 0.02);
  const model = new LlamaModel(o.config, (n) => weights.get(n));
  const params: NamedParam[] = model.namedTensors().map(([name, tensor]) => {
    if (tensor.dtype !== 'f32') throw new Error(`pretrain: weight ${name} is ${tensor.dtype}; full training needs f32 weights`);
    tensor.requiresGrad = true;
    return { name, tensor };
  });
  const trainer = new Trainer(model, params, { train: new Loader(split.train, o.batchSize, o.dataSeed ?? 0), eval: batchesOf(split.eval, o.batchSize) }, o.train);
  try {
    const result = await trainer.run();
    const out = o.train.outDir;
    if (out !== undefined && out !== null && !result.interrupted) {
      writeSafetensors(join(out, 'model.safetensors'), params.map((p) => ({ name: p.name, dtype: 'F32', shape: [...p.tensor.shape], data: Float32Array.from(p.tensor.data) })), { format: 'pt' });
      writeFileSync(join(out, 'config.json'), JSON.stringify(configToHf(o.config), null, 2) + '\n');
    }
    return { model, result, trainRows: split.train.length, evalRows: split.eval.length };
  } finally {
    trainer.dispose();
  }
}
