// The preference ops against hand computation (a 2-token vocabulary) and central finite differences (float64
// reference backend): sequenceLogProbs' per-row sums, the DPO sigmoid loss and its gradient, IPO's value on average
// log-probs, the RPO term, and TRL's reward metrics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, Rng, Tensor, tidy, withBackend } from '../engine/index.js';
import { ReferenceBackend } from '../engine/reference/index.js';
import { mul, sum } from '../engine/ops/index.js';
import { preferenceLoss, sequenceLogProbs, type PreferenceLossConfig } from './dpo-loss.js';

const f64 = new ReferenceBackend({ precision: 'f64' });
const close = (a: number, b: number, tol = 1e-9, what = ''): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('DPO sigmoid loss and gradient on a hand-computed pair (V = 2)', () => {
  withBackend(f64, () => tidy(() => {
    // Rows: chosen logits [0, 0] with label 0, rejected logits [0, 0] with label 1: both log p = −ln 2.
    // Reference: ref_c = −ln2 − 1, ref_r = −ln2 + 1, so h = (π_c − ref_c) − (π_r − ref_r) = 1 − (−1) = 2.
    // β = 0.5: loss = −log σ(βh) = −log σ(1) = log(1 + e^−1) = 0.31326168751822286.
    // dl/dh = −β σ(−βh) = −0.5 · σ(−1) = −0.5 · 0.2689414213699951 = −0.13447071068499755.
    // d log p_c / d z_c = onehot(0) − softmax = [0.5, −0.5] → dz_c = dl/dh · [0.5, −0.5] = [−0.0672353553, 0.0672353553]
    // d log p_r / d z_r = onehot(1) − softmax = [−0.5, 0.5], dh/dπ_r = −1 → dz_r = −dl/dh · [−0.5, 0.5] = [−0.0672353553, 0.0672353553]
    const logits = Tensor.from([0, 0, 0, 0], [2, 1, 2]);
    logits.requiresGrad = true;
    const lp = sequenceLogProbs(logits, Int32Array.of(0, 1), 2);
    close(lp.data[0], -Math.LN2, 1e-12, 'log p chosen');
    const ln2 = Math.LN2;
    const { loss, metrics } = preferenceLoss(lp, [-ln2 - 1, -ln2 + 1], [1, 1], { beta: 0.5, lossType: 'sigmoid', rpoAlpha: 0 });
    close(loss.item(), 0.31326168751822286, 1e-12, 'loss');
    backward(loss);
    const g = logits.grad!.data;
    const q = 0.13447071068499755 / 2;
    [-q, q, -q, q].forEach((want, i) => close(g[i], want, 1e-12, `dlogits[${i}]`));
    // TRL's metrics: rewards = β (π − ref)
    close(metrics['rewards/chosen'], 0.5, 1e-12, 'rewards/chosen');
    close(metrics['rewards/rejected'], -0.5, 1e-12, 'rewards/rejected');
    close(metrics['rewards/margins'], 1, 1e-12, 'rewards/margins');
    assert.equal(metrics['rewards/accuracies'], 1);
    close(metrics['logps/chosen'], -ln2, 1e-12, 'logps/chosen');
    close(metrics['logps/rejected'], -ln2, 1e-12, 'logps/rejected');
  }));
});

test('IPO uses per-token average log-probs: value and gradient by hand', () => {
  withBackend(f64, () => tidy(() => {
    // sums s_c = −2 over 2 tokens, s_r = −3 over 1 token; ref sums −3 and −2; β = 0.5 (1/(2β) = 1).
    // π_c − ρ_c = −1 − (−1.5) = 0.5, π_r − ρ_r = −3 − (−2) = −1 → h = 1.5; loss = (1.5 − 1)² = 0.25.
    // dl/dh = 2 · 0.5 = 1 → dl/ds_c = 1/2, dl/ds_r = −1/1.
    const s = Tensor.from([-2, -3], [2]);
    s.requiresGrad = true;
    const { loss, metrics } = preferenceLoss(s, [-3, -2], [2, 1], { beta: 0.5, lossType: 'ipo', rpoAlpha: 0 });
    close(loss.item(), 0.25, 1e-12, 'ipo loss');
    backward(loss);
    const g = s.grad!.data;
    close(g[0], 0.5, 1e-12, 'd/ds_c');
    close(g[1], -1, 1e-12, 'd/ds_r');
    close(metrics['logps/chosen'], -1, 1e-12, 'logps/chosen is the average');
    close(metrics['rewards/chosen'], 0.25, 1e-12, 'reward on averages');
  }));
});

test('a pair the reference already prefers as much as the policy: loss log 2, accuracy 0', () => {
  withBackend(f64, () => tidy(() => {
    const s = Tensor.from([-4, -6], [2]);
    const { loss, metrics } = preferenceLoss(s, [-4, -6], [3, 3], { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 });
    close(loss.item(), Math.LN2, 1e-12, 'σ(0) = 1/2');
    assert.equal(metrics['rewards/accuracies'], 0, 'equal rewards are not counted as right (TRL: chosen > rejected)');
  }));
});

test('bad input is refused with a message', () => {
  withBackend(f64, () => tidy(() => {
    const s = Tensor.from([-1, -2, -3], [3]);
    assert.throws(() => preferenceLoss(s, [0, 0, 0], [1, 1, 1], { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 }), /even count/);
    const t = Tensor.from([-1, -2], [2]);
    assert.throws(() => preferenceLoss(t, [0, 0], [1, 0], { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 }), /no trained token/);
    assert.throws(() => preferenceLoss(t, [0, 0], [1, 1], { beta: 0, lossType: 'sigmoid', rpoAlpha: 0 }), /beta/);
    assert.throws(() => sequenceLogProbs(Tensor.zeros([2, 3, 4]), Int32Array.of(0, 1, 2, 3, 4, 5), 2), /outside \[0, 4\)/);
  }));
});

/** Loss of sequenceLogProbs → preferenceLoss on random logits, for finite differences. */
function composed(cfg: PreferenceLossConfig, logits: Tensor, labels: Int32Array, B: number, ref: number[], lengths: number[]): Tensor {
  return preferenceLoss(sequenceLogProbs(logits, labels, B), ref, lengths, cfg).loss;
}

for (const cfg of [
  { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0 },
  { beta: 2, lossType: 'sigmoid', rpoAlpha: 0 },
  { beta: 0.3, lossType: 'ipo', rpoAlpha: 0 },
  { beta: 0.1, lossType: 'sigmoid', rpoAlpha: 0.7 },
] as const) {
  test(`finite differences: sequenceLogProbs → ${cfg.lossType} β ${cfg.beta} rpo ${cfg.rpoAlpha}`, () => {
    withBackend(f64, () => tidy(() => {
      const [B, T, V] = [4, 3, 5];
      const rng = new Rng(11);
      const logits = Tensor.from(Array.from({ length: B * T * V }, () => 3 * (rng.next() - 0.5)), [B, T, V]);
      logits.requiresGrad = true;
      // some ignored positions (prompt, padding); every row keeps at least one trained label
      const labels = Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 && i % 2 === 0 ? -100 : rng.int(V)));
      const lengths = Array.from({ length: B }, (_, b) => [...labels.slice(b * T, b * T + T)].filter((l) => l !== -100).length);
      const ref = Array.from({ length: B }, () => -3 * rng.next() - 1);
      backward(composed(cfg, logits, labels, B, ref, lengths));
      const g = logits.grad!.data;
      const d = logits.data;
      const h = 1e-6;
      for (let i = 0; i < d.length; i++) {
        const orig = d[i];
        d[i] = orig + h;
        const up = tidy(() => composed(cfg, logits, labels, B, ref, lengths).item());
        d[i] = orig - h;
        const down = tidy(() => composed(cfg, logits, labels, B, ref, lengths).item());
        d[i] = orig;
        close(g[i], (up - down) / (2 * h), 1e-7, `dlogits[${i}]`);
      }
    }));
  });
}

test('finite differences: sequenceLogProbs alone, weighted rows', () => {
  withBackend(f64, () => tidy(() => {
    const [B, T, V] = [3, 4, 6];
    const rng = new Rng(5);
    const logits = Tensor.from(Array.from({ length: B * T * V }, () => 2 * (rng.next() - 0.5)), [B, T, V]);
    logits.requiresGrad = true;
    const labels = Int32Array.from({ length: B * T }, (_, i) => (i % 3 === 1 ? -100 : rng.int(V)));
    const w = Tensor.from([0.3, -1.2, 2.1], [B]);
    const f = (): Tensor => sum(mul(sequenceLogProbs(logits, labels, B), w));
    // the value by hand: Σ_b w_b Σ_t log softmax(z_bt)[y_bt]
    let want = 0;
    for (let n = 0; n < B * T; n++) {
      if (labels[n] === -100) continue;
      const z = [...logits.data.slice(n * V, n * V + V)];
      const lse = Math.log(z.reduce((s, x) => s + Math.exp(x), 0));
      want += w.data[Math.floor(n / T)] * (z[labels[n]] - lse);
    }
    close(f().item(), want, 1e-12, 'value');
    backward(f());
    const g = logits.grad!.data;
    const d = logits.data;
    for (let i = 0; i < d.length; i++) {
      const orig = d[i];
      d[i] = orig + 1e-6;
      const up = tidy(() => f().item());
      d[i] = orig - 1e-6;
      const down = tidy(() => f().item());
      d[i] = orig;
      close(g[i], (up - down) / 2e-6, 1e-7, `dlogits[${i}]`);
      if (labels[Math.floor(i / V)] === -100) assert.equal(g[i], 0, 'ignored positions get no gradient');
    }
  }));
});
