// A child process for the resume tests: trains a tiny Llama for 12 updates, checkpointing every 3, and prints the
// result as JSON. Usage: node dist/test/train-resume-child.js <outDir> fresh|resume [delayMs per update]

import { Rng } from '../src/engine/index.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { batchesOf, Loader, packExamples, Trainer, type Example } from '../src/train/index.js';

const [outDir, mode, delay] = process.argv.slice(2);
if (outDir === undefined || (mode !== 'fresh' && mode !== 'resume')) {
  process.stderr.write('usage: train-resume-child <outDir> fresh|resume [delayMs]\n');
  process.exit(2);
}
const delayMs = Number(delay ?? 0);

const cfg = tinyConfig();
const weights = initWeights(cfg, 7, 0.1);
const model = new LlamaModel(cfg, (n) => weights.get(n));
const params = model.namedTensors().map(([name, tensor]) => {
  tensor.requiresGrad = true;
  return { name, tensor };
});

// Documents of random tokens, some with a prompt part that is not trained (mask 0).
const rng = new Rng(11);
const docs: Example[] = [];
for (let d = 0; d < 14; d++) {
  const n = 3 + rng.int(10);
  const ids = Array.from({ length: n }, () => 3 + rng.int(cfg.vocabSize - 3));
  docs.push(d % 3 === 0 ? { ids, mask: ids.map((_, i) => (i < n / 2 ? 0 : 1)) } : { ids });
}
const rows = packExamples(docs, { seqLen: 8, eosId: 2 });
const trainer = new Trainer(
  model,
  params,
  { train: new Loader(rows.slice(2), 2, 5), eval: batchesOf(rows.slice(0, 2), 2) },
  {
    steps: 12, saveEvery: 3, gradAccum: 2, lr: 1e-2, schedule: 'cosine', warmupSteps: 2, weightDecay: 0.1, maxGradNorm: 0.5,
    evalEvery: 4, progress: 'none', outDir, resume: mode === 'resume',
  },
  {
    onStep: () => {
      if (delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs); // slow down so a kill lands mid-run
    },
  },
);
const r = await trainer.run();
process.stdout.write(JSON.stringify({ step: r.step, interrupted: r.interrupted, checkpoint: r.checkpoint }) + '\n');
