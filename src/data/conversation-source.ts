// Conversations by number, read when asked: what training streams from, so that a dataset need not be in memory.
// A source is an indexed file (record-index.ts), an in-memory array, or a view of others (a subset by record
// numbers, two sources one after the other). Also the index arithmetic on sources: the seeded train/eval split
// and the replay mix, as trainEvalSplit and mixReplay do on arrays (same draws, same seed ⇒ same records), but on
// record numbers (4 bytes a record) instead of on the records.

import { Rng } from '../engine/rng.js';
import { MAX_REPLAY_SHARE } from './mix.js';
import type { Conversation } from './types.js';

/** A record read back: its conversation, or what is wrong with it; `where` is "file:line" (or "file[index]"). */
export type SourceRecord = { where: string; conversation: Conversation } | { where: string; error: string };

/** A bad record met while reading a source (one that is checked as it is read): its file:line and problem. */
export class BadRecordError extends Error {
  constructor(readonly where: string, readonly problem: string) {
    super(`${where}: ${problem}`);
  }
}

/** What to do with a bad record met while reading: report it and go on (--skip-bad-lines), or stop (null: throw a
 *  BadRecordError). */
export type BadRecordHandler = ((where: string, error: string) => void) | null;

/** Record i's conversation, or null for a bad record that onBad let through. */
export function readConversation(src: ConversationSource, i: number, onBad: BadRecordHandler): Conversation | null {
  const r = src.read(i);
  if (!('error' in r)) return r.conversation;
  if (onBad === null) throw new BadRecordError(r.where, r.error);
  onBad(r.where, r.error);
  return null;
}

export interface ConversationSource {
  /** records, good or not yet checked (an indexed file checks a record when it is read) */
  readonly size: number;
  /** record i, 0 ≤ i < size */
  read(i: number): SourceRecord;
}

/** Conversations already in memory (a .json array, a test's list); `where` names each (a loader's `sources`), or
 *  is a name that makes "name[i]". */
export function arraySource(conversations: readonly Conversation[], where: string | readonly string[] = 'conversations'): ConversationSource {
  return {
    size: conversations.length,
    read: (i) => ({ where: typeof where === 'string' ? `${where}[${i}]` : where[i], conversation: conversations[i] }),
  };
}

/** The records of `src` numbered by ids, in that order (ids[j] is the record read as j). */
export function subsetSource(src: ConversationSource, ids: Uint32Array): ConversationSource {
  for (const id of ids) if (id >= src.size) throw new Error(`subsetSource: record ${id} past the source's ${src.size}`);
  return { size: ids.length, read: (j) => src.read(ids[j]) };
}

/** a's records, then b's. */
export function concatSources(a: ConversationSource, b: ConversationSource): ConversationSource {
  return { size: a.size + b.size, read: (i) => (i < a.size ? a.read(i) : b.read(i - a.size)) };
}

/** Every record of a source, in memory (for what needs them all: DPO, a hand-off folder). */
export function readAll(src: ConversationSource): SourceRecord[] {
  return Array.from({ length: src.size }, (_, i) => src.read(i));
}

export interface IndexSplit {
  /** record numbers of the training part, ascending */
  train: Uint32Array;
  /** record numbers of the eval part, ascending */
  eval: Uint32Array;
}

/**
 * Splits record numbers 0..n-1 into train and k eval records: the first k of a seeded Fisher–Yates shuffle, the same
 * draws as trainEvalSplit (so a source splits as its records would in memory).
 */
export function splitIndices(n: number, k: number, seed = 0): IndexSplit {
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`eval count must be an integer in [0, ${n}], got ${k}`);
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  const evalIds = idx.slice(0, k).sort();
  const isEval = new Uint8Array(n);
  for (const i of evalIds) isEval[i] = 1;
  const train = new Uint32Array(n - k);
  let at = 0;
  for (let i = 0; i < n; i++) if (!isEval[i]) train[at++] = i;
  return { train, eval: evalIds };
}

/**
 * The replay records mixed into `trainSize` training records at `share`: k = round(n·share/(1 − share)) numbers of
 * 0..replaySize-1, drawn as mixReplay draws them (without replacement in a seeded order; passed over again in a fresh
 * order when the replay set is smaller than k).
 */
export function replayIndices(trainSize: number, replaySize: number, share: number, seed = 0): Uint32Array {
  if (!(share >= 0 && share <= MAX_REPLAY_SHARE)) throw new Error(`replay share must be in [0, ${MAX_REPLAY_SHARE}], got ${share}`);
  const k = Math.round((trainSize * share) / (1 - share));
  if (k > 0 && replaySize === 0) throw new Error('replay set is empty: nothing to mix in');
  const rng = new Rng(seed);
  const picked = new Uint32Array(k);
  let at = 0;
  const order = new Uint32Array(replaySize);
  while (at < k) {
    for (let i = 0; i < replaySize; i++) order[i] = i;
    for (let i = replaySize - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    for (let i = 0; i < replaySize && at < k; i++) picked[at++] = order[i];
  }
  return picked;
}
