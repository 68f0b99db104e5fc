// Consensus among records that share a prompt: when the same prompt appears several times with different replies,
// the reply most of them give is taken as right and the others are dropped. This is the majority vote of
// multi-annotator label cleaning (Dawid & Skene 1979 start from it; cleanlab's `get_majority_vote_label`) and of
// self-consistency (Wang et al. 2023) over sampled answers. It needs no model, and it is the opposite of
// deduplication: on scraped data where one fact recurs, the repeats of the right reply are the evidence.
//
// Two passes over the data: add() counts (prompt, reply) pairs, verdict() then judges each record. Held: one map entry
// per distinct prompt and per distinct reply of it, keyed by exact dedup's 52-bit keys of the normalized texts (never
// the texts), so memory grows with the distinct pairs, not the file.

import { normalizeText } from './dedup.js';
import { exactKey } from './lsh.js';
import type { DataRecord } from './records.js';

export interface ConsensusOptions {
  /** fewest records sharing a prompt for a vote to be held (default 3: with two, any disagreement is a tie) */
  minVotes?: number;
  /** replies tied for the most votes: kept (default: nothing decides between them) or dropped */
  ties?: 'keep' | 'drop';
}

/** Why a record goes: its reply's votes, the winning reply's votes, and how many records share the prompt. */
export interface ConsensusVerdict {
  agree: number;
  top: number;
  votes: number;
}

/**
 * The prompt and the reply a record is voted on: the reply is the last assistant turn, the prompt every turn before
 * it (system and earlier turns included, role-tagged), both normalized (NFKC, lower case, whitespace runs), as dedup
 * compares. Null for plain {"text"} records and chats without an assistant reply: they have nothing to vote on.
 */
export function promptAndReply(r: DataRecord): { prompt: string; reply: string } | null {
  const pr = rawPromptAndReply(r);
  return pr === null ? null : { prompt: pr.prompt.map((m) => `${m.role}: ${normalizeText(m.content)}`).join('\n'), reply: normalizeText(pr.reply) };
}

/** The turns before the last assistant reply, and that reply, as they are. */
function rawPromptAndReply(r: DataRecord): { prompt: { role: string; content: string }[]; reply: string } | null {
  const ms = r.conversation?.messages;
  if (ms === undefined) return null;
  let last = ms.length - 1;
  while (last >= 0 && ms[last].role !== 'assistant') last--;
  if (last < 0) return null;
  return { prompt: ms.slice(0, last), reply: ms[last].content };
}

/** The vote's keys of a record: exactKey normalizes, so the prompt's role-tagged turns compare as promptAndReply's. */
function keys(r: DataRecord): { prompt: number; reply: number } | null {
  const pr = rawPromptAndReply(r);
  return pr === null ? null : { prompt: exactKey(pr.prompt.map((m) => `${m.role}: ${m.content}`).join('\n')), reply: exactKey(pr.reply) };
}

export class ConsensusVote {
  /** prompt hash → reply hash → records giving it */
  private readonly counts = new Map<number, Map<number, number>>();
  private readonly minVotes: number;
  private readonly ties: 'keep' | 'drop';

  constructor(opts: ConsensusOptions = {}) {
    this.minVotes = opts.minVotes ?? 3;
    this.ties = opts.ties ?? 'keep';
    if (!(Number.isInteger(this.minVotes) && this.minVotes >= 2)) throw new Error(`minVotes must be an integer ≥ 2, got ${this.minVotes}`);
  }

  /** Counts a record's vote (records with nothing to vote on are ignored). */
  add(r: DataRecord): void {
    const k = keys(r);
    if (k === null) return;
    let m = this.counts.get(k.prompt);
    if (m === undefined) this.counts.set(k.prompt, (m = new Map<number, number>()));
    m.set(k.reply, (m.get(k.reply) ?? 0) + 1);
  }

  /** Distinct prompts counted. */
  get prompts(): number {
    return this.counts.size;
  }

  /** Null when the record stays (its reply has the most votes, its prompt too few records for a vote, or it was
   *  never counted); else the votes that outvoted it. */
  verdict(r: DataRecord): ConsensusVerdict | null {
    const k = keys(r);
    if (k === null) return null;
    const m = this.counts.get(k.prompt);
    if (m === undefined) return null;
    const agree = m.get(k.reply) ?? 0;
    if (agree === 0) return null; // not counted (a rule removed it before the vote)
    let votes = 0, top = 0, atTop = 0;
    for (const c of m.values()) {
      votes += c;
      if (c > top) [top, atTop] = [c, 1];
      else if (c === top) atTop++;
    }
    if (votes < this.minVotes) return null;
    if (agree < top || (atTop > 1 && this.ties === 'drop')) return { agree, top, votes };
    return null;
  }
}
