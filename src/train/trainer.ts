// The training loop: micro-batches → token-weighted cross-entropy → backward → clip → AdamW at the scheduled rate,
// with evaluation, JSONL metrics, progress, periodic atomic checkpoints, exact resume, and Ctrl-C saving.
//
// Gradient accumulation weights micro-batch i's mean loss by targets_i / Σ targets, so an update over several
// micro-batches equals the update over their concatenation (HF's per-micro-batch `loss / accum` does not, when
// micro-batches hold different numbers of trained tokens). Memory stays flat: each micro-batch runs in tidy(),
// gradients are dropped after each update, and the loop retains only numbers.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, backward, clipGradNorm, crossEntropy, noGrad, scale, tidy, zeroGrad, type Tensor } from '../engine/index.js'; // the index picks the backend
import type { Batch, BatchSource } from './batching.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, type CheckpointState, type HistoryPoint } from './checkpoint.js';
import { MetricsWriter, Progress, type MetricsRecord, type ProgressMode } from './metrics.js';
import { lrAt, type ScheduleKind } from './schedule.js';
import { lossCurveSvg } from './svg.js';
import type { ForwardModel, NamedParam, Objective } from './types.js';

export interface TrainConfig {
  steps: number; // optimizer updates in the whole run
  lr: number; // peak learning rate (default 3e-4)
  schedule: ScheduleKind; // default 'cosine'
  warmupSteps: number; // default 0
  weightDecay: number; // decoupled AdamW decay (default 0)
  beta1: number; // default 0.9
  beta2: number; // default 0.999
  eps: number; // default 1e-8
  gradAccum: number; // micro-batches per update (default 1)
  maxGradNorm: number; // global-norm clipping threshold; 0 turns clipping off (default 1)
  evalEvery: number; // evaluate every N updates and at the end; 0 = only at the end (default 0)
  saveEvery: number; // checkpoint every N updates; 0 = only at the end and on Ctrl-C (default 0)
  keepLast: number; // checkpoints kept; 0 = all (default 0)
  logEvery: number; // plain progress line every N updates when stderr is not a terminal (default 10)
  /** folder for metrics.jsonl, loss.svg and checkpoints/; null writes nothing (default null) */
  outDir: string | null;
  /** true: continue from the newest checkpoint under outDir/checkpoints (fresh start if none); a path: that one */
  resume: boolean | string;
  progress: ProgressMode; // default 'auto'
  /** on SIGINT finish the current update, save a checkpoint and return with interrupted = true (default true) */
  handleSigint: boolean;
}

export const TRAIN_DEFAULTS: Omit<TrainConfig, 'steps'> = {
  lr: 3e-4, schedule: 'cosine', warmupSteps: 0, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradAccum: 1,
  maxGradNorm: 1, evalEvery: 0, saveEvery: 0, keepLast: 0, logEvery: 10, outDir: null, resume: false, progress: 'auto',
  handleSigint: true,
};

export interface TrainData {
  train: BatchSource;
  /** fixed evaluation batches (no gradients); absent or empty = no evaluation */
  eval?: readonly Batch[];
}

/** Extra state that must survive a resume (an RNG stream, for example), stored in state.json under its key. */
export interface Stateful {
  key: string;
  /** a JSON-serializable snapshot, taken when a checkpoint is written */
  save(): unknown;
  /** called once on resume with what save() returned */
  restore(state: unknown): void;
}

export interface TrainerHooks {
  /** called after every update (tests, custom logging) */
  onStep?: (r: MetricsRecord) => void;
  /** what each update minimises and evaluation reports (default CROSS_ENTROPY) */
  objective?: Objective;
  stateful?: readonly Stateful[];
}

export interface TrainResult {
  /** updates completed */
  step: number;
  /** loss of the last update */
  loss: number;
  /** last eval loss, if evaluation ran */
  evalLoss: number | null;
  interrupted: boolean;
  /** the last checkpoint written (or resumed from), if any */
  checkpoint: string | null;
  history: HistoryPoint[];
}

/** Plain next-token training: mean cross-entropy over the batch's trained labels. */
export const CROSS_ENTROPY: Objective = {
  name: 'cross-entropy',
  loss: (model, b) => ({ loss: crossEntropy(model.forward(b.ids, b.B, b.T), b.labels) }),
};

const weightOf = (o: Objective, b: Batch): number => (o.weight !== undefined ? o.weight(b) : b.targets);

/** Running weighted means of an objective's extra metrics. */
class MetricMeans {
  private sums = new Map<string, number>();
  private weight = 0;
  add(m: Record<string, number> | undefined, w: number): void {
    this.weight += w;
    for (const [k, v] of Object.entries(m ?? {})) this.sums.set(k, (this.sums.get(k) ?? 0) + v * w);
  }
  means(prefix = ''): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([k, v]) => [prefix + k, this.weight > 0 ? v / this.weight : NaN]));
  }
}

/** Mean loss over batches, weighted by their trained tokens (no tape, nothing retained). */
export function evaluate(model: ForwardModel, batches: readonly Batch[], objective: Objective = CROSS_ENTROPY): number {
  return evaluateWithMetrics(model, batches, objective).loss;
}

/** evaluate() plus the objective's extra metrics, averaged with the same weights. */
export function evaluateWithMetrics(model: ForwardModel, batches: readonly Batch[], objective: Objective = CROSS_ENTROPY): { loss: number; metrics: Record<string, number> } {
  let sum = 0;
  let n = 0;
  const means = new MetricMeans();
  for (const b of batches) {
    const w = weightOf(objective, b);
    if (w === 0) continue;
    const r = noGrad(() => tidy(() => {
      const o = objective.loss(model, b, false);
      return { l: o.loss.item(), m: o.metrics };
    }));
    sum += r.l * w;
    n += w;
    means.add(r.m, w);
  }
  return { loss: n > 0 ? sum / n : NaN, metrics: means.means() };
}

export class Trainer {
  readonly config: TrainConfig;
  readonly optimizer: AdamW;
  private readonly tensors: Tensor[];
  private step = 0;
  private elapsedS = 0;
  private tokensSeen = 0;
  private forwards = 0; // training micro-batches run through the model (each draws dropout seeds)
  private history: HistoryPoint[] = [];
  private stopRequested = false;

  constructor(
    readonly model: ForwardModel,
    readonly params: readonly NamedParam[],
    readonly data: TrainData,
    config: Partial<TrainConfig> & { steps: number },
    readonly hooks: TrainerHooks = {},
  ) {
    this.config = { ...TRAIN_DEFAULTS, ...config };
    const c = this.config;
    for (const k of ['steps', 'gradAccum'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`train config: ${k} must be a positive integer, got ${c[k]}`);
    for (const k of ['evalEvery', 'saveEvery', 'keepLast', 'logEvery', 'warmupSteps'] as const) if (!Number.isInteger(c[k]) || c[k] < 0) throw new Error(`train config: ${k} must be a non-negative integer, got ${c[k]}`);
    if (!(c.lr >= 0) || !(c.maxGradNorm >= 0)) throw new Error('train config: lr and maxGradNorm must be ≥ 0');
    if (c.resume === true && c.outDir === null) throw new Error('train config: resume = true needs outDir (checkpoints live in outDir/checkpoints)');
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`trainer: two parameters are named "${p.name}"`);
      names.add(p.name);
    }
    if (params.length === 0) throw new Error('trainer: no trainable parameters');
    this.tensors = params.map((p) => p.tensor);
    this.optimizer = new AdamW(this.tensors, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay });
  }

  /** Training micro-batches run through the model so far (resumed runs included). */
  get forwardCount(): number {
    return this.forwards;
  }

  /** What must be equal for a checkpoint to continue this run exactly (steps may grow). */
  private settings(): Record<string, unknown> {
    const c = this.config;
    const l = this.data.train;
    return {
      lr: c.lr, schedule: c.schedule, warmupSteps: c.warmupSteps, weightDecay: c.weightDecay, beta1: c.beta1, beta2: c.beta2, eps: c.eps,
      gradAccum: c.gradAccum, maxGradNorm: c.maxGradNorm, batchSize: l.batchSize, dataSeed: l.seed, trainRows: l.size,
    };
  }

  private get checkpointRoot(): string | null {
    return this.config.outDir === null ? null : join(this.config.outDir, 'checkpoints');
  }

  private resumeFrom(): string | null {
    const r = this.config.resume;
    if (r === false) return null;
    if (typeof r === 'string') {
      if (!existsSync(join(r, 'state.json'))) throw new Error(`resume: ${r} is not a checkpoint folder (no state.json)`);
      return r;
    }
    const root = this.checkpointRoot;
    return root === null ? null : latestCheckpoint(root);
  }

  private restore(dir: string): void {
    const s = loadCheckpoint(dir, this.params, this.optimizer);
    const want = this.settings();
    const diff = Object.keys(want).filter((k) => JSON.stringify(want[k]) !== JSON.stringify(s.settings[k]));
    if (diff.length > 0) throw new Error(`resume: ${dir} was trained with different settings (${diff.map((k) => `${k}: ${JSON.stringify(s.settings[k])} → ${JSON.stringify(want[k])}`).join(', ')})`);
    this.step = s.step;
    this.elapsedS = s.elapsedS;
    this.tokensSeen = s.tokensSeen;
    this.history = s.history;
    this.forwards = s.forwards;
    this.data.train.restore(s.loader);
    for (const h of this.hooks.stateful ?? []) {
      if (!(h.key in s.extra)) throw new Error(`resume: ${dir} holds no state for "${h.key}"`);
      h.restore(s.extra[h.key]);
    }
  }

  private save(): string | null {
    const root = this.checkpointRoot;
    if (root === null) return null;
    const state: CheckpointState = {
      version: 1, step: this.step, adamStep: this.optimizer.step, loader: this.data.train.state, elapsedS: this.elapsedS,
      tokensSeen: this.tokensSeen, forwards: this.forwards, history: this.history, settings: this.settings(),
      extra: Object.fromEntries((this.hooks.stateful ?? []).map((h) => [h.key, h.save()])),
      params: this.params.map((p) => ({ name: p.name, shape: [...p.tensor.shape] })),
    };
    return saveCheckpoint(root, this.params, this.optimizer, state, this.config.keepLast);
  }

  private get objective(): Objective {
    return this.hooks.objective ?? CROSS_ENTROPY;
  }

  /** One optimizer update over gradAccum micro-batches; returns the update's loss, grad norm and positions seen. */
  private update(lr: number): { loss: number; gradNorm: number; positions: number; targets: number; metrics: Record<string, number> } {
    const micro: Batch[] = [];
    for (let i = 0; i < this.config.gradAccum; i++) micro.push(this.data.train.next());
    const obj = this.objective;
    const weights = micro.map((b) => weightOf(obj, b));
    const total = weights.reduce((s, w) => s + w, 0);
    const means = new MetricMeans();
    let lossSum = 0;
    let positions = 0;
    let targets = 0;
    micro.forEach((b, i) => {
      positions += b.B * b.T;
      targets += b.targets;
      const w = weights[i];
      if (w === 0) return; // nothing trained in this micro-batch: it adds no gradient
      this.forwards++;
      lossSum += tidy(() => {
        // The forward runs in its own scope: every intermediate handle is released when it ends, and the graph
        // keeps only what backward reads (saved tensors hold their own handles, freed as backward passes them).
        // So unsaved intermediates are freed before backward, saved ones during it: peak memory is the saved
        // activations, not every tensor the step ever made.
        let metrics: Record<string, number> | undefined;
        const loss = tidy(() => {
          const o = obj.loss(this.model, b, true); // mean over b's weight units
          metrics = o.metrics;
          return o.loss;
        });
        means.add(metrics, w);
        backward(scale(loss, w / total));
        return loss.item() * w;
      });
    });
    if (total === 0) return { loss: NaN, gradNorm: 0, positions, targets: 0, metrics: {} }; // nothing to learn: no update at all
    const gradNorm = clipGradNorm(this.tensors, this.config.maxGradNorm > 0 ? this.config.maxGradNorm : Infinity);
    this.optimizer.update(lr);
    zeroGrad(this.tensors);
    return { loss: lossSum / total, gradNorm, positions, targets, metrics: means.means() };
  }

  async run(): Promise<TrainResult> {
    const c = this.config;
    const root = this.checkpointRoot;
    if (c.outDir !== null) mkdirSync(c.outDir, { recursive: true });
    const from = this.resumeFrom();
    if (from !== null) this.restore(from);
    let lastCheckpoint = from;
    const metrics = c.outDir === null ? null : new MetricsWriter(join(c.outDir, 'metrics.jsonl'));
    metrics?.start(from === null ? null : this.step);
    const progress = new Progress(c.progress, Math.max(1, c.logEvery));
    if (from !== null) progress.note(`resumed from ${from} at step ${this.step}`);
    const sched = { kind: c.schedule, warmupSteps: c.warmupSteps, totalSteps: c.steps };
    const onSigint = (): void => {
      if (this.stopRequested) process.exit(130); // a second Ctrl-C: leave now
      this.stopRequested = true;
      progress.note('interrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)');
    };
    if (c.handleSigint) process.on('SIGINT', onSigint);
    let last = { loss: NaN, evalLoss: null as number | null };
    let idle = 0; // micro-batches drawn in a row with no trained token
    let stepAvg = 0; // moving average of seconds per update, for the ETA
    try {
      while (this.step < c.steps && !this.stopRequested) {
        const t0 = performance.now();
        const lr = lrAt(sched, c.lr, this.step);
        const u = this.update(lr);
        if (u.targets === 0) {
          // Every label of every micro-batch was -100: no gradient, no optimizer update, so not a step (no loss or
          // tokens/s to log). finetune() drops such rows; this guards rows made elsewhere.
          idle += this.config.gradAccum;
          if (idle > this.data.train.size) throw new Error('Trainer: no training row has a trained token (every label is -100)');
          continue;
        }
        idle = 0;
        this.step++;
        const dt = (performance.now() - t0) / 1000;
        this.elapsedS += dt;
        this.tokensSeen += u.targets;
        const point: HistoryPoint = { step: this.step, loss: u.loss };
        const rec: MetricsRecord = { step: this.step, loss: u.loss, lr, grad_norm: u.gradNorm, tokens_per_s: dt > 0 ? u.positions / dt : 0, elapsed_s: this.elapsedS, ...u.metrics };
        const evalNow = this.data.eval !== undefined && this.data.eval.length > 0 && ((c.evalEvery > 0 && this.step % c.evalEvery === 0) || this.step === c.steps);
        if (evalNow) {
          const t1 = performance.now();
          const ev = evaluateWithMetrics(this.model, this.data.eval ?? [], this.objective);
          rec.eval_loss = point.evalLoss = last.evalLoss = ev.loss;
          for (const [k, v] of Object.entries(ev.metrics)) rec[`eval_${k}`] = v;
          this.elapsedS += (performance.now() - t1) / 1000;
          rec.elapsed_s = this.elapsedS;
        }
        last.loss = u.loss;
        this.history.push(point);
        metrics?.append(rec);
        this.hooks.onStep?.(rec);
        stepAvg = stepAvg === 0 ? dt : 0.9 * stepAvg + 0.1 * dt;
        progress.update({ step: this.step, total: c.steps, loss: u.loss, lr, tokensPerS: rec.tokens_per_s, etaS: stepAvg * (c.steps - this.step), evalLoss: rec.eval_loss });
        // Lets a pending SIGINT handler run, before the save decision: a Ctrl-C during this update saves it (handlers
        // run only when the event loop turns, so none can land between this check and the loop condition).
        await new Promise<void>((r) => setImmediate(r));
        const due = (c.saveEvery > 0 && this.step % c.saveEvery === 0) || this.step === c.steps;
        if (due || this.stopRequested) {
          lastCheckpoint = this.save() ?? lastCheckpoint;
          if (root !== null && this.stopRequested) progress.note(`saved ${lastCheckpoint ?? ''}`);
        }
      }
    } finally {
      if (c.handleSigint) process.off('SIGINT', onSigint);
      progress.end();
    }
    if (c.outDir !== null) writeFileSync(join(c.outDir, 'loss.svg'), lossCurveSvg(this.history));
    if (last.evalLoss === null) last = { ...last, evalLoss: [...this.history].reverse().find((h) => h.evalLoss !== undefined)?.evalLoss ?? null };
    if (Number.isNaN(last.loss)) last.loss = [...this.history].reverse().find((h) => h.loss !== undefined)?.loss ?? NaN;
    return { step: this.step, loss: last.loss, evalLoss: last.evalLoss, interrupted: this.stopRequested && this.step < c.steps, checkpoint: lastCheckpoint, history: this.history };
  }

  /** Frees the optimizer state (parameters belong to the caller). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
