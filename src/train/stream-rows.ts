// Training rows made as they are needed from a ConversationSource: each epoch visits the conversations in a seeded
// shuffled order (epochOrder over conversation numbers: 4 bytes each), reads and tokenizes them a batch at a time,
// and packs them into rows (or pads one per row). Memory is the order, one row buffer and a bounded cache of
// tokenized conversations, whatever the dataset's size: the first batch is ready as soon as its conversations are.
//
// Packing an epoch's conversations in its order gives exactly packExamples' rows over that order (checked in
// stream-rows.test.ts): windows of T+1 tokens with stride T, the last partial one padded, rows with no trained token
// dropped. A resume continues the same sequence: the state names the first conversation still in the row buffer
// and how many of its tokens were already handed out.

import type { Conversation } from '../data/types.js';
import { readConversation, type BadRecordHandler, type ConversationSource } from '../data/conversation-source.js';
import { collate, epochOrder, exampleRow, finetuneRows, IGNORE_INDEX, rowTargets, type Batch, type BatchMode, type BatchSource, type Example, type LoaderState, type Row } from './batching.js';


/** Examples tokenized so far, kept up to a budget of tokens (so small sets are tokenized once, large ones flat). */
export class ExampleCache {
  private readonly kept = new Map<number, Example | null>();
  private tokens = 0;
  /** bad records met (each counted once while cached) */
  bad = 0;

  constructor(
    readonly source: ConversationSource,
    private readonly example: (c: Conversation) => Example,
    private readonly onBad: BadRecordHandler = null,
    /** tokens kept at most (default 4 Mi: about 20 MB of ids and masks) */
    readonly budget = 1 << 22,
  ) {}

  /** Record i's example, or null for a bad record that onBad let through. */
  get(i: number): Example | null {
    const hit = this.kept.get(i);
    if (hit !== undefined) return hit;
    const c = readConversation(this.source, i, this.onBad);
    const e = c === null ? null : this.example(c);
    if (c === null) this.bad++;
    const n = e === null ? 1 : e.ids.length;
    if (this.tokens + n <= this.budget) {
      this.kept.set(i, e);
      this.tokens += n;
    }
    return e;
  }
}

/** Training rows of a source, for the plan and --epochs: exact over at most `limit` records, else estimated. */
export interface RowCount {
  rows: number;
  /** rows left out for having no trained token (see finetuneRows) */
  dropped: number;
  /** false: scaled from an even sample of `sampled` records */
  exact: boolean;
  sampled: number;
}

export const EXACT_COUNT_LIMIT = 1000;

/**
 * Counts the rows one epoch makes: exactly (every record, in source order) for up to `limit` records, else from
 * `limit` records spread evenly over the source, scaled to its size (packed rows grow with tokens, padded rows
 * with conversations, so both scale linearly).
 */
export function countRows(cache: ExampleCache, mode: BatchMode, seqLen: number, padId = 0, limit = EXACT_COUNT_LIMIT): RowCount {
  const n = cache.source.size;
  const exact = n <= limit;
  const m = exact ? n : limit;
  const examples: Example[] = [];
  for (let j = 0; j < m; j++) {
    const e = cache.get(exact ? j : Math.floor((j * n) / m));
    if (e !== null) examples.push(e);
  }
  const r = finetuneRows(examples, mode, seqLen, padId);
  if (exact) return { rows: r.rows.length, dropped: r.dropped, exact, sampled: m };
  const scale = n / m;
  return { rows: Math.round(r.rows.length * scale), dropped: Math.round(r.dropped * scale), exact, sampled: m };
}

export interface StreamLoaderOptions {
  mode: BatchMode;
  seqLen: number; // T: positions per row (padded rows are truncated to it)
  batchSize: number; // rows per batch
  seed?: number; // epoch orders (default 0)
  padId?: number; // default 0
  shuffle?: boolean; // default true
}

/**
 * An endless, seeded, resumable sequence of batches over a source's conversations (a BatchSource for the Trainer).
 * An epoch is one pass over the conversations; a batch never spans two epochs (its last rows may form a smaller one).
 */
export class StreamLoader implements BatchSource {
  readonly batchSize: number;
  readonly seed: number;
  private readonly T: number;
  private readonly padId: number;
  private readonly shuffle: boolean;
  private epoch = 0;
  private order: Uint32Array;
  private pos = 0; // next position of `order` to read
  // packed: the token stream not yet handed out (buf[0] starts the next row), and the conversations it holds
  private ids = new Int32Array(0);
  private train = new Uint8Array(0);
  private len = 0;
  private held: number[] = []; // token counts of the conversations in the buffer (0 for a bad one), oldest first
  private headPos = 0; // epoch position of held[0]
  private headSkip = 0; // tokens of held[0] already handed out
  private pendingSkip = 0; // after a restore: tokens to drop from the next conversation read
  private rowsThisEpoch = 0;
  /** rows left out so far for having no trained token */
  dropped = 0;

  constructor(readonly cache: ExampleCache, readonly opts: StreamLoaderOptions) {
    const n = cache.source.size;
    if (n === 0) throw new Error('StreamLoader: no conversations to train on');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`StreamLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (!Number.isInteger(opts.seqLen) || opts.seqLen < 1) throw new Error(`StreamLoader: seqLen must be a positive integer, got ${opts.seqLen}`);
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    this.T = opts.seqLen;
    this.padId = opts.padId ?? 0;
    this.shuffle = opts.shuffle ?? true;
    this.order = epochOrder(n, this.seed, 0, this.shuffle);
  }

  get size(): number {
    return this.cache.source.size;
  }

  get state(): LoaderState {
    if (this.opts.mode === 'padded') return { epoch: this.epoch, index: this.pos };
    return this.held.length === 0 ? { epoch: this.epoch, index: this.pos, skip: this.pendingSkip } : { epoch: this.epoch, index: this.headPos, skip: this.headSkip };
  }

  restore(s: LoaderState): void {
    const skip = s.skip ?? 0;
    if (!(Number.isInteger(s.epoch) && s.epoch >= 0 && Number.isInteger(s.index) && s.index >= 0 && s.index <= this.size && Number.isInteger(skip) && skip >= 0)) {
      throw new Error(`StreamLoader: invalid saved position ${JSON.stringify(s)} for ${this.size} conversations`);
    }
    this.startEpoch(s.epoch);
    this.pos = this.headPos = s.index;
    this.pendingSkip = this.opts.mode === 'packed' ? skip : 0;
    this.rowsThisEpoch = s.index > 0 ? 1 : 0; // rows were made before the saved position (or it could not be saved)
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.order = epochOrder(this.size, this.seed, epoch, this.shuffle);
    this.pos = this.headPos = this.headSkip = this.pendingSkip = this.len = this.rowsThisEpoch = 0;
    this.held = [];
  }

  next(): Batch {
    const rows: Row[] = [];
    while (rows.length < this.batchSize) {
      const r = this.nextRow();
      if (r !== null) {
        rows.push(r);
        this.rowsThisEpoch++;
        continue;
      }
      if (rows.length > 0) break; // the epoch's last rows: a smaller batch
      if (this.rowsThisEpoch === 0) throw new Error(`StreamLoader: a whole epoch over ${this.size} conversations made no row with a trained token (every reply past seqLen ${this.T}, or every record bad)`);
      this.startEpoch(this.epoch + 1);
    }
    return collate(rows, this.padId);
  }

  /** The epoch's next row with a trained token, or null when the epoch is over. */
  private nextRow(): Row | null {
    for (;;) {
      const row = this.opts.mode === 'padded' ? this.paddedRow() : this.packedRow();
      if (row === null) return null;
      if (rowTargets(row) > 0) return row;
      this.dropped++;
    }
  }

  private paddedRow(): Row | null {
    while (this.pos < this.size) {
      const e = this.cache.get(this.order[this.pos++]);
      if (e !== null && e.ids.length >= 2) return exampleRow(e, this.T); // shorter: no target (as padRows)
    }
    return null;
  }

  private packedRow(): Row | null {
    const T = this.T;
    while (this.len < T + 1 && this.pos < this.size) this.append(this.cache.get(this.order[this.pos++]));
    if (this.len < 2) {
      this.consume(this.len); // a lone last token has no target
      return null;
    }
    const avail = Math.min(T, this.len - 1); // targets in this window (< T only for the epoch's last row)
    const ids = new Int32Array(T).fill(this.padId);
    const labels = new Int32Array(T).fill(IGNORE_INDEX);
    for (let t = 0; t < avail; t++) {
      ids[t] = this.ids[t];
      if (this.train[t + 1]) labels[t] = this.ids[t + 1];
    }
    this.consume(avail < T ? this.len : T);
    return { ids, labels };
  }

  /** Adds a conversation's tokens (after a restore, without those already handed out) to the buffer. */
  private append(e: Example | null): void {
    const L = e === null ? 0 : e.ids.length;
    const skip = Math.min(this.pendingSkip, L);
    if (this.held.length === 0) {
      this.headPos = this.pos - 1;
      this.headSkip = skip;
    }
    this.pendingSkip = 0;
    this.held.push(L);
    const need = this.len + L - skip;
    if (need > this.ids.length) {
      const cap = Math.max(need, 2 * this.ids.length, 2 * this.T + 2);
      const ids = new Int32Array(cap), train = new Uint8Array(cap);
      ids.set(this.ids.subarray(0, this.len));
      train.set(this.train.subarray(0, this.len));
      this.ids = ids;
      this.train = train;
    }
    if (e === null) return;
    for (let i = skip; i < L; i++, this.len++) {
      this.ids[this.len] = e.ids[i];
      this.train[this.len] = e.mask === undefined || e.mask[i] ? 1 : 0;
    }
  }

  /** Drops the buffer's first k tokens, moving the head past the conversations they finish. */
  private consume(k: number): void {
    this.ids.copyWithin(0, k, this.len);
    this.train.copyWithin(0, k, this.len);
    this.len -= k;
    this.headSkip += k;
    while (this.held.length > 0 && this.headSkip >= this.held[0] && (this.held.length > 1 || this.len === 0)) {
      this.headSkip -= this.held.shift()!;
      this.headPos++;
    }
    if (this.held.length === 0) {
      this.headPos = this.pos;
      this.headSkip = 0;
    }
  }
}
