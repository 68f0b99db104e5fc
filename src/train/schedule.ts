// Learning-rate schedules as pure functions of the optimizer step, matching transformers' optimization.py.
//
// Convention (as HF's LambdaLR after `optimizer.step(); scheduler.step()`): update k (0-based) uses
// lr = peak · factor(k), so with warmup the very first update runs at lr 0, exactly as in transformers.

export type ScheduleKind = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';

export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'constant_with_warmup', 'linear', 'cosine'];

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** steps of linear warmup from 0 to the peak (ignored by 'constant') */
  warmupSteps: number;
  /** total optimizer steps of the run (the decay reaches its end here) */
  totalSteps: number;
  /** cosine only: HF's num_cycles, waves of the cosine over the decay (default 0.5: one half-wave, peak down to 0) */
  numCycles?: number;
}

/** The multiplier of the peak learning rate for update `step` (0-based). */
export function lrFactor(cfg: ScheduleConfig, step: number): number {
  const { kind, warmupSteps: w, totalSteps: n } = cfg;
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be a non-negative integer, got ${step}`);
  if (!Number.isInteger(w) || w < 0) throw new Error(`schedule: warmupSteps must be a non-negative integer, got ${w}`);
  if (kind === 'constant') return 1;
  if (step < w) return step / Math.max(1, w);
  switch (kind) {
    case 'constant_with_warmup':
      return 1;
    case 'linear': // get_linear_schedule_with_warmup
      return Math.max(0, (n - step) / Math.max(1, n - w));
    case 'cosine': {
      // get_cosine_schedule_with_warmup
      const progress = (step - w) / Math.max(1, n - w);
      const cycles = cfg.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
  }
}

/** The learning rate of update `step`: peak · lrFactor. */
export function lrAt(cfg: ScheduleConfig, peak: number, step: number): number {
  return peak * lrFactor(cfg, step);
}

export function parseScheduleKind(s: string): ScheduleKind {
  const k = SCHEDULE_KINDS.find((x) => x === s);
  if (k === undefined) throw new Error(`unknown schedule "${s}" (expected one of ${SCHEDULE_KINDS.join(', ')})`);
  return k;
}
