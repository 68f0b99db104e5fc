// LoRA adapters through the public API: PEFT initialization, forward, stacking and runtime scales, gradients,
// base fingerprints, merge/unmerge on f32, f16 and quantized bases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, crossEntropy, linear, noGrad, Rng, scale, tidy, Tensor } from '../src/engine/index.js';
import {
  baseFingerprint,
  BaseMismatchError,
  checkBase,
  kaimingUniformA,
  LoraAdapter,
  mergeAdapter,
  type LoraConfig,
  mergedAdapters,
  unmergeAdapter,
  unmergeAll,
} from '../src/lora/index.js';
import { assertClose, floatLogits, IDS, logits, makeModel, maxDiff, randomize } from './lora-helpers.js';

test('PEFT init: A uniform within ±1/√in (kaiming_uniform_, a=√5), B zero, params named as PEFT, base frozen', () => {
  const model = makeModel();
  const a = LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 3 });
  assert.equal(a.modules.size, 2 * 7);
  const q = a.modules.get('model.layers.0.self_attn.q_proj')!;
  assert.equal(q.A.name, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  assert.equal(q.B.name, 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight');
  assert.deepEqual(q.A.shape, [4, 32]);
  assert.deepEqual(q.B.shape, [32, 4]);
  const down = a.modules.get('model.layers.1.mlp.down_proj')!;
  assert.deepEqual(down.A.shape, [4, 64]);
  for (const m of [q, down]) {
    const bound = 1 / Math.sqrt(m.inFeatures);
    const vals = m.A.toArray();
    assert.ok(vals.every((v) => Math.abs(v) <= bound), 'A within bound');
    assert.ok(Math.max(...vals.map(Math.abs)) > 0.8 * bound, 'A spans the bound');
    assert.ok(m.B.toArray().every((v) => v === 0));
  }
  assert.ok(a.parameters().every((t) => t.requiresGrad));
  assert.ok(model.namedTensors().every(([, t]) => !t.requiresGrad));
  // seeded: same seed same A, another seed another A
  assert.deepEqual(LoraAdapter.create(model, { r: 4, targetModules: ['q_proj'] }, { seed: 3 }).modules.get(q.name)!.A.toArray(), kaimingUniformA(4, 32, new Rng(3)));
  assert.notDeepEqual(LoraAdapter.create(model, { r: 4, targetModules: ['q_proj'] }, { seed: 4 }).modules.get(q.name)!.A.toArray(), q.A.toArray());
  // a fresh adapter changes nothing
  const before = logits(model);
  a.attach(model);
  assert.equal(maxDiff(logits(model), before), 0);
  a.dispose();
});

test('config validation names the field; layers restricts the targets', () => {
  const model = makeModel();
  assert.throws(() => LoraAdapter.create(model, { r: 0 }), /LoRA config: r must be a positive integer/);
  assert.throws(() => LoraAdapter.create(model, { loraDropout: 1 }), /loraDropout/);
  const typo: unknown = ['qproj'];
  assert.throws(() => LoraAdapter.create(model, { targetModules: typo as LoraConfig['targetModules'] }), /unknown module "qproj"/);
  assert.throws(() => LoraAdapter.create(model, { layers: [2] }), /layers has 2/);
  const a = LoraAdapter.create(model, { targetModules: ['q_proj', 'v_proj'], layers: [1] });
  assert.deepEqual([...a.modules.keys()], ['model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
});

test('forward = scale·x·Aᵀ·Bᵀ with scale alpha/r (alpha/√r with rsLoRA) times the runtime scale', () => {
  const model = makeModel();
  for (const useRslora of [false, true]) {
    const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 6, useRslora, targetModules: ['v_proj'] }, { seed: 1 }), 2);
    a.scale = -0.5;
    const m = a.modules.get('model.layers.0.self_attn.v_proj')!;
    const s = (useRslora ? 6 / 2 : 6 / 4) * -0.5;
    noGrad(() =>
      tidy(() => {
        const x = Tensor.from(Array.from({ length: 3 * 32 }, (_, i) => Math.sin(i)), [3, 32]);
        const want = scale(linear(linear(x, m.A), m.B), s).toArray();
        assertClose(m.forward(x).toArray(), want, 1e-6, `rslora=${useRslora}`);
      }),
    );
  }
});

test('adapters stack unmerged; scales and the active set change without touching the base', () => {
  const model = makeModel();
  const base = logits(model);
  const a = randomize(LoraAdapter.create(model, { r: 4, targetModules: 'all-linear' }, { seed: 1, name: 'a' }), 10);
  const b = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj', 'o_proj'] }, { seed: 2, name: 'b' }), 11);
  a.attach(model);
  const withA = logits(model);
  assert.ok(maxDiff(withA, base) > 1e-3);
  b.attach(model, { scale: 0.7 });
  const withAB = logits(model);
  assert.ok(maxDiff(withAB, withA) > 1e-3);
  assert.equal(model.linear(0, 'q_proj').deltas.length, 2);
  assert.throws(() => a.attach(model), /already attached/);
  b.scale = 0;
  assertClose(logits(model), withA, 1e-6, 'b at scale 0');
  a.detach();
  b.scale = 0.7;
  const onlyB = logits(model);
  b.detach();
  assert.equal(maxDiff(logits(model), base), 0, 'detaching everything restores the base exactly');
  assert.ok(model.namedTensors().every(([, t]) => t.dtype === 'f32'));
  // order of attachment does not matter
  b.attach(model, { scale: 0.7 });
  a.attach(model);
  assertClose(logits(model), withAB, 1e-5, 'b then a');
  a.detach();
  assertClose(logits(model), onlyB, 1e-6, 'only b');
  b.detach();
  // an attach's scale lasts that attachment; a scale set on the adapter persists
  assert.equal(b.scale, 1, 'detach restores the scale b had before attach({ scale: 0.7 })');
  b.attach(model);
  assert.ok(maxDiff(logits(model), onlyB) > 1e-4, 'reattached without a scale: b at 1, not at 0.7');
  b.detach();
  b.scale = -0.5;
  b.attach(model, { scale: 2 });
  assert.equal(b.scale, 2);
  b.detach();
  assert.equal(b.scale, -0.5);
  b.attach(model);
  assert.equal(b.scale, -0.5, 'a scale set directly survives detach and attach');
  b.detach();
});

test('gradients reach A and B but not the frozen base (f32 and q8_0 bases), dropout only while training', () => {
  for (const dtype of ['f32', 'q8_0'] as const) {
    const model = makeModel({ dtype });
    const a = LoraAdapter.create(model, { r: 4, loraDropout: 0.1, targetModules: ['q_proj', 'down_proj'] }, { seed: 5 });
    a.attach(model);
    a.training = true;
    tidy(() => {
      const loss = crossEntropy(model.forward(IDS, 1, IDS.length), Int32Array.from([...IDS.slice(1), 0]));
      backward(loss);
    });
    for (const m of a.modules.values()) {
      assert.ok(m.B.grad !== null && m.B.grad.toArray().some((g) => g !== 0), `${dtype} ${m.name} B grad`);
      assert.ok(m.A.grad !== null, `${dtype} ${m.name} A grad (zero while B is zero)`);
    }
    assert.ok(model.namedTensors().every(([, t]) => t.grad === null));
    // dropout: training forwards differ between calls once B ≠ 0; evaluation forwards are deterministic
    randomize(a, 3);
    const t1 = tidy(() => model.forward(IDS, 1, IDS.length).toArray());
    const t2 = tidy(() => model.forward(IDS, 1, IDS.length).toArray());
    assert.ok(maxDiff(t1, t2) > 0, 'dropout masks differ per call');
    a.training = false;
    assert.equal(maxDiff(logits(model), logits(model)), 0);
    a.dispose();
  }
});

test('fingerprint: same base matches; another base fails naming what differs; re-encoded base matches by norms', () => {
  const m1 = makeModel({ seed: 1 });
  const fp = baseFingerprint(m1);
  assert.equal(fp.weights.coverage, 'sample');
  assert.match(fp.weights.hash, /^[0-9a-f]{64}$/);
  assert.equal(checkBase(makeModel({ seed: 1 }), fp, 'x'), null);
  assert.throws(() => checkBase(makeModel({ seed: 2 }), fp, 'x'), (e: unknown) => e instanceof BaseMismatchError && /base weights: sha256/.test(e.message));
  assert.throws(() => checkBase(makeModel({ over: { hiddenSize: 64, headDim: 16 } }), fp, 'x'), /hiddenSize: adapter 32, model 64/);
  assert.throws(() => checkBase(makeModel({ over: { arch: 'qwen2', attentionBias: true } }), fp, 'x'), /architecture: adapter llama, model qwen2/);
  const note = checkBase(makeModel({ seed: 1, dtype: 'q8_0' }), fp, 'x');
  assert.match(note ?? '', /norm weights match/);
  const full = baseFingerprint(m1, 'all');
  assert.equal(full.weights.coverage, 'all');
  assert.equal(checkBase(m1, full, 'x'), null);
  // what 'sample' covers: a 128 KiB embedding is hashed as 16 chunks of 4 KiB; bytes 4096…8464 fall between chunks
  const big = makeModel({ over: { vocabSize: 1024 } });
  const [s0, a0] = [baseFingerprint(big).weights.hash, baseFingerprint(big, 'all').weights.hash];
  big.embed.data[1100] += 1; // byte 4400
  assert.equal(baseFingerprint(big).weights.hash, s0);
  assert.notEqual(baseFingerprint(big, 'all').weights.hash, a0);
  big.embed.data[10] += 1; // byte 40: sampled
  assert.notEqual(baseFingerprint(big).weights.hash, s0);
  // attach refuses an adapter created on another base
  const a = LoraAdapter.create(m1, { targetModules: ['q_proj'] });
  assert.throws(() => a.attach(makeModel({ seed: 2 })), BaseMismatchError);
  a.attach(makeModel({ seed: 2 }), { checkBase: false });
});

for (const dtype of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
  test(`merge into a ${dtype} base equals the unmerged adapter; unmerge restores the weights`, () => {
    const model = makeModel({ dtype });
    const before = model.namedTensors().map(([n, t]) => [n, t.dtype, t.dtype === 'f32' ? t.toArray() : t.bytes.slice()] as const);
    const fp = baseFingerprint(model);
    const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 4, targetModules: 'all-linear' }, { seed: 1, name: 'a' }), 7, 0.05);
    a.attach(model, { scale: 0.8 });
    // 12 positions with the tape on: over INT8_DOT_MAX_M rows, so q8_0/q4_0 products stay in float (without a tape,
    // or with fewer rows, they quantize the activations to int8 as llama.cpp does, a rounding the f32 merged weights
    // do not share; this test is the algebra)
    const ids = Int32Array.from([...IDS, 11, 4, 8, 6]);
    const unmerged = floatLogits(model, ids);
    mergeAdapter(model, a);
    assert.equal(a.attachedTo, null, 'merging detaches');
    assert.deepEqual(mergedAdapters(model), [a]);
    const q = model.linear(0, 'q_proj').weight;
    assert.equal(q.dtype, dtype === 'f16' ? 'f16' : 'f32', 'f16 stays f16; quantized becomes f32 without requantize');
    const tol = dtype === 'f16' ? 2e-2 : 1e-4;
    assertClose(floatLogits(model, ids), unmerged, tol, `${dtype} merged vs unmerged`);
    assert.deepEqual(baseFingerprint(model), fp, 'a merged model keeps its base fingerprint');
    unmergeAdapter(model, a);
    const after = model.namedTensors();
    before.forEach(([n, dt, v], i) => {
      const t = after[i][1];
      assert.equal(t.dtype, dt, n);
      if (dt === 'f32') assertClose(t.toArray(), v as Float32Array, 1e-6, n);
      else assert.deepEqual(t.bytes, v, `${n} restored exactly`);
    });
  });
}

test('merge: requantize keeps q8_0; stacks unmerge in reverse; non-finite results are refused before any change', () => {
  const model = makeModel({ dtype: 'q8_0' });
  const a = randomize(LoraAdapter.create(model, { r: 4, targetModules: ['q_proj', 'up_proj'] }, { seed: 1, name: 'a' }), 1, 0.05);
  const b = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj'] }, { seed: 2, name: 'b' }), 2, 0.05);
  const base = logits(model);
  a.attach(model);
  b.attach(model, { scale: -1.5 });
  const both = logits(model);
  mergeAdapter(model, a, { requantize: true });
  assert.equal(model.linear(0, 'q_proj').weight.dtype, 'q8_0');
  mergeAdapter(model, b, { requantize: true });
  // re-quantizing adds q8_0 rounding: closer to the unmerged adapters than the base is, not equal
  assert.ok(maxDiff(logits(model), both) < 0.5 * maxDiff(base, both), 'requantized merge ≈ unmerged');
  assert.throws(() => unmergeAdapter(model, a), /merged before b: unmerge in reverse order/);
  assert.throws(() => mergeAdapter(model, a), /already merged/);
  assert.deepEqual(unmergeAll(model), [b, a]);
  assert.equal(maxDiff(logits(model), base), 0, 'quantized originals restored exactly');
  // f32 base: a huge B overflows; the merge is refused and nothing changes
  const m32 = makeModel();
  const w = m32.linear(1, 'up_proj').weight.toArray();
  const big = LoraAdapter.create(m32, { r: 2, targetModules: ['q_proj', 'up_proj'] });
  for (const m of big.modules.values()) m.B.data.fill(m.name.includes('up_proj') ? 1e38 : 1);
  assert.throws(() => mergeAdapter(m32, big, { scale: 1e10 }), /non-finite weights; nothing was changed/);
  assert.deepEqual(m32.linear(1, 'up_proj').weight.toArray(), w);
  assert.deepEqual(mergedAdapters(m32), []);
  // f16 overflow (finite in f32, not in f16) is refused too
  const m16 = makeModel({ dtype: 'f16' });
  const over = LoraAdapter.create(m16, { r: 2, targetModules: ['v_proj'] });
  for (const m of over.modules.values()) m.B.data.fill(1e6);
  assert.throws(() => mergeAdapter(m16, over), /overflow f16/);
});
