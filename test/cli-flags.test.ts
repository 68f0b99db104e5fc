// CLI flags checked by what they must produce, not by the exit status: each test compares the command's output with
// the library computing what the flag asks for (and, where it can, with the output without the flag), so a flag the
// CLI parsed and then ignored fails here.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { combineAdapters, loadAdapter } from '../src/lora/index.js';
import { generateTokens } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import { chatPromptIds, type ChatMessage } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/index.js';
import { logitsOf, makeFixture, maxDiff, ok, stackLogits, type Fixture, type Result } from './stack-helpers.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');

let fx: Fixture;
before(() => {
  fx = makeFixture('nomoat-flags-');
});
after(() => rmSync(fx.dir, { recursive: true, force: true }));

/** nomoat with stdin, requiring exit status 0. */
function piped(args: string[], input: string): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `nomoat ${args.join(' ')}\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Greedy generation in-process on the base with adapters attached at scales. */
function libGenerate(adapters: readonly [string, number][], prompt: (tok: NonNullable<ReturnType<typeof loadModel>['tokenizer']>) => number[], n: number, ignoreEos: boolean): { tokens: number[]; text: string } {
  const { model, tokenizer } = loadModel(fx.base);
  for (const [p, s] of adapters) loadAdapter(p, model, { onWarning: () => {} }).attach(model, { scale: s });
  const [g] = generateTokens(model, tokenizer, [prompt(tokenizer!)], { maxTokens: n, sampling: { temperature: 0 }, ...(ignoreEos ? { stopTokens: [] } : {}) });
  model.dispose();
  return { tokens: g.tokens, text: g.text };
}

const genArgs = ['-n', '10', '--temp', '0', '-t', '1', '--ignore-eos', '--json'];
const gen = (...extra: string[]): { tokens: number[]; text: string; prompt_tokens: number[] } =>
  JSON.parse(ok(['generate', ...genArgs, ...extra]).stdout) as { tokens: number[]; text: string; prompt_tokens: number[] };

test('generate --lora gives the tokens of the base with that adapter attached (and not the base\'s)', () => {
  const encode = (t: NonNullable<ReturnType<typeof loadModel>['tokenizer']>): number[] => t.encode('the cat');
  const base = gen('-m', fx.base, '-p', 'the cat');
  const withA = gen('-m', fx.base, '-p', 'the cat', '--lora', fx.a);
  assert.deepEqual(withA.tokens, libGenerate([[fx.a, 1]], encode, 10, true).tokens);
  assert.notDeepEqual(withA.tokens, base.tokens, 'the adapter should change the greedy tokens');
  const both = gen('-m', fx.base, '-p', 'the cat', '--lora', fx.a, '--lora-scaled', fx.b, '-0.5');
  assert.deepEqual(both.tokens, libGenerate([[fx.a, 1], [fx.b, -0.5]], encode, 10, true).tokens);
});

test('generate --file reads the prompt from the file: same tokens as -p with its text, another prompt than without', () => {
  const text = 'a bird sang in the tree';
  const file = join(fx.dir, 'prompt.txt');
  writeFileSync(file, text);
  const fromFile = gen('-m', fx.base, '-f', file);
  const fromP = gen('-m', fx.base, '-p', text);
  assert.deepEqual(fromFile.prompt_tokens, fromP.prompt_tokens);
  assert.deepEqual(fromFile.tokens, fromP.tokens);
  const { tokenizer } = loadModel(fx.base);
  assert.deepEqual(fromFile.prompt_tokens, tokenizer!.encode(text, { parseSpecial: true }));
  assert.notDeepEqual(gen('-m', fx.base, '-p', 'the dog').prompt_tokens, fromFile.prompt_tokens);
});

/** What chat must print for one user turn: the greedy reply to the rendered conversation, then a newline. */
function libChat(adapters: readonly [string, number][], template: string | null, messages: ChatMessage[], n: number): string {
  return `${libGenerate(adapters, (tok) => chatPromptIds(tok, template ?? tok.chatTemplate!, messages), n, false).text}\n`;
}

const chatArgs = ['--temp', '0', '-n', '8', '-t', '1'];

test('chat --recipe applies the recipe\'s adapters at their scales (-m from its base)', () => {
  const out = piped(['chat', '--recipe', fx.recipe, ...chatArgs], 'the cat\n').stdout;
  const user: ChatMessage[] = [{ role: 'user', content: 'the cat' }];
  assert.equal(out, libChat([[fx.a, 1], [fx.b, -0.5]], null, user, 8));
  const plain = piped(['chat', '-m', fx.base, ...chatArgs], 'the cat\n').stdout;
  assert.equal(plain, libChat([], null, user, 8));
  assert.notEqual(out, plain, 'the recipe should change the reply');
});

test('chat --system-prompt opens the conversation with a system message; --chat-template renders with the given template', () => {
  const sys = 'you are a cat.';
  const withSys = piped(['chat', '-m', fx.base, ...chatArgs, '--system-prompt', sys], 'the cat\n').stdout;
  assert.equal(withSys, libChat([], null, [{ role: 'system', content: sys }, { role: 'user', content: 'the cat' }], 8));
  const plain = piped(['chat', '-m', fx.base, ...chatArgs], 'the cat\n').stdout;
  assert.notEqual(withSys, plain, 'the system message should change the reply');

  const template =
    "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '. ' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";
  const file = join(fx.dir, 'template.jinja');
  writeFileSync(file, template);
  const withTpl = piped(['chat', '-m', fx.base, ...chatArgs, '--chat-template', file], 'the cat\n').stdout;
  assert.equal(withTpl, libChat([], template, [{ role: 'user', content: 'the cat' }], 8));
  assert.notEqual(withTpl, plain, 'the template should change the reply');
});

test('chat --perf prints one timing line per reply on stderr; without it, none', () => {
  const timing = /prompt \d+ tokens in [\d.]+ ms \([\d.]+ tok\/s\) \| generated \d+ tokens/g;
  const perf = piped(['chat', '-m', fx.base, ...chatArgs, '--perf'], 'the cat\na dog\n');
  assert.equal(perf.stderr.match(timing)?.length, 2, perf.stderr);
  const quiet = piped(['chat', '-m', fx.base, ...chatArgs], 'the cat\na dog\n');
  assert.equal(quiet.stderr.match(timing), null, quiet.stderr);
  assert.equal(perf.stdout, quiet.stdout);
});

test('merge --outtype q8_0 writes the merged model quantized: the same weights as quantizing the f32 merge', () => {
  const f32 = join(fx.dir, 'm-f32.gguf');
  const q8 = join(fx.dir, 'm-q8.gguf');
  const requant = join(fx.dir, 'm-requant.gguf');
  ok(['merge', fx.recipe, '-o', f32]);
  ok(['merge', fx.recipe, '-o', q8, '--outtype', 'q8_0']);
  ok(['quantize', f32, requant, 'q8_0']);
  const a = loadModel(q8).model;
  const b = loadModel(requant).model;
  const c = loadModel(f32).model;
  const base = loadModel(fx.base).model;
  const bt = new Map(b.namedTensors());
  let q8count = 0;
  for (const [name, t] of a.namedTensors()) {
    const u = bt.get(name)!;
    assert.equal(t.dtype, u.dtype, name);
    if (t.dtype === 'q8_0') q8count++;
    if (t.dtype === 'f32') assert.equal(maxDiff(t.toArray(), u.toArray()), 0, name);
    else assert.ok(Buffer.from(t.bytes).equals(Buffer.from(u.bytes)), name);
  }
  assert.ok(q8count >= 14, `only ${q8count} q8_0 tensors`);
  // quantization error is small next to what merging changed
  const la = logitsOf(a);
  const drift = maxDiff(la, logitsOf(c));
  const moved = maxDiff(logitsOf(c), logitsOf(base));
  assert.ok(drift < moved / 5, `q8_0 merge drifted ${drift} from the f32 merge; merging moved ${moved}`);
  for (const m of [a, b, c, base]) m.dispose();
});

test('convert --to overrides the format the output name implies', () => {
  const ggufNoExt = join(fx.dir, 'model-as-gguf.bin');
  ok(['convert', fx.base, ggufNoExt, '--to', 'gguf']);
  assert.ok(statSync(ggufNoExt).isFile());
  assert.equal(readFileSync(ggufNoExt).subarray(0, 4).toString('latin1'), 'GGUF');
  const hfNamedGguf = join(fx.dir, 'hf-folder.gguf');
  ok(['convert', fx.base, hfNamedGguf, '--to', 'hf']);
  assert.ok(statSync(hfNamedGguf).isDirectory());
  assert.ok(existsSync(join(hfNamedGguf, 'config.json')) && existsSync(join(hfNamedGguf, 'model.safetensors')));
  const base = loadModel(fx.base).model;
  for (const p of [ggufNoExt, hfNamedGguf]) {
    const m = loadModel(p).model;
    assert.ok(maxDiff(logitsOf(m), logitsOf(base)) < 1e-4, p);
    m.dispose();
  }
  base.dispose();
});

/** Logits of the base with the two fixture adapters combined in-process by combineAdapters. */
function combinedLogits(method: Parameters<typeof combineAdapters>[1], opts: Parameters<typeof combineAdapters>[2]): Float32Array {
  const { model } = loadModel(fx.base);
  const a = loadAdapter(fx.a, model, { onWarning: () => {} });
  const b = loadAdapter(fx.b, model, { onWarning: () => {} });
  const c = combineAdapters([a, b], method, opts);
  c.attach(model);
  const out = logitsOf(model);
  for (const x of [c, a, b, model]) x.dispose();
  return out;
}

test('stack --weights, --majority-sign-method, --svd-clamp reach the combination (equal to combineAdapters given them, unequal without)', () => {
  const cases: { name: string; flags: string[]; method: Parameters<typeof combineAdapters>[1]; opts: Parameters<typeof combineAdapters>[2]; without: Parameters<typeof combineAdapters>[2] }[] = [
    { name: 'weights', flags: ['-m', fx.base, '--lora', fx.a, '--lora', fx.b, '--method', 'svd', '--svd-rank', '3', '--weights', '2,0.3'], method: 'svd', opts: { weights: [2, 0.3], svdRank: 3 }, without: { weights: [1, -0.5], svdRank: 3 } },
    {
      name: 'majority', flags: ['--method', 'ties_svd', '--density', '0.5', '--majority-sign-method', 'frequency'], method: 'ties_svd',
      opts: { weights: [1, -0.5], density: 0.5, majoritySignMethod: 'frequency' }, without: { weights: [1, -0.5], density: 0.5, majoritySignMethod: 'total' },
    },
    { name: 'clamp', flags: ['--method', 'svd', '--svd-rank', '3', '--svd-clamp', '0.5'], method: 'svd', opts: { weights: [1, -0.5], svdRank: 3, svdClamp: 0.5 }, without: { weights: [1, -0.5], svdRank: 3 } },
  ];
  for (const c of cases) {
    const out = join(fx.dir, `combo-${c.name}.gguf`);
    ok(['stack', ...(c.flags[0] === '-m' ? [] : [fx.recipe]), ...c.flags, '-o', out]);
    const got = stackLogits(fx.base, [[out, 1]]);
    const want = combinedLogits(c.method, c.opts);
    assert.ok(maxDiff(got, want) < 1e-4, `${c.name}: ${maxDiff(got, want)} from combineAdapters`);
    assert.ok(maxDiff(want, combinedLogits(c.method, c.without)) > 1e-3, `${c.name}: the flag should change the combination`);
  }
});

test('finetune --schedule, --grad-accum, --save-every, --eval-data do what they say', async () => {
  const { skillExamples, skillJsonl, writeTinyHfModel } = await import('./finetune-cli-model.js');
  const model = join(fx.dir, 'ft-model');
  mkdirSync(model);
  writeTinyHfModel(model);
  const data = join(fx.dir, 'ft.jsonl');
  writeFileSync(data, skillJsonl(skillExamples(24)));
  const run = (name: string, ...extra: string[]): { out: string; stderr: string; lr: number[]; loss: number[] } => {
    const out = join(fx.dir, name);
    const r = ok(['finetune', data, '-o', out, '-m', model, '-c', '48', '--progress', 'none', '-t', '1', '--lr', '1e-2', '--steps', '4', ...extra]);
    const m = readMetrics(join(out, 'metrics.jsonl'));
    return { out, stderr: r.stderr, lr: m.map((x) => x.lr), loss: m.map((x) => x.loss) };
  };
  // --schedule: constant keeps lr; linear falls by equal steps; the default (cosine) does neither
  const constant = run('ft-constant', '--batch', '2', '--schedule', 'constant');
  assert.deepEqual(constant.lr, [1e-2, 1e-2, 1e-2, 1e-2]);
  const linear = run('ft-linear', '--batch', '2', '--schedule', 'linear');
  const cosine = run('ft-cosine', '--batch', '2', '--save-every', '2');
  const steps = (lr: number[]): number[] => lr.slice(1).map((x, i) => lr[i] - x);
  const ls = steps(linear.lr);
  assert.ok(ls.every((d) => d > 0 && Math.abs(d - ls[0]) < 1e-9), `linear lr ${String(linear.lr)}`);
  const cs = steps(cosine.lr);
  assert.ok(cs.some((d) => Math.abs(d - cs[0]) > 1e-6), `cosine lr ${String(cosine.lr)}`);
  // --save-every 2: checkpoints after updates 2 and 4; without it none before the end
  const ckpts = (out: string): string[] => (existsSync(join(out, 'checkpoints')) ? readdirSync(join(out, 'checkpoints')).sort() : []);
  assert.deepEqual(ckpts(cosine.out).filter((c) => c.startsWith('step-')), ['step-000002', 'step-000004']);
  assert.ok(!ckpts(constant.out).includes('step-000002'), String(ckpts(constant.out)));
  // --grad-accum 2 of batch 1 trains on what one batch of 2 does; batch 1 alone does not
  const accum = run('ft-accum', '--batch', '1', '--grad-accum', '2');
  const one = run('ft-one', '--batch', '1');
  assert.ok(Math.abs(accum.loss[0] - cosine.loss[0]) < 1e-4, `accum ${accum.loss[0]} vs batch 2 ${cosine.loss[0]}`);
  assert.ok(Math.abs(one.loss[0] - cosine.loss[0]) > 1e-4 || Math.abs(one.loss[1] - cosine.loss[1]) > 1e-4, 'batch 1 should differ from batch 2');
  // --eval-data: the held-out set is that file, not a split of DATA
  const evalFile = join(fx.dir, 'ft-eval.jsonl');
  writeFileSync(evalFile, skillJsonl(skillExamples(5)));
  const ev = run('ft-eval', '--batch', '2', '--eval-data', evalFile, '--schedule', 'constant');
  assert.match(ev.stderr, / 24 training and 5 eval conversations/);
  assert.match(constant.stderr, / 23 training and 1 eval conversations/);
  assert.notEqual(ev.stderr.match(/eval loss ([\d.]+)/)?.[1], constant.stderr.match(/eval loss ([\d.]+)/)?.[1], 'another eval set, another eval loss');
});

test('pretrain --tokenizer trains with the given tokenizer.json (copied, its vocabulary sizes the model) instead of training one', async () => {
  const { writeTinyHfModel } = await import('./finetune-cli-model.js');
  const src = join(fx.dir, 'pre-tok-src');
  mkdirSync(src);
  writeTinyHfModel(src);
  const corpus = join(fx.dir, 'stories.txt');
  writeFileSync(corpus, Array.from({ length: 30 }, (_, i) => `Tom had ${i} red balls. He gave one to Sue.`).join('\n\n'));
  const common = ['--hidden', '32', '--layers', '1', '--heads', '2', '--kv-heads', '1', '--steps', '2', '-c', '32', '-b', '2', '--max-positions', '64', '--progress', 'none', '-t', '1'];
  const given = join(fx.dir, 'pre-given');
  const r = ok(['pretrain', corpus, '-o', given, '--tokenizer', join(src, 'tokenizer.json'), ...common]);
  assert.doesNotMatch(r.stderr, /trained a \d+-token BPE tokenizer/);
  assert.ok(readFileSync(join(given, 'tokenizer.json')).equals(readFileSync(join(src, 'tokenizer.json'))), 'tokenizer.json should be the given one');
  const want = loadModel(src).tokenizer!.vocabSize;
  const got = loadModel(given);
  assert.equal(got.tokenizer?.vocabSize, want);
  assert.equal(got.model.config.vocabSize, want);
  got.model.dispose();
  const trained = join(fx.dir, 'pre-trained');
  const t = ok(['pretrain', corpus, '-o', trained, '--vocab-size', '300', ...common]);
  assert.match(t.stderr, /trained a \d+-token BPE tokenizer/);
  const other = loadModel(trained);
  assert.notEqual(other.tokenizer?.vocabSize, want, 'the fixture tokenizer should not look like a trained one');
  other.model.dispose();
});

test('llama2.c input through the CLI: --tokenizer names tokenizer.bin for generate and convert; convert keeps the weights', async () => {
  const { loadLlama2c } = await import('../src/models/load.js');
  const { tinyTokenizer } = await import('./cli-model.js');
  const [dim, hidden, L, H, KV, V, seq] = [64, 128, 2, 4, 2, 320, 64];
  const hd = dim / H;
  const counts = [V * dim, L * dim, L * dim * dim, L * KV * hd * dim, L * KV * hd * dim, L * dim * dim, L * dim, L * hidden * dim, L * dim * hidden, L * hidden * dim, dim, seq * hd / 2, seq * hd / 2];
  const n = counts.reduce((a, b) => a + b, 0);
  const w = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    w[i] = ((s / 2 ** 32) - 0.5) * 0.4;
  }
  const normAt = [counts[0], counts[0] + counts.slice(1, 6).reduce((a, b) => a + b, 0)];
  w.fill(1, normAt[0], normAt[0] + L * dim);
  w.fill(1, normAt[1], normAt[1] + L * dim);
  const header = Buffer.from(Int32Array.from([dim, hidden, L, H, KV, V, seq]).buffer);
  const ckDir = join(fx.dir, 'l2c');
  mkdirSync(ckDir);
  const ck = join(ckDir, 'model.bin');
  writeFileSync(ck, Buffer.concat([header, Buffer.from(w.buffer)]));
  const tok = tinyTokenizer();
  const parts: Buffer[] = [Buffer.from(Int32Array.from([16]).buffer)];
  for (let i = 0; i < V; i++) {
    const piece = Buffer.from((tok.idToToken(i) ?? '').replace(/\u2581/g, ' '), 'utf8');
    parts.push(Buffer.from(Float32Array.from([i >= 259 ? -i : 0]).buffer), Buffer.from(Int32Array.from([piece.length]).buffer), piece);
  }
  const tokFile = join(fx.dir, 'elsewhere-tok.bin'); // not beside the checkpoint: only --tokenizer finds it
  writeFileSync(tokFile, Buffer.concat(parts));

  const args = ['generate', '-m', ck, '-p', 'the cat', ...genArgs];
  const without = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(without.status, 0, 'without --tokenizer there is no tokenizer beside the checkpoint');
  assert.match(without.stderr, /tokenizer/i);
  const out = JSON.parse(ok([...args, '--tokenizer', tokFile]).stdout) as { tokens: number[]; prompt_tokens: number[] };
  const lib = loadLlama2c(ck, tokFile);
  assert.deepEqual(out.prompt_tokens, lib.tokenizer!.encode('the cat', { parseSpecial: true }));
  const [g] = generateTokens(lib.model, lib.tokenizer, [out.prompt_tokens], { maxTokens: 10, sampling: { temperature: 0 }, stopTokens: [] });
  assert.deepEqual(out.tokens, g.tokens);

  const gguf = join(fx.dir, 'l2c.gguf');
  ok(['convert', ck, gguf, '--tokenizer', tokFile, '--outtype', 'f32']);
  const conv = loadModel(gguf);
  assert.equal(conv.tokenizer?.vocabSize, V);
  assert.equal(conv.tokenizer?.idToToken(300), tok.idToToken(300));
  const emb = new Map(conv.model.namedTensors()).get('model.embed_tokens.weight')!.toArray();
  assert.equal(maxDiff(emb, w.subarray(0, V * dim)), 0);
  assert.ok(maxDiff(logitsOf(conv.model), logitsOf(lib.model)) < 1e-4, 'the converted model computes what the checkpoint does');
  conv.model.dispose();
  lib.model.dispose();
});
