// nomoat export: each target's files are what the engine's own loader expects, and the exporter refuses (naming the
// field) what an engine would mis-load.
//
// Checked against the engines' sources:
//   PEFT   tuners/lora/config.py LoraConfig (the fields of adapter_config.json), utils/save_and_load.py
//          (tensor names base_model.model.<module>.lora_A.weight / lora_B.weight, adapter name removed),
//          utils/constants.py SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors", CONFIG_NAME = "adapter_config.json"
//   vLLM   lora/peft_helper.py PEFTHelper (reads r, lora_alpha, target_modules, use_rslora; refuses modules_to_save,
//          DoRA), config/lora.py possible_max_ranks, lora/utils.py parse_fine_tuned_lora_name (base_model.model.… names)
//   Ollama docs/modelfile.md (FROM, ADAPTER, TEMPLATE """…""", PARAMETER stop "…")

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../src/formats/safetensors.js';
import { checkStackFor, checkVllmAdapterConfig, exportFor, ExportRefusal, foldScale, vllmMaxLoraRank } from '../src/handoff/index.js';
import { LoraAdapter, loadPeftAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { randomModel, tinyTokenizer } from './cli-model.js';
import { logits, maxDiff, randomize, tempDir } from './lora-helpers.js';

// PEFT 0.17 LoraConfig.to_dict() keys (what save_pretrained writes), plus our "nomoat" key.
const PEFT_FIELDS = [
  'alpha_pattern', 'auto_mapping', 'base_model_name_or_path', 'bias', 'corda_config', 'eva_config', 'exclude_modules', 'fan_in_fan_out',
  'inference_mode', 'init_lora_weights', 'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha',
  'lora_bias', 'lora_dropout', 'megatron_config', 'megatron_core', 'modules_to_save', 'nomoat', 'peft_type', 'qalora_group_size', 'r',
  'rank_pattern', 'revision', 'target_modules', 'target_parameters', 'task_type', 'trainable_token_indices', 'use_dora', 'use_qalora', 'use_rslora',
];

function setup(seed = 1): { model: ReturnType<typeof randomModel>; adapter: LoraAdapter } {
  const model = randomModel(undefined, seed);
  const adapter = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 2 }), 5, 0.05);
  return { model, adapter };
}

/** Asserts fn throws an ExportRefusal whose field is `field`. */
function refuses(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ExportRefusal && e.field === field && e.message.includes(field), `expected a refusal naming ${field}`);
}

test('vLLM rules: --max-lora-rank is the smallest of possible_max_ranks holding r; what vLLM refuses is refused by field', () => {
  assert.equal(vllmMaxLoraRank(1), 1);
  assert.equal(vllmMaxLoraRank(4), 8);
  assert.equal(vllmMaxLoraRank(300), 320);
  assert.equal(vllmMaxLoraRank(512), 512);
  refuses(() => vllmMaxLoraRank(513), 'r');
  const ok = { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'], bias: 'none', modules_to_save: null, use_dora: false, rank_pattern: {}, alpha_pattern: {} };
  checkVllmAdapterConfig(ok, 'a');
  refuses(() => checkVllmAdapterConfig({ ...ok, r: 1024 }, 'a'), 'r');
  refuses(() => checkVllmAdapterConfig({ ...ok, modules_to_save: ['lm_head'] }, 'a'), 'modules_to_save');
  refuses(() => checkVllmAdapterConfig({ ...ok, use_dora: true }, 'a'), 'use_dora');
  refuses(() => checkVllmAdapterConfig({ ...ok, bias: 'all' }, 'a'), 'bias');
  refuses(() => checkVllmAdapterConfig({ ...ok, rank_pattern: { q_proj: 4 } }, 'a'), 'rank_pattern');
  refuses(() => checkVllmAdapterConfig({ ...ok, alpha_pattern: { q_proj: 4 } }, 'a'), 'alpha_pattern');
  refuses(() => checkVllmAdapterConfig({ ...ok, target_modules: ['q_proj', 'lm_head'] }, 'a'), 'target_modules');
  refuses(() => checkStackFor('vllm', 2), 'adapters');
  refuses(() => checkStackFor('peft', 2), 'adapters');
  refuses(() => checkStackFor('ollama', 2), 'ADAPTER');
  checkStackFor('llama.cpp', 3); // llama.cpp stacks adapters itself
});

test('export --for vllm refuses an adapter with per-module ranks, naming rank_pattern, and writes nothing', () => {
  const { model, adapter } = setup();
  const dir = tempDir();
  try {
    const mods = adapter.moduleData().map((m, i) => (i === 0 ? { ...m, r: 2, A: m.A.slice(0, 2 * m.inFeatures), B: new Float32Array(m.outFeatures * 2) } : m));
    const uneven = new LoraAdapter(adapter.config, adapter.base, adapter.fingerprint, mods, { name: 'uneven' });
    refuses(() => exportFor({ target: 'vllm', out: join(dir, 'v'), model, tokenizer: tinyTokenizer(), adapters: [{ name: 'u', adapter: uneven, scale: 1 }] }), 'rank_pattern');
    assert.ok(!existsSync(join(dir, 'v')), 'a refused export leaves no folder');
    // two adapters are a stack: vLLM serves one per request
    refuses(() => exportFor({ target: 'vllm', out: join(dir, 'v'), model, tokenizer: tinyTokenizer(), adapters: [{ name: 'a', adapter, scale: 1 }, { name: 'b', adapter, scale: 1 }] }), 'adapters');
    refuses(() => exportFor({ target: 'ollama', out: join(dir, 'o'), model, tokenizer: tinyTokenizer(), adapters: [{ name: 'a', adapter, scale: 1 }, { name: 'b', adapter, scale: 1 }] }), 'ADAPTER');
    uneven.dispose();
  } finally {
    adapter.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('export --for vllm: base/ HF folder, adapters/NAME PEFT folder, README with the vllm serve line', () => {
  const { model, adapter } = setup();
  const dir = tempDir();
  try {
    const out = join(dir, 'vllm');
    const r = exportFor({ target: 'vllm', out, model, tokenizer: tinyTokenizer(), adapters: [{ name: 'style', adapter, scale: 1 }] });
    assert.equal(r.command, 'vllm serve ./base --enable-lora --lora-modules style=./adapters/style --max-lora-rank 8');
    for (const f of ['base/config.json', 'base/model.safetensors', 'base/tokenizer.json', 'adapters/style/adapter_config.json', 'adapters/style/adapter_model.safetensors', 'README.md']) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
    }
    assert.ok(readFileSync(join(out, 'README.md'), 'utf8').includes(r.command));
    const cfg = JSON.parse(readFileSync(join(out, 'adapters/style/adapter_config.json'), 'utf8')) as Record<string, unknown>;
    checkVllmAdapterConfig(cfg, 'style'); // what was written passes vLLM's checks
    assert.throws(() => exportFor({ target: 'vllm', out, model, tokenizer: tinyTokenizer(), adapters: [] }), /exists; pass --force/);
  } finally {
    adapter.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('export --for peft: adapter_config.json has exactly PEFT\'s LoraConfig fields, tensors PEFT\'s names, and expected-logits.json is nomoat\'s forward on the written files', () => {
  const { model, adapter } = setup();
  const dir = tempDir();
  try {
    const out = join(dir, 'peft');
    exportFor({ target: 'peft', out, model, tokenizer: tinyTokenizer(), adapters: [{ name: 'half', adapter, scale: 0.5 }], baseName: 'org/tiny' });
    const cfg = JSON.parse(readFileSync(join(out, 'adapters/half/adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfg).sort(), [...PEFT_FIELDS].sort());
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.base_model_name_or_path, 'org/tiny');
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 4, 'the scale 0.5 is folded into lora_alpha (8 × 0.5)');
    assert.equal(cfg.use_rslora, false);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    const st = readSafetensors(join(out, 'adapters/half/adapter_model.safetensors'));
    assert.equal(st.metadata.format, 'pt');
    const names = [...st.tensors.keys()];
    assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'), names.slice(0, 4).join(', '));
    assert.ok(names.every((n) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(n)));
    st.source.close?.();

    // the folded adapter at scale 1 is the original at scale 0.5
    const spec = JSON.parse(readFileSync(join(out, 'expected-logits.json'), 'utf8')) as { prompts: { ids: number[]; logits: Record<string, number[]> }[]; tolerance: number };
    assert.equal(spec.tolerance, 1e-3);
    adapter.attach(model, { scale: 0.5 });
    const p = spec.prompts[0];
    const ours = logits(model, Int32Array.from(p.ids));
    const V = model.config.vocabSize;
    const lastRow = ours.subarray(ours.length - V);
    assert.ok(maxDiff(lastRow, Float32Array.from(p.logits.half)) < 1e-5, 'expected logits = the adapter at its scale');
    adapter.detach();
    const base = logits(model, Int32Array.from(p.ids)).subarray(ours.length - V);
    assert.ok(maxDiff(base, Float32Array.from(p.logits.base)) < 1e-5);
    assert.ok(maxDiff(base, lastRow) > 1e-3, 'the adapter changes the logits (else the comparison would prove nothing)');

    // and transformers' view of the folder loads back in nomoat with the same modules
    const { model: back } = loadModel(join(out, 'base'));
    const loaded = loadPeftAdapter(join(out, 'adapters/half'), back);
    assert.equal(loaded.modules.size, adapter.modules.size);
    loaded.dispose();
    back.dispose();
  } finally {
    adapter.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('foldScale multiplies every alpha (rsLoRA too), leaving the factors', () => {
  const { model, adapter } = setup();
  const f = foldScale(adapter, -0.25, 'neg');
  for (const [name, m] of f.modules) {
    const o = adapter.modules.get(name)!;
    assert.equal(m.alpha, o.alpha * -0.25);
    assert.ok(Math.abs(m.scaling - o.scaling * -0.25) < 1e-12);
  }
  f.dispose();
  adapter.dispose();
  model.dispose();
});

test('export --for ollama: Modelfile with FROM, ADAPTER, a translated TEMPLATE and stops, or none when the template is no known family', () => {
  const { model, adapter } = setup();
  const dir = tempDir();
  try {
    // tinyTokenizer's template (<|role|>text</s>, no newlines) looks like Zephyr but is not: no TEMPLATE is written
    const out = join(dir, 'ollama');
    const r = exportFor({ target: 'ollama', out, model, tokenizer: tinyTokenizer(), adapters: [{ name: 'a', adapter, scale: 1 }], modelName: 'tiny' });
    assert.equal(r.command, 'ollama create tiny -f Modelfile');
    const mf = readFileSync(join(out, 'Modelfile'), 'utf8');
    assert.match(mf, /^FROM \.\/model\.gguf$/m);
    assert.match(mf, /^ADAPTER \.\/adapter\.gguf$/m);
    assert.doesNotMatch(mf, /^TEMPLATE/m);
    assert.match(mf, /^# no TEMPLATE: the chat template is none of ChatML, Llama-3, Llama-2, Zephyr; Ollama uses the GGUF.s own/m);
    assert.match(mf, /^PARAMETER stop "<\/s>"$/m);
    for (const f of ['model.gguf', 'adapter.gguf', 'README.md']) assert.ok(existsSync(join(out, f)), f);
  } finally {
    adapter.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
