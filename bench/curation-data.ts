// Data for the curation bench (bench/curation.ts): the demo skills made noisy the way scraped data is, with a seeded
// generator, and a large JSONL corpus for the throughput rows. The curation itself never sees how the noise was made.
//
// Noise (each on its own seeded draw):
//   wrong answers (WRONG share of the records): another prompt's answer of the same skill, a near miss (a number off by
//   one; for word skills the prompt's own word echoed back, as a scraper that took the wrong cell does), junk
//   (boilerplate, markup, "[deleted]"), a reply truncated mid-word;
//   near-duplicates (DUP share added): a record again with its prompt re-cased, re-spaced or with a word added,
//   carrying the same (possibly wrong) reply; all shuffled together.

import { createWriteStream } from 'node:fs';
import { Rng } from '../src/engine/rng.js';
import type { SkillExample, SkillName } from '../src/data/skills.js';

export const WRONG = 0.4;
export const DUP = 0.25;
const JUNK = ['click here to subscribe!', '<div class="ad"></div>', 'lorem ipsum dolor sit amet', '404 not found', '[deleted]', 'undefined', 'asdf asdf', 'http://win.example/prize', 'see more...', 'null'] as const;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

export type NoiseKind = 'clean' | 'other' | 'near-miss' | 'junk' | 'truncated';

export interface NoisyExample extends SkillExample {
  /** how the record was made (for the report's composition table only: curation never reads it) */
  kind: NoiseKind;
  duplicate: boolean;
  /** the right reply (what a person checking the record by hand writes in) */
  truth: string;
}

/** A wrong reply for e: another prompt's answer of the same skill (45 %), a near miss (30 %), junk (15 %), truncated (10 %). */
function wrongReply(rng: Rng, e: SkillExample, answers: readonly string[]): { answer: string; kind: NoiseKind } {
  const u = rng.next();
  if (u < 0.45) {
    const others = answers.filter((a) => a !== e.answer);
    return { answer: pick(rng, others), kind: 'other' };
  }
  if (u < 0.75) {
    const n = Number(e.answer);
    if (Number.isInteger(n)) return { answer: String(n <= 1 || rng.int(2) === 0 ? n + 1 : n - 1), kind: 'near-miss' };
    const words = e.prompt.replace(/[?.!,:]/gu, '').split(/\s+/u).filter((w) => w !== '');
    const last = ['say', 'says', 'make'].includes(words[words.length - 1]) ? words[words.length - 2] : words[words.length - 1];
    return { answer: last, kind: 'near-miss' };
  }
  if (u < 0.9) return { answer: pick(rng, JUNK), kind: 'junk' };
  const a = e.answer.length >= 3 ? e.answer : `the answer is ${e.answer}`;
  return { answer: a.slice(0, 1 + rng.int(Math.max(1, a.length - 2))), kind: 'truncated' };
}

/** A prompt as another scrape of the same page writes it. */
function paraphrase(rng: Rng, p: string): string {
  switch (rng.int(4)) {
    case 0: return p.charAt(0).toUpperCase() + p.slice(1);
    case 1: return p.replace(' ', '  ');
    case 2: return `${p} please`;
    default: return `q: ${p}`;
  }
}

/** The clean examples with WRONG of their replies corrupted and DUP near-duplicates added, shuffled (seeded). */
export function makeNoisy(clean: readonly SkillExample[], seed: number): NoisyExample[] {
  const rng = new Rng(seed);
  const answers = new Map<SkillName, string[]>();
  for (const e of clean) answers.set(e.skill, [...new Set([...(answers.get(e.skill) ?? []), e.answer])]);
  const out: NoisyExample[] = clean.map((e) => {
    if (rng.next() >= WRONG) return { ...e, kind: 'clean', duplicate: false, truth: e.answer };
    return { ...e, ...wrongReply(rng, e, answers.get(e.skill)!), duplicate: false, truth: e.answer };
  });
  const n = out.length;
  for (let i = 0; i < Math.round(DUP * n); i++) {
    const src = out[rng.int(n)];
    out.push({ ...src, prompt: paraphrase(rng, src.prompt), duplicate: true });
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** An example as an OpenAI-messages JSONL line. */
export const messagesLine = (e: { prompt: string; answer: string }): string => JSON.stringify({ messages: [{ role: 'user', content: e.prompt }, { role: 'assistant', content: e.answer }] });

/**
 * A JSONL corpus of about `bytes` bytes for the throughput rows: chats built from the general chats' sentences with
 * seeded word changes (mostly distinct records), 10 % of them near-copies of an earlier one, and 3 % short junk.
 */
export async function writeCorpus(path: string, bytes: number, sentences: readonly string[], seed: number): Promise<{ records: number; bytes: number }> {
  const rng = new Rng(seed);
  const out = createWriteStream(path);
  const recent: string[] = [];
  let written = 0, records = 0;
  let buf = '';
  const WORDS = ['red', 'big', 'happy', 'little', 'old', 'green', 'funny', 'quiet', 'brave', 'shiny'];
  while (written < bytes) {
    let reply: string;
    if (recent.length > 0 && rng.next() < 0.1) reply = pick(rng, recent).replace(/\b(the)\b/u, 'a');
    else if (rng.next() < 0.03) reply = pick(rng, JUNK);
    else {
      const parts = Array.from({ length: 2 + rng.int(4) }, () => pick(rng, sentences).split(' '));
      for (const p of parts) p.splice(rng.int(p.length), 0, pick(rng, WORDS), String(rng.int(1000)));
      reply = parts.map((p) => p.join(' ')).join(' ');
      if (recent.length < 256) recent.push(reply);
      else recent[rng.int(256)] = reply;
    }
    const line = `${JSON.stringify({ messages: [{ role: 'user', content: `tell me a story number ${records}.` }, { role: 'assistant', content: reply }] })}\n`;
    buf += line;
    written += Buffer.byteLength(line);
    records++;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      buf = '';
    }
  }
  out.write(buf);
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  return { records, bytes: written };
}
