// Rows with nothing to learn: finetuneRows drops an example whose whole reply falls past seqLen (padded) or a packed
// row of prompt tokens only, and counts them; a Trainer handed such rows anyway skips them (no NaN loss, no tokens/s
// of an update that did no work) and refuses rows where nothing at all is trained.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../engine/index.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { IGNORE_INDEX, Loader, type Example, type Row } from './batching.js';
import { finetuneRows } from './finetune.js';
import { readMetrics } from './metrics.js';
import { Trainer } from './trainer.js';

/** A 12-token prompt (mask 0) then a reply of `reply` tokens (mask 1). */
function chat(reply: number, first = 10): Example {
  const ids = Array.from({ length: 12 + reply }, (_, i) => first + i);
  return { ids, mask: ids.map((_, i) => (i < 12 ? 0 : 1)) };
}

test('padded: an example whose whole reply falls past seqLen is dropped and counted', () => {
  // seqLen 8: positions predict ids[1..8], all prompt (the reply starts at id 12) → nothing to learn
  const { rows, dropped } = finetuneRows([chat(3), chat(3, 20)], 'padded', 8);
  assert.equal(rows.length, 0);
  assert.equal(dropped, 2);
  // seqLen 12: the last position predicts ids[12], the reply's first token → kept
  const kept = finetuneRows([chat(3), chat(3, 20)], 'padded', 12);
  assert.equal(kept.dropped, 0);
  assert.deepEqual(kept.rows.map((r) => r.labels.filter((l) => l !== IGNORE_INDEX)), [Int32Array.of(22), Int32Array.of(32)]);
  // an example with no reply at all is dropped whatever seqLen
  assert.equal(finetuneRows([chat(0), chat(3)], 'padded', 64).dropped, 1);
});

test('packed: rows of prompt tokens only are dropped, rows with a reply token kept', () => {
  // stream: 12 prompt + 2 reply, 12 prompt + 2 reply = 28 tokens (replies at 12, 13, 26, 27); rows of 6 predict
  // stream tokens 1–6 (prompt only), 7–12 (reply 12), 13–18 (reply 13), 19–24 (prompt only), 25–27 (reply 26, 27)
  const { rows, dropped } = finetuneRows([chat(2), chat(2, 40)], 'packed', 6);
  assert.equal(dropped, 2);
  assert.equal(rows.length, 3);
  for (const r of rows) assert.ok(r.labels.some((l) => l !== IGNORE_INDEX));
});

function row(ids: number[], trained: boolean): Row {
  return { ids: Int32Array.from(ids), labels: Int32Array.from(ids, (x, i) => (trained && i < ids.length - 1 ? ids[i + 1] : IGNORE_INDEX)) };
}

function tinyTrainer(rows: Row[], steps: number, outDir: string | null): { trainer: Trainer; model: LlamaModel } {
  const cfg = tinyConfig();
  const w = initWeights(cfg, 3, 0.05);
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const params = [...w].map(([name, tensor]) => ({ name, tensor }));
  for (const p of params) p.tensor.requiresGrad = true;
  const trainer = new Trainer(model, params, { train: new Loader(rows, 1, 0, 0, false) }, { steps, lr: 1e-3, outDir, progress: 'none', handleSigint: false });
  return { trainer, model };
}

test('Trainer: an update whose every label is -100 is not a step (no NaN loss, no tokens/s logged)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-masked-'));
  try {
    const rows = [row([1, 2, 3, 4], true), row([5, 6, 7, 8], false), row([9, 10, 11, 12], true), row([13, 14, 15, 16], false)];
    const { trainer } = tinyTrainer(rows, 4, dir);
    const result = await trainer.run();
    trainer.dispose();
    assert.equal(result.step, 4);
    assert.ok(Number.isFinite(result.loss));
    const metrics = readMetrics(join(dir, 'metrics.jsonl'));
    assert.deepEqual(metrics.map((m) => m.step), [1, 2, 3, 4]);
    for (const m of metrics) {
      assert.ok(Number.isFinite(m.loss), `step ${m.step}: loss ${String(m.loss)}`);
      assert.ok(m.grad_norm > 0, `step ${m.step}: grad_norm ${m.grad_norm}`);
    }
    for (const h of result.history) assert.ok(Number.isFinite(h.loss));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Trainer: rows where nothing is trained are refused instead of looping', async () => {
  const { trainer } = tinyTrainer([row([1, 2, 3], false), row([4, 5, 6], false)], 2, null);
  await assert.rejects(trainer.run(), /no training row has a trained token/);
  trainer.dispose();
});
