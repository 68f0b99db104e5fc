// The server's model "auto" (--library DIR): each request goes to the adapter the prompt router picks for its last
// user message (or its prompt), or to the base, and the response's `model` names the choice (auto/NAME, auto/BASE);
// the greedy reply equals the one from the base with the chosen adapter attached. Without a library, "auto" is 404.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoraAdapter, loadAdapter, saveGgufLora, savePeftAdapter, saveSignature, signPrompts, signaturePath } from '../src/lora/index.js';
import { saveGguf } from '../src/models/convert.js';
import { generateTokens } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine } from '../src/serve/engine.js';
import { createServer } from '../src/serve/http.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import { randomize } from './lora-helpers.js';

const SUMS = Array.from({ length: 24 }, (_, i) => `${i % 10} + ${(i * 7) % 10} = ${(i * 3) % 10}`);
const NONSENSE = Array.from({ length: 24 }, (_, i) => `${'qwxzjvk'.slice(i % 5, (i % 5) + 2)}, ${'.,'.repeat(1 + (i % 3))} ${'zzyyxx'.slice(i % 4)}`);

test('serve --library: model "auto" routes per request and reports the adapter it chose', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-route-serve-'));
  const base = join(dir, 'base.gguf');
  const m0 = randomModel(testConfig(), 11, 0.1);
  saveGguf(m0, tinyTokenizer(), base, { dtype: 'f32' });
  m0.dispose();
  const { model, tokenizer } = loadModel(base);
  const lib = join(dir, 'lib');
  mkdirSync(lib);
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }, { seed: 3 }), 5, 0.5);
  const b = randomize(LoraAdapter.create(model, { r: 2, loraAlpha: 4, targetModules: ['up_proj'] }, { seed: 4 }), 6, 0.5);
  savePeftAdapter(a, join(lib, 'sums'));
  saveGgufLora(b, join(lib, 'nonsense.gguf'));
  saveSignature(signPrompts(model, tokenizer!, SUMS), signaturePath(join(lib, 'sums')));
  saveSignature(signPrompts(model, tokenizer!, NONSENSE), signaturePath(join(lib, 'nonsense.gguf')));
  a.dispose();
  b.dispose();
  // the reply expected from the base + sums, in-process
  const prompt = '3 + 4 = 7';
  const sums = loadAdapter(join(lib, 'sums'), model, { onWarning: () => {} });
  sums.attach(model);
  const [want] = generateTokens(model, tokenizer, [tokenizer!.encode(prompt, { parseSpecial: true })], { maxTokens: 6, sampling: { temperature: 0 }, stopTokens: [] });
  sums.dispose();

  const logs: string[] = [];
  const server = createServer({ engine: new ServeEngine(model, tokenizer!, { parallel: 2, contextSize: 128 }), modelId: 'tiny', port: 0, library: lib, log: (l) => void logs.push(l) });
  const url = await server.listen();
  try {
    assert.match(logs.join('\n'), /library .*lib \(nonsense, sums\) as model "auto"; threshold τ = /);
    const complete = async (body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> => {
      const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const r = await complete({ model: 'auto', prompt, max_tokens: 6, temperature: 0, ignore_eos: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.model, 'auto/sums');
    assert.equal((r.json.choices as { text: string }[])[0].text, want.text);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.ok(!models.data.some((m) => m.id.startsWith('auto/')), 'the library\'s adapters are not listed by their hidden names');
  } finally {
    await server.close();
  }
});

test('model "auto" without --library: 404 naming the flag', async () => {
  const m0 = randomModel(testConfig(), 11, 0.1);
  const server = createServer({ engine: new ServeEngine(m0, tinyTokenizer(), { parallel: 1, contextSize: 64 }), modelId: 'tiny', port: 0, log: () => {} });
  const url = await server.listen();
  try {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'auto', prompt: 'hi', max_tokens: 1 }) });
    assert.equal(r.status, 404);
    assert.match(JSON.stringify(await r.json()), /start the server with --library DIR/);
  } finally {
    await server.close();
  }
});
