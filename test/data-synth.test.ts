// `nomoat data synth` for real, on the bundled model: best-of-n keeps the best sample by a verifier (checked against
// every sample regenerated alone from its recorded seed), the same through `nomoat serve` run in-process as an
// OpenAI-compatible endpoint, the NLL and judge verifiers, Self-Instruct end to end (the tiny model writes no usable
// task: the run must say so and leave no file; a scripted OpenAI-compatible server stands in for a model that can,
// to follow its tasks through parser, rules, similarity filter and best-of-n), the output read back by the data
// tools, and bad flags.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRecords } from '../src/data/stream.js';
import { EndpointChat, LocalChat } from '../src/eval/judge-chat.js';
import { readJudgePrompts } from '../src/eval/judge-data.js';
import { bestOfN, LocalSource } from '../src/eval/synth/best-of-n.js';
import { jsVerifier, judgeVerifier, nllVerifier, type SynthItem } from '../src/eval/synth/verify.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine } from '../src/serve/engine.js';
import { createServer, type NomoatServer } from '../src/serve/http.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const KEY = 'synth-key-7';
const JUDGE_PROMPTS = sharedPath('eval', 'mt_bench-judge_prompts.jsonl');

let dir = '';
let server: NomoatServer;
let url = '';
let prompts = '';
let lengthJs = '';

interface Out {
  instruction: string;
  input: string;
  output: string;
  provenance: { model: string; adapters: { path: string; scale: number }[]; endpoint?: string; temperature: number; seed: number; sample: number; n: number; score: number | null; verifier: string | null; source: string };
}

const readOut = (p: string): Out[] => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Out);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-synth-'));
  prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, [
    JSON.stringify({ question: 'What is 2 plus 3?', answer: '#### 5' }),
    JSON.stringify({ prompt: 'Name a color.' }),
    JSON.stringify({ instruction: 'Add the numbers.', input: '4 and 4', output: '8' }),
  ].join('\n') + '\n');
  lengthJs = join(dir, 'length.mjs');
  writeFileSync(lengthJs, 'export default (record, reply) => reply.length;\n');
  const { model, tokenizer } = loadModel(BUNDLED);
  const engine = new ServeEngine(model, tokenizer!, { parallel: 2, contextSize: 512 });
  server = createServer({ engine, modelId: 'tiny', port: 0, apiKey: KEY, log: () => {} });
  url = `${await server.listen()}/v1`;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs nomoat without blocking this process's event loop (the server under test lives in it). */
function nomoat(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENAI_API_KEY: '', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill(), 120_000);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

test('best-of-n keeps the best by the verifier: each kept sample is the top of its n, regenerated alone from its seed', async () => {
  const out = join(dir, 'best.jsonl');
  const r = await nomoat(['data', 'synth', '-m', BUNDLED, '--prompts', prompts, '--n', '4', '--keep', '2', '--verify-js', lengthJs, '--temp', '1', '--seed', '100', '--max-tokens', '16', '-o', out, '-t', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /kept 6 answers to 3 prompts \(best 2 of 4 by js:/);
  const recs = readOut(out);
  assert.equal(recs.length, 6);
  const { model, tokenizer } = loadModel(BUNDLED);
  const chat = new LocalChat('tiny', model, tokenizer!, tokenizer!.chatTemplate!);
  const source = new LocalSource({ model: BUNDLED, adapters: [], temperature: 1 }, model, tokenizer!, (m) => chat.promptIds(m), { temperature: 1, topP: 1 }, 512);
  for (let j = 0; j < 3; j++) {
    const mine = recs.filter((x) => x.provenance.source === `${prompts}:${j + 1}`);
    assert.equal(mine.length, 2);
    const messages = [{ role: 'user' as const, content: mine[0].instruction + (mine[0].input !== '' ? `\n\n${mine[0].input}` : '') }];
    // all four samples, each alone with its own seed: the kept two are the longest (ties: the earlier)
    const all = await Promise.all([0, 1, 2, 3].map(async (i) => (await source.sample(messages, 1, 100 + 4 * j + i, 16))[0].text.trim()));
    const order = [0, 1, 2, 3].sort((a, b) => all[b].length - all[a].length || a - b);
    assert.deepEqual(mine.map((x) => x.provenance.sample), order.slice(0, 2));
    for (const x of mine) {
      const p = x.provenance;
      assert.equal(x.output, all[p.sample]);
      assert.equal(p.seed, 100 + 4 * j + p.sample);
      assert.equal(p.score, all[p.sample].length);
      assert.deepEqual([p.model, p.adapters, p.temperature, p.n, p.verifier], [BUNDLED, [], 1, 4, `js:${lengthJs}`]);
      assert.equal(p.endpoint, undefined);
    }
  }
  // the Alpaca fields: an instruction record keeps its input; a question becomes the instruction
  assert.equal(recs.find((x) => x.provenance.source.endsWith(':3'))?.input, '4 and 4');
  assert.equal(recs.find((x) => x.provenance.source.endsWith(':1'))?.instruction, 'What is 2 plus 3?');

  // the data tools read it as Alpaca and ignore the extra field: validate passes, the reader keeps it in raw
  const v = await nomoat(['data', 'validate', out]);
  assert.equal(v.status, 0, v.stderr + v.stdout);
  let n = 0;
  for await (const item of readRecords(out, { format: 'auto' })) {
    assert.ok(item.ok);
    assert.equal(item.record.format, 'alpaca');
    assert.ok('provenance' in item.record.raw);
    n++;
  }
  assert.equal(n, 6);
});

test('finetune trains on synth output (the provenance field is ignored)', async () => {
  const out = join(dir, 'ft-data.jsonl');
  const r = await nomoat(['data', 'synth', '-m', BUNDLED, '--prompts', prompts, '--max-tokens', '8', '--seed', '3', '-o', out, '-q']);
  assert.equal(r.status, 0, r.stderr);
  const ad = join(dir, 'ft-adapter');
  const ft = await nomoat(['finetune', out, '-m', BUNDLED, '-o', ad, '--steps', '1', '--batch', '2', '-c', '64', '--progress', 'none', '-t', '1', '--eval-split', '0']);
  assert.equal(ft.status, 0, ft.stderr);
  assert.ok(readdirSync(ad).length > 0);
});

test('through an endpoint (nomoat serve): each sample carries its seed, the key comes from the named variable', async () => {
  const out = join(dir, 'endpoint.jsonl');
  const r = await nomoat(['data', 'synth', '--endpoint', url, '--endpoint-model', 'tiny', '--api-key-env', 'SYNTH_TEST_KEY', '--prompts', prompts, '--n', '3', '--keep', '1',
    '--verify-regex', '[aeiou]', '--temp', '0.9', '--seed', '11', '--max-tokens', '12', '-j', '2', '-o', out], { SYNTH_TEST_KEY: KEY });
  assert.equal(r.status, 0, r.stderr);
  const recs = readOut(out);
  assert.ok(recs.length >= 1 && recs.length <= 3);
  const client = new EndpointChat({ url, model: 'tiny', apiKey: KEY });
  for (const x of recs) {
    const p = x.provenance;
    assert.deepEqual([p.endpoint, p.model, p.n, p.verifier, p.score], [url, 'tiny', 3, 'regex:[aeiou]', 1]);
    const j = Number(p.source.split(':').pop()) - 1;
    assert.equal(p.seed, 11 + 3 * j + p.sample);
    // the endpoint answers the same request with the same seed the same way: the record can be regenerated
    const again = await client.complete([{ role: 'user', content: x.instruction + (x.input !== '' ? `\n\n${x.input}` : '') }], 12, { temperature: 0.9, top_p: 1, seed: p.seed });
    assert.equal(x.output, again.trim());
  }
  // the wrong key stops the run with the URL and status, and leaves no file
  const bad = join(dir, 'bad-key.jsonl');
  const w = await nomoat(['data', 'synth', '--endpoint', url, '--endpoint-model', 'tiny', '--prompts', prompts, '-o', bad, '--retries', '0'], { OPENAI_API_KEY: 'wrong' });
  assert.equal(w.status, 1);
  assert.match(w.stderr, /chat\/completions: HTTP 401/);
  assert.equal(existsSync(bad), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});

test('NLL verifier: the greedy reply scores above a shuffled one; the CLI scores with -m by default', async () => {
  const { model, tokenizer } = loadModel(BUNDLED);
  const chat = new LocalChat('tiny', model, tokenizer!, tokenizer!.chatTemplate!);
  const messages = [{ role: 'user' as const, content: 'Tell me about cats.' }];
  const greedy = (await chat.complete(messages, 12)).trim();
  const words = greedy.split(/\s+/);
  const shuffled = [...words.slice(1), words[0], 'zq'].join(' ');
  const item: SynthItem = { where: 'x:1', messages, record: {} };
  const v = nllVerifier('tiny', model, tokenizer!, null);
  const [g, s, empty] = await v.score(item, [greedy, shuffled, '']);
  assert.ok(g !== null && s !== null && g > s && g < 0, `${g} vs ${s}`);
  assert.equal(empty, null);
  // a model without a chat template: the reply's tokens after the raw prompt, the same order
  const raw = nllVerifier('tiny', model, tokenizer!, (m) => tokenizer!.encode(m.map((x) => x.content).join('\n\n')));
  const [rg, rs] = await raw.score(item, [greedy, shuffled]);
  assert.ok(rg !== null && rs !== null && rg < 0 && rs < 0);

  const out = join(dir, 'nll.jsonl');
  const r = await nomoat(['data', 'synth', '-m', BUNDLED, '--prompts', prompts, '--n', '3', '--verify-nll', '--max-tokens', '8', '-o', out, '-q']);
  assert.equal(r.status, 0, r.stderr);
  for (const x of readOut(out)) {
    assert.equal(x.provenance.verifier, `nll:${BUNDLED}`);
    assert.ok(x.provenance.score === null || x.provenance.score < 0);
  }
});

test('judge verifier: every sample is graded or left without a score (the tiny judge writes no rating)', needsShared(JUDGE_PROMPTS), async () => {
  requireShared(JUDGE_PROMPTS);
  const { model, tokenizer } = loadModel(BUNDLED);
  const judge = new LocalChat('tiny-judge', model, tokenizer!, tokenizer!.chatTemplate!, 512);
  const v = judgeVerifier(judge, readJudgePrompts(JUDGE_PROMPTS), 8);
  const scores = await v.score({ where: 'x:1', messages: [{ role: 'user', content: 'Say hi.' }], record: {} }, ['Hi!', 'Hello there.']);
  assert.equal(scores.length, 2);
  for (const s of scores) assert.ok(s === null || (s >= 1 && s <= 10));
  // no sample scored: best-of-n keeps nothing rather than an unjudged sample
  const source = new LocalSource({ model: 'tiny', adapters: [], temperature: 1 }, model, tokenizer!, (m) => judge.promptIds(m), { temperature: 1 }, 512);
  const res = await bestOfN({ where: 'x:1', messages: [{ role: 'user', content: 'Say hi.' }], record: {} }, source, 5, { n: 2, keep: 1, maxTokens: 6, verifier: { name: 'none', score: (_i, rs) => Promise.resolve(rs.map(() => null)) } });
  assert.deepEqual(res.kept, []);
});

test('best-of-n with --min-score keeps only passing samples; a JS verifier sees the record', async () => {
  const { model, tokenizer } = loadModel(BUNDLED);
  const chat = new LocalChat('tiny', model, tokenizer!, tokenizer!.chatTemplate!);
  const source = new LocalSource({ model: 'tiny', adapters: [], temperature: 1 }, model, tokenizer!, (m) => chat.promptIds(m), { temperature: 1 }, 512);
  const js = join(dir, 'first.mjs');
  writeFileSync(js, 'export default (record, reply) => reply.length >= record.min;\n');
  const v = await jsVerifier(js);
  const item: SynthItem = { where: 'x:1', messages: [{ role: 'user', content: 'Hello' }], record: { min: 6 } };
  const res = await bestOfN(item, source, 9, { n: 5, keep: 5, minScore: 1, maxTokens: 10, verifier: v });
  const samples = await source.sample(item.messages, 5, 9, 10);
  const passing = samples.map((s, i) => ({ t: s.text.trim(), i })).filter((x) => x.t.length >= 6).map((x) => x.i);
  assert.deepEqual(res.kept.map((k) => k.provenance.sample), passing);
  assert.deepEqual(res.scores, samples.map((s) => (s.text.trim().length >= 6 ? 1 : 0)));
});

test('Self-Instruct end to end through the endpoint: a model that writes no usable task is told so, no file left', async () => {
  const seeds = join(dir, 'seeds.jsonl');
  writeFileSync(seeds, [
    JSON.stringify({ instruction: 'Give an antonym of the word.', instances: [{ input: 'hot', output: 'cold' }] }),
    JSON.stringify({ instruction: 'Name the largest planet.', instances: [{ input: '', output: 'Jupiter' }] }),
  ].join('\n') + '\n');
  const out = join(dir, 'tasks.jsonl');
  const rejected = join(dir, 'rejected.jsonl');
  const r = await nomoat(['data', 'synth', '--endpoint', url, '--endpoint-model', 'tiny', '--seed-tasks', seeds, '--num-instructions', '2', '--max-requests', '2',
    '--prompt-instructions', '1', '--per-request', '3', '--gen-max-tokens', '48', '--seed', '4', '-o', out, '--rejected', rejected], { OPENAI_API_KEY: KEY });
  if (r.status === 0) {
    // should the tiny model ever write a task that passes every rule, it must be a well-formed record
    for (const x of readOut(out)) assert.ok(x.instruction.split(/\s+/).length > 3 && x.provenance.source.startsWith('self-instruct:'));
  } else {
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /no task was kept: 2 request\(s\), \d+ task\(s\) parsed/);
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(rejected), false);
  }
});

test('bad flags and inputs are refused naming the flag, file, line or field', async () => {
  const run = (args: string[]): Promise<{ status: number | null; stderr: string }> => nomoat(['data', 'synth', ...args]);
  const m = ['-m', BUNDLED, '-o', join(dir, 'x.jsonl')];
  const cases: [string[], RegExp, number][] = [
    [['-m', BUNDLED, '--prompts', prompts], /missing -o OUT/, 2],
    [[...m, '--prompts', prompts, '--n', '2'], /--n > 1 needs a verifier/, 2],
    [[...m, '--prompts', prompts, '--n', '2', '--keep', '3', '--verify-regex', 'a'], /--keep 3 is more than --n 2/, 2],
    [[...m, '--prompts', prompts, '--n', '2', '--temp', '0', '--verify-regex', 'a'], /--n > 1 needs --temp > 0/, 2],
    [[...m, '--prompts', prompts, '--verify-regex', 'a', '--verify-answer', 'answer'], /give one verifier, got --verify-answer and --verify-regex/, 2],
    [[...m, '--prompts', prompts, '--verify-regex', '(a'], /--verify-regex "\(a": not a valid regular expression/, 2],
    [[...m, '--prompts', prompts, '--verify-js', join(dir, 'nope.mjs')], /--verify-js: .*nope\.mjs not found/, 1],
    [[...m, '--prompts', prompts, '--verify-answer', 'answer'], /prompts\.jsonl:2: answer: missing/, 1],
    [[...m, '--prompts', prompts, '--num-instructions', '5'], /--num-instructions is a Self-Instruct flag/, 2],
    [[...m, '--prompt-field', 'q'], /--prompt-field needs --prompts FILE/, 2],
    [[...m, '--prompts', prompts, '--prompt-field', 'prompt'], /prompts\.jsonl:1: prompt: missing/, 1],
    [[...m, '--prompts', join(dir, 'absent.jsonl')], /cannot read the prompts .*absent\.jsonl/, 1],
    [[...m, '--prompts', prompts, '--endpoint', url], /give either -m MODEL or --endpoint URL/, 2],
    [['--endpoint', url, '--prompts', prompts, '-o', join(dir, 'x.jsonl')], /--endpoint needs --endpoint-model NAME/, 2],
    [['--endpoint', url, '--endpoint-model', 'tiny', '--lora', 'a', '--prompts', prompts, '-o', join(dir, 'x.jsonl')], /--lora \/ --lora-scaled apply to a model run here/, 2],
    [['--endpoint', url, '--endpoint-model', 'tiny', '--verify-nll', '--prompts', prompts, '-o', join(dir, 'x.jsonl')], /--verify-nll with --endpoint needs --score-model/, 2],
    [[...m, '--prompts', prompts, '--min-score', '1'], /--min-score needs a verifier/, 2],
    [[...m, '--prompts', prompts, '--verify-judge'], /--verify-judge needs the judge|judge prompts not found/, 2],
    [[...m, '--seed-tasks', join(dir, 'no-seeds.jsonl')], /seed tasks not found: .*no-seeds\.jsonl/, 1],
    [[...m, '--max-similarity', '1.5'], /--max-similarity must be in \(0, 1\]/, 2],
    [[...m, '--prompts', prompts, '--keep', '0'], /--keep must be ≥ 1/, 2],
    [['-o', join(dir, 'x.jsonl'), '--prompts', prompts], /missing the generator: -m MODEL/, 2],
  ];
  for (const [args, re, status] of cases) {
    const r = await run(args);
    assert.match(r.stderr, re, args.join(' '));
    // the judge-prompts case is a usage error when the shared prompts exist, a missing file otherwise
    if (!re.source.includes('judge prompts')) assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
  }
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": "ok"}\n[1]\n');
  const r = await run([...m, '--prompts', bad]);
  assert.match(r.stderr, /bad\.jsonl:2: \(record\): expected a JSON object/);
  assert.equal(existsSync(join(dir, 'x.jsonl')), false);
  const help = await nomoat(['data', 'synth', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--verify-answer FIELD/);
  assert.match((await nomoat(['data', '--help'])).stdout, /data synth/);
});

/** Two generation replies a capable model might write (Alpaca blocks; a chat reply with markdown labels), and answers
 *  whose length follows the request's seed, from a real HTTP server speaking the chat completions API. */
function scriptedServer(): Promise<{ url: string; requests: { seed: number; temperature: number; generation: boolean }[]; reset: () => void; close: () => Promise<void> }> {
  const replies = [
    '1. Instruction: Summarize the following paragraph in one sentence.\n1. Input:\nThe sun is a star. It is very hot and very old.\n1. Output:\nThe sun is an old, hot star.\n###\n' +
      '2. Instruction: Describe the image below in detail please.\n2. Input:\n<noinput>\n2. Output:\nA cat.\n###\n' +
      '3. Instruction: Give an antonym of the word please.\n3. Input:\nbig\n3. Output:\nsmall\n###\n' +
      '4. Instruction: Hi there\n4. Input:\n<noinput>\n4. Output:\nHello\n###\n',
    'Sure! Here are more:\n\n**Instruction:** Summarize the following paragraph in one sentence now.\n**Input:** Rain fell all day.\n**Output:** It rained.\n\n' +
      '**Instruction:** List three common uses of baking soda at home.\n**Input:** <noinput>\n**Output:** Cleaning, baking and deodorizing.\n',
  ];
  const requests: { seed: number; temperature: number; generation: boolean }[] = [];
  let generations = 0;
  const srv = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const b = JSON.parse(body) as { messages: { content: string }[]; seed: number; temperature: number };
      const generation = b.messages[0].content.includes('Instruction:');
      requests.push({ seed: b.seed, temperature: b.temperature, generation });
      const content = generation ? (replies[generations++] ?? '') : 'x'.repeat((b.seed % 5) + 1);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const addr = srv.address() as { port: number };
    const reset = (): void => {
      requests.length = 0;
      generations = 0;
    };
    resolve({ url: `http://127.0.0.1:${addr.port}/v1`, requests, reset, close: () => new Promise((r) => srv.close(() => r())) });
  }));
}

test('Self-Instruct through an endpoint that writes tasks: parsed, screened (rules, similarity to seeds and kept tasks), provenance, best-of-n answers', async () => {
  const seeds = join(dir, 'seeds2.jsonl');
  writeFileSync(seeds, [
    JSON.stringify({ instruction: 'Give an antonym of the word.', instances: [{ input: 'hot', output: 'cold' }] }),
    JSON.stringify({ instruction: 'Name the largest planet.', instances: [{ input: '', output: 'Jupiter' }] }),
  ].join('\n') + '\n');
  const s = await scriptedServer();
  try {
    const out = join(dir, 'si.jsonl');
    const rejected = join(dir, 'si-rejected.jsonl');
    const r = await nomoat(['data', 'synth', '--endpoint', s.url, '--endpoint-model', 'capable', '--seed-tasks', seeds, '--num-instructions', '2', '--max-requests', '5',
      '--prompt-instructions', '2', '--seed', '40', '--temp', '0.7', '-o', out, '--rejected', rejected]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /kept 2 of 6 parsed tasks from 2 request\(s\)/);
    assert.match(r.stderr, /dropped: similar 2, blacklist:image 1, too_short 1/);
    const recs = readOut(out);
    assert.deepEqual(recs.map((x) => [x.instruction, x.input, x.output]), [
      ['Summarize the following paragraph in one sentence.', 'The sun is a star. It is very hot and very old.', 'The sun is an old, hot star.'],
      ['List three common uses of baking soda at home.', '', 'Cleaning, baking and deodorizing.'],
    ]);
    const p0 = recs[0].provenance as Out['provenance'] & { similarity: number };
    assert.deepEqual([p0.model, p0.endpoint, p0.seed, p0.source, p0.temperature, p0.verifier], ['capable', s.url, 40, 'self-instruct:0.0', 0.7, null]);
    assert.equal(recs[1].provenance.seed, 41);
    assert.equal(recs[1].provenance.source, 'self-instruct:1.1');
    assert.ok(p0.similarity >= 0 && p0.similarity < 0.7);
    const rej = readFileSync(rejected, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rule: string; nearest: string | null; similarity: number });
    assert.deepEqual(rej.map((x) => x.rule), ['blacklist:image', 'similar', 'too_short', 'similar']);
    assert.equal(rej[1].nearest, 'Give an antonym of the word.');
    assert.equal(rej[3].nearest, 'Summarize the following paragraph in one sentence.'); // a kept task, not a seed
    assert.ok(Math.abs(rej[1].similarity - 12 / 13) < 1e-12); // 6 of 7 tokens, all 6 of the seed's
    assert.deepEqual(s.requests.map((q) => [q.seed, q.temperature]), [[40, 0.7], [41, 0.7]]);

    // best-of-n answers to the generated tasks: the longest of 3 (the server's length follows the seed)
    s.reset();
    const js = join(dir, 'len2.mjs');
    writeFileSync(js, 'export default (record, reply) => reply.length;\n');
    const best = join(dir, 'si-best.jsonl');
    const b = await nomoat(['data', 'synth', '--endpoint', s.url, '--endpoint-model', 'capable', '--seed-tasks', seeds, '--num-instructions', '2', '--max-requests', '5',
      '--prompt-instructions', '2', '--seed', '40', '--n', '3', '--verify-js', js, '-o', best]);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stderr, /answered 2 task\(s\), kept 2 answer\(s\)/);
    const got = readOut(best);
    for (const [j, x] of got.entries()) {
      const seedsOf = [0, 1, 2].map((i) => 40 + 5 + j * 3 + i); // after the 5 request seeds
      const lens = seedsOf.map((sd) => (sd % 5) + 1);
      const top = lens.indexOf(Math.max(...lens));
      assert.equal(x.provenance.sample, top);
      assert.equal(x.provenance.seed, seedsOf[top]);
      assert.equal(x.output, 'x'.repeat(lens[top]));
      assert.equal(x.provenance.score, lens[top]);
    }
    assert.equal(s.requests.filter((q) => !q.generation).length, 6);
  } finally {
    await s.close();
  }
});

test('Ctrl-C while answering leaves no output and no temporary file', async () => {
  // an endpoint that takes the request and never answers: the run is stopped while waiting on it
  let arrived!: () => void;
  const got = new Promise<void>((r) => (arrived = r));
  const open: ServerResponse[] = [];
  const srv = createHttpServer((_req, res) => {
    open.push(res);
    arrived();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const sub = join(dir, 'sigint');
  writeFileSync(join(dir, 'one.jsonl'), '{"prompt": "hello there"}\n');
  mkdirSync(sub);
  const out = join(sub, 'out.jsonl');
  const p = spawn(process.execPath, [BIN, 'data', 'synth', '--endpoint', `http://127.0.0.1:${port}/v1`, '--endpoint-model', 'x', '--prompts', join(dir, 'one.jsonl'), '-o', out], { stdio: 'ignore' });
  try {
    await got;
    const status = await new Promise<number | null>((resolve) => {
      p.on('close', (code) => resolve(code));
      p.kill('SIGINT');
    });
    assert.equal(status, 130);
    assert.deepEqual(readdirSync(sub), []);
  } finally {
    for (const res of open) res.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
