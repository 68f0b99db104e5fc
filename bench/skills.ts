// Skills bench: does stacking fine-tunes keep what each one learned? On the bundled base (assets/default-model) one
// LoRA adapter is trained per synthetic skill (src/data/skills.ts: single-digit sums, opposites, counting, animal
// sounds; NOMOAT_SKILLS_SET=hard: addition, reversal, date shifting, key–value JSON; fresh every run, nothing cached), then each skill's exact-match accuracy (greedy) is measured for: the base,
// the skill's own adapter alone, the unmerged stack of all adapters, and every PEFT combination method
// (add_weighted_adapter, weights 1, density 0.5, seed 0). Also, per layer and module, the numerical rank of the
// summed update Σ s·B·A against each adapter's own rank. JSON lines on stdout; the same as Markdown tables in
// bench-results/skills.md (the path is printed on stderr).
//
// Budget (2 cores): SKILL_STEPS updates of BATCH padded rows per adapter and TEST_ITEMS test prompts per skill keep
// the whole run under 30 minutes. NOMOAT_SKILLS_QUICK=1 shrinks everything for a smoke run; NOMOAT_SKILLS_STEPS
// and NOMOAT_SKILLS_TEST override the two budgets; NOMOAT_SKILLS_BASE names another base model; NOMOAT_SKILLS_SET=hard
// picks the harder skill set; NOMOAT_SKILLS_LR and NOMOAT_SKILLS_LORA (JSON, e.g. '{"r":4,"loraAlpha":8}') change
// the adapters' recipe, so each variant tried against interference is one command.
//
// Besides the stack, it reports what explains a stack's failure or success: how large each adapter's update is next
// to the base weights (‖s·B·A‖_F / ‖W‖_F), every pair of adapters stacked alone, and one adapter trained on all
// skills together with the same data and steps (what a single fine-tune of the same capacity reaches), and where the
// stack's wrong replies come from (another skill's answers, or other text), and each adapter alone on the other
// skills' prompts and on everyday prompts (does it answer everything from its own skill?). A second set of adapters
// is trained with general chats replayed (NOMOAT_SKILLS_REPLAY share, default 0.5, 0 skips it; the chats come from
// NOMOAT_SKILLS_REPLAY_FILE, default assets/data/generic-chats.jsonl), and measured alone, stacked and in pairs.
//
// Routing (issue 14): the four adapters kept apart and chosen per prompt by the prompt router (each adapter signed
// with its training prompts; threshold calibrated on the even-numbered user turns of the general chats) or mixed per
// token by Arrow (PEFT ArrowConfig defaults top_k 3, router_temperature 1; and top_k 1). Measured: accuracy per
// skill, the router's accuracy (skill prompts sent to their own adapter, general prompts to none), everyday prompts
// answered as the base answers them (ROUTE_GENERAL odd-numbered general user turns, held out from calibration, and
// the 12 EVERYDAY prompts), and the router's added latency per request (one partial base forward).
//
// Distilled merge (issue 14): the four adapters distilled into ONE new adapter (rank DM_RANK ≤ 32;
// src/train/distill-merge.ts): each adapter answers an even sample of its skill's training prompts (no answers kept),
// the base answers even-numbered general user turns, and the new adapter learns those teachers' distributions.
// Measured as the routed library is (accuracy per skill, general and everyday prompts answered as the base), with
// its time (replies + teachers + training); it runs in NOMOAT_SKILLS_ONLY=routing too.
// Variants measured (the same four adapters; per skill add-digit / opposites / counting / animal-sounds, own adapters
// 33.3 / 75 / 100 / 100; general and everyday prompts answered as the base; targets ≥ 90 % of each own, everyday ≥ 80):
//   160 general, replies only, 400 steps                   25.0 / 75 / 100 / 83.3   45.0 %  25.0 %
//   640 general, replies only, 400 steps                   16.7 / 75 / 100 / 66.7   65.0 %  66.7 %
//   640 general, replies only, 1200 steps                  16.7 / 75 / 100 / 83.3   65.0 %  58.3 %
//   640 general, + their prompt tokens, 600 steps (now)    33.3 / 75 / 100 / 75.0   67.5 %  75.0 %
//   320 a skill, 1280 general, + prompt tokens, 1200 steps 25.0 / 75 / 100 / 75.0   60.8 %  50.0 %
// NOMOAT_SKILLS_DM_GENERAL, _DM_PROMPTS, _DM_STEPS and _DM_PROMPT_TOKENS=0 set them; NOMOAT_SKILLS_ADAPTER_CACHE=DIR
// (development) keeps the four skill adapters between runs.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/engine/index.js';
import { BENCH_SKILLS, DEMO_SKILLS, SKILLS, skillConversation, skillSplit, type SkillExample, type SkillName } from '../src/data/skills.js';
import type { Conversation } from '../src/data/types.js';
import { loadConversations, mixReplay } from '../src/data/index.js';
import { numericalRank, type LowRankTerm } from '../src/linalg/index.js';
import {
  ArrowRouter, COMBINATION_TYPES, loadPeftAdapter, LoraAdapter, PromptRouter, savePeftAdapter, ROUTE_DEFAULTS, checkLoraConfig, combineAdapters, promptFeatures, relativeUpdateNorms, routePrompt, signPrompts,
  type LoraConfig,
} from '../src/lora/index.js';
import { evenSample } from '../src/lora/signature.js';
import { generateTokens } from '../src/models/generate.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { renderChat, type Tokenizer } from '../src/tokenizer/index.js';
import { conversationExample, distillMerge, finetune } from '../src/train/index.js';
import { emit } from './common.js';

const QUICK = process.env.NOMOAT_SKILLS_QUICK === '1';
// NOMOAT_SKILLS_ONLY=routing: the four adapters, the base, each adapter alone and the routing rows only (no joint or
// replay adapters, no combinations or pairs), reported in bench-results/skills-routing.md (skills.md is left as is)
const ONLY_ROUTING = process.env.NOMOAT_SKILLS_ONLY === 'routing';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE = process.env.NOMOAT_SKILLS_BASE ?? join(ROOT, 'assets', 'default-model'); // override: another HF folder or GGUF
const REPORT = join(ROOT, 'bench-results', 'skills.md');
const ROUTING_REPORT = join(ROOT, 'bench-results', 'skills-routing.md');

const envInt = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
function envNumber(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}
function loraOverride(): Partial<LoraConfig> {
  const v = process.env.NOMOAT_SKILLS_LORA;
  if (v === undefined) return {};
  try {
    const o: unknown = JSON.parse(v);
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('not an object');
    return o;
  } catch (e) {
    throw new Error(`NOMOAT_SKILLS_LORA must be a JSON object of LoRA settings (r, loraAlpha, targetModules, layers, useRslora), got ${JSON.stringify(v)}: ${(e as Error).message}`);
  }
}
const SKILL_STEPS = envInt('NOMOAT_SKILLS_STEPS', QUICK ? 10 : 150); // optimizer updates per adapter
const BATCH = 16; // conversations per update, one per padded row (rows start at position 0, as prompts do)
const MAX_SEQ = 128; // row length cap; each skill's rows are as long as its longest conversation
const TRAIN_ITEMS = QUICK ? 200 : 2400; // examples per skill (≥ steps × batch: no example is seen twice)
const HARD = process.env.NOMOAT_SKILLS_SET === 'hard';
// held-out prompts per skill (the default set's animal-sounds skill has only 36 distinct prompts in all)
const TEST_ITEMS = envInt('NOMOAT_SKILLS_TEST', QUICK ? 8 : HARD ? 40 : 12);
const LR = envNumber('NOMOAT_SKILLS_LR', 5e-3); // 2e-3 learns visibly slower in this budget, 1.5e-2 diverges
const LORA: LoraConfig = checkLoraConfig({ r: 16, loraAlpha: 32, loraDropout: 0, targetModules: 'all-linear', ...loraOverride() });
const DENSITY = 0.5;
// A second set of skill adapters is trained with this share of general chats mixed in (finetune --replay); 0 skips it.
const REPLAY_SHARE = envNumber('NOMOAT_SKILLS_REPLAY', 0.5);
const REPLAY_FILE = process.env.NOMOAT_SKILLS_REPLAY_FILE ?? join(ROOT, 'assets', 'data', 'generic-chats.jsonl');
const REPLAY_MAX_TOKENS = 64; // general chats longer than this are left out: padded rows stay short
/** Prompts outside every skill (the kinds of chat the bundled base was pretrained on): does an adapter leave them alone? */
const EVERYDAY = [
  'hi', 'hello! who are you?', 'thank you!', 'tell me a sentence about a dog.', 'write one sentence with the word tree.',
  'repeat after me: the sun was warm.', 'what is the first word? the cat ran home.', 'what is the last word? lily had a red ball.',
  'finish the sentence: once upon a time', 'tell me a short story about a bird.', 'spell the word fish.', 'is the word ball in this sentence? tom had a ball.',
] as const;
const SEED = 0;
/** held-out general prompts the routed library is checked on (odd-numbered user turns of REPLAY_FILE) */
const ROUTE_GENERAL = QUICK ? 24 : 120;
/** training prompts each adapter is signed with (an even sample: the statistics settle long before 2400) */
const ROUTE_SIGNED = 128;
/** general prompts the prompt router's threshold is calibrated on (even-numbered user turns), as the CLI reads at most */
const ROUTE_CALIBRATION = 256;
/** distilled merge: rank of the new adapter, prompts per skill and general prompts it learns from, its updates */
const DM_RANK = 32;
const DM_PROMPTS = envInt('NOMOAT_SKILLS_DM_PROMPTS', QUICK ? 16 : 160);
const ADAPTER_CACHE = process.env.NOMOAT_SKILLS_ADAPTER_CACHE;
const DM_PROMPT_TOKENS = process.env.NOMOAT_SKILLS_DM_PROMPT_TOKENS !== '0';
const DM_GENERAL = envInt('NOMOAT_SKILLS_DM_GENERAL', QUICK ? 16 : 4 * DM_PROMPTS); // as many as the skills' prompts together
const DM_STEPS = envInt('NOMOAT_SKILLS_DM_STEPS', QUICK ? 5 : 600);

interface Variant {
  name: string;
  label: string;
  /** the variant whose accuracy this one is measured against (default: each skill's own adapter alone) */
  ref?: string;
}

/** Greedy replies to prompts (batched by prompt length, as the generator needs equal lengths per batch). */
function answer(model: LlamaModel, tok: Tokenizer, prompts: readonly string[], maxTokens: number): string[] {
  const template = tok.chatTemplate!;
  const ids = prompts.map((p) => tok.encode(renderChat(template, [{ role: 'user', content: p }], { addGenerationPrompt: true }), { parseSpecial: true, addBos: false }));
  const byLen = new Map<number, number[]>();
  ids.forEach((x, i) => byLen.set(x.length, [...(byLen.get(x.length) ?? []), i]));
  const out = new Array<string>(prompts.length).fill('');
  for (const idx of byLen.values()) {
    const gens = generateTokens(model, tok, idx.map((i) => ids[i]), { maxTokens, sampling: { temperature: 0 } });
    gens.forEach((g, j) => (out[idx[j]] = g.text));
  }
  return out;
}

/** Greedy replies of the model to a skill's test prompts (up to the longest answer plus two tokens). */
function replies(model: LlamaModel, tok: Tokenizer, test: readonly SkillExample[]): string[] {
  const maxTokens = Math.max(...test.map((e) => tok.encode(e.answer, { addBos: false }).length)) + 2;
  return answer(model, tok, test.map((e) => e.prompt), maxTokens);
}

/** Exact-match accuracy of replies to a skill's test items. */
const scored = (skill: SkillName, test: readonly SkillExample[], reps: readonly string[]): number => reps.filter((r, i) => SKILLS[skill].check(r, test[i].answer)).length / test.length;

/** Exact-match accuracy of the model on a skill's test items. */
function accuracy(model: LlamaModel, tok: Tokenizer, skill: SkillName, test: readonly SkillExample[]): number {
  return scored(skill, test, replies(model, tok, test));
}

/**
 * Where a stack's wrong replies come from: for each skill's test replies, how many are another skill's answer (one of
 * the answers in that skill's training data, and not one of this skill's own: "4" is both a sum and a count, so it
 * is never blamed on either). An adapter that answers every prompt from its own vocabulary shows up here.
 */
function hijacks(reps: readonly string[], own: ReadonlySet<string>, others: readonly ReadonlySet<string>[]): { byOther: number[]; any: number } {
  const byOther = others.map(() => 0);
  let any = 0;
  for (const r of reps.map((x) => x.trim())) {
    if (own.has(r)) continue;
    const hit = others.map((o) => o.has(r));
    hit.forEach((h, j) => (byOther[j] += h ? 1 : 0));
    if (hit.some((h) => h)) any++;
  }
  return { byOther, any };
}

/** Numerical rank of Σ s·B·A over the adapters for one module, and each adapter's own numerical rank there. */
function ranks(adapters: readonly LoraAdapter[], module: string): { sum: number; each: number[] } {
  const term = (a: LoraAdapter): LowRankTerm => {
    const m = a.modules.get(module)!;
    return { B: { rows: m.outFeatures, cols: m.r, data: m.B.toArray() }, A: { rows: m.r, cols: m.inFeatures, data: m.A.toArray() }, scale: m.scaling };
  };
  const terms = adapters.map(term);
  return { sum: numericalRank(terms), each: terms.map((t) => numericalRank([t])) };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}`;
const quantileOf = (v: readonly number[], q: number): number => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(q * v.length))];

export async function runSkillsBench(): Promise<void> {
  const t0 = performance.now();
  const secs = (): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const log = (s: string): void => void process.stderr.write(`skills: ${s} [${secs()}]\n`);
  getBackend().setThreads(cpus().length);
  const { model, tokenizer } = loadModel(BASE, { dtype: 'f32' }); // f32 base: plain GEMMs, faster than f16 qlinear here
  if (tokenizer === null || tokenizer.chatTemplate === null) throw new Error(`${BASE}: the bench needs a tokenizer with a chat template`);
  // Default: the four skills the bundled 6M-parameter base can learn in minutes (opposites, counting, animal sounds,
  // single-digit sums). NOMOAT_SKILLS_SET=hard runs multi-digit addition, reversal, date shifting and key–value JSON,
  // which single adapters on this base do not learn within the budget (0% each, measured): nothing to stack there.
  const skills: SkillName[] = HARD ? [...BENCH_SKILLS] : [...DEMO_SKILLS];
  const n = skills.length;
  const data = skills.map((s, i) => skillSplit(s, { train: TRAIN_ITEMS, test: TEST_ITEMS, seed: 1000 + i }));

  /** A fresh adapter trained on conversations for `steps` updates, detached from the model when done. */
  const train = async (name: string, conversations: Conversation[], steps: number, seed: number): Promise<LoraAdapter> => {
    const adapter = LoraAdapter.create(model, LORA, { seed, name });
    const tt = performance.now();
    const sample = conversations.filter((_, k) => k % Math.max(1, Math.floor(conversations.length / 400)) === 0); // spread over a mixed list
    const seqLen = Math.min(MAX_SEQ, Math.max(...sample.map((c) => conversationExample(tokenizer, c).ids.length)) + 8);
    const r = await finetune({
      model, adapter, tokenizer, conversations, evalConversations: [], mode: 'padded', seqLen, batchSize: BATCH, dataSeed: seed,
      train: { steps, lr: LR, warmupSteps: Math.min(10, Math.floor(steps / 10)), schedule: 'cosine', progress: 'none', handleSigint: false, outDir: null },
    });
    adapter.detach();
    log(`trained ${name}: ${steps} steps of ${BATCH}×${seqLen}, final loss ${r.result.loss.toFixed(3)}, ${((performance.now() - tt) / 1000).toFixed(0)} s`);
    return adapter;
  };

  // ---- one adapter per skill, and one on all skills together (same examples, same number of updates in all) -----
  const adapters: LoraAdapter[] = [];
  const ta = performance.now();
  for (const [i, s] of skills.entries()) {
    // NOMOAT_SKILLS_ADAPTER_CACHE=DIR (development only: the bench's numbers are for fresh adapters) keeps the skill
    // adapters between runs, so the merge and routing rows can be iterated on without retraining them
    const cached = ADAPTER_CACHE === undefined ? undefined : join(ADAPTER_CACHE, `${s}-${SKILL_STEPS}`);
    if (cached !== undefined && existsSync(join(cached, 'adapter_config.json'))) {
      adapters.push(loadPeftAdapter(cached, model, { name: s }));
      log(`loaded ${s} from ${cached}`);
      continue;
    }
    adapters.push(await train(s, data[i].train.map((e) => skillConversation(e)), SKILL_STEPS, SEED + i));
    if (cached !== undefined) savePeftAdapter(adapters[i], cached);
  }
  const adaptersSeconds = (performance.now() - ta) / 1000; // the distilled merge's time is reported against it
  // interleaved so that every batch mixes skills, as a single fine-tune on the union would see them
  const mixed = data[0].train.flatMap((_, k) => data.map((d) => skillConversation(d.train[k])));
  const joint = ONLY_ROUTING ? null : await train('all skills', mixed, SKILL_STEPS * n, SEED + n);
  // the same skills again, each with general chats replayed (what finetune --replay does); same steps, same skill data
  const replayAdapters: LoraAdapter[] = [];
  if (REPLAY_SHARE > 0 && !ONLY_ROUTING) {
    const generic = (await loadConversations(REPLAY_FILE)).conversations.filter((c) => conversationExample(tokenizer, c).ids.length <= REPLAY_MAX_TOKENS);
    for (const [i, s] of skills.entries()) {
      const mix = mixReplay(data[i].train.map((e) => skillConversation(e)), generic, REPLAY_SHARE, SEED + i).items;
      replayAdapters.push(await train(`${s} + replay`, mix, SKILL_STEPS, SEED + i));
    }
  }

  // ---- accuracies -------------------------------------------------------------------------------------------------
  const acc = new Map<string, number[]>(); // variant → accuracy per skill
  let stackReplies: string[][] = []; // replies per skill, kept to say where the stack's wrong ones come from
  const evalWith = (name: string, active: readonly LoraAdapter[], scale = 1): number[] => {
    for (const a of active) a.attach(model, { scale });
    const reps = skills.map((_, i) => replies(model, tokenizer, data[i].test));
    if (name === 'stack') stackReplies = reps;
    const r = skills.map((s, i) => scored(s, data[i].test, reps[i]));
    for (const a of active) {
      a.detach();
      a.scale = 1; // attach() keeps the scale it was given: later attaches and the update sizes assume 1
    }
    acc.set(name, r);
    log(`${name}: ${r.map(pct).join(' / ')} %`);
    return r;
  };
  evalWith('base', []);
  // each adapter alone on every skill's test prompts (its own skill's: its accuracy; the others': does it answer from
  // its own skill anyway?) and on everyday prompts outside every skill
  const everydayReplies = (active: LoraAdapter | null): string[] => {
    active?.attach(model, { scale: 1 });
    const r = answer(model, tokenizer, EVERYDAY, 8);
    active?.detach();
    return r;
  };
  const baseEveryday = everydayReplies(null);
  const alone = [...adapters, ...replayAdapters, ...(joint !== null ? [joint] : [])].map((a) => {
    a.attach(model, { scale: 1 });
    const onSkill = skills.map((_, j) => replies(model, tokenizer, data[j].test));
    a.detach();
    const every = everydayReplies(a);
    return { onSkill, every, sameAsBase: every.filter((r, k) => r.trim() === baseEveryday[k].trim()).length / EVERYDAY.length };
  });
  const jointAlone = joint !== null ? alone.pop()! : null;
  const ownAccuracy = (name: string, first: number): number[] => {
    const r = skills.map((s, i) => scored(s, data[i].test, alone[first + i].onSkill[i]));
    acc.set(name, r);
    log(`${name}: ${r.map(pct).join(' / ')} %`);
    return r;
  };
  const single = ownAccuracy('single', 0);
  const singleReplies = skills.map((_, i) => alone[i].onSkill[i]);
  if (jointAlone !== null) {
    acc.set('joint', skills.map((s, i) => scored(s, data[i].test, jointAlone.onSkill[i])));
    log(`joint: ${acc.get('joint')!.map(pct).join(' / ')} %`);
    evalWith('stack', adapters);
    evalWith('stack_1_over_n', adapters, 1 / n);
  }
  if (replayAdapters.length > 0) {
    ownAccuracy('replay_single', n);
    evalWith('replay_stack', replayAdapters);
  }
  for (const method of ONLY_ROUTING ? [] : COMBINATION_TYPES) {
    const c = combineAdapters(adapters, method, { density: DENSITY, seed: SEED, name: method });
    evalWith(method, [c]);
    c.dispose();
  }
  // ---- routing: the adapters kept apart, chosen per prompt (signatures) or mixed per token (Arrow) ----------------
  const tr = performance.now();
  const sigs = adapters.map((a, i) => signPrompts(model, tokenizer, evenSample(data[i].train.map((e) => e.prompt), ROUTE_SIGNED), { source: a.name }));
  const signMs = performance.now() - tr;
  const generalPrompts = (await loadConversations(REPLAY_FILE)).conversations.map((c) => c.messages.find((m) => m.role === 'user')?.content ?? '').filter((p) => p.trim() !== '');
  const calibration = evenSample(generalPrompts.filter((_, k) => k % 2 === 0), ROUTE_CALIBRATION);
  const heldGeneral = evenSample(generalPrompts.filter((_, k) => k % 2 === 1), ROUTE_GENERAL);
  const router = new PromptRouter(skills.map((s, i) => ({ name: s, signature: sigs[i] })));
  const tau = router.calibrate(promptFeatures(model, tokenizer, calibration, router.layer));
  const routeMs: number[] = [];
  const fullMs: number[] = [];
  /** the adapter index the router picks for a prompt (−1: the base), timed; and a full-depth forward of it, timed */
  const routeOf = (p: string): number => {
    const t = performance.now();
    const d = routePrompt(router, model, tokenizer, p);
    routeMs.push(performance.now() - t);
    const t2 = performance.now();
    promptFeatures(model, tokenizer, [p], model.config.numLayers);
    fullMs.push(performance.now() - t2);
    return d.chosen.length === 0 ? -1 : skills.indexOf(d.chosen[0].name as SkillName);
  };
  /** replies with each prompt answered by the adapter the router picks for it (or the base) */
  const routedReplies = <T>(items: readonly T[], routes: readonly number[], run: (group: T[]) => string[]): string[] => {
    const out = new Array<string>(items.length).fill('');
    for (const k of [-1, ...skills.keys()]) {
      const idx = items.flatMap((_, j) => (routes[j] === k ? [j] : []));
      if (idx.length === 0) continue;
      if (k >= 0) adapters[k].attach(model, { scale: 1 });
      run(idx.map((j) => items[j])).forEach((r, g) => (out[idx[g]] = r));
      if (k >= 0) adapters[k].detach();
    }
    return out;
  };
  const skillRoutes = skills.map((_, i) => data[i].test.map((e) => routeOf(e.prompt)));
  const routedReps = skills.map((_, i) => routedReplies(data[i].test, skillRoutes[i], (g) => replies(model, tokenizer, g)));
  acc.set('routed', skills.map((s, i) => scored(s, data[i].test, routedReps[i])));
  log(`routed: ${acc.get('routed')!.map(pct).join(' / ')} % (τ ${tau.toFixed(3)}, layer ${router.layer})`);
  const generalRoutes = heldGeneral.map(routeOf);
  const everydayRoutes = EVERYDAY.map(routeOf);
  const baseGeneral = answer(model, tokenizer, heldGeneral, 8);
  const same = (a: readonly string[], b: readonly string[]): number => a.filter((r, k) => r.trim() === b[k].trim()).length / a.length;
  const routedGeneralSame = same(routedReplies(heldGeneral, generalRoutes, (g) => answer(model, tokenizer, g, 8)), baseGeneral);
  const routedEverydaySame = same(routedReplies(EVERYDAY, everydayRoutes, (g) => answer(model, tokenizer, g, 8)), baseEveryday);
  const toOwn = skillRoutes.map((r, i) => r.filter((k) => k === i).length / r.length);
  const toBase = (r: readonly number[]): number => r.filter((k) => k < 0).length / r.length;
  const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
  const arrowRows: { name: string; topK: number; generalSame: number; everydaySame: number }[] = [];
  for (const topK of [3, 1]) {
    const name = `arrow_top${topK}`;
    const arrow = new ArrowRouter(adapters, { topK, temperature: 1 });
    arrow.attach(model);
    const reps = skills.map((_, i) => replies(model, tokenizer, data[i].test));
    const generalSame = same(answer(model, tokenizer, heldGeneral, 8), baseGeneral);
    const everydaySame = same(answer(model, tokenizer, EVERYDAY, 8), baseEveryday);
    arrow.detach();
    acc.set(name, skills.map((s, i) => scored(s, data[i].test, reps[i])));
    arrowRows.push({ name, topK, generalSame, everydaySame });
    log(`${name}: ${acc.get(name)!.map(pct).join(' / ')} %, general prompts as base ${pct(generalSame)} %`);
  }
  log(`routing measured (${((performance.now() - tr) / 1000).toFixed(0)} s)`);

  // ---- distilled merge: one new adapter learning each adapter's replies to its prompts, the base's elsewhere ------
  const dmPrompts = data.map((d) => evenSample(d.train.map((e) => e.prompt), DM_PROMPTS));
  const dmGeneral = evenSample(generalPrompts.filter((_, k) => k % 2 === 0), DM_GENERAL);
  const dm = await distillMerge({
    model, tokenizer, adapters: adapters.map((adapter) => ({ adapter, scale: 1 })), prompts: dmPrompts, general: dmGeneral,
    lora: { r: DM_RANK, loraAlpha: 2 * DM_RANK, targetModules: 'all-linear' }, replyTokens: 24, generalPromptTokens: DM_PROMPT_TOKENS, seqLen: MAX_SEQ, batchSize: BATCH, seed: SEED,
    cachePath: join(tmpdir(), `nomoat-skills-dm-${process.pid}.bin`),
    train: { steps: DM_STEPS, lr: LR, warmupSteps: Math.min(10, Math.floor(DM_STEPS / 10)), schedule: 'cosine', progress: 'none', handleSigint: false, outDir: null },
  });
  const dmSeconds = dm.seconds.replies + dm.seconds.cache + dm.seconds.train;
  dm.adapter.attach(model);
  const dmReps = skills.map((_, i) => replies(model, tokenizer, data[i].test));
  const dmGeneralSame = same(answer(model, tokenizer, heldGeneral, 8), baseGeneral);
  const dmEverydaySame = same(answer(model, tokenizer, EVERYDAY, 8), baseEveryday);
  dm.adapter.detach();
  dm.adapter.dispose();
  acc.set('distilled', skills.map((s, i) => scored(s, data[i].test, dmReps[i])));
  log(`distilled merge: ${acc.get('distilled')!.map(pct).join(' / ')} %, general as base ${pct(dmGeneralSame)} %, everyday as base ${pct(dmEverydaySame)} %, ${dmSeconds.toFixed(0)} s`);

  /** Emits the distilled merge's records beside its accuracy rows and returns its section of the Markdown report. */
  const distilledReport = (): string[] => {
    for (const [metric, ours, what] of [
      ['distilled_general_prompts_same_reply_as_base', dmGeneralSame, `${heldGeneral.length} held-out general chats (user turns)`],
      ['distilled_everyday_prompts_same_reply_as_base', dmEverydaySame, `the ${EVERYDAY.length} everyday prompts`],
    ] as const) {
      emit({ bench: 'skills', metric, unit: 'fraction', ours, peer: 1, peer_name: 'the base itself', higher_is_better: true, note: `distilled merge (rank ${DM_RANK}); ${what}, greedy, up to 8 tokens` });
    }
    emit({
      bench: 'skills', metric: 'distilled_merge_time', unit: 's', ours: dmSeconds, peer: adaptersSeconds, peer_name: `training the ${n} skill adapters`, higher_is_better: false,
      note: `replies ${dm.seconds.replies.toFixed(0)} s, teachers ${dm.seconds.cache.toFixed(0)} s, ${DM_STEPS} training steps ${dm.seconds.train.toFixed(0)} s`,
    });
    return [
      `Distilled merge: the ${n} adapters distilled into one new adapter (rank ${DM_RANK}, all linear modules; src/train/distill-merge.ts). Each adapter answered ${DM_PROMPTS} of its skill's training prompts greedily (their answers unused), the base answered ${dmGeneral.length} even-numbered general user turns; the new adapter learned those teachers' top-32 distributions (forward KL, ${DM_STEPS} steps × ${BATCH}, lr ${LR}) on the replies${DM_PROMPT_TOKENS ? ', and on the general prompts\' own tokens too' : ''}.`,
      '',
      '| merge | general prompts answered as base | everyday prompts answered as base | time (replies + teachers + training) |',
      '|---|---:|---:|---:|',
      `| distilled merge into one adapter (rank ${DM_RANK}) | ${pct(dmGeneralSame)} | ${pct(dmEverydaySame)} | ${dmSeconds.toFixed(0)} s (${dm.seconds.replies.toFixed(0)} + ${dm.seconds.cache.toFixed(0)} + ${dm.seconds.train.toFixed(0)}) |`,
      '',
    ];
  };

  /** Emits the routing records and returns the routing section of the Markdown report. */
  const routingReport = (): string[] => {
    // routing: where the router sends prompts, everyday prompts answered as the base, its cost
    skills.forEach((s, i) => {
      emit({
        bench: 'skills', metric: `${s}_router_sends_to_own_adapter`, unit: 'fraction', ours: toOwn[i], peer: 1, peer_name: 'every prompt to its own adapter', higher_is_better: true,
        note: `prompt router, layer ${router.layer}, τ ${tau.toFixed(3)}; to the base ${pct(toBase(skillRoutes[i]))} %`,
      });
    });
    emit({
      bench: 'skills', metric: 'router_sends_general_prompts_to_base', unit: 'fraction', ours: toBase(generalRoutes), peer: 1, peer_name: 'every general prompt to the base', higher_is_better: true,
      note: `${heldGeneral.length} held-out general prompts; τ is the ${ROUTE_DEFAULTS.quantile} quantile of ${calibration.length} other general prompts' nearest distance`,
    });
    for (const [metric, ours, arrowSame, what] of [
      ['routed_general_prompts_same_reply_as_base', routedGeneralSame, (a: (typeof arrowRows)[number]) => a.generalSame, `${heldGeneral.length} held-out general chats (user turns)`],
      ['routed_everyday_prompts_same_reply_as_base', routedEverydaySame, (a: (typeof arrowRows)[number]) => a.everydaySame, `the ${EVERYDAY.length} everyday prompts`],
    ] as const) {
      emit({ bench: 'skills', metric, unit: 'fraction', ours, peer: 1, peer_name: 'the base itself', higher_is_better: true, note: `prompt router; ${what}, greedy, up to 8 tokens` });
      for (const a of arrowRows) {
        emit({ bench: 'skills', metric: metric.replace('routed', a.name), unit: 'fraction', ours: arrowSame(a), peer: 1, peer_name: 'the base itself', higher_is_better: true, note: `${what}, greedy, up to 8 tokens` });
      }
    }
    emit({
      bench: 'skills', metric: 'router_added_latency_per_request', unit: 'ms', ours: mean(routeMs), peer: mean(fullMs), peer_name: 'one full-depth base forward over the same prompt',
      ratio: mean(routeMs) / mean(fullMs), higher_is_better: false,
      note: `mean over ${routeMs.length} prompts (median ${quantileOf(routeMs, 0.5).toFixed(2)} ms); ${router.layer} of ${model.config.numLayers} blocks; shared machine, noisy`,
    });
    return [
        `Routing: the ${n} adapters kept apart. Prompt router: each adapter signed with ${ROUTE_SIGNED} of its training prompts (mean and spread, and k-means clumps, of the base's hidden state after ${router.layer} of ${model.config.numLayers} blocks, pooled over the prompt's tokens; ${Math.round(signMs)} ms for all ${n}); ` +
          `a prompt goes to the adapter whose signature is nearest (per-dimension Mahalanobis d²) when d² < τ, else to the base; τ = ${tau.toFixed(3)}, the ${ROUTE_DEFAULTS.quantile} quantile of the nearest d² of ${calibration.length} general prompts (even-numbered user turns of the general chats). ` +
          `Checked on held-out prompts: the skills' test prompts, ${heldGeneral.length} odd-numbered general user turns, and the ${EVERYDAY.length} everyday prompts. Arrow: PEFT's per-token routing, no signatures. Latency: shared machine, noisy.`,
        '',
        `| router | ${skills.map((s) => `${s} prompts to its adapter`).join(' | ')} | general prompts to base | general prompts answered as base | everyday prompts answered as base | added latency per request |`,
        `|---|${skills.map(() => '---:').join('|')}|---:|---:|---:|---:|`,
        `| prompt router | ${toOwn.map(pct).join(' | ')} | ${pct(toBase(generalRoutes))} | ${pct(routedGeneralSame)} | ${pct(routedEverydaySame)} | ${mean(routeMs).toFixed(2)} ms (full-depth forward ${mean(fullMs).toFixed(2)} ms) |`,
        ...arrowRows.map((a) => `| Arrow top_k ${a.topK} | ${skills.map(() => 'per token').join(' | ')} | — | ${pct(a.generalSame)} | ${pct(a.everydaySame)} | in every linear, every token |`),
        '',
    ];
  };
  if (ONLY_ROUTING) {
    const rows = ['base', 'single', 'routed', ...arrowRows.map((x) => x.name), 'distilled'];
    const labels: Record<string, string> = { base: 'base (no adapter)', single: 'own adapter alone', routed: `prompt-routed library of the ${n}`, distilled: `distilled merge into one adapter (rank ${DM_RANK})` };
    for (const x of arrowRows) labels[x.name] = `Arrow over the ${n}, per token (top_k ${x.topK}, router_temperature 1)`;
    for (const v of rows.slice(2)) {
      acc.get(v)!.forEach((x, i) => emit({ bench: 'skills', metric: `${skills[i]}_${v}_accuracy`, unit: 'exact_match', ours: x, peer: single[i], peer_name: 'single adapter', ratio: single[i] > 0 ? x / single[i] : x > 0 ? 1 : 0, higher_is_better: true }));
    }
    const kept = (v: string): string => {
      const k = acc.get(v)!.flatMap((x, i) => (single[i] > 0 ? [x / single[i]] : []));
      return k.length === 0 ? 'n/a' : `${pct(Math.min(...k))} %`;
    };
    const report = [
      `# Skills bench, routing rows only (NOMOAT_SKILLS_ONLY=routing)`,
      '',
      `Base: ${BASE === join(ROOT, 'assets', 'default-model') ? 'assets/default-model' : BASE}. The same ${n} adapters as the full bench (${SKILL_STEPS} steps × ${BATCH}, lr ${LR}, seeds ${SEED}…${SEED + n - 1}), ${TEST_ITEMS} held-out prompts per skill, greedy, exact match. Total time ${secs()}.`,
      '',
      `| variant | ${skills.join(' | ')} | min kept vs own adapter |`,
      `|---|${skills.map(() => '---:').join('|')}|---:|`,
      ...rows.map((v) => `| ${labels[v]} | ${acc.get(v)!.map(pct).join(' | ')} | ${v === 'base' || v === 'single' ? '' : kept(v)} |`),
      '',
      ...routingReport(),
      ...distilledReport(),
    ].join('\n');
    mkdirSync(dirname(ROUTING_REPORT), { recursive: true });
    writeFileSync(ROUTING_REPORT, report);
    process.stderr.write(`${report}\nskills: Markdown report written to ${ROUTING_REPORT}\n`);
    for (const x of adapters) x.dispose();
    model.dispose();
    return;
  }
  const [jointA, jointR] = [joint!, jointAlone!];

  // every pair stacked alone: accuracy on the pair's two skills (is it the number of adapters, or any two?)
  const pairOf = (set: readonly LoraAdapter[], i: number, j: number): [number, number] => {
    set[i].attach(model, { scale: 1 });
    set[j].attach(model, { scale: 1 });
    const r: [number, number] = [accuracy(model, tokenizer, skills[i], data[i].test), accuracy(model, tokenizer, skills[j], data[j].test)];
    set[i].detach();
    set[j].detach();
    return r;
  };
  const pairs: { i: number; j: number; acc: [number, number]; replay: [number, number] | null }[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) pairs.push({ i, j, acc: pairOf(adapters, i, j), replay: replayAdapters.length > 0 ? pairOf(replayAdapters, i, j) : null });
  }

  const answerSets = data.map((d) => new Set([...d.train, ...d.test].map((e) => e.answer.trim()))); // a right reply is never blamed
  /** share of `reps` that are skill i's answers and not skill j's (j < 0: everyday prompts, no answers of their own) */
  const ownShare = (reps: readonly string[], i: number, j: number): number =>
    reps.filter((r) => answerSets[i].has(r.trim()) && (j < 0 || !answerSets[j].has(r.trim()))).length / reps.length;
  /** share of adapter i's replies on the other skills' prompts that come from skill i's answers, for adapter `c` */
  const leak = (c: { onSkill: string[][] }, i: number): number => {
    const js = skills.flatMap((_, j) => (j === i ? [] : [j]));
    return js.reduce((s, j) => s + ownShare(c.onSkill[j], i, j), 0) / js.length;
  };

  // ---- report -----------------------------------------------------------------------------------------------------
  const variants: Variant[] = [
    { name: 'base', label: 'base (no adapter)' },
    { name: 'single', label: 'own adapter alone' },
    { name: 'joint', label: `one adapter trained on all ${n} skills (reference)` },
    { name: 'stack', label: `unmerged stack of all ${n}` },
    { name: 'stack_1_over_n', label: `unmerged stack, each scale 1/${n}` },
    ...(replayAdapters.length > 0
      ? [
          { name: 'replay_single', label: `own adapter alone, trained with ${pct(REPLAY_SHARE)} % general chats replayed` },
          { name: 'replay_stack', label: `unmerged stack of the ${n} replay-trained adapters (vs their own)`, ref: 'replay_single' },
        ]
      : []),
    ...COMBINATION_TYPES.map((m) => ({ name: m, label: m })),
    { name: 'routed', label: `prompt-routed library of the ${n} (one adapter or none per prompt)` },
    ...arrowRows.map((a) => ({ name: a.name, label: `Arrow over the ${n}, per token (top_k ${a.topK}, router_temperature 1)` })),
    { name: 'distilled', label: `distilled merge into one adapter (rank ${DM_RANK})` },
  ];
  for (const v of variants) {
    const ref = acc.get(v.ref ?? 'single')!;
    acc.get(v.name)!.forEach((x, i) => {
      const peer = ref[i];
      emit({
        bench: 'skills', metric: `${skills[i]}_${v.name}_accuracy`, unit: 'exact_match', ours: x, peer, peer_name: v.ref === 'replay_single' ? 'single replay-trained adapter' : 'single adapter',
        ratio: peer > 0 ? x / peer : x > 0 ? 1 : 0, higher_is_better: true,
        ...(peer === 0 ? { note: 'the single adapter scored 0 on its own skill' } : {}),
      });
    });
  }
  for (const p of pairs) {
    for (const [k, s] of [p.i, p.j].entries()) {
      const peer = single[s];
      emit({
        bench: 'skills', metric: `${skills[s]}_pair_with_${skills[k === 0 ? p.j : p.i]}_accuracy`, unit: 'exact_match', ours: p.acc[k], peer, peer_name: 'single adapter',
        ratio: peer > 0 ? p.acc[k] / peer : p.acc[k] > 0 ? 1 : 0, higher_is_better: true,
      });
      if (p.replay !== null) {
        const rpeer = acc.get('replay_single')![s];
        emit({
          bench: 'skills', metric: `${skills[s]}_replay_pair_with_${skills[k === 0 ? p.j : p.i]}_accuracy`, unit: 'exact_match', ours: p.replay[k], peer: rpeer,
          peer_name: 'single replay-trained adapter', ratio: rpeer > 0 ? p.replay[k] / rpeer : p.replay[k] > 0 ? 1 : 0, higher_is_better: true,
        });
      }
    }
  }
  const routingLines = [...routingReport(), ...distilledReport()];
  // hijacked replies: in the stack, and with the skill's own adapter alone (the peer)
  const others = (i: number): number[] => skills.flatMap((_, j) => (j === i ? [] : [j]));
  const hijackOf = (reps: readonly string[][], i: number): { byOther: number[]; any: number } =>
    hijacks(reps[i], answerSets[i], others(i).map((j) => answerSets[j]));
  const hijackRows = skills.map((s, i) => {
    const [st, alone] = [hijackOf(stackReplies, i), hijackOf(singleReplies, i)];
    const t = data[i].test.length;
    emit({
      bench: 'skills', metric: `${s}_stack_replies_not_another_skills_answer`, unit: 'fraction', ours: 1 - st.any / t, peer: 1 - alone.any / t, peer_name: 'single adapter',
      higher_is_better: true, note: `in the unmerged stack, ${st.any} of ${t} replies are another skill's answer (${others(i).map((j, k) => `${skills[j]} ${st.byOther[k]}`).join(', ')})`,
    });
    const blamed = others(i).flatMap((j, k) => (st.byOther[k] > 0 ? [`${skills[j]} ${st.byOther[k]}`] : [])).join(', ');
    return `| ${s} | ${Math.round(acc.get('stack')![i] * t)} | ${st.any}${blamed !== '' ? ` (${blamed})` : ''} | ${t - Math.round(acc.get('stack')![i] * t) - st.any} | ${alone.any} |`;
  });
  const aloneRows = alone.map((c, k) => {
    const i = k % n; // the adapter's skill (plain adapters first, then the replay-trained ones)
    const tag = k < n ? '' : '_replay';
    emit({
      bench: 'skills', metric: `${skills[i]}${tag}_adapter_alone_answers_other_skills_from_own`, unit: 'fraction', ours: leak(c, i), peer: leak(jointR, i),
      peer_name: 'one adapter trained on all skills', higher_is_better: false,
      note: `replies to the other skills' test prompts that are ${skills[i]} answers, with the ${skills[i]} adapter alone`,
    });
    emit({
      bench: 'skills', metric: `${skills[i]}${tag}_adapter_alone_same_reply_as_base_on_everyday_prompts`, unit: 'fraction', ours: c.sameAsBase, peer: jointR.sameAsBase,
      peer_name: 'one adapter trained on all skills', higher_is_better: true, note: `${EVERYDAY.length} prompts outside every skill, greedy, up to 8 tokens`,
    });
    const cells = skills.map((_, j) => (j === i ? '—' : pct(ownShare(c.onSkill[j], i, j))));
    return `| ${skills[i]}${k < n ? '' : ' + replay'} | ${cells.join(' | ')} | ${pct(ownShare(c.every, i, -1))} | ${pct(c.sameAsBase)} (joint ${pct(jointR.sameAsBase)}) |`;
  });
  const everydayExample = `"${EVERYDAY[3]}" → base ${JSON.stringify(baseEveryday[3].trim())}, ${skills.map((s, i) => `${s} ${JSON.stringify(alone[i].every[3].trim())}`).join(', ')}`;
  // update sizes: median and largest ‖s·B·A‖/‖W‖ over each adapter's modules
  const sizes = [...adapters, jointA].map((a) => {
    const v = [...relativeUpdateNorms(a, model).values()].sort((x, y) => x - y);
    return { name: a.name, median: v[Math.floor(v.length / 2)], max: v[v.length - 1] };
  });
  const jointSize = sizes[sizes.length - 1];
  for (const z of sizes.slice(0, -1)) {
    emit({
      bench: 'skills', metric: `${z.name}_relative_update_median`, unit: 'ratio', ours: z.median, peer: jointSize.median, peer_name: 'one adapter trained on all skills',
      ratio: z.median / jointSize.median, higher_is_better: false, note: `median over modules of ‖scale·B·A‖_F / ‖W‖_F; largest ${z.max.toFixed(3)}`,
    });
  }
  const rankRows: string[] = [];
  const cfg = model.config;
  const moduleNames = [...adapters[0].modules.keys()];
  const modsOfLayer = (l: number): string[] => moduleNames.filter((m) => m.startsWith(`model.layers.${l}.`));
  const layers = [...new Set(moduleNames.map((m) => Number(m.split('.')[2])))];
  for (const l of layers) {
    const cells: string[] = [];
    for (const name of modsOfLayer(l)) {
      const r = ranks(adapters, name);
      const short = name.split('.').pop()!;
      const peer = Math.max(...r.each);
      emit({
        bench: 'skills', metric: `layer${l}_${short}_summed_update_rank`, unit: 'rank', ours: r.sum, peer, peer_name: 'largest single-adapter rank',
        ratio: r.sum / peer, higher_is_better: false, note: `numerical rank of Σ scale·B·A over ${n} adapters (each r ${LORA.r}); each adapter: ${r.each.join('+')}`,
      });
      cells.push(`${r.sum} (${r.each.join('+')})`);
    }
    rankRows.push(`| ${l} | ${cells.join(' | ')} |`);
  }
  /** the worst fraction of an adapter's own accuracy that a variant keeps (skills whose adapter scored 0 left out) */
  const keep = (name: string, refName = 'single'): string => {
    const ref = acc.get(refName)!;
    const kept = acc.get(name)!.flatMap((x, i) => (ref[i] > 0 ? [x / ref[i]] : []));
    return kept.length === 0 ? 'n/a' : `${pct(Math.min(...kept))} %`;
  };
  const lora = `r ${LORA.r}, alpha ${LORA.loraAlpha}${LORA.useRslora ? ' (rsLoRA)' : ''}, ${LORA.targetModules === 'all-linear' ? 'all linears' : LORA.targetModules.join('/')}${LORA.layers !== undefined ? `, layers ${LORA.layers.join(',')}` : ''}`;
  const table = [
    `# Skills bench: stacking and merging ${n} LoRA adapters`,
    '',
    `Base: ${BASE === join(ROOT, 'assets', 'default-model') ? 'assets/default-model' : BASE} (${cfg.hiddenSize}-wide, ${cfg.numLayers} layers). One adapter per skill: ${lora}, ` +
      `${SKILL_STEPS} steps × ${BATCH} conversations (padded rows), lr ${LR}. ${TEST_ITEMS} held-out prompts per skill, greedy decoding, exact match. ` +
      `Combinations: PEFT add_weighted_adapter, weights 1, density ${DENSITY}, seed ${SEED}, svd rank = max input rank (PEFT default). ` +
      (replayAdapters.length > 0 ? `Replay-trained adapters: the same skill data and steps with ${pct(REPLAY_SHARE)} % of the conversations general chats (${REPLAY_FILE === join(ROOT, 'assets', 'data', 'generic-chats.jsonl') ? 'assets/data/generic-chats.jsonl' : REPLAY_FILE}, those of ≤ ${REPLAY_MAX_TOKENS} tokens), as \`finetune --replay\` does. ` : '') +
      `Total time ${secs()}.`,
    '',
    `| variant | ${skills.join(' | ')} | min kept vs own adapter |`,
    `|---|${skills.map(() => '---:').join('|')}|---:|`,
    ...variants.map((v) => `| ${v.label} | ${acc.get(v.name)!.map(pct).join(' | ')} | ${['base', 'single', 'replay_single'].includes(v.name) ? '' : keep(v.name, v.ref)} |`),
    '',
    ...routingLines,
    'Pairs of adapters stacked alone (accuracy on each of the two skills; own adapter alone in parentheses):',
    '',
    `| pair | first skill | second skill |${replayAdapters.length > 0 ? ' first, replay-trained | second, replay-trained |' : ''}`,
    `|---|---:|---:|${replayAdapters.length > 0 ? '---:|---:|' : ''}`,
    ...pairs.map((p) => {
      const replayCells = p.replay === null ? '' : ` ${pct(p.replay[0])} (${pct(acc.get('replay_single')![p.i])}) | ${pct(p.replay[1])} (${pct(acc.get('replay_single')![p.j])}) |`;
      return `| ${skills[p.i]} + ${skills[p.j]} | ${pct(p.acc[0])} (${pct(single[p.i])}) | ${pct(p.acc[1])} (${pct(single[p.j])}) |${replayCells}`;
    }),
    '',
    `Where the stack's replies go (${TEST_ITEMS} test prompts per skill): right, another skill's answer (a reply found among that skill's training answers and not among this skill's own; by whose), or other text; last column: another skill's answer with the skill's own adapter alone:`,
    '',
    '| skill | right | another skill\'s answer | other | same, own adapter alone |',
    '|---|---:|---:|---:|---:|',
    ...hijackRows,
    '',
    `Each adapter alone, on the other skills' test prompts and on ${EVERYDAY.length} everyday prompts outside every skill: % of replies that are its own skill's answers (and not the prompt's skill's), and % of everyday replies equal to the base's (the joint adapter in parentheses). An adapter that answers everything from its own skill cannot stack: ${everydayExample}.`,
    '',
    `| adapter | ${skills.map((s) => `on ${s}`).join(' | ')} | everyday: own answers | everyday: same as base |`,
    `|---|${skills.map(() => '---:').join('|')}|---:|---:|`,
    ...aloneRows,
    '',
    'Update size next to the base, ‖scale·B·A‖_F / ‖W‖_F over each adapter\'s modules (deltas add up without interfering only while they are small perturbations):',
    '',
    '| adapter | median | largest |',
    '|---|---:|---:|',
    ...sizes.map((z) => `| ${z.name} | ${z.median.toFixed(3)} | ${z.max.toFixed(3)} |`),
    '',
    `Numerical rank of the summed update Σ scale·B·A per module (in parentheses: each adapter's own rank, ${skills.join(', ')}):`,
    '',
    `| layer | ${modsOfLayer(layers[0]).map((m) => m.split('.').pop()).join(' | ')} |`,
    `|---:|${modsOfLayer(layers[0]).map(() => '---:').join('|')}|`,
    ...rankRows,
    '',
  ].join('\n');
  mkdirSync(dirname(REPORT), { recursive: true });
  writeFileSync(REPORT, table);
  process.stderr.write(`${table}\nskills: Markdown report written to ${REPORT}\n`);
  for (const a of [...adapters, ...replayAdapters, jointA]) a.dispose();
  model.dispose();
}
