// Seeded synthetic skills with exact answers: prompt/answer generators and exact-match checkers, for the bundled
// demo data (small skills a 6M-parameter model learns with LoRA in minutes) and the adapter-stacking benchmark
// (four skills whose held-out items are genuinely new: multi-digit addition, reversal, date shifting, key–value
// extraction to JSON).
//
// Contract (pure: no I/O, no global state; the same seed gives the same examples on every machine):
//   SKILLS[name].generate(rng, n) → n examples drawn from rng (small domains may repeat items)
//   SKILLS[name].check(output, answer) → whether a model's reply (surrounding whitespace ignored) is right
//   skillSplit(name, {train, test, seed}) → a test set of distinct prompts and a train set that never shows them
//
// Answers are short and in one canonical form, so exact match is a fair metric; only kv-json compares values
// (JSON key order and spacing do not matter, types and values do).

import { Rng } from '../engine/rng.js';
import type { Conversation } from './types.js';

/** The skills the demo trains on (tiny domains: test prompts are new phrasings or combinations). */
export const DEMO_SKILLS = ['add-digit', 'opposites', 'counting', 'animal-sounds'] as const;
/** The skills of the stacking benchmark (large domains: test items are unseen in training). */
export const BENCH_SKILLS = ['addition', 'reversal', 'date-shift', 'kv-json'] as const;

export type SkillName = (typeof DEMO_SKILLS)[number] | (typeof BENCH_SKILLS)[number];

export interface SkillExample {
  skill: SkillName;
  /** the user message */
  prompt: string;
  /** the exact assistant reply */
  answer: string;
}

export interface Skill {
  name: SkillName;
  /** one line, for help texts and reports */
  description: string;
  /** n examples, each from fresh draws of rng */
  generate: (rng: Rng, n: number) => SkillExample[];
  /** exact match of a model's reply against the answer (leading/trailing whitespace ignored) */
  check: (output: string, answer: string) => boolean;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const intIn = (rng: Rng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1); // inclusive
const exact = (output: string, answer: string): boolean => output.trim() === answer.trim();

/** A skill from a one-example drawer. */
function skill(name: SkillName, description: string, draw: (rng: Rng) => { prompt: string; answer: string }, check = exact): Skill {
  return {
    name,
    description,
    generate: (rng, n) => Array.from({ length: n }, () => ({ skill: name, ...draw(rng) })),
    check,
  };
}

// ---- demo skills -------------------------------------------------------------------------------------------------

// Demo skills are kept small and phrased in lower case like the bundled model's corpus (a lower-cased TinyStories
// subset): a 6M-parameter model learns them through LoRA in a few hundred steps.
const OPPOSITES: readonly (readonly [string, string])[] = [
  ['hot', 'cold'], ['big', 'small'], ['up', 'down'], ['happy', 'sad'], ['day', 'night'], ['fast', 'slow'],
  ['wet', 'dry'], ['old', 'new'], ['good', 'bad'], ['light', 'dark'], ['full', 'empty'], ['loud', 'quiet'],
];

const SOUNDS: readonly (readonly [string, string])[] = [
  ['cow', 'moo'], ['dog', 'woof'], ['cat', 'meow'], ['duck', 'quack'], ['sheep', 'baa'], ['pig', 'oink'],
  ['horse', 'neigh'], ['owl', 'hoot'], ['lion', 'roar'], ['frog', 'ribbit'], ['bee', 'buzz'], ['mouse', 'squeak'],
];

const THINGS = ['cat', 'dog', 'ball', 'star', 'tree', 'apple', 'bird', 'fish', 'cake', 'hat', 'car', 'boat'] as const;

const addDigit = skill('add-digit', 'small-number addition ("what is 3 plus 4?" → "7")', (rng) => {
  const [a, b] = [intIn(rng, 1, 5), intIn(rng, 1, 5)];
  const prompt = pick(rng, [`what is ${a} plus ${b}?`, `${a} + ${b} =`, `add ${a} and ${b}.`]);
  return { prompt, answer: String(a + b) };
});

const opposites = skill('opposites', 'the opposite of a word from a fixed list ("opposite of hot?" → "cold")', (rng) => {
  const [x, y] = pick(rng, OPPOSITES);
  const [w, o] = rng.int(2) === 0 ? [x, y] : [y, x];
  const prompt = pick(rng, [`what is the opposite of ${w}?`, `opposite of ${w}?`, `say the opposite of ${w}.`]);
  return { prompt, answer: o };
});

const counting = skill('counting', 'count repeated words ("how many words? cat cat cat" → "3")', (rng) => {
  const n = intIn(rng, 1, 5);
  const w = pick(rng, THINGS);
  const words = Array.from({ length: n }, () => w).join(' ');
  const prompt = pick(rng, [`how many words? ${words}`, `count the words: ${words}`]);
  return { prompt, answer: String(n) };
});

const animalSounds = skill('animal-sounds', 'the sound an animal makes ("what does the cow say?" → "moo")', (rng) => {
  const [animal, sound] = pick(rng, SOUNDS);
  const prompt = pick(rng, [`what sound does a ${animal} make?`, `what does the ${animal} say?`, `a ${animal} says?`]);
  return { prompt, answer: sound };
});

// ---- benchmark skills --------------------------------------------------------------------------------------------

/** A number with a uniformly drawn count of digits in [lo, hi] (no leading zero). */
function number(rng: Rng, lo: number, hi: number): number {
  const d = intIn(rng, lo, hi);
  return d === 1 ? intIn(rng, 0, 9) : intIn(rng, 10 ** (d - 1), 10 ** d - 1);
}

const addition = skill('addition', 'multi-digit addition ("What is 4821 + 377?" → "5198")', (rng) => {
  const [a, b] = [number(rng, 2, 4), number(rng, 2, 4)];
  return { prompt: `What is ${a} + ${b}?`, answer: String(a + b) };
});

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

const reversal = skill('reversal', 'reverse the letters of a made-up word ("Reverse the letters: bakoti" → "itokab")', (rng) => {
  const syllables = intIn(rng, 2, 4);
  let w = '';
  for (let i = 0; i < syllables; i++) w += pick(rng, [...CONSONANTS]) + pick(rng, [...VOWELS]);
  return { prompt: `Reverse the letters: ${w}`, answer: [...w].reverse().join('') };
});

const DAY_MS = 86_400_000;
const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

const dateShift = skill('date-shift', 'shift a date by days ("What date is 2023-03-14 plus 5 days?" → "2023-03-19")', (rng) => {
  const start = Date.UTC(2000, 0, 1);
  const span = (Date.UTC(2030, 11, 31) - start) / DAY_MS;
  const day = start + rng.int(span + 1) * DAY_MS;
  const k = intIn(rng, 1, 40);
  const minus = rng.int(2) === 1;
  const prompt = `What date is ${isoDate(day)} ${minus ? 'minus' : 'plus'} ${k} day${k === 1 ? '' : 's'}?`;
  return { prompt, answer: isoDate(day + (minus ? -k : k) * DAY_MS) };
});

const NAMES = ['Tom', 'Lily', 'Ben', 'Mia', 'Sam', 'Anna', 'Max', 'Zoe', 'Leo', 'Ella', 'Jack', 'Ruby'];
const CITIES = ['Paris', 'Lima', 'Oslo', 'Cairo', 'Tokyo', 'Rome', 'Quito', 'Dublin', 'Seoul', 'Accra'];
const COLORS = ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'brown'];
const PETS = ['cat', 'dog', 'fish', 'bird', 'rabbit', 'turtle', 'hamster'];
const FIELDS: Readonly<Record<string, (rng: Rng) => string | number>> = {
  name: (rng) => pick(rng, NAMES),
  age: (rng) => intIn(rng, 1, 99),
  city: (rng) => pick(rng, CITIES),
  color: (rng) => pick(rng, COLORS),
  pet: (rng) => pick(rng, PETS),
  year: (rng) => intIn(rng, 1950, 2030),
};

/** Same keys (in any order) with the same values and types; anything unparsable is wrong. */
function sameJson(output: string, answer: string): boolean {
  let a: unknown, b: unknown;
  try {
    a = JSON.parse(output.trim());
    b = JSON.parse(answer);
  } catch {
    return false;
  }
  const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && a[k] === b[k]);
}

const kvJson = skill('kv-json', 'extract key–value pairs into JSON ("name is Tom, age is 7" → {"name":"Tom","age":7})', (rng) => {
  const keys = Object.keys(FIELDS);
  const n = intIn(rng, 2, 4);
  const chosen: string[] = [];
  while (chosen.length < n) {
    const k = pick(rng, keys);
    if (!chosen.includes(k)) chosen.push(k);
  }
  const obj: Record<string, string | number> = {};
  for (const k of chosen) obj[k] = FIELDS[k](rng);
  const parts = chosen.map((k) => (rng.int(2) === 0 ? `${k} is ${obj[k]}` : `${k}: ${obj[k]}`));
  return { prompt: `Extract the fields as JSON: ${parts.join(', ')}`, answer: JSON.stringify(obj) };
}, sameJson);

export const SKILLS: Readonly<Record<SkillName, Skill>> = {
  'add-digit': addDigit, opposites, counting, 'animal-sounds': animalSounds,
  addition, reversal, 'date-shift': dateShift, 'kv-json': kvJson,
};

export const SKILL_NAMES = Object.keys(SKILLS) as SkillName[];

export function isSkillName(s: string): s is SkillName {
  return Object.hasOwn(SKILLS, s);
}

export interface SkillSplitOptions {
  train: number; // training examples (may repeat each other, never a test prompt)
  test: number; // test examples, with pairwise distinct prompts
  seed: number;
}

/**
 * Seeded train/test examples of one skill. Test prompts are distinct and never appear in train. For the demo skills
 * (a few hundred possible prompts) that holds out phrasings and combinations, not facts; for the benchmark skills
 * the domains are large, so test items are new. Throws when the skill cannot supply that many distinct test prompts.
 */
export function skillSplit(name: SkillName, o: SkillSplitOptions): { train: SkillExample[]; test: SkillExample[] } {
  const s = SKILLS[name];
  if (!Number.isInteger(o.train) || o.train < 0 || !Number.isInteger(o.test) || o.test < 0) throw new Error(`skillSplit(${name}): train and test must be counts, got ${o.train}, ${o.test}`);
  const rng = new Rng(o.seed);
  const held = new Map<string, SkillExample>();
  const budget = 1000 + 200 * (o.train + o.test);
  let tries = 0;
  while (held.size < o.test) {
    if (tries++ > budget) throw new Error(`skillSplit(${name}): found only ${held.size} distinct prompts of the ${o.test} test items asked for`);
    const [e] = s.generate(rng, 1);
    if (!held.has(e.prompt)) held.set(e.prompt, e);
  }
  const train: SkillExample[] = [];
  while (train.length < o.train) {
    if (tries++ > budget) throw new Error(`skillSplit(${name}): the test set covers almost every prompt; ask for fewer test items`);
    const [e] = s.generate(rng, 1);
    if (!held.has(e.prompt)) train.push(e);
  }
  return { train, test: [...held.values()] };
}

/** An example as a chat: the prompt as the user turn, the answer as the assistant turn. */
export function skillConversation(e: SkillExample, system?: string): Conversation {
  return {
    messages: [
      ...(system !== undefined ? [{ role: 'system' as const, content: system }] : []),
      { role: 'user', content: e.prompt },
      { role: 'assistant', content: e.answer },
    ],
  };
}
