// The distilled merge (knowledge fusion): n adapters of one base become ONE new LoRA adapter that answers adapter i's
// prompts as base + adapter i and general prompts as the bare base. Only prompts are needed, no answers:
//   1. replies: each group's teacher (base + adapter i, or the bare base for the general prompts) answers its prompts
//      greedily;
//   2. teachers: the same teacher's top-k on those replies, written into one teacher cache (distill-cache.ts), the
//      adapter of each row's group attached while its rows are scored;
//   3. student: a fresh adapter trained on all rows with distill()'s KL loss, reading that cache.
// The result is an ordinary adapter (save it as PEFT or GGUF like any other).

import { createHash } from 'node:crypto';
import type { Conversation } from '../data/types.js';
import { noGrad } from '../engine/index.js';
import { checkBase, fingerprintDifferences, LoraAdapter, type LoraConfig } from '../lora/index.js';
import { generateTokens } from '../models/generate.js';
import { LINEAR_MODULES, type LlamaModel } from '../models/llama.js';
import { chatPromptIds } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { Row } from './batching.js';
import { rowsFingerprint, tokenizerFingerprint, writeTeacherCache } from './distill-cache.js';
import { DIVERGENCE_DEFAULTS, type SparseTeacher } from './distill-loss.js';
import { distill, DISTILL_DEFAULTS, scoreRows, type DistillResult } from './distill.js';
import { conversationExample, finetuneRows } from './finetune.js';
import type { TrainConfig, TrainerHooks } from './trainer.js';

export interface DistillMergeOptions {
  /** the shared base, with no adapter attached (teachers and student are this model with adapters attached in turn) */
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** the adapters to merge, each at its scale */
  adapters: readonly { adapter: LoraAdapter; scale: number }[];
  /** prompts[i]: prompts of adapter i's kind (same order as adapters) */
  prompts: readonly (readonly string[])[];
  /** prompts the merged adapter must answer as the bare base */
  general: readonly string[];
  template?: string; // default: the tokenizer's chat template
  /** the student adapter: default r 16, alpha 2r, the union of the adapters' target modules */
  lora?: Partial<LoraConfig>;
  replyTokens?: number; // longest teacher reply (default 48)
  /** distil the base's distribution over the general prompts' own tokens too, not only over its replies (as Learning
   *  without Forgetting keeps the old model's outputs on new inputs): more of the base's behaviour per prompt. Default
   *  false: on the skills bench it kept more of each skill and of the everyday prompts (bench/skills.ts's header), on
   *  the unit test's two-adapter model it cost one adapter's kind half its agreement. */
  generalPromptTokens?: boolean;
  topK?: number; // teacher tokens kept per position (default 32)
  seqLen: number;
  batchSize: number;
  seed?: number; // student init and data order (default 0)
  /** where the teachers' top-k is written (always rebuilt: the replies are generated anew) */
  cachePath: string;
  train: Partial<TrainConfig> & { steps: number };
  onStep?: TrainerHooks['onStep'];
  note?: (message: string) => void;
}

export interface DistillMergeResult {
  adapter: LoraAdapter;
  /** the teachers' replies, group by group (adapters in order, then general) */
  conversations: Conversation[];
  /** rows per group (adapters in order, then general) */
  groupRows: number[];
  distill: DistillResult;
  seconds: { replies: number; cache: number; train: number };
}

export const DISTILL_MERGE_DEFAULTS = { rank: 16, replyTokens: 48, generalPromptTokens: false } as const;

/** Refuses what cannot be merged: counts that differ, empty prompt lists, adapters of another base. */
export function checkDistillMerge(o: Pick<DistillMergeOptions, 'model' | 'adapters' | 'prompts' | 'general'>): void {
  const n = o.adapters.length;
  if (n === 0) throw new Error('distilled merge: no adapters given');
  if (o.prompts.length !== n) throw new Error(`distilled merge: ${o.prompts.length} prompt file(s) for ${n} adapter(s); give one prompt file per adapter, in the adapters' order`);
  o.prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`distilled merge: no prompts for adapter ${i + 1} (${o.adapters[i].adapter.name})`);
  });
  if (o.general.length === 0) throw new Error('distilled merge: no general prompts (they keep the base\'s behaviour elsewhere)');
  const ref = o.adapters.find((a) => a.adapter.fingerprint !== null)?.adapter;
  for (const { adapter } of o.adapters) {
    if (adapter.attachedTo !== null) throw new Error(`distilled merge: adapter ${adapter.name} is attached; pass detached adapters`);
    if (ref !== undefined && adapter !== ref && adapter.fingerprint !== null) {
      const d = fingerprintDifferences(ref.fingerprint!, adapter.fingerprint);
      if (d.length > 0) throw new Error(`distilled merge: ${adapter.name} and ${ref.name} were trained on different base models (${d.join('; ')})`);
    }
    if (adapter.fingerprint !== null) checkBase(o.model, adapter.fingerprint, `distilled merge: adapter ${adapter.name}`);
  }
}

/** Runs f with group g's teacher in place: adapter g attached at its scale, or (g = n) the bare base. */
function withTeacher<T>(o: DistillMergeOptions, g: number, f: () => T): T {
  const a = o.adapters[g];
  if (a === undefined) return f();
  a.adapter.attach(o.model, { scale: a.scale });
  try {
    return f();
  } finally {
    a.adapter.detach();
  }
}

/** Greedy replies of the model as it stands to each prompt (one user turn, the chat template's generation prompt). */
export function greedyReplies(model: LlamaModel, tokenizer: Tokenizer, template: string, prompts: readonly string[], maxTokens: number): string[] {
  const stop = new Set(tokenizer.stopIds);
  return prompts.map((p) => {
    const ids = chatPromptIds(tokenizer, template, [{ role: 'user', content: p }]);
    const [g] = noGrad(() => generateTokens(model, tokenizer, [ids], { maxTokens, sampling: { temperature: 0 } }));
    const cut = g.tokens.findIndex((id) => stop.has(id));
    return tokenizer.decode(cut >= 0 ? g.tokens.slice(0, cut) : g.tokens);
  });
}

/** Trains one adapter reproducing base + adapter i on prompts[i] and the base on the general prompts. */
export async function distillMerge(o: DistillMergeOptions): Promise<DistillMergeResult> {
  checkDistillMerge(o);
  const template = o.template ?? o.tokenizer.chatTemplate;
  if (template === null) throw new Error('distilled merge: the tokenizer has no chat template; pass one');
  const groups = [...o.prompts, o.general];
  const names = [...o.adapters.map((a) => a.adapter.name), 'base'];

  // 1. the teachers' greedy replies
  let t0 = performance.now();
  const maxTokens = o.replyTokens ?? DISTILL_MERGE_DEFAULTS.replyTokens;
  const byGroup: Conversation[][] = groups.map((prompts, g) => {
    o.note?.(`${names[g]}: answering ${prompts.length} prompts greedily`);
    const replies = withTeacher(o, g, () => greedyReplies(o.model, o.tokenizer, template, prompts, maxTokens));
    return prompts.map((p, k) => ({ messages: [{ role: 'user', content: p }, { role: 'assistant', content: replies[k] }] }));
  });
  const replies = (performance.now() - t0) / 1000;

  // 2. one cache over every row (as distill() tokenizes them), each group scored by its own teacher
  t0 = performance.now();
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const general = new Set((o.generalPromptTokens ?? DISTILL_MERGE_DEFAULTS.generalPromptTokens) ? byGroup[groups.length - 1] : []);
  const promptTokens = (c: Conversation): boolean => general.has(c);
  const rowsOf = (cs: readonly Conversation[]): Row[] => finetuneRows(cs.map((c) => conversationExample(o.tokenizer, c, template, promptTokens(c))), 'padded', o.seqLen, padId).rows;
  const groupRows = byGroup.map(rowsOf);
  const all = groupRows.flat();
  const groupOf = groupRows.flatMap((rs, g) => rs.map(() => g));
  const K = o.topK ?? DISTILL_DEFAULTS.topK;
  const T = DIVERGENCE_DEFAULTS.temperature;
  const teacherName = `distilled merge of ${o.adapters.map((a) => `${a.adapter.name}@${a.scale}`).join(', ')} (+ base on general prompts)`;
  const teacherId = createHash('sha256').update(JSON.stringify({ names, scales: o.adapters.map((a) => a.scale), data: rowsFingerprint(all) })).digest('hex').slice(0, 16);
  let at = 0;
  const score = (chunk: readonly Row[]): SparseTeacher[] => {
    const out: SparseTeacher[] = [];
    for (let j = 0; j < chunk.length;) {
      const g = groupOf[at + j];
      let e = j;
      while (e < chunk.length && groupOf[at + e] === g) e++;
      out.push(...withTeacher(o, g, () => scoreRows(o.model, chunk.slice(j, e), K, T, padId)));
      j = e;
    }
    at += chunk.length;
    return out;
  };
  o.note?.(`scoring ${all.length} rows (${groupRows.map((r, g) => `${names[g]} ${r.length}`).join(', ')}) into ${o.cachePath}`);
  writeTeacherCache(o.cachePath, { teacher: teacherName, teacherId, tokenizer: tokenizerFingerprint(o.tokenizer), data: rowsFingerprint(all), vocabSize: o.model.config.vocabSize, k: K, temperature: T }, all, score, o.batchSize);
  const cache = (performance.now() - t0) / 1000;

  // 3. the student: one fresh adapter trained on every row against the cache (the teacher is never asked for again)
  t0 = performance.now();
  const targets = o.lora?.targetModules ?? LINEAR_MODULES.filter((m) => o.adapters.some(({ adapter }) => [...adapter.modules.keys()].some((k) => k.endsWith(`.${m}`))));
  const r = o.lora?.r ?? DISTILL_MERGE_DEFAULTS.rank;
  const adapter = LoraAdapter.create(o.model, { loraAlpha: 2 * r, ...o.lora, r, targetModules: targets }, { seed: o.seed ?? 0, name: 'distill-merge' });
  const conversations = byGroup.flat();
  try {
    const d = await distill({
      student: o.model, adapter, tokenizer: o.tokenizer, conversations, evalConversations: [], template, promptTokens, seqLen: o.seqLen, batchSize: o.batchSize,
      dataSeed: o.seed ?? 0, topK: K, loss: { divergence: 'forward-kl', temperature: T, alpha: 0 }, cachePath: o.cachePath,
      teacher: () => {
        throw new Error('distilled merge: the teachers run only while the cache is built');
      },
      teacherName, teacherId, train: o.train, onStep: o.onStep, note: o.note,
    });
    adapter.detach();
    return { adapter, conversations, groupRows: groupRows.map((rs) => rs.length), distill: d, seconds: { replies, cache, train: (performance.now() - t0) / 1000 } };
  } catch (e) {
    adapter.dispose();
    throw e;
  }
}
