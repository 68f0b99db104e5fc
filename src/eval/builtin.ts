// Built-in tasks, usable by name in --tasks:
//   skills        the demo's four skills on its held-out prompts (assets/data/demo-test.jsonl), answered in the
//                 model's chat template, greedy, 12 tokens, exact match by each skill's checker
//   skills-hard   the benchmark's four skills (BENCH_SKILLS), 40 held-out prompts each as bench/skills.ts draws them
//                 (64 tokens: JSON answers are long)
//   gsm8k         GSM8K test with lm-eval's gsm8k-cot 8-shot prompt (assets/eval/gsm8k.yaml; data: shared folder)
//   gsm8k-plain   GSM8K test with lm-eval's plain 5-shot gsm8k prompt (assets/eval/gsm8k-plain.yaml)
//   opposites-mc  a multiple-choice example (assets/eval/opposites-mc.yaml + .jsonl)
// The YAML ones are task files like any user's, loaded by loadTask; only where their data lives differs.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_SKILLS, DEMO_SKILLS, isSkillName, SKILLS, skillSplit, type SkillName } from '../data/skills.js';
import { checkConfig, loadTask, TaskError, type DocEntry, type Split, type Task, type TaskConfig } from './task.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/src/eval → the package root
export const EVAL_ASSETS = join(ROOT, 'assets', 'eval');
const DEMO_TEST = join(ROOT, 'assets', 'data', 'demo-test.jsonl');

/** The shared data folder: $NOMOAT_SHARED_DATA, else ../shared/data beside the package (as test/shared-data.ts). */
export function sharedDataDir(): string {
  return process.env.NOMOAT_SHARED_DATA ?? join(ROOT, '..', 'shared', 'data');
}

export const BUILTIN_TASKS = ['skills', 'skills-hard', 'gsm8k', 'gsm8k-plain', 'opposites-mc'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASKS)[number];

export function isBuiltinTask(name: string): name is BuiltinTaskName {
  return (BUILTIN_TASKS as readonly string[]).includes(name);
}

/** A built-in task by name. */
export async function builtinTask(name: string): Promise<Task> {
  if (!isBuiltinTask(name)) throw new TaskError(`unknown task ${JSON.stringify(name)}: built-in tasks are ${BUILTIN_TASKS.join(', ')}, or give a task file (.yaml/.json)`);
  switch (name) {
    case 'skills': return skillsTask('skills', demoItems(), 'assets/data/demo-test.jsonl', 12); // the demo's MAX_REPLY
    case 'skills-hard': return skillsTask('skills-hard', hardItems(), 'skillSplit(BENCH_SKILLS, test 40, seed 1000 + i)', 64); // kv-json answers run to ~40 tokens
    case 'gsm8k': return gsm8kTask('gsm8k.yaml', ['eval/gsm8k-test.jsonl']);
    case 'gsm8k-plain': return gsm8kTask('gsm8k-plain.yaml', ['eval/gsm8k-test.jsonl', 'instruct/gsm8k-train.jsonl']);
    case 'opposites-mc': return loadTask(join(EVAL_ASSETS, 'opposites-mc.yaml'));
  }
}

async function gsm8kTask(file: string, needs: string[]): Promise<Task> {
  const dir = sharedDataDir();
  const missing = needs.map((p) => join(dir, p)).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new TaskError(
      `${file.replace('.yaml', '')} needs GSM8K (openai/grade-school-math, MIT), not found at ${missing.join(', ')}: ` +
      `put grade_school_math/data/test.jsonl there as eval/gsm8k-test.jsonl (and train.jsonl as instruct/gsm8k-train.jsonl) ` +
      'under the shared data folder (../shared/data beside nomoat), or point NOMOAT_SHARED_DATA at the folder that holds them',
    );
  }
  return loadTask(join(EVAL_ASSETS, file), { dataDir: dir });
}

interface SkillItem {
  skill: SkillName;
  prompt: string;
  answer: string;
  where: string;
}

/** The demo's held-out prompts, as the demo reads them (one conversation per line, a "skill" tag). */
function demoItems(): SkillItem[] {
  const lines = readFileSync(DEMO_TEST, 'utf8').split('\n');
  const out: SkillItem[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${DEMO_TEST}:${i + 1}`;
    const row = JSON.parse(line) as { skill?: unknown; messages?: { role: string; content: string }[] };
    const m = row.messages ?? [];
    const user = m.find((x) => x.role === 'user');
    const reply = m[m.length - 1];
    if (typeof row.skill !== 'string' || !isSkillName(row.skill) || user === undefined || reply?.role !== 'assistant') throw new TaskError(`${where}: expected a skill tag and a user/assistant conversation`);
    out.push({ skill: row.skill, prompt: user.content, answer: reply.content, where });
  });
  if (!DEMO_SKILLS.every((s) => out.some((x) => x.skill === s))) throw new TaskError(`${DEMO_TEST}: some demo skills have no held-out prompts`);
  return out;
}

/** The stacking benchmark's hard held-out prompts: 40 per skill, seed 1000 + the skill's index (bench/skills.ts). */
function hardItems(): SkillItem[] {
  return BENCH_SKILLS.flatMap((s, i) => skillSplit(s, { train: 0, test: 40, seed: 1000 + i }).test.map((e, k) => ({ skill: s, prompt: e.prompt, answer: e.answer, where: `skills-hard ${s} #${k}` })));
}

/** A chat task over skill items: the prompt as the user turn, greedy, exact match by the skill's own checker. */
function skillsTask(name: string, items: SkillItem[], dataset: string, maxGen: number): Task {
  const raw: Record<string, unknown> = {
    task: name, dataset_path: dataset, test_split: 'test', output_type: 'generate_until',
    doc_to_text: 'prompt', doc_to_target: 'answer',
    generation_kwargs: { until: [], max_gen_toks: maxGen, do_sample: false },
    metric_list: [{ metric: 'exact_match', aggregation: 'mean', higher_is_better: true }],
    metadata: { version: 1, chat_template: true, checker: "the skill's check (src/data/skills.ts)" },
  };
  const config: TaskConfig = checkConfig(raw, { file: `builtin:${name}`, line: () => null });
  const docs: DocEntry[] = items.map((it) => ({ doc: { skill: it.skill, prompt: it.prompt, answer: it.answer }, where: it.where }));
  const split: Split = { file: dataset, docs, features: new Set(['skill', 'prompt', 'answer']) };
  return {
    name, config, source: `builtin:${name}`, evalDocs: split, fewshotDocs: null, chat: true,
    check: (prediction, target, doc) => {
      const s = doc.skill;
      return typeof s === 'string' && isSkillName(s) ? SKILLS[s].check(prediction, target) : prediction.trim() === target.trim();
    },
  };
}

/** A task named in --tasks: a built-in name or a task file path. */
export async function resolveTask(spec: string): Promise<Task> {
  if (isBuiltinTask(spec)) return builtinTask(spec);
  if (/\.(ya?ml|json)$/i.test(spec)) {
    if (!existsSync(spec)) throw new TaskError(`task file not found: ${spec}`);
    return loadTask(spec);
  }
  throw new TaskError(`unknown task ${JSON.stringify(spec)}: built-in tasks are ${BUILTIN_TASKS.join(', ')}, or give a task file (.yaml/.json)`);
}
