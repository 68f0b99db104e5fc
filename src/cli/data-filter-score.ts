// The model-based score of `nomoat data filter` (--keep-best, --max-score, --scores): each record that passes the
// model-free rules is scored by src/eval/response-score.ts (its reply's mean loss under a reference model and
// adapters, or IFD) in a first pass over the file; the keep/remove decision needs every score (a share of the best),
// so only the scores are held (8 bytes a record, never the records) and a second pass writes the output.

import { existsSync } from 'node:fs';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { applyLoraFlags, CliError, loadForCli, requireTokenizer, setThreads, THREAD_FLAG } from './common.js';
import type { DataRecord } from '../data/records.js';
import type { RecordSink } from '../data/sink.js';
import type { ScoreBy, ScoreItem } from '../eval/response-score.js';

export const SCORE_FLAGS = {
  'keep-best': { kind: 'number', metavar: 'FRACTION', help: 'model score: keep this share of the records the rules kept, the best scored (loss, margin: lowest; ifd: highest)' },
  'max-score': { kind: 'number', metavar: 'X', help: 'model score: remove records scored above X (loss in nats per token; ifd default 1, the papers\' rule)' },
  scores: { kind: 'string', metavar: 'FILE', help: 'model score: JSONL of every scored record\'s where and score (to choose a threshold)' },
  'score-model': { kind: 'string', metavar: 'MODEL', help: 'model score: the reference model (default: the bundled assets/default-model)' },
  'score-lora': { kind: 'list', metavar: 'ADAPTER', help: 'model score: adapter on the reference model, e.g. one trained on a trusted seed (or a comma list)' },
  'score-by': { kind: 'string', metavar: 'WHAT', help: 'model score: loss (mean NLL of the reply\'s tokens), ifd (that over the reply\'s loss without its prompt) or margin (how far the model prefers another token, mean over the reply\'s tokens)', default: 'loss' },
  'score-groups': { kind: 'int', metavar: 'K', help: 'model score: --keep-best keeps its share within each of K groups of similar prompts (k-means of the reference base\'s prompt features), so a task the model finds hard is not dropped wholesale', default: 1 },
  'batch-size': { kind: 'int', short: 'b', metavar: 'N', help: 'model score: records per forward', default: 16 },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

export type ScoreFlags = FlagValues<typeof SCORE_FLAGS>;

/** Records scored together (sorted by length inside, so batches pad little); bounds what is held at once. */
const CHUNK = 512;

export interface ScorePlan {
  by: ScoreBy;
  keepBest: number | undefined;
  maxScore: number | undefined;
  /** --keep-best ranks within this many prompt groups (1: over all records) */
  groups: number;
}

/** The score settings from the flags, checked; null when no score flag is given (the filter stays model-free). */
export function scorePlan(f: ScoreFlags): ScorePlan | null {
  const by = f['score-by'] ?? 'loss';
  if (by !== 'loss' && by !== 'ifd' && by !== 'margin') throw new UsageError(`--score-by must be loss|ifd|margin, got ${JSON.stringify(by)}`);
  const decides = f['keep-best'] !== undefined || f['max-score'] !== undefined || f.scores !== undefined;
  const asked = f['score-model'] !== undefined || f['score-lora'].length > 0 || f['score-by'] !== undefined;
  if (!decides) {
    if (asked) throw new UsageError('--score-model/--score-lora/--score-by score records, but nothing uses the score: add --keep-best FRACTION, --max-score X or --scores FILE');
    return null;
  }
  const kb = f['keep-best'];
  if (kb !== undefined && !(kb > 0 && kb <= 1)) throw new UsageError(`--keep-best must be a share in (0, 1], got ${kb}`);
  const ms = f['max-score'];
  if (ms !== undefined && !Number.isFinite(ms)) throw new UsageError(`--max-score must be a number, got ${ms}`);
  const groups = f['score-groups'] ?? 1;
  if (!(groups >= 1 && groups <= 65535)) throw new UsageError(`--score-groups must be an integer in [1, 65535], got ${groups}`);
  if (groups > 1 && kb === undefined) throw new UsageError('--score-groups sets the groups --keep-best ranks within: add --keep-best FRACTION');
  if (f['batch-size'] !== undefined && f['batch-size'] < 1) throw new UsageError(`--batch-size must be positive, got ${f['batch-size']}`);
  return { by, keepBest: kb, maxScore: ms ?? (by === 'ifd' ? 1 : undefined), groups };
}

/** A growable array of float64 scores by record index: NaN where a record was not scored (a rule removed it),
 *  +Infinity where it had no token to score. */
export class Scores {
  data = new Float64Array(1024).fill(NaN);
  /** each record's prompt group (--score-groups); all in one without it */
  group: (i: number) => number = () => 0;
  set(i: number, v: number): void {
    if (i >= this.data.length) {
      const grown = new Float64Array(Math.max(2 * this.data.length, i + 1)).fill(NaN);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[i] = v;
  }
  get(i: number): number {
    return i < this.data.length ? this.data[i] : NaN;
  }
}

/** A scorer: add() the records the rules kept (scored CHUNK at a time), then finish() for every score. */
export async function openScorer(f: ScoreFlags, plan: ScorePlan, scoresOut: RecordSink | undefined): Promise<{ add: (r: DataRecord, index: number) => void; finish: () => Scores }> {
  setThreads(f.threads);
  const spec = f['score-model'] ?? (await import('./finetune.js')).defaultModelOr(undefined);
  const loaded = loadForCli(spec);
  const tokenizer = requireTokenizer(loaded);
  const adapters = f['score-lora'].flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const missing = adapters.find((a) => !existsSync(a));
  if (missing !== undefined) throw new CliError(`--score-lora ${missing}: not found (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
  await applyLoraFlags(loaded.model, { lora: adapters, 'lora-scaled': [] });
  const { responseScores } = await import('../eval/response-score.js');
  const { PromptGroups, groupPrompt } = await import('../eval/score-groups.js');
  const groups = plan.groups > 1 ? new PromptGroups(loaded.model, tokenizer, plan.groups) : null;
  const scores = new Scores();
  let pending: { item: ScoreItem; index: number; where: string }[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    let s: Float64Array;
    try {
      s = responseScores(loaded.model, tokenizer, pending.map((p) => p.item), { by: plan.by, batchSize: f['batch-size'] ?? 16 });
    } catch (e) {
      throw new CliError(`--score-model ${spec}: ${(e as Error).message} (scoring ${pending[0].where} and the ${pending.length - 1} records after it)`);
    }
    groups?.add(pending.map((p) => ({ index: p.index, prompt: groupPrompt(p.item) })));
    pending.forEach((p, j) => {
      scores.set(p.index, Number.isNaN(s[j]) ? Infinity : s[j]);
      scoresOut?.writeObject({ where: p.where, score: Number.isFinite(s[j]) ? s[j] : null });
    });
    pending = [];
  };
  return {
    add: (r, index) => {
      if (r.conversation === null && plan.by === 'ifd') throw new CliError(`${r.where}: (record): --score-by ifd needs chats (a prompt to divide out); this is a plain {"text"} record`);
      pending.push({ item: r.conversation !== null ? { conversation: r.conversation } : { text: r.text }, index, where: r.where });
      if (pending.length >= CHUNK) flush();
    },
    finish: () => {
      flush();
      groups?.finish();
      if (groups !== null) scores.group = (i) => groups.group(i);
      return scores;
    },
  };
}

/** Why a scored record is removed: its score (null: nothing to score) and the bound it crossed. */
export interface ScoreVerdict {
  value: number | null;
  threshold: number;
}

/** The decision: verdict(i) is null for a record kept (or never scored), else why it goes. */
export interface ScoreDecision {
  verdict: (index: number) => ScoreVerdict | null;
  /** the worst score kept by --keep-best (undefined without it) */
  bound: number | undefined;
}

/**
 * The keep/remove decision over the scored records (scores not NaN): those above maxScore go; of the rest,
 * --keep-best keeps the best ⌈share × n⌉ (loss ascending, ifd descending; ties by file order; a record with nothing
 * to score, +Infinity, is never among them), of each prompt group when there are groups (n then counts the group's
 * records). Held: one byte a record, and 4 bytes a record while sorting.
 */
export function decide(scores: Scores, plan: ScorePlan): ScoreDecision {
  const d = scores.data;
  const out = new Uint8Array(d.length); // 1: removed
  const over = (s: number): boolean => plan.maxScore !== undefined && s > plan.maxScore;
  let n = 0;
  for (let i = 0; i < d.length; i++) {
    if (Number.isNaN(d[i])) continue;
    if (over(d[i])) out[i] = 1;
    else n++;
  }
  let bound: number | undefined;
  const bounds = new Map<number, number>(); // group → the worst score it keeps
  if (plan.keepBest !== undefined && n > 0) {
    const left = new Int32Array(n); // the indices still in, sorted by group, then best first
    n = 0;
    for (let i = 0; i < d.length; i++) if (!Number.isNaN(d[i]) && out[i] === 0) left[n++] = i;
    const sign = plan.by === 'ifd' ? -1 : 1; // ifd: the highest are kept; loss and margin: the lowest
    const g = scores.group;
    left.sort((a, b) => g(a) - g(b) || (d[a] === d[b] ? a - b : sign * (d[a] < d[b] ? -1 : 1)));
    for (let start = 0; start < n;) {
      let end = start;
      while (end < n && g(left[end]) === g(left[start])) end++;
      const k = Math.ceil(plan.keepBest * (end - start) - 1e-9);
      if (k > 0) bounds.set(g(left[start]), d[left[start + k - 1]]);
      for (let j = start + k; j < end; j++) out[left[j]] = 1;
      start = end;
    }
    // the loosest bound kept (one group: its bound)
    for (const v of bounds.values()) bound = bound === undefined || sign * (v - bound) > 0 ? v : bound;
  }
  return {
    bound,
    verdict: (i) => {
      if (i >= out.length || out[i] === 0) return null;
      return { value: Number.isFinite(d[i]) ? d[i] : null, threshold: over(d[i]) ? plan.maxScore! : (bounds.get(scores.group(i)) ?? bound!) };
    },
  };
}
