// Routing among a library of adapters, through the public API and the CLI: signatures (deterministic, written
// beside PEFT folders and GGUF files), the prompt router on a real (tiny) base, routing over one adapter equal to
// that adapter (prompt router: bit for bit; Arrow: to float rounding), and the refusals (adapters of different
// bases, an unsigned adapter, an empty prompt file, a recipe mixing "route" and "adapters").
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { noGrad, tidy } from '../src/engine/index.js';
import {
  ArrowRouter, LoraAdapter, PromptRouter, loadAdapter, loadLibrary, parseRecipe, parseSignature, promptFeatures, readPromptFile, routePrompt, saveGgufLora, savePeftAdapter,
  saveSignature, signPrompts, signaturePath,
} from '../src/lora/index.js';
import { saveGguf } from '../src/models/convert.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { randomModel, testConfig, tinyTokenizer } from './cli-model.js';
import { skillExamples, skillJsonl, writeTinyHfModel } from './finetune-cli-model.js';
import { randomize } from './lora-helpers.js';
import { maxDiff, nomoat, ok } from './stack-helpers.js';

const SUMS = Array.from({ length: 24 }, (_, i) => `${i % 10} + ${(i * 7) % 10} = ${(i * 3) % 10}`);
const WORDS = ['the cat sat on the mat', 'the dog ran to the log', 'a bird sang in the tree', 'the cat ran to the tree', 'a dog sat on the log', 'the bird sat on the mat',
  'a cat sang in the log', 'the dog sang on the mat', 'a bird ran to the cat', 'the mat sat on the dog', 'a tree ran to the bird', 'the log sang in the cat'];
const GENERAL = Array.from({ length: 40 }, (_, i) => `${'qwxzjvk'.slice(i % 5, (i % 5) + 2)}, ${'.,'.repeat(1 + (i % 3))} ${'zzyyxx'.slice(i % 4)}`);

interface Lib {
  dir: string;
  base: string;
  /** library of two signed adapters: sums (PEFT folder), words (GGUF) */
  lib: string;
  /** library of the sums adapter alone */
  one: string;
  sums: string;
  words: string;
}

function makeLib(): Lib {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-route-'));
  const base = join(dir, 'base.gguf');
  const m0 = randomModel(testConfig(), 11, 0.1);
  saveGguf(m0, tinyTokenizer(), base, { dtype: 'f32' });
  m0.dispose();
  const { model, tokenizer } = loadModel(base);
  const lib = join(dir, 'lib');
  mkdirSync(lib);
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 3 }), 5, 0.3);
  const b = randomize(LoraAdapter.create(model, { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'up_proj'] }, { seed: 4 }), 6, 0.3);
  savePeftAdapter(a, join(lib, 'sums'));
  saveGgufLora(b, join(lib, 'words.gguf'));
  saveSignature(signPrompts(model, tokenizer!, SUMS), signaturePath(join(lib, 'sums')));
  saveSignature(signPrompts(model, tokenizer!, WORDS), signaturePath(join(lib, 'words.gguf')));
  const one = join(dir, 'one');
  mkdirSync(one);
  cpSync(join(lib, 'sums'), join(one, 'sums'), { recursive: true });
  writeFileSync(join(dir, 'general.txt'), GENERAL.join('\n') + '\n');
  for (const x of [a, b, model]) x.dispose();
  return { dir, base, lib, one, sums: join(lib, 'sums'), words: join(lib, 'words.gguf') };
}

const L = makeLib();
const quiet = { onWarning: (): void => {} };
const logitsOf = (model: LlamaModel, ids: number[]): Float32Array => noGrad(() => tidy(() => model.forward(Int32Array.from(ids), 1, ids.length).toArray()));

test('signatures are deterministic: the same base and prompts give the same numbers, in-process and from the CLI', () => {
  const { model, tokenizer } = loadModel(L.base);
  assert.deepEqual(signPrompts(model, tokenizer!, SUMS), signPrompts(model, tokenizer!, SUMS));
  const s = signPrompts(model, tokenizer!, SUMS);
  assert.equal(s.layer, 1); // half of 2 layers
  assert.equal(s.prompts, SUMS.length);
  model.dispose();
  const prompts = join(L.dir, 'sums.jsonl');
  writeFileSync(prompts, SUMS.map((p) => JSON.stringify({ messages: [{ role: 'user', content: p }, { role: 'assistant', content: '1' }] })).join('\n') + '\n');
  const copy = join(L.dir, 'sums-copy');
  cpSync(L.sums, copy, { recursive: true });
  const r1 = ok(['adapter sign', copy, '--prompts', prompts, '-m', L.base, '-t', '1'].flatMap((a) => a.split(' ')));
  assert.match(r1.stdout, /wrote .*nomoat_signature\.json/);
  const first = readFileSync(join(copy, 'nomoat_signature.json'), 'utf8');
  ok(['adapter', 'sign', copy, '--prompts', prompts, '-m', L.base, '-t', '2']);
  assert.equal(readFileSync(join(copy, 'nomoat_signature.json'), 'utf8'), first);
  assert.deepEqual(JSON.parse(first), JSON.parse(JSON.stringify(s)), 'CLI and API agree');
  // a GGUF LoRA gets FILE.signature.json beside it; PEFT files stay as they were
  const gguf = join(L.dir, 'words-copy.gguf');
  cpSync(L.words, gguf);
  ok(['adapter', 'sign', gguf, '--prompts', prompts, '-m', L.base]);
  assert.ok(existsSync(`${gguf}.signature.json`));
});

test('the prompt router sends each kind of prompt to its adapter, and general prompts to the base', () => {
  const { model, tokenizer } = loadModel(L.base);
  const lib = loadLibrary(L.lib, model, { signatures: true, ...quiet });
  const router = new PromptRouter(lib.map((e) => ({ name: e.name, signature: e.signature! })));
  router.calibrate(promptFeatures(model, tokenizer!, GENERAL, router.layer), 0.05);
  const pick = (p: string): string => routePrompt(router, model, tokenizer!, p).chosen.map((c) => c.name).join('+') || 'base';
  assert.equal(pick('3 + 4 = 7'), 'sums');
  assert.equal(pick('the cat sang on the log'), 'words');
  assert.equal(pick('qw, ., zz'), 'base');
  for (const e of lib) e.adapter.dispose();
  model.dispose();
});

test('routing over one adapter equals that adapter: prompt router bit for bit, Arrow to rounding', () => {
  const { model, tokenizer } = loadModel(L.base);
  const ids = tokenizer!.encode('the cat sat');
  const direct = loadAdapter(L.sums, model, quiet);
  direct.attach(model);
  const want = logitsOf(model, ids);
  direct.dispose();
  const base = logitsOf(model, ids);

  const lib = loadLibrary(L.one, model, { signatures: true, ...quiet });
  const router = new PromptRouter(lib.map((e) => ({ name: e.name, signature: e.signature! })));
  const d = routePrompt(router, model, tokenizer!, 'the cat sat');
  assert.deepEqual(d.chosen.map((c) => [c.name, c.weight]), [['sums', 1]]);
  lib[0].adapter.attach(model, { scale: d.chosen[0].weight });
  assert.equal(maxDiff(logitsOf(model, ids), want), 0);
  lib[0].adapter.detach();

  const arrow = new ArrowRouter([lib[0].adapter]);
  arrow.attach(model);
  const got = logitsOf(model, ids);
  assert.ok(maxDiff(got, want) < 1e-4, `Arrow over one adapter differs by ${maxDiff(got, want)}`);
  assert.ok(maxDiff(base, want) > 1e-2, 'the adapter changes the logits (else the test proves nothing)');
  arrow.detach();
  assert.equal(maxDiff(logitsOf(model, ids), base), 0, 'detached: the base again');
  lib[0].adapter.dispose();
  model.dispose();
});

test('generate --library routes (the choice on stderr) and equals --lora with the chosen adapter', () => {
  const args = ['generate', '-m', L.base, '-p', 'the cat sat', '-n', '6', '--temp', '0', '--json', '-t', '1', '--ignore-eos'];
  const direct = JSON.parse(ok([...args, '--lora', L.sums]).stdout) as { tokens: number[] };
  const routed = ok([...args, '--library', L.one, '--route', 'prompt', '--route-threshold', '1e9']);
  assert.match(routed.stderr, /route → sums/);
  assert.deepEqual((JSON.parse(routed.stdout) as { tokens: number[] }).tokens, direct.tokens);
  const arrow = ok([...args, '--library', L.one, '--route', 'arrow']);
  assert.match(arrow.stderr, /Arrow routes each token among 1 adapters/);
  assert.deepEqual((JSON.parse(arrow.stdout) as { tokens: number[] }).tokens, direct.tokens);
  // calibrated on a general prompt file: a general prompt goes to the base
  const base = JSON.parse(ok([...args.slice(0, 4), 'qw, ., zz', ...args.slice(5)]).stdout) as { tokens: number[] };
  const gen = ok([...args.slice(0, 4), 'qw, ., zz', ...args.slice(5), '--library', L.lib, '--route-calibration', join(L.dir, 'general.txt')]);
  assert.match(gen.stderr, /threshold τ = .*: the 0\.02 quantile of the nearest-signature distance of 40 general prompts/);
  assert.match(gen.stderr, /route → base \(nearest: /);
  assert.deepEqual((JSON.parse(gen.stdout) as { tokens: number[] }).tokens, base.tokens);
});

test('a routed recipe: "route" and "library" (relative to the recipe), refused beside "adapters"', () => {
  const recipe = join(L.dir, 'routed.json');
  writeFileSync(recipe, JSON.stringify({ base: 'base.gguf', route: 'arrow', library: 'one', top_k: 1 }));
  const r = ok(['generate', '--recipe', recipe, '-p', 'the cat', '-n', '3', '--temp', '0', '-t', '1']);
  assert.match(r.stderr, /Arrow routes each token among 1 adapters .* top_k 1/);
  assert.throws(() => parseRecipe({ base: 'b', route: 'prompt', library: 'l', adapters: [{ path: 'a' }] }, 'r.json'), /r\.json: adapters cannot be given with "route"/);
  assert.throws(() => parseRecipe({ base: 'b', route: 'auto', library: 'l' }, 'r.json'), /route must be "prompt" or "arrow"/);
  assert.throws(() => parseRecipe({ base: 'b', adapters: [{ path: 'a' }], top_k: 2 }, 'r.json'), /top_k belongs to a routed recipe/);
  assert.throws(() => parseRecipe({ base: 'b', route: 'arrow', library: 'l', route_threshold: 2 }, 'r.json'), /"arrow" takes no threshold/);
});

test('bad input: adapters of different bases, an unsigned adapter, an empty prompt file', () => {
  const { model } = loadModel(L.base);
  // an adapter trained on another base, dropped into a copy of the library
  const mixed = join(L.dir, 'mixed');
  cpSync(L.lib, mixed, { recursive: true });
  const other = join(L.dir, 'other.gguf');
  const m1 = randomModel(testConfig(), 12, 0.1);
  saveGguf(m1, tinyTokenizer(), other, { dtype: 'f32' });
  m1.dispose();
  const { model: om, tokenizer: ot } = loadModel(other);
  const alien = randomize(LoraAdapter.create(om, { r: 2, targetModules: ['q_proj'] }, { seed: 9 }), 9);
  savePeftAdapter(alien, join(mixed, 'alien'));
  saveSignature(signPrompts(om, ot!, SUMS), signaturePath(join(mixed, 'alien')));
  alien.dispose();
  om.dispose();
  assert.throws(() => loadLibrary(mixed, model, { signatures: true, ...quiet }), /library .*mixed: (alien and sums|sums and alien) were signed on different base models \(base weights sha256 .*\); .*move/);
  assert.throws(() => loadLibrary(mixed, model, { signatures: false, ...quiet }), /were trained on different base models/);
  // an unsigned adapter: how to sign it
  const unsigned = join(L.dir, 'unsigned');
  mkdirSync(unsigned);
  cpSync(L.words, join(unsigned, 'words.gguf'));
  assert.throws(() => loadLibrary(unsigned, model, { signatures: true, ...quiet }), /words\.gguf: no signature .*nomoat adapter sign .*words\.gguf --prompts FILE/);
  const r = nomoat(['generate', '-m', L.base, '-p', 'hi', '--library', unsigned, '--route', 'prompt', '-n', '1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no signature/);
  // auto falls back to Arrow, saying why
  assert.match(ok(['generate', '-m', L.base, '-p', 'hi', '--library', unsigned, '-n', '1', '-t', '1']).stderr, /words has no signature, so Arrow routes per token/);
  // empty folders and prompt files
  assert.throws(() => loadLibrary(join(L.dir, 'nothing-here'), model, { signatures: false }), /not a folder/);
  const empty = join(L.dir, 'empty.txt');
  writeFileSync(empty, '\n\n');
  assert.throws(() => readPromptFile(empty), /empty\.txt: no prompts \(the file is empty\)/);
  writeFileSync(join(L.dir, 'noprompt.jsonl'), '{"messages":[{"role":"assistant","content":"x"}]}\n');
  assert.throws(() => readPromptFile(join(L.dir, 'noprompt.jsonl')), /no user prompts in it/);
  const s = nomoat(['adapter', 'sign', L.sums, '--prompts', empty, '-m', L.base]);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /empty\.txt: no prompts/);
  assert.match(nomoat(['generate', '-m', L.base, '-p', 'hi', '--route', 'prompt']).stderr, /--route and its options need --library DIR/);
  model.dispose();
});

test('finetune signs what it writes: the same signature beside the PEFT folder and the GGUF file, ready for --library', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-route-ft-'));
  const model = join(dir, 'model');
  mkdirSync(model);
  writeTinyHfModel(model);
  const data = join(dir, 'data.jsonl');
  writeFileSync(data, skillJsonl(skillExamples(24)));
  const lib = join(dir, 'lib');
  mkdirSync(lib);
  const out = join(lib, 'skill');
  ok(['finetune', data, '-o', out, '--steps', '2', '-m', model, '--batch', '2', '-c', '48', '--progress', 'none', '-t', '1']);
  const folder = readFileSync(join(out, 'nomoat_signature.json'), 'utf8');
  assert.equal(readFileSync(join(out, 'adapter.gguf.signature.json'), 'utf8'), folder);
  const sig = parseSignature(JSON.parse(folder), 'nomoat_signature.json');
  assert.ok(sig.prompts >= 2 && sig.components.length >= 1);
  const { model: m } = loadModel(model);
  const [entry] = loadLibrary(lib, m, { signatures: true, ...quiet });
  assert.equal(entry.name, 'skill');
  entry.adapter.dispose();
  m.dispose();
});
