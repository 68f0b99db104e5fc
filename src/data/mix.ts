// Replay mixing: general conversations added to a fine-tune's data so that they make up a given share of it. The
// usual guard against forgetting (an adapter trained only on its task answers every prompt as if it were that task;
// see bench-results/skills.md): the adapter also sees prompts it must leave as the data says.
//
// Contract (pure, seeded): mixReplay(train, replay, share, seed) → train followed by k = round(n·share/(1 − share))
// replay items, n = train.length. Replay items are drawn without replacement in a seeded order; a replay set smaller
// than k is passed over again in a fresh order, so every item is used as evenly as possible. The trainer's loader
// shuffles, so the order of the result does not matter for training.

import { Rng } from '../engine/rng.js';

export interface MixResult<T> {
  items: T[];
  /** how many of `items` came from the replay set */
  replayed: number;
}

/** Largest replay share accepted: at 0.95 a fine-tune is already 19 parts replay to 1 part task. */
export const MAX_REPLAY_SHARE = 0.95;

export function mixReplay<T>(train: readonly T[], replay: readonly T[], share: number, seed = 0): MixResult<T> {
  if (!(share >= 0 && share <= MAX_REPLAY_SHARE)) throw new Error(`replay share must be in [0, ${MAX_REPLAY_SHARE}], got ${share}`);
  const k = Math.round((train.length * share) / (1 - share));
  if (k > 0 && replay.length === 0) throw new Error('replay set is empty: nothing to mix in');
  const rng = new Rng(seed);
  const picked: T[] = [];
  while (picked.length < k) {
    const order = Array.from({ length: replay.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order.slice(0, k - picked.length)) picked.push(replay[i]);
  }
  return { items: [...train, ...picked], replayed: picked.length };
}
