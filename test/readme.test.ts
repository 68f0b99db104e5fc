// The README's engine example, run through the package's public entry point: it must train (loss falls) and
// leave no native memory behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, backward, crossEntropy, getBackend, linear, rmsnorm, Tensor, tidy, zeroGrad } from '../src/index.js';

test('README engine example trains and frees everything', () => {
  const before = getBackend().liveBytes();
  const w = Tensor.from(Array.from({ length: 16 * 8 }, (_, i) => Math.cos(i) * 0.1), [16, 8]).keep();
  w.requiresGrad = true;
  const opt = new AdamW([w], { lr: 1e-2 });
  const losses: number[] = [];
  for (let step = 0; step < 100; step++) {
    const loss = tidy(() => {
      const x = Tensor.from(Array.from({ length: 4 * 8 }, (_, i) => Math.sin(i)), [4, 8]);
      const logits = linear(rmsnorm(x, Tensor.full([8], 1), 1e-5), w);
      const l = crossEntropy(logits, new Int32Array([1, 2, 3, -100]));
      backward(l);
      return l.item();
    });
    losses.push(loss);
    opt.update();
    zeroGrad([w]);
  }
  assert.ok(losses[99] < losses[0] * 0.5, `loss ${losses[0]} → ${losses[99]}`);
  opt.dispose();
  w.dispose();
  assert.equal(getBackend().liveBytes(), before);
});
