// A fine-tune's data without loading it: DATA opened as a source (JSONL indexed, a .json array read), the eval set
// held out (at most evalSize conversations, drawn by seed from DATA or from a separate eval file) and replay mixed
// in, all as record numbers. Only the eval conversations are read here; training reads the rest as it goes.

import { loadConversations, type LoadProblem } from './load.js';
import { indexJsonl, type IndexOptions } from './record-index.js';
import { arraySource, concatSources, readConversation, replayIndices, splitIndices, subsetSource, type BadRecordHandler, type ConversationSource } from './conversation-source.js';
import type { Conversation, DataFormat } from './types.js';

export interface OpenedData {
  file: string;
  format: DataFormat;
  source: ConversationSource;
  /** bad records found while opening (with {skip: true}) */
  skipped: LoadProblem[];
  /** records not yet checked (they are checked as they are read); 0 when the whole file was */
  unchecked: number;
}

/** Opens a dataset as a source: JSONL through a line-offset index, a .json array in memory (loadConversations). */
export async function openDataset(file: string, opts: IndexOptions = {}): Promise<OpenedData> {
  if (file.toLowerCase().endsWith('.json')) {
    const r = await loadConversations(file, { format: opts.format ?? 'auto', skip: opts.skip ?? false, ...(opts.maxLineBytes !== undefined ? { maxLineBytes: opts.maxLineBytes } : {}) });
    return { file, format: r.format, source: arraySource(r.conversations, r.sources), skipped: r.skipped, unchecked: 0 };
  }
  const { index, skipped } = indexJsonl(file, opts);
  return { file, format: index.format, source: index, skipped, unchecked: index.size - index.checkedRecords };
}

export interface TrainingSetOptions {
  /** fraction of DATA held out (default 0.05), capped at evalSize */
  evalFraction?: number;
  /** most eval conversations (default 200); also caps a separate eval source */
  evalSize?: number;
  /** a separate eval set instead of a split of DATA */
  evalSource?: ConversationSource;
  /** general conversations mixed into training at `share` (mixReplay's contract) */
  replay?: { source: ConversationSource; share: number };
  seed?: number; // split and replay draws (default 0)
  /** a bad eval record: reported and left out; null: thrown (BadRecordError) */
  onBad?: BadRecordHandler;
}

export interface TrainingSet {
  train: ConversationSource;
  eval: Conversation[];
  /** training conversations taken from DATA (before replay) */
  fromData: number;
  /** training conversations drawn from the replay source */
  replayed: number;
}

export const DEFAULT_EVAL_SIZE = 200;

/** The eval count for n conversations: round(fraction·n), at most evalSize. */
export function evalCount(n: number, fraction: number, evalSize: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`eval fraction must be in [0, 1], got ${fraction}`);
  if (!(Number.isInteger(evalSize) && evalSize >= 0)) throw new Error(`eval size must be a non-negative integer, got ${evalSize}`);
  return Math.min(Math.round(fraction * n), evalSize);
}

export function trainingSet(data: ConversationSource, o: TrainingSetOptions = {}): TrainingSet {
  const seed = o.seed ?? 0;
  const evalSize = o.evalSize ?? DEFAULT_EVAL_SIZE;
  const onBad = o.onBad ?? null;
  const read = (src: ConversationSource, ids: Uint32Array): Conversation[] => Array.from(ids, (i) => readConversation(src, i, onBad)).filter((c) => c !== null);
  let train: ConversationSource = data;
  let evalConvs: Conversation[];
  if (o.evalSource !== undefined) {
    const es = o.evalSource;
    evalConvs = read(es, splitIndices(es.size, Math.min(es.size, evalSize), seed).eval);
  } else {
    const ids = splitIndices(data.size, evalCount(data.size, o.evalFraction ?? 0.05, evalSize), seed);
    if (ids.eval.length > 0) train = subsetSource(data, ids.train);
    evalConvs = read(data, ids.eval);
  }
  const fromData = train.size;
  let replayed = 0;
  if (o.replay !== undefined) {
    const picks = replayIndices(fromData, o.replay.source.size, o.replay.share, seed);
    replayed = picks.length;
    if (replayed > 0) train = concatSources(train, subsetSource(o.replay.source, picks));
  }
  return { train, eval: evalConvs, fromData, replayed };
}
