// The judge for real: `nomoat serve`'s server in-process on the bundled model as an OpenAI-compatible judge
// (through EndpointChat and through `nomoat eval judge --judge-url`), the bundled model as a local judge and as the
// model under test, and the endpoint client's failures: a 400 (prompt too long) counted per match, a wrong key
// stopping the run with the URL and status, 5xx retried with backoff, a timeout. The tiny model writes no verdicts:
// the tests check that every judgment is accounted for (scored, unparseable or failed) and that the runs complete.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointChat } from '../src/eval/judge-chat.js';
import { readJudgePrompts, readQuestions, type ModelAnswer } from '../src/eval/judge-data.js';
import { judgeSingle, type AnswerSets } from '../src/eval/judge.js';
import { LoraAdapter, savePeftAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine } from '../src/serve/engine.js';
import { createServer, type NomoatServer } from '../src/serve/http.js';
import { randomize } from './lora-helpers.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const PROMPTS = sharedPath('eval', 'mt_bench-judge_prompts.jsonl');
const KEY = 'judge-key-42';
const shared = needsShared(PROMPTS);

let dir = '';
let server: NomoatServer;
let url = '';
const files: Record<string, string> = {};

const answer = (model: string, qid: number, turns: string[]): ModelAnswer => ({ question_id: qid, answer_id: `${model}-${qid}`, model_id: model, choices: [{ index: 0, turns }], tstamp: 0 });
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r) + '\n').join('');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-judge-'));
  writeFileSync((files.questions = join(dir, 'q.jsonl')), jsonl([
    { question_id: 1, category: 'writing', turns: ['Write one line about the sea.', 'Now make it shorter.'] },
    { question_id: 2, category: 'math', turns: ['What is 2+3?'], reference: ['5'] },
  ]));
  writeFileSync((files.x = join(dir, 'x.jsonl')), jsonl([answer('x', 1, ['The sea is wide.', 'Wide sea.']), answer('x', 2, ['5'])]));
  writeFileSync((files.y = join(dir, 'y.jsonl')), jsonl([answer('y', 1, ['Blue.', 'Blue!']), answer('y', 2, ['6'])]));
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
function nomoat(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENAI_API_KEY: '' } });
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

function sets(...files_: string[]): AnswerSets {
  const out: AnswerSets = new Map();
  for (const f of files_) {
    for (const line of readFileSync(f, 'utf8').trim().split('\n')) {
      const a = JSON.parse(line) as ModelAnswer;
      if (!out.has(a.model_id)) out.set(a.model_id, new Map());
      out.get(a.model_id)?.set(String(a.question_id), a);
    }
  }
  return out;
}

test('a nomoat server as the judge: every judgment is scored, unparseable or failed, and counted', shared, async () => {
  requireShared(PROMPTS);
  const prompts = readJudgePrompts(PROMPTS);
  const questions = readQuestions(files.questions);
  const judge = new EndpointChat({ url, model: 'tiny', apiKey: KEY, retries: 0 });
  const { judgments, stats } = await judgeSingle(questions, sets(files.x), { judge, prompts, maxTokens: 12 });
  assert.equal(judgments.length, 3); // question 1: turns 1 and 2; question 2: turn 1
  assert.equal(stats.calls, 3);
  assert.deepEqual(judgments.map((j) => j.judge), [['tiny', 'single-v1'], ['tiny', 'single-math-v1'], ['tiny', 'single-v1-multi-turn']]);
  const scored = judgments.filter((j) => j.score !== -1).length;
  assert.equal(scored + stats.unparseable + stats.errors, 3);
  assert.ok(stats.unparseable > 0, 'the tiny model is not expected to write [[n]]');
  for (const j of judgments) assert.ok(j.judgment.length > 0 && typeof j.tstamp === 'number');
});

test('endpoint failures: a 400 fails one match (counted), a wrong key stops the run with URL and status', shared, async () => {
  requireShared(PROMPTS);
  const prompts = readJudgePrompts(PROMPTS);
  const long = { question_id: 9, category: 'writing', turns: [Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ')] };
  const answers: AnswerSets = new Map([['x', new Map([['9', answer('x', 9, ['ok'])]])]]);
  const judge = new EndpointChat({ url, model: 'tiny', apiKey: KEY, retries: 0 });
  const { judgments, stats } = await judgeSingle([long], answers, { judge, prompts, maxTokens: 8 });
  assert.equal(stats.errors, 1);
  assert.equal(judgments[0].score, -1);
  assert.match(judgments[0].judgment, new RegExp(`^\\$ERROR\\$ POST ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/chat/completions: HTTP 400: .*maximum context length`));
  assert.match(stats.errorSamples[0], /HTTP 400/);

  const wrong = new EndpointChat({ url, model: 'tiny', apiKey: 'nope', retries: 3, backoffMs: 1 });
  await assert.rejects(judgeSingle(readQuestions(files.questions), sets(files.x), { judge: wrong, prompts, maxTokens: 8 }), /POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: HTTP 401/);
});

test('endpoint client: 429/5xx are retried with backoff; a server still failing, or silent, stops with the URL', async () => {
  let calls = 0;
  const flaky: Server = createHttpServer((req, res) => {
    req.resume();
    calls++;
    if (req.url === '/hang/v1/chat/completions') return; // never answers
    if (req.url === '/stall/v1/chat/completions') return void res.writeHead(200, { 'Content-Type': 'application/json' }).write('{"choices": ['); // headers, then half a body
    if (req.url === '/down/v1/chat/completions' || calls === 1) {
      res.writeHead(calls === 1 ? 429 : 503, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ error: { message: 'busy' } }));
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'Rating: [[7]]' } }] }));
  });
  await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
  const port = (flaky.address() as { port: number }).port;
  try {
    const log: string[] = [];
    const ok = new EndpointChat({ url: `http://127.0.0.1:${port}/v1/`, model: 'm', retries: 2, backoffMs: 5, log: (l) => log.push(l) });
    assert.equal(await ok.complete([{ role: 'user', content: 'hi' }], 8), 'Rating: [[7]]');
    assert.equal(calls, 2);
    assert.match(log[0], /POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: HTTP 429: busy; retrying in \d+ ms/);

    const down = new EndpointChat({ url: `http://127.0.0.1:${port}/down/v1`, model: 'm', retries: 2, backoffMs: 1 });
    await assert.rejects(down.complete([{ role: 'user', content: 'hi' }], 8), /POST http:\/\/127\.0\.0\.1:\d+\/down\/v1\/chat\/completions: HTTP 503: busy \(after 3 tries\)/);

    const hang = new EndpointChat({ url: `http://127.0.0.1:${port}/hang/v1`, model: 'm', retries: 0, timeoutMs: 200 });
    await assert.rejects(hang.complete([{ role: 'user', content: 'hi' }], 8), /POST http:\/\/127\.0\.0\.1:\d+\/hang\/v1\/chat\/completions: no answer within 0\.2 s/);
    const stall = new EndpointChat({ url: `http://127.0.0.1:${port}/stall/v1`, model: 'm', retries: 0, timeoutMs: 200 });
    await assert.rejects(stall.complete([{ role: 'user', content: 'hi' }], 8), /POST http:\/\/127\.0\.0\.1:\d+\/stall\/v1\/chat\/completions: no answer within 0\.2 s/);
  } finally {
    flaky.closeAllConnections();
    await new Promise((r) => flaky.close(r));
  }
});

test('eval judge --judge-url: pairwise through the server (2 requests in flight), both orders, table and files written', shared, async () => {
  requireShared(PROMPTS);
  const out = join(dir, 'pair-out');
  const battles = join(dir, 'battles.jsonl');
  const r = await nomoat([
    'eval', 'judge', '--answers', files.x, '--answers', files.y, '--mode', 'pairwise', '--questions', files.questions, '--judge-prompts', PROMPTS,
    '--judge-url', url, '--judge-model', 'tiny', '--judge-api-key', KEY, '--judge-max-tokens', '8', '--retries', '0', '--parallel', '2', '--out', out, '--battles', battles,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\| model \| win \| loss \| tie \| inconsistent \| error \| win rate \| adjusted win rate \|/);
  assert.match(r.stdout, /\n\| x \| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \|/);
  assert.match(r.stdout, /\n\| y \| /);
  assert.match(r.stdout, /note: 6 judge call\(s\); \d+ judgment\(s\) without a verdict; \d+ failed call\(s\)/);
  const recs = readFileSync(join(out, 'model_judgment', 'tiny_pair.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(recs.length, 3);
  assert.deepEqual(Object.keys(recs[0]), ['question_id', 'model_1', 'model_2', 'g1_winner', 'g2_winner', 'judge', 'g1_user_prompt', 'g1_judgment', 'g2_user_prompt', 'g2_judgment', 'turn', 'tstamp']);
  assert.match(String(recs[0].g1_user_prompt), /Assistant A's Answer\]\nThe sea is wide\./);
  assert.match(String(recs[0].g2_user_prompt), /Assistant A's Answer\]\nBlue\./);
  assert.ok(existsSync(battles));
  assert.ok(existsSync(join(out, 'results.md')));
});

test('eval judge with local models: the bundled model answers (FastChat files) and judges; its answers can be passed back in', shared, async () => {
  requireShared(PROMPTS);
  const out = join(dir, 'local-out');
  const common = ['--questions', files.questions, '--judge-prompts', PROMPTS, '--judge', BUNDLED, '--judge-max-tokens', '8', '-t', '2'];
  const r = await nomoat(['eval', 'judge', '-m', BUNDLED, '--max-new-tokens', '8', '--out', out, ...common]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| default-model \| [\d.—]+ \| [\d.—]+ \| [\d.—]+ \| 3 \| \d \|/);
  assert.match(r.stderr, /answers of default-model 2\/2/);
  assert.match(r.stderr, /judging \(default-model\) 3\/3/);
  const answersFile = join(out, 'model_answer', 'default-model.jsonl');
  const answers = readFileSync(answersFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ModelAnswer);
  assert.deepEqual(answers.map((a) => [a.question_id, a.model_id, a.choices[0].turns.length]), [[1, 'default-model', 2], [2, 'default-model', 1]]);
  assert.deepEqual(Object.keys(answers[0]), ['question_id', 'answer_id', 'model_id', 'choices', 'tstamp']);
  assert.equal(readFileSync(join(out, 'model_judgment', 'default-model_single.jsonl'), 'utf8').trim().split('\n').length, 3);

  // the answers back in, against a baseline, pairwise with the local judge; battles for eval arena
  const battles = join(dir, 'local-battles.jsonl');
  const p = await nomoat(['eval', 'judge', '--answers', answersFile, '--baseline-answers', files.y, '--mode', 'pairwise', '--battles', battles, ...common]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /\| default-model \| /);
  assert.match(p.stdout, /note: 6 judge call\(s\)/);
  assert.match(p.stderr, /\d+ battle\(s\) → /);
});

test('eval judge: usage errors say what to pass', shared, async () => {
  requireShared(PROMPTS);
  const none = await nomoat(['eval', 'judge', '--answers', files.x]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /missing the judge: --judge MODEL \(run here\) or --judge-url URL --judge-model NAME/);
  const one = await nomoat(['eval', 'judge', '--answers', files.x, '--mode', 'pairwise', '--judge-url', url, '--judge-model', 'tiny', '--questions', files.questions, '--judge-prompts', PROMPTS]);
  assert.equal(one.status, 2);
  assert.match(one.stderr, /pairwise needs two models/);
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"question_id": 1, "choices": []}\n');
  const badAnswers = await nomoat(['eval', 'judge', '--answers', bad, '--judge-url', url, '--judge-model', 'tiny', '--questions', files.questions, '--judge-prompts', PROMPTS]);
  assert.equal(badAnswers.status, 1);
  assert.match(badAnswers.stderr, /bad\.jsonl:1: choices: must be a non-empty array/);
});

test('eval judge --model-url: the model under test answers through the server too', shared, async () => {
  requireShared(PROMPTS);
  const out = join(dir, 'url-out');
  const r = await nomoat([
    'eval', 'judge', '-m', 'tiny', '--model-url', url, '--model-api-key', KEY, '--questions', files.questions, '--judge-prompts', PROMPTS, '--limit', '1',
    '--max-new-tokens', '8', '--judge-url', url, '--judge-model', 'tiny', '--judge-api-key', KEY, '--judge-max-tokens', '8', '--out', out,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const answers = readFileSync(join(out, 'model_answer', 'tiny.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ModelAnswer);
  assert.deepEqual(answers.map((a) => [a.question_id, a.model_id, a.choices[0].turns.length]), [[1, 'tiny', 2]]);
  assert.match(r.stdout, /\| tiny \| [\d.—]+ \| [\d.—]+ \| [\d.—]+ \| 2 \| \d \|/);
});

test('eval judge --judge-lora: the local judge runs with its adapter (named, and judging differently)', shared, async () => {
  requireShared(PROMPTS);
  const { model } = loadModel(BUNDLED);
  const adapterDir = join(dir, 'judge-adapter');
  const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 3, name: 'strict' }), 7, 0.3);
  savePeftAdapter(a, adapterDir);
  a.dispose();
  model.dispose();
  const run = (extra: string[], out: string): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    nomoat(['eval', 'judge', '--answers', files.x, '--questions', files.questions, '--judge-prompts', PROMPTS, '--limit', '1', '--judge', BUNDLED, '--judge-max-tokens', '12', '-t', '2', '--out', out, ...extra]);
  const plain = await run([], join(dir, 'jl-plain'));
  const tuned = await run(['--judge-lora-scaled', adapterDir, '1'], join(dir, 'jl-tuned'));
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(tuned.status, 0, tuned.stderr);
  assert.match(tuned.stderr, /judging \(default-model\+judge-adapter@1\) 2\/2/);
  const texts = (out: string, name: string): string[] =>
    readFileSync(join(out, 'model_judgment', `${name}_single.jsonl`), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { judgment: string }).judgment);
  assert.notDeepEqual(texts(join(dir, 'jl-tuned'), 'default-model+judge-adapter@1'), texts(join(dir, 'jl-plain'), 'default-model'));
  const refused = await nomoat(['eval', 'judge', '--answers', files.x, '--judge-url', url, '--judge-model', 'tiny', '--judge-lora', adapterDir]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--judge-lora \/ --judge-lora-scaled apply to a --judge model run here/);
});
