// The training toolkit through its public API: schedule values, packing and padding labels, seeded resumable
// batch order, and the Trainer on a tiny Llama (memorization, accumulation = full batch, clipping, flat memory,
// metrics file, loss-curve SVG, pretrain entry).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend, Rng, type Tensor } from '../src/engine/index.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import {
  batchesOf, collate, CROSS_ENTROPY, epochOrder, evaluateWithMetrics, exampleRow, IGNORE_INDEX, Loader, lossCurveSvg, lrAt, lrFactor, packExamples, padRows, pretrain, Progress,
  readMetrics, Trainer, type Example, type MetricsRecord, type NamedParam, type Objective, type Row, type TrainConfig,
} from '../src/train/index.js';

const X = IGNORE_INDEX;

function near(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}

// ---- schedules ------------------------------------------------------------------------------------------------

test('schedules follow transformers get_*_schedule_with_warmup', () => {
  const lin = { kind: 'linear' as const, warmupSteps: 2, totalSteps: 10 };
  assert.deepEqual([0, 1, 2, 6, 9, 10, 11].map((s) => lrFactor(lin, s)), [0, 0.5, 1, 0.5, 0.125, 0, 0]);
  const cos = { kind: 'cosine' as const, warmupSteps: 2, totalSteps: 10 };
  near(lrFactor(cos, 0), 0);
  near(lrFactor(cos, 1), 0.5);
  near(lrFactor(cos, 2), 1);
  near(lrFactor(cos, 4), 0.5 * (1 + Math.cos(Math.PI * 0.25))); // 0.8535…
  near(lrFactor(cos, 6), 0.5);
  near(lrFactor(cos, 10), 0);
  near(lrFactor({ ...cos, numCycles: 1 }, 10), 1); // a full wave comes back up
  assert.equal(lrFactor({ kind: 'constant', warmupSteps: 5, totalSteps: 10 }, 0), 1);
  assert.deepEqual([0, 2, 4, 9].map((s) => lrFactor({ kind: 'constant_with_warmup', warmupSteps: 4, totalSteps: 10 }, s)), [0, 0.5, 1, 1]);
  near(lrAt(lin, 3e-4, 6), 1.5e-4, 1e-18);
  assert.equal(lrFactor({ kind: 'linear', warmupSteps: 0, totalSteps: 4 }, 0), 1);
  assert.throws(() => lrFactor(lin, -1), /non-negative integer/);
});

// ---- batching -------------------------------------------------------------------------------------------------

test('packing concatenates with EOS, shifts labels, masks prompt tokens, pads the tail', () => {
  const ex: Example[] = [{ ids: [10, 11, 12], mask: [1, 0, 1] }, { ids: [20, 21] }];
  // stream 10 11 12 EOS 20 21 EOS, trained 1 0 1 1 1 1 1 → targets of positions 0..5: 11(prompt) 12 EOS 20 21 EOS
  const rows = packExamples(ex, { seqLen: 4, eosId: 2, padId: 0 });
  assert.equal(rows.length, 2);
  assert.deepEqual([...rows[0].ids], [10, 11, 12, 2]);
  assert.deepEqual([...rows[0].labels], [X, 12, 2, 20]);
  assert.deepEqual([...rows[1].ids], [20, 21, 0, 0]);
  assert.deepEqual([...rows[1].labels], [21, 2, X, X]);
  assert.equal(packExamples(ex, { seqLen: 4, eosId: 2, dropLast: true }).length, 1);
  const noSep = packExamples(ex, { seqLen: 4, eosId: 2, trainSeparator: false });
  assert.deepEqual([...noSep[0].labels], [X, 12, X, 20]);
  assert.throws(() => packExamples([{ ids: [1, 2], mask: [1] }], { seqLen: 4, eosId: null }), /example 0: mask has 1 entries for 2 ids/);
});

test('padding mode: one example per row, truncated, right-padded with -100 labels', () => {
  const rows = padRows([{ ids: [5, 6, 7, 8], mask: [0, 0, 1, 1] }, { ids: [9] }, { ids: [3, 4] }], 8);
  assert.equal(rows.length, 2); // the one-token example has no target
  const b = collate(rows, 0);
  assert.deepEqual([b.B, b.T, b.targets], [2, 3, 3]);
  assert.deepEqual([...b.ids], [5, 6, 7, 3, 0, 0]);
  assert.deepEqual([...b.labels], [X, 7, 8, 4, X, X]);
  assert.deepEqual([...exampleRow({ ids: [1, 2, 3, 4, 5] }, 2).labels], [2, 3]);
});

test('the loader order is seeded per epoch and resumes from a saved position', () => {
  const rows: Row[] = Array.from({ length: 7 }, (_, i) => ({ ids: Int32Array.of(i), labels: Int32Array.of(i) }));
  const seq = (l: Loader, n: number): number[][] => Array.from({ length: n }, () => [...l.next().ids]);
  const a = new Loader(rows, 3, 42);
  const all = seq(a, 9); // three epochs of 3 + 3 + 1 rows
  assert.deepEqual(all.map((b) => b.length), [3, 3, 1, 3, 3, 1, 3, 3, 1]);
  for (let e = 0; e < 3; e++) assert.deepEqual(all.slice(3 * e, 3 * e + 3).flat().sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.notDeepEqual(all.slice(0, 3).flat(), all.slice(3, 6).flat(), 'epochs should be shuffled differently');
  assert.deepEqual(seq(new Loader(rows, 3, 42), 9), all);
  assert.notDeepEqual(seq(new Loader(rows, 3, 43), 3), all.slice(0, 3));
  const b = new Loader(rows, 3, 42);
  seq(b, 4);
  const c = new Loader(rows, 3, 42);
  c.restore(b.state);
  assert.deepEqual(seq(c, 5), all.slice(4));
  assert.deepEqual([...epochOrder(4, 1, 0, false)], [0, 1, 2, 3]);
});

// ---- the trainer on a tiny model --------------------------------------------------------------------------------

function tinyModel(seed = 3): { model: LlamaModel; params: NamedParam[] } {
  const cfg = tinyConfig();
  const w = initWeights(cfg, seed, 0.1);
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const params = model.namedTensors().map(([name, tensor]) => {
    tensor.requiresGrad = true;
    return { name, tensor };
  });
  return { model, params };
}

function snapshot(params: readonly NamedParam[]): Float32Array[] {
  return params.map((p) => Float32Array.from(p.tensor.data));
}

function randomDocs(n: number, seed: number, vocab = 64): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({ ids: Array.from({ length: 2 + rng.int(9) }, () => 3 + rng.int(vocab - 3)) }));
}

interface Run {
  names: string[];
  before: Float32Array[];
  after: Float32Array[];
  records: MetricsRecord[];
}

async function train(rows: readonly Row[], batchSize: number, cfg: Partial<TrainConfig> & { steps: number }, onStep?: (r: MetricsRecord) => void): Promise<Run> {
  const { model, params } = tinyModel();
  const before = snapshot(params);
  const records: MetricsRecord[] = [];
  const t = new Trainer(model, params, { train: new Loader(rows, batchSize, 1) }, { progress: 'none', ...cfg }, {
    onStep: (r) => {
      records.push(r);
      onStep?.(r);
    },
  });
  await t.run();
  t.dispose();
  const after = snapshot(params);
  model.dispose();
  return { names: params.map((p) => p.name), before, after, records };
}

test('loss falls on a memorization task', async () => {
  const rows = packExamples(randomDocs(3, 1), { seqLen: 12, eosId: 2 });
  const { records } = await train(rows, rows.length, { steps: 40, lr: 1e-2, schedule: 'constant' });
  const first = records[0].loss;
  const last = records[records.length - 1].loss;
  assert.ok(first > 3.5, `initial loss ${first} should be near ln(64) = 4.16`);
  assert.ok(last < 0.5 * first, `loss went ${first} → ${last}`);
});

test('two accumulated half-batches give the same update as one full batch (token-weighted)', async () => {
  // rows of different lengths and masks, so the micro-batches hold different numbers of trained tokens
  const ex = randomDocs(4, 9).map((e, i) => ({ ids: e.ids, mask: Array.from(e.ids, (_, j) => (i % 2 === 0 && j < 2 ? 0 : 1)) }));
  const rows = padRows(ex, 16);
  const full = await train(rows, 4, { steps: 1, lr: 1e-3, maxGradNorm: 0 });
  const accum = await train(rows, 2, { steps: 1, lr: 1e-3, maxGradNorm: 0, gradAccum: 2 });
  near(accum.records[0].loss, full.records[0].loss, 1e-5);
  near(accum.records[0].grad_norm, full.records[0].grad_norm, 1e-5 * full.records[0].grad_norm);
  // Adam's first update is lr·g/(|g|+eps): elements with |g| near eps amplify rounding, hence 1% of lr
  full.after.forEach((p, i) => p.forEach((v, j) => assert.ok(Math.abs(v - accum.after[i][j]) <= 1e-5, `${full.names[i]}[${j}]: ${v} vs ${accum.after[i][j]}`)));
});

test('an objective: its own loss, weight per batch and metrics, averaged with those weights in training and evaluation', async () => {
  // Three rows with extras 1, 2, 6; batches of 2 then 1 (the epoch's tail), accumulated into one update. The objective
  // is cross-entropy weighted by rows, not tokens, and logs the mean extra: (2·1.5 + 1·6) / 3 = 3, whatever the tokens.
  const rows = padRows(randomDocs(3, 4), 12).map((r, i) => ({ ...r, extra: [1, 2, 6][i] }));
  const extrasSeen: unknown[][] = [];
  const rowsObjective: Objective = {
    name: 'rows',
    loss: (model, b, training) => {
      if (training) extrasSeen.push(b.extras ?? []);
      const xs = (b.extras ?? []) as number[];
      return { loss: CROSS_ENTROPY.loss(model, b, training).loss, metrics: { extra_mean: xs.reduce((a, x) => a + x, 0) / xs.length } };
    },
    weight: (b) => b.B,
  };
  const { model, params } = tinyModel();
  const records: MetricsRecord[] = [];
  const t = new Trainer(model, params, { train: new Loader(rows, 2, 1, 0, false), eval: batchesOf(rows, 2) }, { steps: 1, gradAccum: 2, progress: 'none' }, { objective: rowsObjective, onStep: (r) => records.push(r) });
  await t.run();
  t.dispose();
  assert.deepEqual(extrasSeen, [[1, 2], [6]]);
  near(records[0].extra_mean ?? NaN, 3);
  near(records[0].eval_extra_mean ?? NaN, 3);
  const ev = evaluateWithMetrics(model, batchesOf(rows, 2), rowsObjective);
  near(ev.metrics.extra_mean, 3);
  // weights by rows: the eval loss is the mean of the two batches' losses weighted 2 : 1
  const per = batchesOf(rows, 2).map((b) => evaluateWithMetrics(model, [b]).loss);
  near(ev.loss, (2 * per[0] + per[1]) / 3, 1e-6);
  model.dispose();
});

test('clipping bounds the update; grad_norm is reported before clipping', async () => {
  const rows = packExamples(randomDocs(4, 2), { seqLen: 8, eosId: 2 });
  const maxDelta = (r: Run): number => {
    let m = 0;
    r.after.forEach((p, i) => p.forEach((v, j) => (m = Math.max(m, Math.abs(v - r.before[i][j])))));
    return m;
  };
  const free = await train(rows, 2, { steps: 1, lr: 1e-2, schedule: 'constant', maxGradNorm: 0 });
  // Adam's first update is lr·g/(|g|+eps): clipping the whole gradient to norm 1e-11 puts every |g| far below eps
  const clipped = await train(rows, 2, { steps: 1, lr: 1e-2, schedule: 'constant', maxGradNorm: 1e-11 });
  near(clipped.records[0].grad_norm, free.records[0].grad_norm, 1e-9);
  assert.ok(free.records[0].grad_norm > 1e-3);
  assert.ok(maxDelta(free) > 0.5e-2, `unclipped step moved ${maxDelta(free)}`);
  assert.ok(maxDelta(clipped) < 1e-4, `clipped step moved ${maxDelta(clipped)}`);
});

test('memory stays flat across steps', async () => {
  const rows = packExamples(randomDocs(6, 4), { seqLen: 8, eosId: 2 });
  const live: number[] = [];
  await train(rows, 2, { steps: 8, gradAccum: 2 }, () => live.push(getBackend().liveBytes()));
  // never more than after the first update (the GC may still free earlier tests' undisposed native buffers)
  assert.ok(live.every((b) => b <= live[0]), `live bytes per step: ${live.join(', ')}`);
});

/** A minimal XML well-formedness check: balanced tags, quoted attributes, escaped text, one root. */
function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  const re = /<([^>]*)>|([^<]+)/g;
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    if (m[2] !== undefined) {
      assert.ok(!/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(m[2]), `unescaped & in text: ${m[2]}`);
      assert.ok(stack.length > 0 || m[2].trim() === '', `text outside the root: ${m[2]}`);
      continue;
    }
    const tag = m[1];
    if (tag.startsWith('/')) {
      assert.equal(stack.pop(), tag.slice(1).trim(), `mismatched </${tag.slice(1)}>`);
      continue;
    }
    const t = /^([A-Za-z][\w:-]*)((?:\s+[A-Za-z][\w:-]*="[^"<&]*")*)\s*(\/?)$/.exec(tag);
    assert.ok(t !== null, `malformed tag <${tag}>`);
    if (stack.length === 0) roots++;
    if (t[3] !== '/') stack.push(t[1]);
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  assert.equal(roots, 1, 'exactly one root element');
}

function points(svg: string, cls: string): number {
  const m = new RegExp(`<polyline class="${cls}"[^>]* points="([^"]*)"`).exec(svg);
  return m === null ? 0 : m[1].trim().split(/\s+/).length;
}

test('metrics.jsonl holds one record per step with eval loss on eval steps; loss.svg plots both curves', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-metrics-'));
  try {
    const { model, params } = tinyModel();
    const rows = packExamples(randomDocs(10, 5), { seqLen: 8, eosId: 2 });
    const cfg = { steps: 5, evalEvery: 2, lr: 1e-3, schedule: 'linear' as const, warmupSteps: 1, outDir: dir, progress: 'none' as const };
    const t = new Trainer(model, params, { train: new Loader(rows.slice(2), 2, 0), eval: batchesOf(rows.slice(0, 2), 2) }, cfg);
    const res = await t.run();
    t.dispose();
    const recs = readMetrics(join(dir, 'metrics.jsonl'));
    assert.deepEqual(recs.map((r) => r.step), [1, 2, 3, 4, 5]);
    assert.deepEqual(recs.map((r) => r.eval_loss !== undefined), [false, true, false, true, true]); // every 2, and at the end
    assert.deepEqual(recs.map((r) => r.lr), [0, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3]);
    for (const r of recs) {
      assert.deepEqual(Object.keys(r).filter((k) => k !== 'eval_loss').sort(), ['elapsed_s', 'grad_norm', 'loss', 'lr', 'step', 'tokens_per_s']);
      assert.ok(r.loss > 0 && r.grad_norm > 0 && r.tokens_per_s > 0 && r.elapsed_s > 0);
    }
    assert.ok(recs[4].elapsed_s >= recs[0].elapsed_s);
    assert.equal(res.evalLoss, recs[4].eval_loss);
    const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
    assertWellFormedXml(svg);
    assert.equal(points(svg, 'train'), 5);
    assert.equal(points(svg, 'eval'), 3);
    assert.match(svg, />step</);
    assert.match(svg, />loss</);
    assert.ok(existsSync(join(dir, 'checkpoints', 'step-000005', 'state.json')), 'a final checkpoint');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the loss curve thins long runs and escapes its title', () => {
  const history = Array.from({ length: 5000 }, (_, i) => ({ step: i + 1, loss: 5 / (1 + i / 100), ...(i % 1000 === 999 ? { evalLoss: 4 } : {}) }));
  const svg = lossCurveSvg(history, { maxPoints: 200, title: 'a < b & c' });
  assertWellFormedXml(svg);
  assert.equal(points(svg, 'train'), 200);
  assert.equal(points(svg, 'eval'), 5);
  assertWellFormedXml(lossCurveSvg([]));
});

test('progress: a redrawn bar on a terminal, periodic lines otherwise', () => {
  const info = { step: 5, total: 10, loss: 1.5, lr: 1e-3, tokensPerS: 1000, etaS: 65 };
  const out: string[] = [];
  new Progress('auto', 5, (s) => out.push(s), true).update(info);
  assert.match(out[0], /^\r.* 5\/10 \[=+>\s*\] loss 1\.5000 .*1000 tok\/s \| ETA 1m05s/);
  out.length = 0;
  const lines = new Progress('auto', 5, (s) => out.push(s), false);
  lines.update({ ...info, step: 4 });
  lines.update(info);
  assert.deepEqual(out, ['step 5/10 loss 1.5000 | lr 1.00e-3 | 1000 tok/s | ETA 1m05s\n']);
});

test('pretrain trains every weight of a fresh model and writes a loadable model folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-pretrain-'));
  try {
    const cfg = tinyConfig();
    const r = await pretrain({
      config: cfg, documents: randomDocs(12, 6).map((e) => e.ids), seqLen: 8, batchSize: 4, evalFraction: 0.2,
      train: { steps: 12, lr: 1e-2, outDir: dir, progress: 'none', evalEvery: 6 },
    });
    assert.ok(r.evalRows > 0 && r.trainRows > 0);
    assert.equal(r.result.step, 12);
    const losses = r.result.history.map((h) => h.loss ?? NaN);
    assert.ok(losses[losses.length - 1] < losses[0], `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    const f = readSafetensors(join(dir, 'model.safetensors'));
    const named = new Map<string, Tensor>(r.model.namedTensors());
    assert.deepEqual([...f.tensors.keys()].sort(), [...named.keys()].sort());
    f.source.close?.();
    const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { hidden_size: number };
    assert.equal(hf.hidden_size, cfg.hiddenSize);
    r.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
