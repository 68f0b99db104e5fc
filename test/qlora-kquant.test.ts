// QLoRA the way people have their models: a LoRA adapter trained over the frozen weights of a Q4_K_M file that
// llama.cpp's own quantizer wrote (../shared/tools/llamacpp_quantize.py). The model has SmolLM-135M's widths: 576-wide
// rows are not a multiple of 256, so the mix falls back per tensor and the file holds q5_0 (attention, gate, up),
// q8_0 (the tied embedding, an attn_v), q4_K and q6_K (ffn_down, 1536-wide rows): the backward of every one of them
// (matmulQuantT) runs here.
// - `nomoat finetune -m model-Q4_K_M.gguf` lowers the loss; the adapter loads back (PEFT and GGUF alike), applied it
//   lowers the loss of the text it learned on the same quantized base, `nomoat generate --lora` runs it, and the
//   merged model (`nomoat merge`) gives the applied adapter's greedy tokens.
// - Gradients: the same LoRA step over the Q4_K_M base and over its dequantized f32 copy (the file loaded with
//   dtype 'f32') gives the same loss and the same gradients of every A and B, and of the input through one q4_K
//   product on its own (qlinear against linear on the dequantized weight).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backward, crossEntropy, linear, mul, noGrad, Rng, sum, Tensor, tidy } from '../src/engine/index.js';
import { dequantize, quantize } from '../src/engine/quant/index.js';
import { qlinear } from '../src/engine/ops/quant.js';
import { readGguf } from '../src/formats/gguf.js';
import { LoraAdapter, loadGgufLora, loadPeftAdapter } from '../src/lora/index.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
import type { LlamaModel } from '../src/models/llama.js';
import { readMetrics } from '../src/train/index.js';
import { randomModel, testConfig, tinyTokenizer, TRAIN_TEXT } from './cli-model.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'nomoat.js');
const QUANTIZE = join(ROOT, '..', 'shared', 'tools', 'llamacpp_quantize.py');
const Q4_K_M_FTYPE = 15; // llama_ftype (llama.h)
const skip = existsSync(QUANTIZE) || process.env.CI === 'true' ? false : `${QUANTIZE} absent (../shared/tools beside the clone)`;

// SmolLM-135M's widths (C 576, I 1536, 9 heads of 64, 3 kv heads), two layers, the tiny SPM vocab
const CFG = testConfig({ hiddenSize: 576, intermediateSize: 1536, numHeads: 9, numKvHeads: 3, headDim: 64, numLayers: 2, tieWordEmbeddings: true });

let dir = '';
let q4km = '';

function nomoat(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  if (skip !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'nomoat-qlora-'));
  const f16 = join(dir, 'model-f16.gguf');
  q4km = join(dir, 'model-Q4_K_M.gguf');
  const model = randomModel(CFG, 3, 0.05);
  saveGguf(model, tinyTokenizer(), f16, { dtype: 'f16' });
  model.dispose();
  const r = spawnSync('python3', [QUANTIZE, f16, q4km, String(Q4_K_M_FTYPE)], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `llamacpp_quantize.py failed:\n${r.stdout}\n${r.stderr}`);
});
after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('llama.cpp\'s Q4_K_M of a 576-wide model mixes q5_0, q8_0, q4_K and q6_K', { skip }, () => {
  const types = new Set(readGguf(q4km).tensors.filter((t) => t.shape.length === 2).map((t) => t.typeName));
  for (const type of ['q5_0', 'q8_0', 'q4_K', 'q6_K']) assert.ok(types.has(type), `llama.cpp wrote ${[...types].join(', ')}, no ${type}`);
});

/** Token ids of TRAIN_TEXT (BOS first), cut to T + 1 so that ids[t + 1] is the label of ids[t]. */
function textIds(T: number): Int32Array {
  const tok = tinyTokenizer();
  const ids = [tok.bosId ?? 1, ...tok.encode(TRAIN_TEXT.repeat(4), { addBos: false })];
  assert.ok(ids.length > T, 'the text is long enough');
  return Int32Array.from(ids.slice(0, T + 1));
}

/** Mean next-token cross-entropy of `ids` under `model` (no tape). */
function textLoss(model: LlamaModel, ids: Int32Array): number {
  const T = ids.length - 1;
  return noGrad(() => tidy(() => crossEntropy(model.forward(ids.subarray(0, T), 1, T), ids.subarray(1)).item()));
}

test('nomoat finetune over the Q4_K_M file: the loss falls, the adapter loads back, applied and merged it generates', { skip }, () => {
  const data = join(dir, 'data.jsonl');
  // one memorizable reply, many times: an adapter that learns it must lower the loss on it
  const sentences = TRAIN_TEXT.trim().split('. ');
  const rows = Array.from({ length: 32 }, (_, i) => JSON.stringify({
    messages: [{ role: 'user', content: sentences[i % sentences.length] }, { role: 'assistant', content: TRAIN_TEXT.trim() }],
  }));
  writeFileSync(data, rows.join('\n') + '\n');
  const out = join(dir, 'adapter');
  const ft = nomoat(['finetune', data, '-m', q4km, '-o', out, '--steps', '12', '--target-modules', 'all-linear', '-r', '8', '--alpha', '16',
    '--lr', '1e-2', '--schedule', 'constant', '--batch', '2', '-c', '64', '--progress', 'none', '-t', '2', '--eval-split', '0']);
  assert.equal(ft.status, 0, ft.stderr);
  const metrics = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(metrics.length, 12);
  const [first, last] = [metrics.slice(0, 3), metrics.slice(-3)].map((m) => m.reduce((s, r) => s + r.loss, 0) / m.length);
  assert.ok(last < 0.7 * first, `training loss ${first.toFixed(3)} → ${last.toFixed(3)}: it did not fall`);

  // loads back over the same quantized base, PEFT and GGUF alike, and lowers the loss of the learned reply
  const { model } = loadModel(q4km);
  const ids = textIds(48);
  const base = textLoss(model, ids);
  const peft = loadPeftAdapter(out, model);
  const gguf = loadGgufLora(join(out, 'adapter.gguf'), model);
  assert.equal(peft.modules.size, 2 * 7, 'all-linear on 2 layers');
  peft.moduleData().forEach((pm, i) => {
    const gm = gguf.moduleData()[i];
    assert.equal(gm.name, pm.name);
    for (let k = 0; k < pm.B.length; k++) assert.ok(Math.abs(gm.B[k] - pm.B[k]) <= 1e-6 * (1 + Math.abs(pm.B[k])), `${pm.name} B[${k}]`);
  });
  peft.attach(model);
  const adapted = textLoss(model, ids);
  assert.ok(adapted < 0.8 * base, `loss of the learned text: base ${base.toFixed(3)}, with the adapter ${adapted.toFixed(3)}`);
  peft.dispose();
  gguf.dispose();
  model.dispose();

  // applied at generation, and merged into the base: the same greedy tokens
  const prompt = 'the cat sat';
  const greedy = (args: string[]): number[] => {
    const r = nomoat(['generate', ...args, '-p', prompt, '-n', '12', '--temp', '0', '-t', '1', '--json']);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { tokens: number[] }).tokens;
  };
  const applied = greedy(['-m', q4km, '--lora', out]);
  assert.equal(applied.length, 12);
  const merged = join(dir, 'merged.gguf');
  const m = nomoat(['merge', '-m', q4km, '--lora', out, '-o', merged]);
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(greedy(['-m', merged]), applied, 'merged and applied adapters generate the same tokens');
  assert.notDeepEqual(greedy(['-m', q4km]), applied, 'the adapter changes what the base generates');
});

test('a LoRA step over the Q4_K_M base and over its dequantized f32 copy: the same loss and gradients', { skip }, () => {
  const quantized = loadModel(q4km).model;
  const dense = loadModel(q4km, { dtype: 'f32' }).model;
  const types = new Set(quantized.namedTensors().map(([, t]) => t.dtype));
  assert.ok(types.has('q4_k') && types.has('q5_0') && types.has('q6_k') && types.has('q8_0'), `frozen types ${[...types].join(', ')}`);
  assert.ok(dense.namedTensors().every(([, t]) => t.dtype === 'f32'));
  const T = 40; // past the int8 path's decode rows: a training forward keeps float activations on both bases
  const ids = textIds(T);
  const step = (model: LlamaModel): { loss: number; grads: Map<string, Float32Array> } => {
    const adapter = LoraAdapter.create(model, { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: 'all-linear' }, { seed: 5 });
    const rng = new Rng(9);
    for (const [, t] of adapter.namedParameters()) if (/lora_B/.test(t.name)) t.data.forEach((_, i, d) => { d[i] = rng.normal() * 0.05; });
    adapter.attach(model, { checkBase: false });
    adapter.training = true;
    const params = adapter.namedParameters();
    const loss = tidy(() => {
      const l = crossEntropy(model.forward(ids.subarray(0, T), 1, T), ids.subarray(1));
      backward(l);
      return l.item();
    });
    const grads = new Map(params.map(([name, t]) => {
      assert.ok(t.grad !== null, `${name} has a gradient`);
      return [name, Float32Array.from(t.grad.data)];
    }));
    adapter.dispose();
    return { loss, grads };
  };
  const q = step(quantized);
  const f = step(dense);
  assert.ok(Math.abs(q.loss - f.loss) <= 1e-5 * Math.abs(f.loss), `loss ${q.loss} over Q4_K_M vs ${f.loss} over f32`);
  assert.equal(q.grads.size, f.grads.size);
  for (const [name, gf] of f.grads) {
    const gq = q.grads.get(name);
    assert.ok(gq !== undefined, name);
    const scale = gf.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(scale > 0, `${name}: a zero gradient checks nothing`);
    for (let i = 0; i < gf.length; i++) assert.ok(Math.abs(gq[i] - gf[i]) <= 1e-4 * scale, `${name}[${i}]: ${gq[i]} over Q4_K_M vs ${gf[i]} over f32`);
  }
  quantized.dispose();
  dense.dispose();
});

test('the input gradient through one q4_K product equals the dequantized weight\'s', { skip }, () => {
  const [M, N, K] = [37, 70, 512];
  const rng = new Rng(11);
  const wf = Float32Array.from({ length: N * K }, () => rng.normal() * 0.1);
  const wq = Tensor.fromBytes(quantize('q4_k', wf), [N, K], 'q4_k').keep();
  const wd = Tensor.from(dequantize('q4_k', wq.bytes, N * K), [N, K]).keep();
  const x0 = Float32Array.from({ length: M * K }, () => rng.normal());
  const r = Tensor.from(Float32Array.from({ length: M * N }, () => rng.normal()), [M, N]).keep();
  const run = (f: (x: Tensor) => Tensor): { loss: number; dx: Float32Array } => {
    const x = Tensor.from(Float32Array.from(x0), [M, K]);
    x.requiresGrad = true;
    const loss = tidy(() => {
      const l = sum(mul(f(x), r));
      backward(l);
      return l.item();
    });
    assert.ok(x.grad !== null);
    const dx = Float32Array.from(x.grad.data);
    x.dispose();
    return { loss, dx };
  };
  const a = run((x) => qlinear(x, wq));
  const b = run((x) => linear(x, wd));
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * (1 + Math.abs(b.loss)), `loss ${a.loss} vs ${b.loss}`);
  const scale = b.dx.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (let i = 0; i < b.dx.length; i++) assert.ok(Math.abs(a.dx[i] - b.dx[i]) <= 1e-5 * scale, `dx[${i}] ${a.dx[i]} vs ${b.dx[i]}`);
  for (const t of [wq, wd, r]) t.dispose();
});
