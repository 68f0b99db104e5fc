// Turning token sequences into training batches: packing into fixed-length rows, or one padded row per example;
// next-token labels with -100 wherever no loss is wanted; a seeded, resumable batch order.
//
// Letters: B rows per batch, T positions per row. A row holds inputs x[0..T) and labels y[0..T) where
// y[t] = x[t+1] if that next token is trained, else -100 (the shift happens here, not in the model).
//
// Packing concatenates examples with an EOS separator into one stream and cuts it into windows of T+1 tokens with
// stride T, so every stream token after the first is a target exactly once. As Hugging Face's simple packing
// (run_clm's group_texts, TRL's packing without position ids) attention is NOT reset between examples: a token can
// attend to the tail of the previous example in its row, and positions run on across the boundary. LlamaModel
// numbers positions 0..T-1 itself, so per-example position resets would need a positions argument there.

import { Rng } from '../engine/rng.js';

export const IGNORE_INDEX = -100;

/** One tokenized example. mask[i] = 1 where token i is a completion (loss) token; absent = every token trained. */
export interface Example {
  ids: ArrayLike<number>;
  mask?: ArrayLike<number>;
}

/** One training row: inputs and shifted labels of the same length T. */
export interface Row {
  ids: Int32Array;
  labels: Int32Array;
  /** what an objective other than cross-entropy needs beside the row (a DPO pair's rejected row, a teacher's cached
   *  distribution): carried into the batch as is */
  extra?: unknown;
}

/** B rows of length T, row-major [B, T]. */
export interface Batch {
  ids: Int32Array; // [B·T]
  labels: Int32Array; // [B·T]
  B: number;
  T: number;
  /** number of labels that are not -100 (what the loss averages over) */
  targets: number;
  /** each row's Row.extra, in batch order (present when any row has one) */
  extras?: unknown[];
}

export interface PackOptions {
  /** positions per row (T) */
  seqLen: number;
  /** separator appended after every example; null for none (the examples already end in EOS) */
  eosId: number | null;
  /** whether the separator is a trained target (default true: the model learns to stop) */
  trainSeparator?: boolean;
  /** pad id for the last, partial row (default 0; its labels are -100 anyway) */
  padId?: number;
  /** drop the last partial row instead of padding it (default false) */
  dropLast?: boolean;
}

function checkExample(e: Example, i: number): void {
  if (e.mask !== undefined && e.mask.length !== e.ids.length) throw new Error(`example ${i}: mask has ${e.mask.length} entries for ${e.ids.length} ids`);
}

/** Packs examples (in the given order) into rows of length seqLen. */
export function packExamples(examples: readonly Example[], opts: PackOptions): Row[] {
  const T = opts.seqLen;
  if (!Number.isInteger(T) || T < 1) throw new Error(`packExamples: seqLen must be a positive integer, got ${T}`);
  let n = 0;
  examples.forEach((e, i) => {
    checkExample(e, i);
    n += e.ids.length + (opts.eosId === null ? 0 : 1);
  });
  const stream = new Int32Array(n);
  const train = new Uint8Array(n);
  let at = 0;
  for (const e of examples) {
    for (let i = 0; i < e.ids.length; i++, at++) {
      stream[at] = e.ids[i];
      train[at] = e.mask === undefined || e.mask[i] ? 1 : 0;
    }
    if (opts.eosId !== null) {
      stream[at] = opts.eosId;
      train[at++] = opts.trainSeparator === false ? 0 : 1;
    }
  }
  const rows: Row[] = [];
  const pad = opts.padId ?? 0;
  for (let start = 0; start + 1 < n; start += T) {
    const avail = Math.min(T, n - 1 - start); // targets available in this window
    if (avail < T && opts.dropLast === true) break;
    const ids = new Int32Array(T).fill(pad);
    const labels = new Int32Array(T).fill(IGNORE_INDEX);
    for (let t = 0; t < avail; t++) {
      ids[t] = stream[start + t];
      if (train[start + t + 1]) labels[t] = stream[start + t + 1];
    }
    rows.push({ ids, labels });
  }
  return rows;
}

/** One row per example: ids[0..L-1) as inputs and ids[1..L) as labels, truncated to maxLen positions. */
export function exampleRow(e: Example, maxLen: number): Row {
  const L = Math.min(e.ids.length - 1, maxLen);
  const ids = new Int32Array(Math.max(L, 0));
  const labels = new Int32Array(Math.max(L, 0));
  for (let t = 0; t < L; t++) {
    ids[t] = e.ids[t];
    labels[t] = e.mask === undefined || e.mask[t + 1] ? e.ids[t + 1] : IGNORE_INDEX;
  }
  return { ids, labels };
}

/** Padding mode: one row per example (examples shorter than 2 tokens are skipped: they have no target). */
export function padRows(examples: readonly Example[], maxLen: number): Row[] {
  const rows: Row[] = [];
  examples.forEach((e, i) => {
    checkExample(e, i);
    if (e.ids.length >= 2) rows.push(exampleRow(e, maxLen));
  });
  return rows;
}

/** How conversations become rows: 'packed' concatenates them into full rows, 'padded' gives each its own. */
export type BatchMode = 'packed' | 'padded';

/**
 * Training rows of the examples (packed or one per example), without the rows that have no trained token: in padded
 * mode an example whose whole reply falls past seqLen, in packed mode a row holding only prompt tokens of a
 * conversation longer than seqLen. `dropped` counts them (a larger seqLen keeps them).
 */
export function finetuneRows(examples: readonly Example[], mode: BatchMode, seqLen: number, padId = 0): { rows: Row[]; dropped: number } {
  // Chat templates end every turn with their own end-of-turn token, so packing adds no separator.
  return dropUntrained(mode === 'packed' ? packExamples(examples, { seqLen, eosId: null, padId }) : padRows(examples, seqLen));
}

/** Number of trained labels (not -100) in a row. */
export function rowTargets(r: Row): number {
  let n = 0;
  for (const l of r.labels) if (l !== IGNORE_INDEX) n++;
  return n;
}

/**
 * The rows with at least one trained label. A row whose every label is -100 (a conversation whose whole reply falls
 * past seqLen, or a packed row of prompt tokens only) would make a step with nothing to learn: `dropped` counts them.
 */
export function dropUntrained(rows: readonly Row[]): { rows: Row[]; dropped: number } {
  const kept = rows.filter((r) => rowTargets(r) > 0);
  return { rows: kept, dropped: rows.length - kept.length };
}

/** Stacks rows into a batch, right-padding to the longest row with padId inputs and -100 labels. */
export function collate(rows: readonly Row[], padId = 0): Batch {
  if (rows.length === 0) throw new Error('collate: no rows');
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  let targets = 0;
  rows.forEach((r, b) => {
    ids.set(r.ids, b * T);
    labels.set(r.labels, b * T);
    for (const l of r.labels) if (l !== IGNORE_INDEX) targets++;
  });
  return rows.some((r) => r.extra !== undefined) ? { ids, labels, B, T, targets, extras: rows.map((r) => r.extra) } : { ids, labels, B, T, targets };
}

/** Where a loader stands: everything needed to continue the same batch sequence. */
export interface LoaderState {
  epoch: number;
  /** units of this epoch already handed out (Loader: rows; StreamLoader: conversations read, but for `skip`) */
  index: number;
  /** StreamLoader, packed: tokens of conversation `index` already packed into rows handed out */
  skip?: number;
}

/** What the Trainer draws micro-batches from: an endless, seeded, resumable batch sequence (Loader, StreamLoader). */
export interface BatchSource {
  readonly batchSize: number;
  readonly seed: number;
  /** units of one epoch (rows, or conversations for a StreamLoader): part of a checkpoint's settings */
  readonly size: number;
  readonly state: LoaderState;
  /** moves to a saved position (checkpoint resume) */
  restore(s: LoaderState): void;
  next(): Batch;
}

/** The row order of an epoch: a Fisher–Yates shuffle seeded by (seed, epoch), so it needs no stored RNG state. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * An endless, seeded sequence of batches over fixed rows: each epoch visits every row once in its own shuffled
 * order; a batch never spans two epochs (the epoch's last rows may form a smaller batch).
 */
export class Loader implements BatchSource {
  private _state: LoaderState = { epoch: 0, index: 0 };
  private order: Uint32Array;

  constructor(
    readonly rows: readonly Row[],
    readonly batchSize: number,
    readonly seed = 0,
    readonly padId = 0,
    readonly shuffle = true,
  ) {
    if (rows.length === 0) throw new Error('Loader: no rows to train on');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`Loader: batchSize must be a positive integer, got ${batchSize}`);
    this.order = epochOrder(rows.length, seed, 0, shuffle);
  }

  get size(): number {
    return this.rows.length;
  }

  get state(): LoaderState {
    return { ...this._state };
  }

  /** Moves to a saved position (checkpoint resume). */
  restore(s: LoaderState): void {
    if (!(Number.isInteger(s.epoch) && s.epoch >= 0 && Number.isInteger(s.index) && s.index >= 0 && s.index <= this.rows.length)) {
      throw new Error(`Loader: invalid saved position ${JSON.stringify(s)} for ${this.rows.length} rows`);
    }
    this._state = { ...s };
    this.order = epochOrder(this.rows.length, this.seed, s.epoch, this.shuffle);
  }

  next(): Batch {
    if (this._state.index >= this.rows.length) this.restore({ epoch: this._state.epoch + 1, index: 0 });
    const { index } = this._state;
    const end = Math.min(index + this.batchSize, this.rows.length);
    const picked: Row[] = [];
    for (let i = index; i < end; i++) picked.push(this.rows[this.order[i]]);
    this._state.index = end;
    return collate(picked, this.padId);
  }
}

/** Fixed batches over rows in order (evaluation). */
export function batchesOf(rows: readonly Row[], batchSize: number, padId = 0): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < rows.length; i += batchSize) out.push(collate(rows.slice(i, i + batchSize), padId));
  return out;
}
