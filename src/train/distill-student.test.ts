// The whole-weight student: shape parsing, layer choice, weights taken from the teacher with its adapter merged
// (a student with every layer computes the teacher's logits), the saved folder loading back, and the on-policy
// helpers (where a row's last reply starts, the seeded draw).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, Rng, tidy } from '../engine/index.js';
import { LoraAdapter } from '../lora/index.js';
import { initWeights, tinyConfig } from '../models/init.js';
import { LlamaModel } from '../models/llama.js';
import { loadModel } from '../models/load.js';
import { lastReplyStart, onPolicyDraw } from './distill.js';
import { parseStudentShape, saveStudentFolder, spacedLayers, weightsFromTeacher } from './distill-student.js';

const cfg = tinyConfig({ numLayers: 3, tieWordEmbeddings: true });

function teacherWithAdapter(): { model: LlamaModel; adapter: LoraAdapter } {
  const w = initWeights(cfg, 5, 0.2);
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const adapter = LoraAdapter.create(model, { r: 2, loraAlpha: 4, targetModules: 'all-linear' }, { seed: 1 });
  const rng = new Rng(9);
  for (const [, t] of adapter.namedParameters()) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * 0.3; // B ≠ 0
  adapter.attach(model, { scale: 0.7 });
  return { model, adapter };
}

const logits = (m: LlamaModel, ids: Int32Array): Float32Array => noGrad(() => tidy(() => m.forward(ids, 1, ids.length).toArray()));

test('parseStudentShape: the teacher\'s config with the given fields, head dim following hidden/heads', () => {
  const s = parseStudentShape('layers=1', cfg);
  assert.deepEqual({ ...s, ropeFreqFactors: undefined }, { ...cfg, numLayers: 1, ropeFreqFactors: undefined });
  const n = parseStudentShape('hidden=16, heads=2, kv-heads=1, intermediate=24', cfg);
  assert.deepEqual([n.hiddenSize, n.numHeads, n.numKvHeads, n.headDim, n.intermediateSize, n.vocabSize], [16, 2, 1, 8, 24, cfg.vocabSize]);
  assert.throws(() => parseStudentShape('depth=2', cfg), /"depth=2" is not KEY=N/);
  assert.throws(() => parseStudentShape('layers=0', cfg), /layers must be a positive integer/);
  assert.throws(() => parseStudentShape('heads=3', cfg), /head dim/);
  assert.throws(() => parseStudentShape('kv-heads=3', cfg), /kv-heads 3 must divide heads 4/);
});

test('spacedLayers: first and last included, evenly spread', () => {
  assert.deepEqual(spacedLayers(2, 6), [0, 5]);
  assert.deepEqual(spacedLayers(3, 6), [0, 3, 5]);
  assert.deepEqual(spacedLayers(6, 6), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(spacedLayers(1, 6), [5]);
  assert.throws(() => spacedLayers(7, 6), /cannot take them from a teacher of 6/);
});

test('weightsFromTeacher: every layer taken = the teacher with its adapter (merged = unmerged)', () => {
  const { model, adapter } = teacherWithAdapter();
  const ids = Int32Array.of(1, 5, 9, 33, 2, 17);
  const want = logits(model, ids);
  const w = weightsFromTeacher(model, cfg, [0, 1, 2], [{ adapter, scale: 0.7 }]);
  const student = new LlamaModel(cfg, (n) => w.get(n));
  const got = logits(student, ids);
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(want[i] - got[i]));
  assert.ok(err < 1e-4, `max |Δ logit| ${err}`);
  // without the adapter merged the logits differ: the merge is what made them equal
  const plain = new LlamaModel(cfg, ((m) => (n: string) => m.get(n))(weightsFromTeacher(model, cfg, [0, 1, 2])));
  assert.ok(logits(plain, ids).some((x, i) => Math.abs(x - want[i]) > 1e-3));
  // fewer layers, a narrower MLP: the first units kept
  const small = { ...cfg, numLayers: 2, intermediateSize: 20 };
  const ws = weightsFromTeacher(model, small, [0, 2], [{ adapter, scale: 0.7 }]);
  assert.deepEqual(ws.get('model.layers.1.mlp.down_proj.weight')?.shape, [cfg.hiddenSize, 20]);
  assert.deepEqual(ws.get('model.layers.1.mlp.gate_proj.weight')?.shape, [20, cfg.hiddenSize]);
  assert.equal(logits(new LlamaModel(small, (n) => ws.get(n)), ids).length, ids.length * cfg.vocabSize);
  assert.throws(() => weightsFromTeacher(model, { ...cfg, hiddenSize: 16 }, [0, 1, 2]), /hiddenSize differs/);
  assert.throws(() => weightsFromTeacher(model, small, [0, 3]), /need 2 indices in \[0, 3\)/);
});

test('saveStudentFolder: the folder loads back with the same logits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-student-'));
  try {
    const w = initWeights(cfg, 2, 0.1);
    const m = new LlamaModel(cfg, (n) => w.get(n));
    saveStudentFolder(m, dir, null);
    const back = loadModel(dir).model;
    const ids = Int32Array.of(3, 4, 5);
    assert.deepEqual([...logits(back, ids)], [...logits(m, ids)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lastReplyStart and the on-policy draw', () => {
  const I = -100;
  assert.equal(lastReplyStart(Int32Array.of(I, I, 7, 8, I, I, 9, 10, I)), 6);
  assert.equal(lastReplyStart(Int32Array.of(5, 6)), 0);
  assert.equal(lastReplyStart(Int32Array.of(I, I)), -1);
  const draws = Array.from({ length: 2000 }, (_, n) => onPolicyDraw(3, n, 0.3));
  const share = draws.filter(Boolean).length / draws.length;
  assert.ok(Math.abs(share - 0.3) < 0.04, `share ${share}`);
  assert.deepEqual(draws, Array.from({ length: 2000 }, (_, n) => onPolicyDraw(3, n, 0.3)), 'a function of (seed, n)');
  assert.ok(!Array.from({ length: 100 }, (_, n) => onPolicyDraw(3, n, 0)).some(Boolean));
  assert.ok(Array.from({ length: 100 }, (_, n) => onPolicyDraw(3, n, 1)).every(Boolean));
});
