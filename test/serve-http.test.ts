// The HTTP server live on an ephemeral port with the bundled model, driven by the official `openai` client and by
// raw fetch: greedy replies through HTTP equal generate's for the same stack (the same token strings and, bit for
// bit, the same logprobs), for the base, an adapter, a per-request stack, llama.cpp's lora ids and recipes (stacked
// and merged); streaming and its SSE framing; n, seeds, stop strings, usage; every bad input gets its status and
// OpenAI error shape; runtime adapter loading stays inside --adapters-dir; a client vanishing mid-stream frees its row.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { noGrad, tidy } from '../src/engine/index.js';
import { applyRecipe, LoraAdapter, loadAdapter, loadRecipe, savePeftAdapter, saveGgufLora } from '../src/lora/index.js';
import { generateTokens, prefill } from '../src/models/generate.js';
import { KVCache } from '../src/models/kvcache.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { GREEDY } from '../src/models/sampling.js';
import { ServeEngine, tokenLogprob, type TokenLogprob } from '../src/serve/engine.js';
import { createServer, type NomoatServer } from '../src/serve/http.js';
import { chatPromptIds } from '../src/tokenizer/chat.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { randomize } from './lora-helpers.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const KEY = 'test-key-0123';
const CTX = 256;

let dir = '';
let model: LlamaModel;
let tok: Tokenizer;
let server: NomoatServer;
let url = '';
let client: OpenAI;
const paths: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-serve-'));
  const loaded = loadModel(BUNDLED);
  model = loaded.model;
  tok = loaded.tokenizer!;
  const adaptersDir = join(dir, 'adapters');
  mkdirSync(adaptersDir);
  // three random adapters on the bundled base (a fresh adapter's B is zero: it would change nothing)
  for (const [i, name] of ['a0', 'a1', 'rt'].entries()) {
    const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: i === 1 ? ['q_proj', 'v_proj'] : 'all-linear' }, { seed: i, name }), 100 + i, 0.2);
    paths[name] = join(adaptersDir, name);
    savePeftAdapter(a, paths[name]);
    if (name === 'a1') saveGgufLora(a, (paths.a1gguf = join(adaptersDir, 'a1.gguf')));
    a.dispose();
  }
  writeFileSync((paths.mix = join(dir, 'mix.json')), JSON.stringify({ base: BUNDLED, adapters: [{ path: paths.a0, scale: 0.5 }, { path: paths.a1gguf, scale: -1 }] }));
  writeFileSync((paths.merged = join(dir, 'merged.json')), JSON.stringify({ base: BUNDLED, adapters: [{ path: paths.a0 }, { path: paths.a1 }], merge: { method: 'linear' } }));
  const engine = new ServeEngine(model, tok, { parallel: 4, contextSize: CTX });
  server = createServer({
    engine, modelId: 'tiny', modelPath: BUNDLED, port: 0, apiKey: KEY, adaptersDir, allowAdapterLoading: true,
    loras: [{ name: 'a0', path: paths.a0 }, { name: 'a1', path: paths.a1gguf }],
    recipes: [{ name: 'mix', path: paths.mix }, { name: 'merged', path: paths.merged }],
    log: () => {},
  });
  url = await server.listen();
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await server.close();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

// ---- helpers ----------------------------------------------------------------------------------------------------------

/** A stack generated alone, as generate runs it: greedy tokens and text, and each step's logprob with top 2. */
function alone(prompt: number[], stack: { adapter: LoraAdapter; scale: number }[], maxTokens: number, ignoreEos = false): { tokens: number[]; text: string; logprobs: TokenLogprob[] } {
  for (const { adapter, scale } of stack) adapter.attach(model, { scale, checkBase: false });
  try {
    const [g] = generateTokens(model, tok, [prompt], { maxTokens, sampling: GREEDY, ...(ignoreEos ? { stopTokens: [] } : {}) });
    const cache = new KVCache(model.config, 1, prompt.length + maxTokens);
    const logprobs: TokenLogprob[] = [];
    let logits = prefill(model, Int32Array.from(prompt), 1, prompt.length, cache);
    for (const id of g.tokens) {
      logprobs.push(tokenLogprob(logits, id, 2));
      if (logprobs.length === g.tokens.length) break;
      logits = noGrad(() => tidy(() => model.forwardLast(Int32Array.of(id), 1, 1, cache).toArray()));
    }
    cache.dispose();
    return { tokens: g.tokens, text: g.text, logprobs };
  } finally {
    for (const { adapter } of [...stack].reverse()) adapter.detach();
  }
}

/** Adapters loaded afresh from their files (the server's own copies stay untouched). */
function fromFiles(...stack: [string, number][]): { adapter: LoraAdapter; scale: number }[] {
  return stack.map(([p, scale]) => ({ adapter: loadAdapter(p, model), scale }));
}

const tokenString = (id: number): string => Buffer.from(tok.tokenBytes(id)).toString('utf8');

async function post(path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), signal,
  });
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function expectError(r: Response, status: number, check: Partial<ErrorBody['error']> = {}): Promise<ErrorBody['error']> {
  const text = await r.text();
  assert.equal(r.status, status, text);
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(typeof body.error.message, 'string');
  assert.ok(!/\n\s+at /.test(body.error.message), `a stack trace reached the client: ${body.error.message}`);
  for (const [k, v] of Object.entries(check)) assert.equal(body.error[k as keyof ErrorBody['error']], v, `${k} in ${text}`);
  return body.error;
}

/** The data lines of an SSE body, checking the framing: `data: ` lines, each event ended by a blank line. */
function sseEvents(raw: string): string[] {
  assert.ok(raw.endsWith('data: [DONE]\n\n'), `the stream must end with data: [DONE]: …${JSON.stringify(raw.slice(-80))}`);
  const events = raw.split('\n\n');
  assert.equal(events.pop(), '', 'every event ends with a blank line');
  for (const e of events) assert.match(e, /^data: [^\n]+$/, `an event is one data line: ${JSON.stringify(e)}`);
  return events.map((e) => e.slice('data: '.length));
}

const CHAT: { role: 'user'; content: string }[] = [{ role: 'user', content: 'tell me a story about a cat.' }];

// ---- the OpenAI API -----------------------------------------------------------------------------------------------

test('GET /v1/models lists the base, adapters and recipes with vLLM\'s parent/root; /lora-adapters gives llama.cpp ids', async () => {
  const list = await client.models.list();
  const data = list.data as unknown as { id: string; object: string; parent: string | null; root: string; owned_by: string; kind: string; max_model_len: number }[];
  assert.deepEqual(data.map((m) => m.id), ['tiny', 'a0', 'a1', 'mix', 'merged']);
  assert.deepEqual(data.map((m) => m.parent), [null, 'tiny', 'tiny', 'tiny', 'tiny']);
  assert.equal(data[0].root, BUNDLED);
  assert.equal(data[1].root, paths.a0);
  assert.ok(data.every((m) => m.object === 'model' && m.owned_by === 'nomoat' && m.max_model_len === CTX));
  const loras = (await (await fetch(`${url}/lora-adapters`, { headers: { Authorization: `Bearer ${KEY}` } })).json()) as { id: number; name: string }[];
  assert.deepEqual(loras.map((l) => [l.id, l.name]), [[0, 'a0'], [1, 'a1']]);
  const one = await client.models.retrieve('a1');
  assert.equal(one.id, 'a1');
  await assert.rejects(client.models.retrieve('nope'), (e: unknown) => e instanceof OpenAI.NotFoundError);
});

test('chat, greedy, all at once: the base, adapters, recipes, per-request stacks and an adapter loaded mid-traffic give generate\'s tokens and logprobs, bit for bit', async () => {
  const prompt = chatPromptIds(tok, tok.chatTemplate!, CHAT);
  const max = 24;
  const cases: { what: string; body: Record<string, unknown>; stack: () => { adapter: LoraAdapter; scale: number }[] }[] = [
    { what: 'base', body: { model: 'tiny' }, stack: () => [] },
    { what: 'adapter a0', body: { model: 'a0' }, stack: () => fromFiles([paths.a0, 1]) },
    { what: 'recipe mix', body: { model: 'mix' }, stack: () => fromFiles([paths.a0, 0.5], [paths.a1gguf, -1]) },
    { what: 'adapters field', body: { model: 'a1', adapters: [{ name: 'a0', scale: -0.5 }] }, stack: () => fromFiles([paths.a1gguf, 1], [paths.a0, -0.5]) },
    { what: 'llama.cpp lora ids', body: { model: 'tiny', lora: [{ id: 1, scale: 0.7 }, { id: 0, scale: 0.3 }] }, stack: () => fromFiles([paths.a1gguf, 0.7], [paths.a0, 0.3]) },
  ];
  // the references first (generate attaches adapters to the shared model), then every request at once: 6 requests
  // on 4 rows, so rows join and leave, while an adapter is loaded, used and unloaded mid-traffic
  const cases2 = [...cases, { what: 'runtime adapter', body: { model: 'rt2' }, stack: () => fromFiles([paths.rt, 1]) }];
  const wants = cases2.map((c) => {
    const stack = c.stack();
    const want = alone(prompt, stack, max);
    for (const { adapter } of stack) adapter.dispose();
    return want;
  });
  const ask = async (body: Record<string, unknown>): Promise<Response> => post('/v1/chat/completions', { ...body, messages: CHAT, max_completion_tokens: max, temperature: 0, logprobs: true, top_logprobs: 2 });
  const runtime = async (): Promise<Response> => {
    assert.equal((await post('/v1/load_lora_adapter', { lora_name: 'rt2', lora_path: 'rt' })).status, 200);
    const r = await ask({ model: 'rt2' });
    assert.equal((await post('/v1/unload_lora_adapter', { lora_name: 'rt2' })).status, 200);
    return r;
  };
  const responses = await Promise.all([...cases.map((c) => ask(c.body)), runtime()]);
  const texts = new Set<string>();
  for (const [i, c] of cases2.entries()) {
    const r = responses[i];
    const want = wants[i];
    assert.equal(r.status, 200, c.what);
    const body = (await r.json()) as { object: string; model: string; choices: { message: { role: string; content: string }; finish_reason: string; logprobs: { content: { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number }[] }[] } }[]; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
    const got = body.choices[0];
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, c.body.model);
    assert.equal(got.message.role, 'assistant');
    assert.equal(got.message.content, want.text, `${c.what}: text`);
    assert.deepEqual(got.logprobs.content.map((t) => t.token), want.tokens.map(tokenString), `${c.what}: token ids`);
    assert.deepEqual(got.logprobs.content.map((t) => t.logprob), want.logprobs.map((l) => l.logprob), `${c.what}: logprobs`);
    assert.deepEqual(got.logprobs.content.map((t) => t.top_logprobs.map((a) => [a.token, a.logprob])), want.logprobs.map((l) => l.top.map((a) => [tokenString(a.id), a.logprob])), `${c.what}: top_logprobs`);
    assert.deepEqual(got.logprobs.content[0].bytes, [...tok.tokenBytes(want.tokens[0])]);
    assert.equal(got.finish_reason, want.tokens.length === max ? 'length' : 'stop');
    assert.deepEqual(body.usage, { prompt_tokens: prompt.length, completion_tokens: want.tokens.length, total_tokens: prompt.length + want.tokens.length });
    texts.add(got.message.content);
  }
  assert.ok(texts.size >= 4, 'the stacks should change the replies (else this shows nothing)');

  // a recipe with "merge": combined once at start; the same as applying the recipe to the model
  const r = await client.chat.completions.create({ model: 'merged', messages: CHAT, max_tokens: max, temperature: 0 });
  const attached = applyRecipe(model, loadRecipe(paths.merged));
  const [g] = generateTokens(model, tok, [prompt], { maxTokens: max, sampling: GREEDY });
  for (const a of attached) a.dispose();
  assert.equal(r.choices[0].message.content, g.text);
});

test('chat streaming through the openai client: role first, the same text and logprobs as without streaming, usage at the end', async () => {
  const whole = await client.chat.completions.create({ model: 'a0', messages: CHAT, max_tokens: 20, temperature: 0, logprobs: true, top_logprobs: 1 });
  const stream = await client.chat.completions.create({ model: 'a0', messages: CHAT, max_tokens: 20, temperature: 0, logprobs: true, top_logprobs: 1, stream: true, stream_options: { include_usage: true } });
  const logprobs: OpenAI.Chat.ChatCompletionTokenLogprob[] = [];
  let text = '';
  const finishes: (string | null)[] = [];
  let usage: OpenAI.CompletionUsage | null | undefined;
  let first = true;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
    first = false;
    if (chunk.choices.length === 0) usage = chunk.usage;
    else {
      assert.equal(chunk.usage, null);
      text += chunk.choices[0].delta.content ?? '';
      logprobs.push(...(chunk.choices[0].logprobs?.content ?? []));
      finishes.push(chunk.choices[0].finish_reason);
    }
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.deepEqual(logprobs, whole.choices[0].logprobs?.content);
  assert.equal(finishes.at(-1), whole.choices[0].finish_reason);
  assert.ok(finishes.slice(0, -1).every((f) => f === null));
  assert.deepEqual(usage, whole.usage);
});

test('completions: a string or token ids, n = 2 with seeds seed + i, stop strings, legacy logprobs', async () => {
  const prompt = tok.encode('Once upon a time', { parseSpecial: true });
  const want = alone(prompt, [], 30);
  const byText = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 30, temperature: 0, logprobs: 2 });
  const byIds = await client.completions.create({ model: 'tiny', prompt, max_tokens: 30, temperature: 0 });
  assert.equal(byText.object, 'text_completion');
  assert.equal(byText.choices[0].text, want.text);
  assert.equal(byIds.choices[0].text, want.text);
  const lp = byText.choices[0].logprobs!;
  assert.deepEqual(lp.tokens, want.tokens.map(tokenString));
  assert.deepEqual(lp.token_logprobs, want.logprobs.map((l) => l.logprob));
  assert.deepEqual(lp.top_logprobs?.[0], Object.fromEntries(want.logprobs[0].top.map((a) => [tokenString(a.id), a.logprob])));
  assert.equal(lp.text_offset?.[1], tokenString(want.tokens[0]).length);
  assert.equal(byText.usage?.prompt_tokens, prompt.length);

  // OpenAI's default max_tokens for completions is 16
  const dflt = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', temperature: 0 });
  assert.equal(dflt.usage?.completion_tokens, Math.min(16, want.tokens.length));

  // n = 2: choice i is sampled with seed + i, as a request of its own with that seed
  const two = await client.completions.create({ model: 'a0', prompt: 'The cat', max_tokens: 12, temperature: 1, seed: 7, n: 2 });
  assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
  const again = await client.completions.create({ model: 'a0', prompt: 'The cat', max_tokens: 12, temperature: 1, seed: 8 });
  assert.equal(two.choices[1].text, again.choices[0].text);
  assert.ok((two.usage?.completion_tokens ?? 0) > 0);
  const batch = await client.completions.create({ model: 'tiny', prompt: ['Once upon a time', 'The cat'], max_tokens: 5, temperature: 0, n: 2 });
  assert.deepEqual(batch.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.equal(batch.choices[1].text, batch.choices[0].text);

  // a stop string from the middle of the greedy reply: the text ends before it
  const cut = want.text.indexOf(' ', 8);
  assert.ok(cut > 0, want.text);
  const stopAt = want.text.slice(cut, cut + 3);
  const stopped = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 30, temperature: 0, stop: [stopAt, '@@@'] });
  assert.equal(stopped.choices[0].text, want.text.slice(0, want.text.indexOf(stopAt)));
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  const stoppedChat = await client.chat.completions.create({ model: 'tiny', messages: CHAT, max_tokens: 30, temperature: 0, stop: stopAt });
  assert.ok(!stoppedChat.choices[0].message.content!.includes(stopAt));
});

test('raw SSE framing: data lines, blank-line separated, chunks of one id, final data: [DONE]; completions stream = non-streamed text', async () => {
  const r = await post('/v1/completions', { model: 'a1', prompt: 'Lily liked', max_tokens: 15, temperature: 0, stream: true, n: 2, stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = sseEvents(await r.text());
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { id: string; object: string; choices: { index: number; text: string; finish_reason: string | null }[]; usage: unknown });
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.ok(chunks.every((c) => c.object === 'text_completion'));
  const text = ['', ''];
  for (const c of chunks) for (const ch of c.choices) text[ch.index] += ch.text;
  const whole = await client.completions.create({ model: 'a1', prompt: 'Lily liked', max_tokens: 15, temperature: 0 });
  assert.deepEqual(text, [whole.choices[0].text, whole.choices[0].text]);
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.ok(typeof last.usage === 'object' && last.usage !== null);
  assert.equal(chunks.filter((c) => c.choices.some((ch) => ch.finish_reason !== null)).length, 2);
});

// ---- bad input ----------------------------------------------------------------------------------------------------------

test('bad input: each gets its status and OpenAI\'s error shape naming the field; the server keeps serving', async () => {
  await expectError(await post('/v1/chat/completions', '{"messages": [{"role": "user", "content": "hi"}'), 400, { type: 'invalid_request_error', code: 'invalid_json' });
  await expectError(await post('/v1/chat/completions', '{"__proto__": {"x": 1}, "messages": []}'), 400, { code: 'invalid_json' });
  await expectError(await post('/v1/chat/completions', ''), 400);
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 3 }] }), 400, { param: 'messages[0].content' });
  await expectError(await post('/v1/chat/completions', { messages: 'hi' }), 400, { param: 'messages' });
  await expectError(await post('/v1/chat/completions', { messages: CHAT, temperature: 'hot' }), 400, { param: 'temperature' });
  await expectError(await post('/v1/completions', { prompt: 'x', stop: 5 }), 400, { param: 'stop' });
  await expectError(await post('/v1/completions', { prompt: 'x', adapters: [{ name: 'a0', scale: 'half' }] }), 400, { param: 'adapters[0].scale' });
  await expectError(await post('/v1/completions', { prompt: 'x', max_tokens: 0 }), 400, { param: 'max_tokens' });
  await expectError(await post('/v1/chat/completions', { messages: CHAT, max_completion_tokens: 0 }), 400, { param: 'max_completion_tokens' });
  await expectError(await post('/v1/chat/completions', { messages: CHAT, top_logprobs: 2 }), 400, { param: 'top_logprobs' });
  await expectError(await post('/v1/completions', { prompt: 'x', presence_penalty: 0.5 }), 400, { param: 'presence_penalty' });
  await expectError(await post('/v1/completions', { prompt: [1, 2, 99999] }), 400, { param: 'prompt[2]' });
  await expectError(await post('/v1/completions', 'prompt=x', { 'Content-Type': 'text/plain' }), 415);
  // unknown fields are ignored, as OpenAI does
  assert.equal((await post('/v1/completions', { prompt: 'x', max_tokens: 2, frobnicate: { a: 1 }, user: 'u' })).status, 200);
  // an unknown model, an unknown adapter or lora id: 404 model_not_found
  await expectError(await post('/v1/chat/completions', { model: 'nope', messages: CHAT }), 404, { code: 'model_not_found', param: 'model' });
  await expectError(await post('/v1/completions', { prompt: 'x', adapters: [{ name: 'zz' }] }), 404, { code: 'model_not_found', param: 'adapters[0].name' });
  await expectError(await post('/v1/completions', { prompt: 'x', lora: [{ id: 9, scale: 1 }] }), 404, { code: 'model_not_found', param: 'lora[0].id' });
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  // a prompt longer than the context, or one that leaves no room for max_tokens
  await expectError(await post('/v1/completions', { prompt: Array<number>(CTX + 5).fill(5) }), 400, { code: 'context_length_exceeded', param: 'prompt' });
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'the cat sat. '.repeat(200) }] }), 400, { code: 'context_length_exceeded', param: 'messages' });
  await expectError(await post('/v1/completions', { prompt: 'x', max_tokens: CTX }), 400, { code: 'context_length_exceeded' });
  // a 10 MB body: 413 (the limit is 1 MiB)
  const big = await post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(10 * 1024 * 1024) }));
  await expectError(big, 413, { code: 'request_too_large' });
  // the API key: missing or wrong → 401 (the openai client raises AuthenticationError)
  await expectError(await post('/v1/completions', { prompt: 'x' }, { Authorization: '' }), 401, { code: 'invalid_api_key' });
  await expectError(await post('/v1/completions', { prompt: 'x' }, { Authorization: 'Bearer wrong-key' }), 401, { code: 'invalid_api_key' });
  await expectError(await fetch(`${url}/v1/models`), 401);
  await assert.rejects(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'nope', maxRetries: 0 }).models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  assert.equal((await fetch(`${url}/health`)).status, 200); // health needs no key
  // still serving
  const ok = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 3, temperature: 0 });
  assert.equal(ok.choices.length, 1);
});

// ---- runtime adapters ---------------------------------------------------------------------------------------------

test('runtime adapters: load inside --adapters-dir only (no ../, no symlink out), base checked; unload while in use frees it after', async () => {
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const stray = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj'] }, { seed: 9 }), 9, 0.05);
  savePeftAdapter(stray, join(outside, 'stray'));
  stray.dispose();
  const adaptersDir = join(dir, 'adapters');
  symlinkSync(join(outside, 'stray'), join(adaptersDir, 'escape'));
  mkdirSync(join(adaptersDir, 'sneaky'));
  writeFileSync(join(adaptersDir, 'sneaky', 'adapter_config.json'), readFileSync(join(outside, 'stray', 'adapter_config.json')));
  symlinkSync(join(outside, 'stray', 'adapter_model.safetensors'), join(adaptersDir, 'sneaky', 'adapter_model.safetensors'));
  // an adapter recorded for another base: same shapes, other weights
  const other = join(adaptersDir, 'other');
  const o = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj'] }, { seed: 10 }), 10, 0.05);
  savePeftAdapter(o, other);
  o.dispose();
  const cfgPath = join(other, 'adapter_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { nomoat: { fingerprint: { weights: { hash: string }; norms: { hash: string } } } };
  cfg.nomoat.fingerprint.weights.hash = '0'.repeat(64);
  cfg.nomoat.fingerprint.norms.hash = '1'.repeat(64);
  writeFileSync(cfgPath, JSON.stringify(cfg));

  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: '../outside/stray' }), 400, { param: 'lora_path' });
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: join(outside, 'stray') }), 400, { param: 'lora_path' });
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: 'escape' }), 400, { param: 'lora_path' });
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: 'sneaky' }), 400, { param: 'lora_path' });
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: 'missing' }), 400, { param: 'lora_path' });
  const mismatch = await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: 'other' }), 400, { code: 'base_mismatch' });
  assert.match(mismatch.message, /different base model: base weights: sha256/);
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'a0', lora_path: 'rt' }), 400, { param: 'lora_name' });
  await expectError(await post('/v1/load_lora_adapter', { lora_name: 'x' }), 400, { param: 'lora_path' });

  const loaded = await post('/v1/load_lora_adapter', { lora_name: 'rt', lora_path: 'rt' });
  assert.equal(loaded.status, 200, await loaded.clone().text());
  assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['tiny', 'a0', 'a1', 'rt', 'mix', 'merged']);
  const prompt = tok.encode('The dog', { parseSpecial: true });
  const stack = fromFiles([paths.rt, 1]);
  const want = alone(prompt, stack, 200, true);
  for (const { adapter } of stack) adapter.dispose();

  // unload while a stream uses it: gone for new requests at once, the stream finishes, then the adapter is freed
  const adapter = server.engine.getAdapter('rt')!;
  let disposed = false;
  const dispose = adapter.dispose.bind(adapter);
  adapter.dispose = () => {
    disposed = true;
    dispose();
  };
  const r = await post('/v1/completions', { model: 'rt', prompt: 'The dog', max_tokens: 200, temperature: 0, stream: true, ignore_eos: true });
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  assert.equal((await post('/v1/unload_lora_adapter', { lora_name: 'rt' })).status, 200);
  await expectError(await post('/v1/completions', { model: 'rt', prompt: 'x' }), 404, { code: 'model_not_found' });
  assert.equal(server.engine.stats().running, 1);
  assert.equal(disposed, false, 'freed while a request used it');
  let raw = new TextDecoder().decode(first.value);
  for (let c = await reader.read(); !c.done; c = await reader.read()) raw += new TextDecoder().decode(c.value);
  const text = sseEvents(raw).slice(0, -1).map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0].text).join('');
  assert.equal(text, want.text);
  assert.equal(disposed, true, 'not freed once no request used it');
  await expectError(await post('/v1/unload_lora_adapter', { lora_name: 'rt' }), 404);
  await expectError(await post('/v1/unload_lora_adapter', { lora_name: 'mix/0' }), 400);
});

test('a client vanishing mid-stream frees its row; the others go on unharmed; the next request succeeds', async () => {
  const prompt = tok.encode('Once upon a time', { parseSpecial: true });
  const stack = fromFiles([paths.a0, 1]);
  const want = alone(prompt, stack, 120, true);
  for (const { adapter } of stack) adapter.dispose();
  const before = server.engine.stats();
  const ac = new AbortController();
  const r = await post('/v1/chat/completions', { model: 'tiny', messages: CHAT, max_tokens: 200, temperature: 0, stream: true, ignore_eos: true }, {}, ac.signal);
  const other = client.completions.create({ model: 'a0', prompt: 'Once upon a time', max_tokens: 120, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  assert.ok(!(await reader.read()).done);
  ac.abort(); // the connection closes
  assert.equal((await other).choices[0].text, want.text);
  const t0 = Date.now();
  while (server.engine.stats().running > 0 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 10));
  const after = server.engine.stats();
  assert.equal(after.running, 0);
  assert.equal(after.failed, before.failed + 1, 'the request was cancelled, not completed');
  assert.ok(after.generatedTokens - before.generatedTokens < 200);
  const ok = await client.chat.completions.create({ model: 'tiny', messages: CHAT, max_tokens: 5, temperature: 0 });
  assert.equal(ok.choices[0].finish_reason, 'length');
});

test('/health and Prometheus /metrics', async () => {
  assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
  const m = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await m.text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  assert.ok(value('nomoat_requests_total') > 10);
  assert.ok(value('nomoat_generation_tokens_total') > 100);
  assert.ok(value('nomoat_time_to_first_token_seconds_count') > 0 && value('nomoat_time_to_first_token_seconds_sum') > 0);
  assert.ok(value('nomoat_inter_token_seconds_count') > 0);
  for (const g of ['nomoat_queue_depth', 'nomoat_running_requests', 'nomoat_batch_rows', 'nomoat_kv_cache_bytes']) assert.ok(Number.isFinite(value(g)), g);
  assert.match(text, /^# TYPE nomoat_time_to_first_token_seconds summary$/m);
  assert.match(text, /^nomoat_http_responses_total\{route="\/v1\/chat\/completions",status="200"\} \d+$/m);
});

// ---- a second server: defaults, web files, CORS, refusals ---------------------------------------------------------------

test('no key on loopback; non-loopback refused without a key; loading off says how to enable; web files; CORS; 429 and 503', async () => {
  assert.throws(() => createServer({ engine: new ServeEngine(model, tok), modelId: 'm', host: '0.0.0.0' }), /--api-key/);
  assert.throws(() => createServer({ engine: new ServeEngine(model, tok), modelId: 'm', allowAdapterLoading: true }), /--adapters-dir/);
  const web = join(dir, 'web');
  mkdirSync(join(web, 'js'), { recursive: true });
  writeFileSync(join(web, 'js', 'app.js'), 'console.log(1);\n');
  writeFileSync(join(dir, 'secret.txt'), 'secret\n');
  symlinkSync(join(dir, 'secret.txt'), join(web, 'link.txt'));
  const engine = new ServeEngine(model, tok, { parallel: 1, maxQueue: 1, contextSize: CTX });
  const s2 = createServer({ engine, modelId: 'tiny', port: 0, webDir: web, cors: 'http://example.org', log: () => {} });
  const u = await s2.listen();
  try {
    // no index.html: the placeholder page
    const home = await fetch(`${u}/`);
    assert.equal(home.status, 200);
    assert.match(await home.text(), /not built/);
    const js = await fetch(`${u}/js/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>page</title>');
    assert.equal(await (await fetch(`${u}/`)).text(), '<!doctype html><title>page</title>');
    for (const p of ['/link.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/js/..%2f..%2fsecret.txt', '/nope.js']) assert.equal((await fetch(u + p)).status, 404, p);
    // loading off: 404 saying how to turn it on
    const off = await expectError(await fetch(`${u}/v1/load_lora_adapter`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ lora_name: 'x', lora_path: 'y' }) }), 404);
    assert.match(off.message, /--allow-adapter-loading/);
    // CORS: the one origin, a preflight answered
    const pre = await fetch(`${u}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://example.org', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://example.org');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.equal((await fetch(`${u}/v1/models`, { headers: { Origin: 'http://evil.example' } })).headers.get('access-control-allow-origin'), null);
    assert.equal((await fetch(`${u}/v1/models`, { headers: { Origin: 'http://example.org' } })).headers.get('access-control-allow-origin'), 'http://example.org');
    assert.equal((await fetch(`${url}/v1/models`, { method: 'OPTIONS', headers: { Origin: 'http://example.org' } })).headers.get('access-control-allow-origin'), null, 'CORS is off on the first server');
    // one row and a queue of one: of four at once, some get 429 queue_full
    const send = (): Promise<Response> => fetch(`${u}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 60, temperature: 0 }) });
    const all = await Promise.all([send(), send(), send(), send()]);
    const statuses = all.map((r) => r.status).sort();
    assert.ok(statuses.includes(200) && statuses.includes(429), statuses.join());
    const busy = all.find((r) => r.status === 429)!;
    assert.equal(busy.headers.get('retry-after'), '1');
    await expectError(busy, 429, { code: 'queue_full' });
    // shutting down: the engine refuses, the API says 503
    await engine.drain();
    await expectError(await send(), 503, { code: 'shutting_down' });
  } finally {
    await s2.close();
  }
});
