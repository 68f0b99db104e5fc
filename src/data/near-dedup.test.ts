// Near-dedup on a generated corpus with planted near-duplicates at known Jaccard: recall, precision, determinism;
// and datasketch's banding parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../engine/rng.js';
import { falseNegativeProbability, jaccardSorted, optimalParams, wordShingles } from './lsh.js';
import { planDedup, resolveParams, type TextSource } from './near-dedup.js';

function corpus(seed: number): { texts: string[]; family: number[] } {
  const rng = new Rng(seed);
  const vocab = Array.from({ length: 4000 }, (_, i) => `w${i.toString(36)}${'abcdefgh'[i % 8]}`);
  const texts: string[] = [];
  const family: number[] = [];
  for (let f = 0; f < 400; f++) {
    const base = Array.from({ length: 60 + rng.int(60) }, () => vocab[rng.int(vocab.length)]);
    texts.push(base.join(' '));
    family.push(f);
    // up to three variants: 0–6 substituted words (Jaccard over 5-grams from about 1 down to about 0.5)
    for (let v = rng.int(4); v > 0; v--) {
      const w = base.slice();
      for (let k = rng.int(7); k > 0; k--) w[rng.int(w.length)] = vocab[rng.int(vocab.length)];
      texts.push(rng.next() < 0.3 ? w.join('  ').toUpperCase() : w.join(' '));
      family.push(f);
    }
  }
  // shuffle so a family's members are scattered
  const order = Array.from({ length: texts.length }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return { texts: order.map((i) => texts[i]), family: order.map((i) => family[i]) };
}

const sourceOf = (texts: readonly string[]): TextSource => async (visit) => {
  for (let i = 0; i < texts.length; i++) await visit(texts[i], i);
};

test('datasketch banding: 0.8 × 128 → 9 × 13 with its default weights, 14 × 9 with ours (recall first)', () => {
  assert.deepEqual(optimalParams(0.8, 128), { bands: 9, rows: 13 });
  assert.deepEqual(optimalParams(0.5, 128), { bands: 25, rows: 5 });
  // few false negatives at the optimum, many with one band of all rows
  assert.deepEqual(optimalParams(0.8, 128, 0.1, 0.9), { bands: 14, rows: 9 });
  assert.deepEqual(resolveParams({}).bands * 100 + resolveParams({}).rows, 1409);
  assert.ok(falseNegativeProbability(0.8, 9, 13) < 0.05);
  assert.ok(falseNegativeProbability(0.8, 14, 9) < falseNegativeProbability(0.8, 9, 13));
  assert.ok(falseNegativeProbability(0.8, 1, 128) > 0.15);
});

test('planted near-duplicates: recall ≥ 0.95 at J ≥ 0.8, precision ≥ 0.99, same output for the same seed', async () => {
  const { texts, family } = corpus(7);
  const plan = await planDedup(sourceOf(texts), { threshold: 0.8, numPerm: 128, ngram: 5, seed: 3, workers: 2 });
  assert.equal(plan.total, texts.length);
  const sets = texts.map((t) => wordShingles(t, 5));
  const clusterOf = new Int32Array(texts.length).map((_, i) => i);
  for (const c of plan.clusters) for (const r of c.removed) clusterOf[r.index] = c.kept;
  // every true pair (same family, J ≥ 0.8) must end in one cluster
  let truePairs = 0, found = 0;
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (family[i] !== family[j] || jaccardSorted(sets[i], sets[j]) < 0.8) continue;
      truePairs++;
      if (clusterOf[i] === clusterOf[j]) found++;
    }
  }
  assert.ok(truePairs > 200, `corpus plants enough pairs (${truePairs})`);
  const recall = found / truePairs;
  assert.ok(recall >= 0.95, `recall ${recall}`);
  // precision: each removed record really is a near-duplicate of the kept one (same family, J ≥ 0.8 directly
  // or through a chain of confirmed pairs in that family)
  let removed = 0, right = 0;
  for (const c of plan.clusters) {
    for (const r of c.removed) {
      removed++;
      if (family[r.index] === family[c.kept]) right++;
      assert.equal(r.jaccard, Math.round(jaccardSorted(sets[r.index], sets[c.kept]) * 1e4) / 1e4);
    }
  }
  assert.ok(removed > 100);
  assert.ok(right / removed >= 0.99, `precision ${right / removed}`);
  // the kept record of every cluster is its first, and nothing kept is marked removed
  for (const c of plan.clusters) for (const r of c.removed) assert.ok(r.index > c.kept);
  // determinism: inline (no workers) and a second run agree exactly
  const again = await planDedup(sourceOf(texts), { threshold: 0.8, numPerm: 128, ngram: 5, seed: 3, workers: 0 });
  assert.deepEqual(again.clusters, plan.clusters);
  assert.deepEqual(again.removed, plan.removed);
});

test('exact duplicates after normalization; exact-only mode; a different seed still finds the same exact set', async () => {
  const texts = ['Hello   World', 'hello world', 'something else entirely here', 'HELLO WORLD'];
  const plan = await planDedup(sourceOf(texts), { workers: 0 });
  assert.deepEqual([...plan.removed], [0, 1, 0, 1]);
  assert.deepEqual(plan.clusters, [{ kind: 'exact', kept: 0, removed: [{ index: 1, jaccard: 1 }, { index: 3, jaccard: 1 }] }]);
  const exactOnly = await planDedup(sourceOf(texts), { exactOnly: true });
  assert.deepEqual(exactOnly.removed, plan.removed);
  assert.equal(exactOnly.bands, 0);
});

test('threshold is respected: a pair just below it stays, just above it goes', async () => {
  const base = Array.from({ length: 40 }, (_, i) => `word${i}`);
  const edit = (k: number): string => base.map((w, i) => (i % Math.floor(40 / k) === 0 && i / Math.floor(40 / k) < k ? `x${w}` : w)).join(' ');
  const a = base.join(' ');
  for (const k of [1, 2, 3, 4]) {
    const b = edit(k);
    const j = jaccardSorted(wordShingles(a, 5), wordShingles(b, 5));
    const plan = await planDedup(sourceOf([a, b]), { workers: 0, threshold: 0.5, numPerm: 256 });
    assert.equal(plan.removed[1] === 1, j >= 0.5, `k=${k} J=${j}`);
  }
});
