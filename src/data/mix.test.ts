import assert from 'node:assert/strict';
import test from 'node:test';
import { MAX_REPLAY_SHARE, mixReplay } from './mix.js';

const train = ['t0', 't1', 't2', 't3', 't4', 't5'];
const replay = Array.from({ length: 10 }, (_, i) => `r${i}`);

test('mixReplay adds replay items to make up the share, without repeats while the replay set lasts', () => {
  const m = mixReplay(train, replay, 0.5, 1); // 6 task items at 50 %: 6 replayed
  assert.equal(m.replayed, 6);
  assert.deepEqual(m.items.slice(0, 6), train);
  const r = m.items.slice(6);
  assert.equal(new Set(r).size, 6);
  for (const x of r) assert.ok(replay.includes(x));
  const q = mixReplay(train, replay, 0.25, 1); // 6 · 0.25 / 0.75 = 2
  assert.equal(q.replayed, 2);
  assert.equal(mixReplay(train, replay, 0, 1).replayed, 0);
});

test('mixReplay passes over a small replay set evenly, and is seeded', () => {
  const m = mixReplay(train, ['a', 'b', 'c'], 0.8, 7); // 24 replayed from 3: each exactly 8 times
  assert.equal(m.replayed, 24);
  const counts = new Map<string, number>();
  for (const x of m.items.slice(6)) counts.set(x, (counts.get(x) ?? 0) + 1);
  assert.deepEqual([...counts.values()], [8, 8, 8]);
  assert.deepEqual(mixReplay(train, replay, 0.5, 3), mixReplay(train, replay, 0.5, 3));
  assert.notDeepEqual(mixReplay(train, replay, 0.5, 3).items, mixReplay(train, replay, 0.5, 4).items);
});

test('mixReplay refuses a share outside [0, max] and an empty replay set it would need', () => {
  assert.throws(() => mixReplay(train, replay, 1), /share must be in \[0, 0.95\]/);
  assert.throws(() => mixReplay(train, replay, -0.1), /share/);
  assert.throws(() => mixReplay(train, replay, Number.NaN), /share/);
  assert.throws(() => mixReplay(train, [], 0.5), /replay set is empty/);
  assert.equal(mixReplay(train, [], 0).replayed, 0);
  assert.equal(MAX_REPLAY_SHARE, 0.95);
});
