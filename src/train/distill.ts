// Knowledge distillation: a student (a LoRA adapter on a base, or every weight of a smaller model) learns the
// teacher's next-token distributions on the reference replies (off-policy: the teacher's top-k cached on disk once)
// and, with probability λ per batch, on replies the student samples itself, scored by the teacher on the fly
// (on-policy, GKD). The loss is α·CE(labels) + (1−α)·D(teacher ‖ student) (distill-loss.ts), on the same Trainer as
// finetune: accumulation, checkpoints, exact resume, metrics.jsonl, loss.svg, Ctrl-C.
//
// One conversation per row (padded batches): an on-policy batch keeps each row's prompt (everything before its last
// reply) and replaces the reply by the student's sample, so a row must hold one conversation.

import { existsSync } from 'node:fs';
import { hashIndex } from '../engine/rng.js';
import { add, crossEntropy, noGrad, scale, tidy } from '../engine/index.js';
import type { Conversation } from '../data/types.js';
import { trainEvalSplit } from '../data/split.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { generateTokens } from '../models/generate.js';
import type { LlamaModel } from '../models/llama.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { batchesOf, collate, IGNORE_INDEX, Loader, type Batch, type Row } from './batching.js';
import { concatTeachers, rowsFingerprint, TeacherCache, tokenizerFingerprint, writeTeacherCache, type CacheHeader } from './distill-cache.js';
import { checkDivergence, DIVERGENCE_DEFAULTS, distillLoss, sparseTopK, type DivergenceConfig, type SparseTeacher } from './distill-loss.js';
import { conversationExample, dropoutStream, finetuneRows } from './finetune.js';
import { Trainer, type Stateful, type TrainConfig, type TrainerHooks, type TrainResult } from './trainer.js';
import type { NamedParam, Objective } from './types.js';

export interface DistillLossOptions extends DivergenceConfig {
  /** weight of the label cross-entropy: loss = α·CE + (1−α)·D (default 0: pure distillation) */
  alpha: number;
}

export const DISTILL_DEFAULTS = { ...DIVERGENCE_DEFAULTS, alpha: 0, topK: 32, lambda: 0, genTemperature: 1, genMaxTokens: 32 } as const;

export interface DistillOptions {
  /** the student: a frozen base with `adapter` trained on it, or (no adapter) a model whose every f32 weight trains */
  student: LlamaModel;
  adapter?: LoraAdapter;
  /** the teacher with its adapters attached; asked for only when the cache must be built or λ > 0 */
  teacher: () => LlamaModel;
  /** called once the teacher is no longer needed (λ = 0, cache ready): free it */
  releaseTeacher?: () => void;
  /** a readable name and a fingerprint of the teacher (model files + adapter stack), kept in the cache header */
  teacherName: string;
  teacherId: string;
  /** the tokenizer teacher and student share */
  tokenizer: Tokenizer;
  conversations: readonly Conversation[];
  evalConversations?: readonly Conversation[];
  evalFraction?: number; // default 0.05
  template?: string;
  /** conversations whose prompt tokens are distilled too, not only their replies (default: none) */
  promptTokens?: (c: Conversation) => boolean;
  seqLen: number;
  batchSize: number;
  dataSeed?: number; // split, order, on-policy draws and sampling (default 0)
  loss?: Partial<DistillLossOptions>;
  topK?: number; // teacher tokens kept per position (default 32)
  /** probability that a training batch's replies are sampled by the student (default 0) */
  lambda?: number;
  genTemperature?: number; // on-policy sampling temperature (default 1)
  genMaxTokens?: number; // on-policy reply length cap (default 32)
  /** where the teacher's top-k is cached (built when absent, refused when stale) */
  cachePath: string;
  train: Partial<TrainConfig> & { steps: number };
  onStep?: TrainerHooks['onStep'];
  /** progress messages (building the cache) */
  note?: (message: string) => void;
}

export interface DistillResult {
  result: TrainResult;
  trainRows: number;
  evalRows: number;
  droppedTrainRows: number;
  cache: CacheHeader;
  /** true when an existing cache was used (the teacher did not run for the off-policy part) */
  cacheReused: boolean;
}

/** What a row carries into its batch: its index in the cache, or (on-policy) its teacher computed on the fly. */
interface RowExtra {
  row: number;
  teacher?: SparseTeacher;
}

/** The teacher's top-k at every trained position of each row (one forward per chunk, no tape). */
export function scoreRows(teacher: LlamaModel, rows: readonly Row[], K: number, T: number, padId = 0): SparseTeacher[] {
  const b = collate(rows, padId);
  const V = teacher.config.vocabSize;
  const logits = noGrad(() => tidy(() => teacher.forward(b.ids, b.B, b.T).toArray())); // [B, T, V]
  return rows.map((r, i) => {
    const labels = new Int32Array(b.T).fill(IGNORE_INDEX);
    labels.set(r.labels);
    return sparseTopK(logits.subarray(i * b.T * V, (i + 1) * b.T * V), V, labels, K, T);
  });
}

/** Index of the first label of the row's last trained span: the prompt is ids[0..s] (the reply follows). */
export function lastReplyStart(labels: Int32Array): number {
  let t = labels.length - 1;
  while (t >= 0 && labels[t] === IGNORE_INDEX) t--;
  if (t < 0) return -1;
  while (t > 0 && labels[t - 1] !== IGNORE_INDEX) t--;
  return t;
}

/**
 * Batches whose replies are, with probability λ, sampled by the student and scored by the teacher. The draw and the
 * sampling seed of the n-th batch are functions of (seed, n), so restoring n (a Stateful) replays a run exactly.
 */
class OnPolicyLoader extends Loader {
  draws = 0;
  constructor(
    rows: readonly Row[],
    batchSize: number,
    seed: number,
    padId: number,
    private readonly policy: { lambda: number; student: LlamaModel; teacher: () => LlamaModel; tokenizer: Tokenizer; K: number; T: number; genTemperature: number; genMaxTokens: number; seqLen: number },
  ) {
    super(rows, batchSize, seed, padId);
  }

  override next(): Batch {
    const b = super.next();
    const n = this.draws++;
    const p = this.policy;
    if (!onPolicyDraw(this.seed, n, p.lambda)) return b;
    return this.sampled(b, hashIndex(this.seed + 0x9e3779b9, n) >>> 1);
  }

  /** The batch with each row's last reply replaced by a student sample, its labels and teacher on those tokens. */
  private sampled(b: Batch, seed: number): Batch {
    const p = this.policy;
    const stop = new Set(p.tokenizer.stopIds);
    const prompts: number[][] = [];
    for (let i = 0; i < b.B; i++) {
      const labels = b.labels.subarray(i * b.T, (i + 1) * b.T);
      const s = lastReplyStart(labels);
      prompts.push([...b.ids.subarray(i * b.T, i * b.T + s + 1)]);
    }
    // equal-length prompts generate as one batch (seed + k for the k-th of a group); no stop tokens, cut below
    const replies: number[][] = new Array<number[]>(b.B);
    const byLen = new Map<number, number[]>();
    prompts.forEach((q, i) => byLen.set(q.length, [...(byLen.get(q.length) ?? []), i]));
    let g = 0;
    for (const idx of byLen.values()) {
      const gens = noGrad(() => generateTokens(p.student, null, idx.map((i) => prompts[i]), {
        maxTokens: p.genMaxTokens, stopTokens: [],
        sampling: { temperature: p.genTemperature, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, seed: (seed + 1000 * g++) >>> 0 },
      }));
      gens.forEach((x, k) => {
        const cut = x.tokens.findIndex((id) => stop.has(id));
        replies[idx[k]] = cut >= 0 ? x.tokens.slice(0, cut + 1) : x.tokens;
      });
    }
    const rows: Row[] = prompts.map((q, i) => {
      const seq = [...q, ...replies[i]];
      const L = Math.min(seq.length - 1, p.seqLen);
      const ids = Int32Array.from(seq.slice(0, L));
      const labels = new Int32Array(L).fill(IGNORE_INDEX);
      for (let t = q.length - 1; t < L; t++) labels[t] = seq[t + 1];
      return { ids, labels };
    });
    const teachers = scoreRows(p.teacher(), rows, p.K, p.T, this.padId);
    const extras: RowExtra[] = (b.extras as RowExtra[]).map((e, i) => ({ row: e.row, teacher: teachers[i] }));
    return collate(rows.map((r, i) => ({ ...r, extra: extras[i] })), this.padId);
  }
}

/** α·CE + (1−α)·D on a batch whose rows carry their teacher (cached or on-policy); metrics: the divergence and CE. */
export function distillObjective(cache: TeacherCache, c: DistillLossOptions): Objective {
  checkDivergence(c);
  if (!(c.alpha >= 0 && c.alpha <= 1)) throw new Error(`distill: alpha must be in [0, 1], got ${c.alpha}`);
  const key = c.divergence.replace('-', '_');
  return {
    name: `distill (${c.divergence})`,
    loss: (model, b) => {
      const extras = (b.extras ?? []) as (RowExtra | undefined)[];
      if (extras.length !== b.B || extras.some((e) => e === undefined)) throw new Error('distill: a batch row carries no teacher (rows must come from distill())');
      const teacher = concatTeachers(extras.map((e) => e!.teacher ?? cache.read(e!.row)), cache.header.k);
      const logits = model.forward(b.ids, b.B, b.T); // [B, T, V]
      const d = distillLoss(logits, b.labels, teacher, c);
      const ce = c.alpha > 0 ? crossEntropy(logits, b.labels) : noGrad(() => crossEntropy(logits, b.labels));
      const loss = c.alpha > 0 ? add(scale(ce, c.alpha), scale(d, 1 - c.alpha)) : d;
      const onPolicy = extras[0]!.teacher !== undefined ? 1 : 0;
      return { loss, metrics: { [key]: d.item(), ce: ce.item(), on_policy: onPolicy } };
    },
  };
}

/** Trains the student on the teacher's distributions; writes nothing but the Trainer's files (the caller saves). */
export async function distill(o: DistillOptions): Promise<DistillResult> {
  const { student, adapter } = o;
  const loss: DistillLossOptions = { ...DIVERGENCE_DEFAULTS, alpha: DISTILL_DEFAULTS.alpha, ...o.loss };
  checkDivergence(loss);
  const K = o.topK ?? DISTILL_DEFAULTS.topK;
  const lambda = o.lambda ?? 0;
  if (!(lambda >= 0 && lambda <= 1)) throw new Error(`distill: lambda must be in [0, 1], got ${lambda}`);
  const V = student.config.vocabSize;
  if (!Number.isInteger(K) || K < 1 || K > V) throw new Error(`distill: top-k must be in [1, ${V}], got ${K}`);
  const seed = o.dataSeed ?? 0;

  let params: NamedParam[];
  if (adapter !== undefined) {
    if (adapter.attachedTo === null) adapter.attach(student);
    else if (adapter.attachedTo !== student) throw new Error(`distill: adapter ${adapter.name} is attached to another model`);
    params = adapter.namedParameters().map(([name, tensor]) => ({ name, tensor }));
    for (const [, t] of student.namedTensors()) t.requiresGrad = false;
  } else {
    params = student.namedTensors().map(([name, tensor]) => {
      if (tensor.dtype !== 'f32') throw new Error(`distill: student weight ${name} is ${tensor.dtype}; a full-weight student needs f32 weights`);
      tensor.requiresGrad = true;
      return { name, tensor };
    });
  }

  const split = o.evalConversations !== undefined ? { train: [...o.conversations], eval: [...o.evalConversations] } : trainEvalSplit(o.conversations, { evalFraction: o.evalFraction ?? 0.05, seed });
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const rowsOf = (cs: readonly Conversation[]): { rows: Row[]; dropped: number } => finetuneRows(cs.map((c) => conversationExample(o.tokenizer, c, o.template, o.promptTokens?.(c) ?? false)), 'padded', o.seqLen, padId);
  const train = rowsOf(split.train);
  const evalRows = rowsOf(split.eval).rows;
  if (train.rows.length === 0) throw new Error(`distill: no training rows (no conversation has a reply token within seqLen ${o.seqLen})`);
  const all = [...train.rows, ...evalRows].map((r, i): Row => ({ ...r, extra: { row: i } satisfies RowExtra }));

  // The teacher's top-k over every row (train, then eval), built once or reused.
  const T = loss.temperature;
  const expect: Omit<CacheHeader, 'version'> = {
    teacher: o.teacherName, teacherId: o.teacherId, tokenizer: tokenizerFingerprint(o.tokenizer), data: rowsFingerprint(all), vocabSize: V, k: K, temperature: T, rows: all.length,
  };
  let teacherModel: LlamaModel | null = null;
  const teacher = (): LlamaModel => {
    if (teacherModel === null) {
      teacherModel = o.teacher();
      if (teacherModel.config.vocabSize !== V) throw new Error(`distill: the teacher's vocabulary (${teacherModel.config.vocabSize}) differs from the student's (${V}); they must share a tokenizer`);
    }
    return teacherModel;
  };
  const cacheReused = existsSync(o.cachePath);
  if (!cacheReused) {
    o.note?.(`scoring ${all.length} rows with the teacher (top-${K} at T ${T}) into ${o.cachePath}`);
    const t0 = performance.now();
    writeTeacherCache(o.cachePath, expect, all, (chunk) => scoreRows(teacher(), chunk, K, T, padId), o.batchSize);
    o.note?.(`teacher cache written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const cache = TeacherCache.open(o.cachePath, expect);
  if (lambda === 0 && teacherModel !== null) {
    teacherModel = null;
    o.releaseTeacher?.();
  }

  const trainAll = all.slice(0, train.rows.length);
  const loader = new OnPolicyLoader(trainAll, o.batchSize, seed, padId, {
    lambda, student, teacher, tokenizer: o.tokenizer, K, T, seqLen: o.seqLen,
    genTemperature: o.genTemperature ?? DISTILL_DEFAULTS.genTemperature, genMaxTokens: o.genMaxTokens ?? DISTILL_DEFAULTS.genMaxTokens,
  });
  const draws: Stateful = {
    key: 'distill_draws',
    save: () => loader.draws,
    restore: (s) => {
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 0) throw new Error(`resume: distill_draws must be a count, got ${JSON.stringify(s)}`);
      loader.draws = s;
    },
  };
  const data = { train: loader, eval: batchesOf(all.slice(train.rows.length), o.batchSize, padId) };
  const stateful = adapter !== undefined ? [draws, dropoutStream(adapter, () => trainer)] : [draws];
  const trainer: Trainer = new Trainer(student, params, data, o.train, { onStep: o.onStep, objective: distillObjective(cache, loss), stateful });
  const wasTraining = adapter?.training ?? false;
  if (adapter !== undefined) adapter.training = true;
  try {
    const result = await trainer.run();
    return { result, trainRows: train.rows.length, evalRows: evalRows.length, droppedTrainRows: train.dropped, cache: cache.header, cacheReused };
  } finally {
    if (adapter !== undefined) adapter.training = wasTraining;
    trainer.dispose();
    cache.close();
  }
}

/** A seeded coin for tests of the on-policy share (the same draw as OnPolicyLoader's). */
export function onPolicyDraw(seed: number, n: number, lambda: number): boolean {
  return lambda > 0 && hashIndex(seed ^ 0x5bd1e995, n) / 2 ** 32 < lambda;
}
