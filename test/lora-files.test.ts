// LoRA files through the public API: PEFT folders and GGUF LoRAs round-trip, carry the base fingerprint, and move
// q/k rows between RoPE layouts (an adapter saved from a GGUF-layout base gives the same outputs on the HF-layout
// base); combined adapters and recipes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf, readSafetensors } from '../src/formats/index.js';
import {
  applyRecipe,
  combineAdapters,
  loadAdapter,
  loadGgufLora,
  loadPeftAdapter,
  loadRecipe,
  LoraAdapter,
  parseRecipe,
  permuteLoraB,
  saveGgufLora,
  savePeftAdapter,
} from '../src/lora/index.js';
import { assertClose, logits, makeModel, maxDiff, randomize, tempDir } from './lora-helpers.js';

const noWarn = (m: string): never => assert.fail(`unexpected warning: ${m}`);

test('permuteLoraB: q/k rows only, halves ↔ interleaved are inverse, rows move whole', () => {
  const base = { numHeads: 2, numKvHeads: 1 };
  const B = Float32Array.from({ length: 8 * 2 }, (_, i) => i); // [out 8, r 2], head dim 4
  const inter = permuteLoraB('model.layers.0.self_attn.q_proj', B, 8, 'halves', 'interleaved', base);
  // head 0 rows [0 1 | 2 3] (halves: pairs (0,2), (1,3)) → interleaved order 0 2 1 3
  assert.deepEqual(Array.from(inter.subarray(0, 8)), [0, 1, 4, 5, 2, 3, 6, 7]);
  assert.deepEqual(permuteLoraB('model.layers.0.self_attn.q_proj', inter, 8, 'interleaved', 'halves', base), B);
  assert.equal(permuteLoraB('model.layers.0.self_attn.v_proj', B, 8, 'halves', 'interleaved', base), B);
});

test('PEFT: adapter_config.json fields, tensor names and shapes as PEFT writes them; round trip is exact', () => {
  const model = makeModel();
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, loraDropout: 0.05, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 1 }), 2);
  const dir = join(tempDir(), 'peft');
  savePeftAdapter(a, dir, { baseModelNameOrPath: 'tiny/base' });
  const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.task_type, 'CAUSAL_LM');
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.equal(cfg.lora_dropout, 0.05);
  assert.equal(cfg.bias, 'none');
  assert.equal(cfg.use_rslora, false);
  assert.equal(cfg.fan_in_fan_out, false);
  assert.equal(cfg.inference_mode, true);
  assert.equal(cfg.base_model_name_or_path, 'tiny/base');
  assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
  assert.ok((cfg.nomoat as { fingerprint: unknown }).fingerprint !== null);
  const st = readSafetensors(join(dir, 'adapter_model.safetensors'));
  assert.equal(st.metadata.format, 'pt');
  assert.ok(st.metadata.nomoat.includes('"sha256"'));
  assert.deepEqual(st.tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')!.shape, [4, 64]);
  assert.deepEqual(st.tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')!.shape, [32, 4]);
  assert.equal(st.tensors.size, 2 * 3 * 2);
  st.source.close?.();
  const b = loadPeftAdapter(dir, model, { onWarning: noWarn });
  for (const [name, m] of a.modules) {
    assert.deepEqual(b.modules.get(name)!.A.toArray(), m.A.toArray());
    assert.deepEqual(b.modules.get(name)!.B.toArray(), m.B.toArray());
  }
  assert.deepEqual(b.config, a.config);
  a.attach(model);
  const want = logits(model);
  a.detach();
  b.attach(model);
  assert.equal(maxDiff(logits(model), want), 0);
});

test('PEFT and GGUF files carry q/k in their own layouts: an interleaved-base adapter works on the halves base', () => {
  const inter = makeModel({ ropeMode: 'interleaved' });
  const halves = makeModel({ ropeMode: 'halves' });
  assertClose(logits(inter), logits(halves), 1e-4, 'the two bases are the same model');
  const a = randomize(LoraAdapter.create(inter, { r: 4, targetModules: 'all-linear' }, { seed: 1 }), 3);
  a.attach(inter);
  const want = logits(inter);
  a.detach();
  const dir = tempDir();
  savePeftAdapter(a, join(dir, 'p'));
  saveGgufLora(a, join(dir, 'a.gguf'));
  const warnings: string[] = [];
  const onWarning = (m: string): void => void warnings.push(m);
  for (const path of [join(dir, 'p'), join(dir, 'a.gguf')]) {
    for (const model of [halves, inter]) {
      const b = loadAdapter(path, model, { onWarning });
      b.attach(model);
      assertClose(logits(model), want, 1e-4, `${path} on ${model.config.ropeMode}`);
      b.detach();
    }
  }
  // loading onto the other layout is the same base stored differently: a note, not an error
  assert.ok(warnings.length === 2 && warnings.every((w) => /norm weights match/.test(w)), warnings.join('\n'));
  // a halves-layout adapter cannot be attached directly to the interleaved base (rows would be in the wrong order)
  const h = LoraAdapter.create(halves, { targetModules: ['q_proj'] });
  assert.throws(() => h.attach(inter, { checkBase: false }), /halves RoPE layout, the model uses interleaved/);
});

test('GGUF LoRA: llama.cpp metadata and tensor layout; rsLoRA and mixed scalings folded into alpha and lora_b', () => {
  const model = makeModel();
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 6, useRslora: true, targetModules: ['q_proj', 'up_proj'] }, { seed: 1 }), 4);
  const path = join(tempDir(), 'a.gguf');
  saveGgufLora(a, path, { name: 'test' });
  const g = readGguf(path);
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.equal(g.metadata.get('general.type'), 'adapter');
  assert.equal(g.metadata.get('adapter.type'), 'lora');
  assert.equal(g.metadataTypes.get('adapter.lora.alpha'), 'float32');
  assert.ok(Math.abs((g.metadata.get('adapter.lora.alpha') as number) - 6 * 2) < 1e-5, 'alpha·√r so that llama.cpp alpha/r = alpha/√r');
  const la = g.tensors.find((t) => t.name === 'blk.0.ffn_up.weight.lora_a')!;
  const lb = g.tensors.find((t) => t.name === 'blk.0.ffn_up.weight.lora_b')!;
  assert.deepEqual(la.ne, [32, 4]); // A [r, in]: ne [in, r]
  assert.deepEqual(lb.ne, [4, 64]); // B [out, r]: ne [r, out]; ne[0] is the rank llama.cpp divides by
  assert.equal(g.tensors.length, 8);
  g.source.close?.();
  a.attach(model);
  const want = logits(model);
  a.detach();
  const b = loadGgufLora(path, model, { onWarning: noWarn });
  b.attach(model);
  assertClose(logits(model), want, 1e-5, 'GGUF round trip');
  b.dispose();
  // f16 tensors
  saveGgufLora(a, path, { dtype: 'f16' });
  const c = loadGgufLora(path, model, { onWarning: noWarn });
  c.attach(model);
  assertClose(logits(model), want, 1e-2, 'f16 GGUF');
  c.dispose();
});

test('loading checks the base: wrong base fails naming the difference; no fingerprint warns; bad files name the field', () => {
  const model = makeModel({ seed: 1 });
  const a = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj'] }), 1);
  const dir = tempDir();
  savePeftAdapter(a, join(dir, 'p'));
  saveGgufLora(a, join(dir, 'a.gguf'));
  const other = makeModel({ seed: 2 });
  assert.throws(() => loadPeftAdapter(join(dir, 'p'), other), /different base model: base weights: sha256 \(sample\)/);
  assert.throws(() => loadGgufLora(join(dir, 'a.gguf'), other), /different base model/);
  assert.throws(() => loadPeftAdapter(join(dir, 'p'), makeModel({ over: { numLayers: 3 } })), /numLayers: adapter 2, model 3/);
  loadPeftAdapter(join(dir, 'p'), other, { ignoreFingerprint: true, onWarning: noWarn });
  // strip the fingerprint (a PEFT adapter from elsewhere): loads with a warning
  const cfgPath = join(dir, 'p', 'adapter_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  delete cfg.nomoat;
  writeFileSync(cfgPath, JSON.stringify(cfg));
  savePeftAdapter(new LoraAdapter(a.config, a.base, null, a.moduleData()), join(dir, 'p2'));
  const warnings: string[] = [];
  loadPeftAdapter(join(dir, 'p2'), other, { onWarning: (m) => void warnings.push(m) });
  assert.match(warnings.join(''), /records no base fingerprint/);
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
  assert.throws(() => loadPeftAdapter(join(dir, 'p'), model), /field "use_dora" is true; DoRA/);
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, r: 3 }));
  assert.throws(() => loadPeftAdapter(join(dir, 'p'), model), /has rank 2 but adapter_config.json gives r = 3/);
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, r: 3, rank_pattern: { 'self_attn.q_proj': 2 } }));
  loadPeftAdapter(join(dir, 'p'), model, { onWarning: () => {} });
});

test('combineAdapters: cat equals the two adapters stacked; svd keeps the rank; results save as PEFT and GGUF', () => {
  const model = makeModel();
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }, { seed: 1, name: 'a' }), 1, 0.1);
  const b = randomize(LoraAdapter.create(model, { r: 2, loraAlpha: 2, useRslora: true, targetModules: ['v_proj', 'down_proj'] }, { seed: 2, name: 'b' }), 2, 0.1);
  a.attach(model, { scale: 0.5 });
  b.attach(model, { scale: -1 });
  const stacked = logits(model);
  a.detach();
  b.detach();
  const cat = combineAdapters([a, b], 'cat', { weights: [0.5, -1] });
  assert.equal(cat.modules.get('model.layers.0.self_attn.v_proj')!.r, 6);
  assert.equal(cat.modules.get('model.layers.0.self_attn.q_proj')!.r, 4);
  cat.attach(model);
  assertClose(logits(model), stacked, 1e-5, 'cat');
  cat.detach();
  const dir = tempDir();
  savePeftAdapter(cat, join(dir, 'cat'));
  const cfg = JSON.parse(readFileSync(join(dir, 'cat', 'adapter_config.json'), 'utf8')) as { rank_pattern: Record<string, number> };
  assert.equal(cfg.rank_pattern['model.layers.0.self_attn.v_proj'], 6);
  saveGgufLora(cat, join(dir, 'cat.gguf'));
  for (const p of [join(dir, 'cat'), join(dir, 'cat.gguf')]) {
    const c = loadAdapter(p, model, { onWarning: noWarn });
    c.attach(model);
    assertClose(logits(model), stacked, 1e-5, p);
    c.dispose();
  }
  const svd = combineAdapters([a, b], 'svd', { weights: [0.5, -1], svdRank: 6 });
  svd.attach(model);
  assertClose(logits(model), stacked, 1e-4, 'svd at full rank is exact');
  svd.detach();
  assert.throws(() => combineAdapters([a, b], 'linear'), /same rank/);
  assert.throws(() => combineAdapters([a, LoraAdapter.create(makeModel({ seed: 9 }), {})], 'cat'), /different bases/);
});

test('recipes: validation names the field; stacking and combining apply as described', () => {
  assert.throws(() => parseRecipe({ adapters: [] }, 'r.json'), /r.json: base must be a non-empty path string/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [] }, 'r.json'), /adapters must be a non-empty list/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a', scale: 'x' }] }, 'r.json'), /adapters\[0\].scale must be a finite number/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a', weight: 1 }] }, 'r.json'), /adapters\[0\].weight is not a recipe field/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a' }], merge: { method: 'avg' } }), /merge.method must be one of linear\|cat/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a' }, { path: 'c' }], merge: { method: 'ties' } }), /merge.density is required by method "ties"/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a' }], merge: { method: 'svd', svd_rank: 0 } }), /merge.svd_rank must be a positive integer/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a', scale: 2 }], merge: { method: 'cat', weights: [1] } }), /adapters\[0\].scale cannot be combined with merge.weights/);

  const model = makeModel();
  const dir = tempDir();
  const a = randomize(LoraAdapter.create(model, { r: 4, targetModules: ['q_proj', 'o_proj'] }, { seed: 1 }), 1, 0.1);
  const b = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['o_proj'] }, { seed: 2 }), 2, 0.1);
  savePeftAdapter(a, join(dir, 'a'));
  saveGgufLora(b, join(dir, 'b.gguf'));
  a.attach(model, { scale: 0.5 });
  b.attach(model, { scale: 2 });
  const want = logits(model);
  a.detach();
  b.detach();
  writeFileSync(join(dir, 'stack.json'), JSON.stringify({ base: 'base', adapters: [{ path: 'a', scale: 0.5 }, { path: 'b.gguf', scale: 2 }] }));
  const r = loadRecipe(join(dir, 'stack.json'));
  assert.equal(r.base, join(dir, 'base'));
  const stacked = applyRecipe(model, r, { onWarning: noWarn });
  assert.equal(stacked.length, 2);
  assertClose(logits(model), want, 1e-5, 'stacked recipe');
  for (const x of stacked) x.dispose();
  writeFileSync(join(dir, 'cat.json'), JSON.stringify({ base: 'base', adapters: [{ path: 'a', scale: 0.5 }, { path: 'b.gguf', scale: 2 }], merge: { method: 'cat' } }));
  const combined = applyRecipe(model, loadRecipe(join(dir, 'cat.json')), { onWarning: noWarn });
  assert.equal(combined.length, 1);
  assertClose(logits(model), want, 1e-5, 'cat recipe');
  combined[0].dispose();
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ base: 'base', adapters: [{ path: 'missing' }] }));
  assert.throws(() => applyRecipe(model, loadRecipe(join(dir, 'bad.json'))), /missing: not a PEFT adapter folder or a .gguf LoRA file/);
  assert.equal(model.linear(0, 'q_proj').deltas.length, 0, 'nothing left attached');
});
