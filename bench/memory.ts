// Memory bench: 1,000 steps of forward, backward and AdamW update on one attention+MLP block (a 1-layer Llama);
// resident memory must stay flat after warm-up (target: within 5%). Native memory is outside the GC, so this
// checks that tidy()/dispose() really return every buffer, step after step.

import { AdamW, backward, crossEntropy, getBackend, Rng, tidy, zeroGrad } from '../src/engine/index.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { emit } from './common.js';

function rssMb(): number {
  return process.memoryUsage().rss / (1 << 20);
}

export async function runMemoryBench(steps = 1000, warmup = 100): Promise<void> {
  const cfg = tinyConfig({ numLayers: 1, hiddenSize: 128, intermediateSize: 384, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 512 });
  const weights = initWeights(cfg, 1);
  for (const t of weights.values()) t.requiresGrad = true;
  const model = new LlamaModel(cfg, (n) => weights.get(n));
  const params = [...weights.values()];
  const opt = new AdamW(params, { lr: 1e-3 });
  const [B, T] = [4, 64];
  const rng = new Rng(3);
  const backend = getBackend();
  let baseRss = 0;
  let baseLive = 0;
  let maxRss = 0;
  for (let step = 1; step <= steps; step++) {
    const ids = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
    const targets = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
    tidy(() => backward(crossEntropy(model.forward(ids, B, T), targets)));
    opt.update();
    zeroGrad(params);
    // Yield to the event loop once per step, as the trainer does: Node runs native-buffer finalizers there.
    await new Promise<void>((r) => setImmediate(r));
    if (step === warmup) {
      global.gc?.();
      baseRss = rssMb();
      baseLive = backend.liveBytes();
    }
    if (step > warmup) maxRss = Math.max(maxRss, rssMb());
  }
  const endLive = backend.liveBytes();
  emit({
    bench: 'memory', metric: `rss_after_${steps}_steps_vs_step_${warmup}`, unit: 'MB', ours: maxRss, peer: baseRss,
    peer_name: `own RSS at step ${warmup} (after warm-up)`, higher_is_better: false,
    note: `max RSS over steps ${warmup + 1}..${steps} vs RSS after warm-up; ratio = RSS after warm-up / max RSS (the bench convention: > 1 is better; the target, growth within 5 %, is ratio ≥ 0.952); backend ${backend.name}; live native bytes ${baseLive} at warm-up, ${endLive} at the end`,
  });
  opt.dispose();
  model.dispose();
}
