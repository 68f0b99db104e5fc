// Generic chat turns for a base model's pretraining mix: short instructions about sentences and words of the
// corpus (repeat, first/last word, finish, a sentence or story about a thing, spell, yes/no, greetings), so the
// bundled base knows its ChatML template, answers briefly and ends its turn before any fine-tune starts.
//
// Deliberately disjoint from the skills in skills.ts (no arithmetic, opposites, counting, animal sounds, reversal,
// dates or JSON): a fine-tune on a skill must still teach the skill, only not the chat format. The test beside this
// file checks that no prompt here uses a skill's trigger words.
//
// Pure: the same rng state gives the same conversation.

import type { Rng } from '../engine/rng.js';
import type { Conversation } from './types.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

/** Sentences and stories to draw from (lower-case TinyStories text in the bundled model's case). */
export interface ChatTaskCorpus {
  /** single sentences, each 10–120 characters, without double quotes */
  sentences: readonly string[];
  /** short stories (a few sentences each) */
  stories: readonly string[];
  /** for each noun and name the prompts ask about: the sentences and stories containing it */
  sentencesWith: ReadonlyMap<string, readonly string[]>;
  storiesWith: ReadonlyMap<string, readonly string[]>;
}

/** Nouns that occur often in TinyStories: the "about a …" prompts always find material. */
export const CHAT_TASK_NOUNS = ['girl', 'boy', 'tree', 'ball', 'bird', 'king', 'car', 'sun', 'park', 'toy', 'box', 'friend', 'garden', 'flower', 'house', 'boat', 'rain', 'mom', 'dog', 'cat'] as const;
const NAMES = ['lily', 'tim', 'ben', 'sue', 'tom', 'mia', 'sam', 'max', 'anna', 'jack', 'lucy', 'sara'] as const;
const GREETINGS: readonly (readonly [string, string])[] = [
  ['hi', 'hello! how can i help you?'], ['hello', 'hi there! what can i do for you?'], ['how are you?', 'i am good, thank you. how can i help?'],
  ['thank you', 'you are welcome!'], ['good morning', 'good morning! how can i help you today?'], ['who are you?', 'i am a small helpful assistant.'],
  ['bye', 'goodbye! have a nice day.'], ['can you help me?', 'yes, of course. what do you need?'],
];
const FACTS: readonly (readonly [string, string])[] = [
  ['what color is the sky?', 'blue'], ['what color is grass?', 'green'], ['what color is snow?', 'white'], ['what color is the sun?', 'yellow'],
  ['where do fish live?', 'in the water'], ['where do birds live?', 'in trees'], ['what do bees make?', 'honey'], ['what do cows give us?', 'milk'],
  ['what falls from clouds?', 'rain'], ['what do we use to see?', 'our eyes'], ['what do we wear on our feet?', 'shoes'], ['when do we sleep?', 'at night'],
];
const SYSTEMS = ['you are a helpful assistant.', 'you are a kind helper. answer briefly.', 'answer the question.'] as const;

/** Words of a sentence without punctuation. */
const words = (s: string): string[] => s.replace(/[.,!?;:'"]/g, '').split(/\s+/).filter((w) => w.length > 0);

/** The prompt families, each (rng, corpus) → [prompt, answer]. */
const TASKS: readonly ((rng: Rng, c: ChatTaskCorpus) => readonly [string, string])[] = [
  (rng, c) => {
    const s = pick(rng, c.sentences);
    return [`${pick(rng, ['repeat after me:', 'write this again:', 'copy this sentence:'])} ${s}`, s];
  },
  (rng, c) => {
    const s = pick(rng, c.sentences);
    return [`what is the first word? ${s}`, words(s)[0] ?? ''];
  },
  (rng, c) => {
    const s = pick(rng, c.sentences);
    const w = words(s);
    return [`what is the last word? ${s}`, w[w.length - 1] ?? ''];
  },
  (rng, c) => {
    const s = pick(rng, c.sentences);
    const w = s.split(/\s+/);
    const h = Math.max(1, Math.floor(w.length / 2));
    return [`finish the sentence: ${w.slice(0, h).join(' ')}`, w.slice(h).join(' ')];
  },
  (rng, c) => {
    const n = pick(rng, CHAT_TASK_NOUNS);
    const withNoun = c.sentencesWith.get(n) ?? [];
    return [pick(rng, [`tell me a sentence about a ${n}.`, `write one sentence with the word ${n}.`]), withNoun.length > 0 ? pick(rng, withNoun) : pick(rng, c.sentences)];
  },
  (rng, c) => {
    const n = pick(rng, CHAT_TASK_NOUNS);
    const withNoun = c.storiesWith.get(n) ?? [];
    return [pick(rng, [`write a short story about a ${n}.`, `tell me a story about a ${n}.`]), withNoun.length > 0 ? pick(rng, withNoun) : pick(rng, c.stories)];
  },
  (rng, c) => {
    const name = pick(rng, NAMES);
    const withName = (c.sentencesWith.get(name) ?? []).filter((s) => words(s).every((w) => w === name || !(NAMES as readonly string[]).includes(w)));
    const s = withName.length > 0 ? pick(rng, withName) : `${name} went to the park.`;
    return [`who is in this sentence? ${s}`, name];
  },
  (rng, c) => {
    const s = pick(rng, c.sentences);
    const n = pick(rng, CHAT_TASK_NOUNS);
    return [`is the word ${n} in this sentence? ${s}`, words(s).includes(n) ? 'yes' : 'no'];
  },
  (rng) => {
    const w = pick(rng, [...CHAT_TASK_NOUNS, ...NAMES]);
    return [`spell the word ${w}.`, [...w].join(' ')];
  },
  (rng) => pick(rng, GREETINGS),
  (rng) => pick(rng, FACTS),
];

/** One generic conversation (a system message one time in eight). */
export function chatTask(rng: Rng, corpus: ChatTaskCorpus): Conversation {
  if (corpus.sentences.length === 0 || corpus.stories.length === 0) throw new Error('chatTask: the corpus needs at least one sentence and one story');
  const [prompt, answer] = pick(rng, TASKS)(rng, corpus);
  const system = rng.int(8) === 0 ? [{ role: 'system' as const, content: pick(rng, SYSTEMS) }] : [];
  return { messages: [...system, { role: 'user', content: prompt }, { role: 'assistant', content: answer }] };
}

/** Sentences and short stories cut from plain text documents (for chatTask). */
export function chatTaskCorpus(docs: readonly string[]): ChatTaskCorpus {
  const sentences = docs.flatMap((d) => d.split(/(?<=[.!?])\s+/)).map((s) => s.trim()).filter((s) => s.length > 10 && s.length < 120 && !s.includes('"'));
  const stories = docs.filter((d) => d.length > 100 && d.length < 600);
  const index = (texts: readonly string[]): Map<string, string[]> => {
    const m = new Map<string, string[]>([...CHAT_TASK_NOUNS, ...NAMES].map((w) => [w, []]));
    for (const t of texts) for (const w of new Set(words(t))) m.get(w)?.push(t);
    return m;
  };
  return { sentences, stories, sentencesWith: index(sentences), storiesWith: index(stories) };
}
