// Ratings against numbers worked out by hand: online Elo on a three-battle log, Bradley–Terry against the closed
// form for two models, ordering on a transitive set, the mean/model anchors, and a seeded bootstrap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrap, bradleyTerry, onlineElo, quantile, records, type Battle } from './ratings.js';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

function games(a: string, b: string, wins: number, ties: number, losses: number): Battle[] {
  return [
    ...Array.from({ length: wins }, (): Battle => ({ model_a: a, model_b: b, winner: 'model_a' })),
    ...Array.from({ length: ties }, (): Battle => ({ model_a: a, model_b: b, winner: 'tie' })),
    ...Array.from({ length: losses }, (): Battle => ({ model_a: a, model_b: b, winner: 'model_b' })),
  ];
}

test('online Elo on a three-battle log equals the numbers worked by hand (K = 4)', () => {
  // 1. A vs B, A wins. Both at 1000: eA = 1/(1+10^0) = 0.5 → A = 1000 + 4(1 − 0.5) = 1002, B = 998.
  // 2. B (998) vs C (1000), tie. eB = 1/(1+10^(2/400)) = 1/(1+1.0115794) = 0.4971218
  //    → B = 998 + 4(0.5 − 0.4971218) = 998.0115128, C = 1000 + 4(0.5 − 0.5028782) = 999.9884872.
  // 3. A (1002) vs C (999.9884872), C wins. eA = 1/(1+10^(−2.0115128/400)) = 1/(1+0.9884880) = 0.5028948
  //    → A = 1002 − 4·0.5028948 = 999.9884209, C = 999.9884872 + 4(1 − 0.4971052) = 1002.0000663.
  const r = onlineElo([
    { model_a: 'A', model_b: 'B', winner: 'model_a' },
    { model_a: 'B', model_b: 'C', winner: 'tie' },
    { model_a: 'A', model_b: 'C', winner: 'model_b' },
  ]);
  close(r.get('A') ?? NaN, 999.9884209, 1e-6, 'A');
  close(r.get('B') ?? NaN, 998.0115128, 1e-6, 'B');
  close(r.get('C') ?? NaN, 1002.0000663, 1e-6, 'C');
  // Elo conserves the total (each update is ±K(s − e) with eA + eB = 1)
  close([...r.values()].reduce((s, v) => s + v, 0), 3000, 1e-9, 'sum');
  // K scales the first step exactly
  assert.equal(onlineElo([{ model_a: 'A', model_b: 'B', winner: 'model_b' }], 32).get('B'), 1016);
});

test('Bradley–Terry: two models, p wins of n → rating difference 400·log10(p/(n − p)), mean 1000', () => {
  for (const [p, n] of [[3, 4], [7, 10], [1, 5], [5, 10]] as const) {
    const r = bradleyTerry(games('A', 'B', p, 0, n - p));
    assert.equal(r.regularized, false);
    const a = r.ratings.get('A') ?? NaN;
    const b = r.ratings.get('B') ?? NaN;
    close(a - b, 400 * Math.log10(p / (n - p)), 1e-6, `${p}/${n}`);
    close((a + b) / 2, 1000, 1e-9, 'mean');
  }
  // ties are half a win each way: 2 wins, 2 ties, 1 loss = 3 of 5
  const t = bradleyTerry(games('A', 'B', 2, 2, 1)).ratings;
  close((t.get('A') ?? NaN) - (t.get('B') ?? NaN), 400 * Math.log10(3 / 2), 1e-6, 'ties');
  // "tie (bothbad)" counts as a tie
  const bb = bradleyTerry([...games('A', 'B', 1, 0, 0), { model_a: 'A', model_b: 'B', winner: 'tie (bothbad)' }, ...games('A', 'B', 0, 0, 1)]).ratings;
  close((bb.get('A') ?? NaN) - (bb.get('B') ?? NaN), 0, 1e-9, 'bothbad');
});

test('Bradley–Terry orders a transitive set and pins the anchor model', () => {
  const log = [...games('A', 'B', 3, 0, 1), ...games('B', 'C', 3, 0, 1), ...games('A', 'C', 4, 1, 1), ...games('C', 'D', 2, 1, 1), ...games('B', 'D', 3, 0, 1)];
  const { ratings, regularized } = bradleyTerry(log);
  assert.equal(regularized, false);
  const order = [...ratings.entries()].sort((x, y) => y[1] - x[1]).map(([m]) => m);
  assert.deepEqual(order, ['A', 'B', 'C', 'D']);
  close([...ratings.values()].reduce((s, v) => s + v, 0) / 4, 1000, 1e-9, 'mean');
  // the MLE's score equations: each model's expected wins equal its actual wins (ties as halves)
  for (const m of ['A', 'B', 'C', 'D']) {
    let actual = 0;
    let expected = 0;
    for (const b of log) {
      if (b.model_a !== m && b.model_b !== m) continue;
      const other = b.model_a === m ? b.model_b : b.model_a;
      const s = b.winner === 'tie' ? 0.5 : (b.winner === 'model_a') === (b.model_a === m) ? 1 : 0;
      actual += s;
      expected += 1 / (1 + 10 ** (((ratings.get(other) ?? 0) - (ratings.get(m) ?? 0)) / 400));
    }
    close(expected, actual, 1e-6, `score equation of ${m}`);
  }
  const pinned = bradleyTerry(log, { kind: 'model', model: 'C' }).ratings;
  assert.equal(pinned.get('C'), 1000);
  close((pinned.get('A') ?? NaN) - (pinned.get('C') ?? NaN), (ratings.get('A') ?? NaN) - (ratings.get('C') ?? NaN), 1e-6, 'differences kept');
  assert.throws(() => bradleyTerry(log, { kind: 'model', model: 'Z' }), /anchor model "Z" is not in the battles/);
});

test('Bradley–Terry without an MLE (a model never loses) is regularized and finite; separate groups are an error', () => {
  const r = bradleyTerry(games('A', 'B', 4, 0, 0));
  assert.equal(r.regularized, true);
  // one virtual tie: 4.5 of 5 → 400·log10(9)
  close((r.ratings.get('A') ?? NaN) - (r.ratings.get('B') ?? NaN), 400 * Math.log10(9), 1e-6, 'regularized');
  assert.throws(() => bradleyTerry([...games('A', 'B', 1, 0, 1), ...games('C', 'D', 1, 0, 1)]), /do not form one connected group/);
});

test('bootstrap: deterministic for a seed, different for another, intervals around the estimate', () => {
  const log = [...games('A', 'B', 6, 2, 2), ...games('B', 'C', 5, 1, 4), ...games('A', 'C', 7, 0, 3)];
  const rate = (s: readonly Battle[]): Map<string, number> => bradleyTerry(s).ratings;
  const one = bootstrap(log, rate, 200, 42);
  const two = bootstrap(log, rate, 200, 42);
  const other = bootstrap(log, rate, 200, 43);
  assert.deepEqual([...one.entries()], [...two.entries()]);
  assert.notDeepEqual([...one.entries()], [...other.entries()]);
  const est = rate(log);
  for (const [m, ci] of one) {
    assert.equal(ci.samples, 200);
    assert.ok(ci.lo < (est.get(m) ?? NaN) && (est.get(m) ?? NaN) < ci.hi, `${m}: ${ci.lo} < ${est.get(m)} < ${ci.hi}`);
  }
  assert.equal(bootstrap([], rate, 10, 1).size, 0);
});

test('quantile interpolates as numpy does; records count wins, ties, losses', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  close(quantile([0, 10], 0.025), 0.25, 1e-12, 'q');
  const r = records([...games('A', 'B', 2, 1, 1)]);
  assert.deepEqual(r.get('A'), { battles: 4, wins: 2, ties: 1, losses: 1 });
  assert.deepEqual(r.get('B'), { battles: 4, wins: 1, ties: 1, losses: 2 });
});
