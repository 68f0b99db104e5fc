// Self-Instruct / Alpaca instruction generation, the model-free parts: seed tasks, the prompt that shows k of them
// and asks for more, the parser of the numbered reply, and the filters both papers apply to what comes back.
//
// Facts taken from Stanford Alpaca's generate_instruction.py and prompt.txt (Apache-2.0, tatsu-lab/stanford_alpaca)
// and Self-Instruct (Wang et al. 2022, yizhongw/self-instruct, Apache-2.0); the code and the prompt's wording are ours:
// - the prompt lists the requirements, then k seed tasks as "###\n{i}. Instruction: …\n{i}. Input:\n…\n{i}. Output:\n…"
//   and ends with "###\n{k+1}. Instruction:", so a completion model continues the list;
// - "<noinput>" stands for an empty input; a reply cut by the token limit loses its last (truncated) task;
// - an instruction is dropped when it has ≤ 3 or > 150 words, holds a blacklisted word (image, graph, picture, file,
//   map, draw, plot, go to, video, audio, music, flowchart, diagram; whole words, any case), starts with
//   "Write a program", with ASCII punctuation or with a non-ASCII character, or unless its ROUGE-L F against every
//   seed and kept instruction is below 0.7 (Alpaca drops above 0.7; exactly 0.7 is dropped here).

import { readFileSync } from 'node:fs';
import { Rng } from '../../engine/rng.js';
import type { SimilarityPool } from './rouge.js';

/** One task: what Alpaca's records hold. */
export interface Task {
  instruction: string;
  input: string;
  output: string;
}

/** Alpaca's blacklist: words for things a text model cannot see or do. */
export const BLACKLIST: readonly string[] = ['image', 'images', 'graph', 'graphs', 'picture', 'pictures', 'file', 'files', 'map', 'maps', 'draw', 'plot', 'go to', 'video', 'audio', 'music', 'flowchart', 'diagram'];

export interface FilterOptions {
  /** fewest words of an instruction, exclusive (Alpaca: more than 3) */
  minWords: number;
  /** most words (Alpaca: 150) */
  maxWords: number;
  /** keep only below this ROUGE-L F to the nearest kept instruction (Alpaca, Self-Instruct: 0.7) */
  maxSimilarity: number;
  blacklist: readonly string[];
}

export const FILTER_DEFAULTS: FilterOptions = { minWords: 3, maxWords: 150, maxSimilarity: 0.7, blacklist: BLACKLIST };

/** Python's string.punctuation. */
const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/**
 * Reads seed tasks, one JSON object a line: Self-Instruct's {instruction, instances: [{input, output}]} (the first
 * instance, as Alpaca takes it) or an Alpaca record {instruction, input?, output}. Errors name file:line: field.
 */
export function readSeedTasks(path: string): Task[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the seed tasks ${path}: ${(e as Error).message}`);
  }
  const out: Task[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: (record): not JSON: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: (record): expected a JSON object`);
    const o = v as Record<string, unknown>;
    if (typeof o.instruction !== 'string' || o.instruction.trim() === '') throw new Error(`${where}: instruction: ${o.instruction === undefined ? 'missing' : 'must be a non-empty string'}`);
    const inst = Array.isArray(o.instances) ? (o.instances[0] as Record<string, unknown> | undefined) : o;
    const field = Array.isArray(o.instances) ? 'instances[0].' : '';
    if (typeof inst !== 'object' || inst === null) throw new Error(`${where}: instances[0]: missing`);
    const input = inst.input ?? '';
    if (typeof input !== 'string') throw new Error(`${where}: ${field}input: must be a string`);
    if (typeof inst.output !== 'string') throw new Error(`${where}: ${field}output: ${inst.output === undefined ? 'missing' : 'must be a string'}`);
    out.push({ instruction: o.instruction, input, output: inst.output });
  });
  if (out.length === 0) throw new Error(`${path}: no seed tasks`);
  return out;
}

/** k distinct seed tasks drawn without replacement (partial Fisher–Yates with the seeded generator). */
export function sampleSeeds(seeds: readonly Task[], k: number, rng: Rng): Task[] {
  const idx = seeds.map((_, i) => i);
  const n = Math.min(k, idx.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng.next() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, n).map((i) => seeds[i]);
}

/** The prompt's text before the examples ({count}: how many tasks it asks for), after Alpaca's prompt.txt. */
export const DEFAULT_HEADER = [
  'You are asked to come up with a set of {count} diverse task instructions. These task instructions will be given to a language model, and we will evaluate how well the model completes them.',
  '',
  'The requirements:',
  '1. Do not repeat the same verb from one instruction to the next: the set should be diverse.',
  '2. Vary the language too: mix questions with imperative instructions.',
  '3. Vary the type of task: open-ended generation, classification, editing, rewriting, summarization, extraction, question answering, brainstorming, reasoning, coding and so on.',
  '4. A language model must be able to do the task in text. Do not ask for visual or audio output, and do not ask it to act in the world (such as waking you up or setting a reminder).',
  '5. Write the instructions in English.',
  '6. Each instruction is 1 to 2 sentences long, an imperative sentence or a question.',
  '7. Write an input for the instruction: a specific, realistic example with substantial content, not a placeholder, at most 100 words.',
  '8. Not every instruction needs an input (for example "What is the highest peak in the world?"). Then write "<noinput>" as the input.',
  '9. The output is an appropriate response to the instruction and the input, under 100 words.',
  '',
  'List of {count} tasks:',
].join('\n');

/**
 * The generation prompt: the header (DEFAULT_HEADER unless given; every "{count}" replaced), the examples numbered
 * 1…k, and "{k+1}. Instruction:" to continue.
 */
export function encodePrompt(examples: readonly Task[], count: number, header: string = DEFAULT_HEADER): string {
  let prompt = header.replaceAll('{count}', String(count)).trimEnd() + '\n';
  examples.forEach((t, i) => {
    const instruction = t.instruction.replace(/\s+/g, ' ').trim().replace(/:+$/, '');
    prompt += `###\n${i + 1}. Instruction: ${instruction}\n${i + 1}. Input:\n${t.input === '' ? '<noinput>' : t.input}\n${i + 1}. Output:\n${t.output}\n`;
  });
  return prompt + `###\n${examples.length + 1}. Instruction:`;
}

export interface ParsedReply {
  tasks: Task[];
  /** pieces that looked like a task but lacked an instruction (or were cut by the token limit) */
  dropped: number;
}

// a field label at the start of a line: "4. Instruction:", "Input:", "**Output:**", "4) Output:"
const LABEL = /^[ \t]*(?:\d+\s*[.):]\s*)?(?:\*\*|__)?\s*(instruction|input|output)\s*(?:\*\*|__)?\s*:(?:\*\*|__)?[ \t]*/gimu;
// a numbered line of a plain list: "4. Write…", "4) Write…", "Task 4: Write…"
const NUMBERED = /^[ \t]*(?:task\s*)?\d+\s*[.):][ \t]*(.*)$/iu;

export interface ParseOptions {
  /** the reply continues a prompt ending in "{continues}. Instruction:" (a completion, not a chat reply) */
  continues?: number;
  /** the reply hit the token limit: its last task is likely cut, and dropped (as Alpaca does) */
  truncated?: boolean;
}

/**
 * The tasks in a generation reply. A completion (o.continues) starts mid-task and gets its label back; a chat
 * reply's text before its first label or numbered line is ignored. Labelled tasks (Instruction / Input / Output, numbered or not,
 * separated by "###" or by the next instruction label) come first; a reply without labels is read as a plain
 * numbered list of instructions ("1. …", "2) …", "Task 3: …") with empty input and output.
 */
export function parseReply(reply: string, o: ParseOptions = {}): ParsedReply {
  let text = reply.replace(/\r\n?/g, '\n');
  const truncated = o.truncated === true;
  const startsLabelled = /^\s*(?:###|(?:task\s*)?\d+\s*[.):]|(?:\*\*|__)?\s*instruction\b)/iu.test(text);
  if (o.continues !== undefined && !startsLabelled && text.trim() !== '') text = `${o.continues}. Instruction:${text}`;
  const labels = [...text.matchAll(LABEL)];
  if (!labels.some((m) => m[1].toLowerCase() === 'instruction')) return plainList(text, truncated);
  const tasks: Task[] = [];
  let dropped = 0;
  let cur: Partial<Record<'instruction' | 'input' | 'output', string>> | null = null;
  const close = (): void => {
    if (cur === null) return;
    const instruction = (cur.instruction ?? '').trim();
    if (instruction === '') dropped++;
    else {
      const input = (cur.input ?? '').trim();
      tasks.push({ instruction, input: input.toLowerCase() === '<noinput>' ? '' : input, output: (cur.output ?? '').trim() });
    }
    cur = null;
  };
  for (let i = 0; i < labels.length; i++) {
    const m = labels[i];
    const field = m[1].toLowerCase() as 'instruction' | 'input' | 'output';
    const end = i + 1 < labels.length ? labels[i + 1].index : text.length;
    const value = text.slice(m.index + m[0].length, end).split(/^\s*###\s*$/mu)[0];
    // a new instruction, or a field seen twice, starts the next task
    if (field === 'instruction' || cur === null || cur[field] !== undefined) close();
    cur ??= {};
    cur[field] = value;
  }
  close();
  if (truncated && tasks.length > 0) {
    tasks.pop();
    dropped++;
  }
  return { tasks, dropped };
}

function plainList(text: string, truncated: boolean): ParsedReply {
  const items: string[] = [];
  let open = false;
  for (const line of text.split('\n')) {
    const m = NUMBERED.exec(line);
    if (m !== null) {
      items.push(m[1]);
      open = true;
    } else if (line.trim() === '' || /^\s*###\s*$/u.test(line)) {
      open = false;
    } else if (open) {
      items[items.length - 1] += ` ${line.trim()}`;
    }
  }
  const kept = items.map((s) => s.trim()).filter((s) => s !== '');
  let dropped = items.length - kept.length;
  if (truncated && kept.length > 0) {
    kept.pop();
    dropped++;
  }
  return { tasks: kept.map((instruction) => ({ instruction, input: '', output: '' })), dropped };
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Why an instruction is dropped by the model-free rules (null when it passes): too_short, too_long,
 * blacklist:WORD, write_a_program, punctuation, non_ascii. Order as Alpaca's post-processing.
 */
export function instructionRule(instruction: string, o: FilterOptions = FILTER_DEFAULTS): string | null {
  const words = instruction.split(/\s+/u).filter((w) => w !== '').length;
  if (words <= o.minWords) return 'too_short';
  if (words > o.maxWords) return 'too_long';
  for (const w of o.blacklist) if (new RegExp(`\\b${escapeRe(w)}\\b`, 'iu').test(instruction)) return `blacklist:${w}`;
  if (instruction.startsWith('Write a program')) return 'write_a_program';
  if (PUNCTUATION.includes(instruction[0])) return 'punctuation';
  if (instruction.charCodeAt(0) > 127) return 'non_ascii';
  return null;
}

export interface Verdict {
  /** null: kept */
  rule: string | null;
  /** ROUGE-L F against the nearest instruction of the pool (0 when a cheaper rule dropped it first) */
  similarity: number;
  nearest: string | null;
}

/**
 * The rules, then the similarity filter against the pool; a kept instruction joins the pool, so later ones are
 * compared with it (Self-Instruct's order).
 */
export function screen(task: Task, pool: SimilarityPool, o: FilterOptions = FILTER_DEFAULTS): Verdict {
  const rule = instructionRule(task.instruction, o);
  if (rule !== null) return { rule, similarity: 0, nearest: null };
  const near = pool.nearest(task.instruction);
  if (near.score >= o.maxSimilarity) return { rule: 'similar', similarity: near.score, nearest: near.text };
  pool.add(task.instruction);
  return { rule: null, similarity: near.score, nearest: near.text };
}
