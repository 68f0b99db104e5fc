// `nomoat demo`: the README's first command. Offline, on the bundled base model and the bundled skill data, it
// measures the base (held-out loss, exact-match accuracy, sample replies), trains a LoRA adapter for a few minutes,
// measures again, prints both side by side, and leaves the adapter ready for `nomoat chat --lora`.
//
// Output folder (-o DIR, default ./nomoat-demo):
//   DIR/adapter/          PEFT adapter + adapter.gguf + metrics.jsonl + loss.svg (as `nomoat finetune -o` writes)
//   DIR/report.json       before/after numbers and the sample replies

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Conversation } from '../data/index.js';
import { isSkillName, SKILLS, type SkillName } from '../data/skills.js';
import { paramCount } from '../models/config.js';
import { generateTokens } from '../models/generate.js';
import type { LlamaModel } from '../models/llama.js';
import { renderChat, type Tokenizer } from '../tokenizer/index.js';
import { batchesOf, conversationExample, evaluate, padRows } from '../train/index.js';
import type { FlagSpecs } from './args.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, requireTokenizer, setThreads, THREAD_FLAG } from './common.js';
import { defaultModelOr, parseProgress, readData, trainAdapter } from './finetune.js';

const DATA_DIR = fileURLToPath(new URL('../../../assets/data', import.meta.url));
export const DEMO_DATA = join(DATA_DIR, 'demo.jsonl');
export const DEMO_TEST = join(DATA_DIR, 'demo-test.jsonl');

/** The demo's training recipe (chosen so the bundled model learns the skills in under ~4 minutes on 2 cores). */
export const DEMO_RECIPE = {
  steps: 400,
  lr: 3e-3,
  warmup: 20,
  batch: 16,
  seqLen: 64, // demo conversations are ~25 tokens: one per padded row
  r: 16,
  alpha: 32,
} as const;

const MAX_REPLY = 12; // tokens generated per test prompt (answers are 1–4 tokens)

/** A held-out item: the conversation before the last reply, that reply, and the skill checker (exact otherwise). */
export interface TestItem {
  skill: SkillName | null;
  messages: Conversation['messages'];
  answer: string;
}

/** Held-out items of a JSONL file (validated by readData first); a line's "skill" field picks its checker. */
export function readTestItems(path: string, convs: readonly Conversation[]): TestItem[] {
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== convs.length) throw new CliError(`${path}: expected one conversation per line`);
  return convs.map((c, i) => {
    const tag = (JSON.parse(lines[i]) as { skill?: unknown }).skill;
    const last = c.messages[c.messages.length - 1];
    return { skill: typeof tag === 'string' && isSkillName(tag) ? tag : null, messages: c.messages.slice(0, -1), answer: last.content };
  });
}

export function isCorrect(item: TestItem, output: string): boolean {
  return item.skill !== null ? SKILLS[item.skill].check(output, item.answer) : output.trim() === item.answer.trim();
}

/** Greedy replies to every item; prompts of equal token length run as one batch. */
export function replies(model: LlamaModel, tokenizer: Tokenizer, template: string, items: readonly TestItem[]): string[] {
  const tokText = (id: number | null): string => (id === null ? '' : (tokenizer.idToToken(id) ?? ''));
  const prompts = items.map((it) => {
    const text = renderChat(template, it.messages.map((m) => ({ role: m.role, content: m.content })), { addGenerationPrompt: true, bosToken: tokText(tokenizer.bosId), eosToken: tokText(tokenizer.eosId) });
    return tokenizer.encode(text, { parseSpecial: true, addBos: tokenizer.addBosByDefault });
  });
  const out = new Array<string>(items.length).fill('');
  const byLen = new Map<number, number[]>();
  prompts.forEach((p, i) => byLen.set(p.length, [...(byLen.get(p.length) ?? []), i]));
  for (const idx of byLen.values()) {
    const gens = generateTokens(model, tokenizer, idx.map((i) => prompts[i]), { maxTokens: MAX_REPLY, sampling: { temperature: 0 } });
    gens.forEach((g, k) => (out[idx[k]] = g.text));
  }
  return out;
}

/** Mean loss on the held-out replies (teacher-forced, assistant tokens only). */
export function heldOutLoss(model: LlamaModel, tokenizer: Tokenizer, convs: readonly Conversation[], seqLen: number): number {
  const rows = padRows(convs.map((c) => conversationExample(tokenizer, c)), seqLen);
  return evaluate(model, batchesOf(rows, 16, tokenizer.padId ?? 0));
}

export interface Measurement {
  loss: number;
  correct: number;
  total: number;
  bySkill: Record<string, { correct: number; total: number }>;
  outputs: string[];
}

export function measure(model: LlamaModel, tokenizer: Tokenizer, template: string, items: readonly TestItem[], convs: readonly Conversation[], seqLen: number): Measurement {
  const outputs = replies(model, tokenizer, template, items);
  const bySkill: Measurement['bySkill'] = {};
  let correct = 0;
  items.forEach((it, i) => {
    const s = (bySkill[it.skill ?? 'other'] ??= { correct: 0, total: 0 });
    s.total++;
    if (isCorrect(it, outputs[i])) {
      s.correct++;
      correct++;
    }
  });
  return { loss: heldOutLoss(model, tokenizer, convs, seqLen), correct, total: items.length, bySkill, outputs };
}

/** 5.8M, 92k, 512. */
const count = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(n));
const pct = (c: number, n: number): string => `${c}/${n} (${n > 0 ? Math.round((100 * c) / n) : 0}%)`;
/** One line of a reply: newlines shown as ⏎, cut to width. */
const oneLine = (s: string, width = 56): string => {
  const t = s.replace(/\n/g, '⏎').trim();
  return t.length > width ? t.slice(0, width - 1) + '…' : t === '' ? '(nothing)' : t;
};
/** A path as the user would type it: relative to the working folder when that is shorter. */
const shown = (p: string): string => {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) && r.length < p.length ? r : p;
};

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'base model (default: the bundled assets/default-model)' },
  output: { kind: 'string', short: 'o', metavar: 'DIR', help: 'where the adapter and report go', default: 'nomoat-demo' },
  steps: { kind: 'int', metavar: 'N', help: 'training steps (a handful for a smoke test)', default: DEMO_RECIPE.steps },
  lr: { kind: 'number', metavar: 'LR', help: 'peak learning rate', default: DEMO_RECIPE.lr },
  data: { kind: 'string', metavar: 'FILE', help: 'training data (default: assets/data/demo.jsonl)' },
  'test-data': { kind: 'string', metavar: 'FILE', help: 'held-out data, one "skill" tag per line (default: assets/data/demo-test.jsonl)' },
  samples: { kind: 'int', metavar: 'N', help: 'sample replies shown before and after', default: 4 },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the adapter init and data order', default: 0 },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none', default: 'auto' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'demo',
  summary: 'fine-tune the bundled model on four small skills in minutes, offline',
  usage: '[-o DIR] [options]',
  description:
    'Teaches the bundled 6M-parameter TinyStories model (assets/default-model) four skills from assets/data/demo.jsonl\n' +
    '(single-digit addition, opposites, counting, animal sounds) with a LoRA adapter, offline, in a few minutes on a\n' +
    'laptop. Shows held-out loss, exact-match accuracy and sample replies before and after, then leaves the adapter\n' +
    'in DIR/adapter for `nomoat chat --lora`. Ctrl-C stops training and saves a checkpoint.',
  flags: FLAGS,
  examples: [
    'nomoat demo',
    'nomoat demo -o /tmp/demo -t 4',
    'nomoat demo --steps 3 --progress none   # a smoke test',
    'nomoat chat -m assets/default-model --lora nomoat-demo/adapter',
  ],
  async run({ flags: f }) {
    const out = f.output ?? 'nomoat-demo';
    const steps = f.steps ?? DEMO_RECIPE.steps;
    if (steps < 1) throw new UsageError(`--steps must be positive, got ${steps}`);
    const nSamples = f.samples ?? 4;
    const progress = parseProgress(f.progress);
    const say = (s = ''): void => void process.stdout.write(s + '\n');

    const threads = setThreads(f.threads);
    const data = await readData(f.data ?? DEMO_DATA, 'auto', false);
    const testPath = f['test-data'] ?? DEMO_TEST;
    const test = await readData(testPath, 'auto', false);
    const items = readTestItems(testPath, test.conversations);
    const loaded = loadForCli(defaultModelOr(f.model));
    const tokenizer = requireTokenizer(loaded);
    const template = tokenizer.chatTemplate;
    if (template === null) throw new CliError(`${loaded.path}: the tokenizer has no chat template, which the demo needs`);
    const { model } = loaded;
    const seqLen = Math.min(DEMO_RECIPE.seqLen, model.config.maxPositionEmbeddings);
    const skills = [...new Set(items.map((i) => i.skill ?? 'other'))];

    say(`nomoat demo: teaching ${shown(loaded.path)} (${count(paramCount(model.config))} parameters) ${skills.length} skills with LoRA, on ${threads} thread(s)`);
    say(`  data: ${data.conversations.length} training conversations (${shown(data.file)}), ${items.length} held out (${shown(test.file)})`);
    say(`  skills: ${skills.map((s) => (isSkillName(s) ? `${s} — ${SKILLS[s].description}` : s)).join('\n          ')}`);
    say();
    const t0 = performance.now();
    const before = measure(model, tokenizer, template, items, test.conversations, seqLen);
    say(`before: held-out loss ${before.loss.toFixed(3)}, exact match ${pct(before.correct, before.total)}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    say();
    say(`training: ${steps} steps, batch ${DEMO_RECIPE.batch}, LoRA r ${DEMO_RECIPE.r} alpha ${DEMO_RECIPE.alpha} on every linear, lr ${f.lr ?? DEMO_RECIPE.lr}`);

    const adapterDir = join(out, 'adapter');
    mkdirSync(out, { recursive: true });
    const t1 = performance.now();
    const r = await trainAdapter({
      loaded, tokenizer, train: data.conversations, eval: test.conversations, seed: f.seed ?? 0, mode: 'padded', seqLen,
      batchSize: DEMO_RECIPE.batch, lora: { r: DEMO_RECIPE.r, loraAlpha: DEMO_RECIPE.alpha, targetModules: 'all-linear' },
      config: { steps, lr: f.lr ?? DEMO_RECIPE.lr, warmupSteps: Math.min(DEMO_RECIPE.warmup, Math.floor(steps / 10)), schedule: 'cosine', outDir: adapterDir, progress },
    });
    const trainS = (performance.now() - t1) / 1000;
    if (r.result.interrupted) {
      say(`stopped at step ${r.result.step}/${steps}; checkpoint ${r.result.checkpoint ?? '(none)'}`);
      return 130;
    }
    say(`trained in ${trainS.toFixed(0)} s (${count(r.adapter.parameters().reduce((n, t) => n + t.size, 0))} trainable parameters)`);
    say();
    const after = measure(model, tokenizer, template, items, test.conversations, seqLen);

    const col = (s: string, w: number): string => s.padEnd(w);
    say(`${col('', 22)}${col('before', 16)}after`);
    say(`${col('held-out loss', 22)}${col(before.loss.toFixed(3), 16)}${after.loss.toFixed(3)}`);
    say(`${col('exact match', 22)}${col(pct(before.correct, before.total), 16)}${pct(after.correct, after.total)}`);
    for (const s of skills) {
      const [b, a] = [before.bySkill[s], after.bySkill[s]];
      say(`${col(`  ${s}`, 22)}${col(`${b.correct}/${b.total}`, 16)}${a.correct}/${a.total}`);
    }
    say();
    say('samples (held-out prompts, greedy):');
    const picks = skills.map((s) => items.findIndex((it) => (it.skill ?? 'other') === s)).filter((i) => i >= 0);
    for (const i of [...picks, ...items.keys()].filter((x, k, xs) => xs.indexOf(x) === k).slice(0, nSamples)) {
      const it = items[i];
      say(`  ${oneLine(it.messages[it.messages.length - 1].content, 70)}   (expected: ${it.answer})`);
      say(`    before: ${oneLine(before.outputs[i])}${isCorrect(it, before.outputs[i]) ? '  ✓' : ''}`);
      say(`    after:  ${oneLine(after.outputs[i])}${isCorrect(it, after.outputs[i]) ? '  ✓' : '  ✗'}`);
    }
    const report = {
      model: loaded.path, steps, train_seconds: Math.round(trainS), threads,
      before: { held_out_loss: before.loss, exact_match: before.correct / Math.max(1, before.total), by_skill: before.bySkill },
      after: { held_out_loss: after.loss, exact_match: after.correct / Math.max(1, after.total), by_skill: after.bySkill },
      samples: items.map((it, i) => ({ skill: it.skill, prompt: it.messages[it.messages.length - 1].content, expected: it.answer, before: before.outputs[i], after: after.outputs[i] })),
    };
    writeFileSync(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    say();
    say(`adapter: ${shown(adapterDir)} (PEFT) and ${shown(r.gguf ?? join(adapterDir, 'adapter.gguf'))} (GGUF); report: ${shown(join(out, 'report.json'))}`);
    say(`try it:  nomoat chat -m ${shown(loaded.path)} --lora ${shown(adapterDir)}`);
  },
});
