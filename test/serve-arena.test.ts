// The arena's endpoints and the page's files through the HTTP server (Fastify's inject, no sockets): a vote becomes
// a line of the votes file and its count; bad votes get a 400 naming every bad field; without a votes file the
// endpoints say how to turn it on (501); the key is required; GET / is the page, with its CSP.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine } from '../src/serve/engine.js';
import { createServer, type NomoatServer } from '../src/serve/http.js';
import type { Tokenizer } from '../src/tokenizer/types.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const KEY = 'arena-key';
const AUTH = { authorization: `Bearer ${KEY}` };

let dir = '';
let model: LlamaModel;
let tok: Tokenizer;
let server: NomoatServer;
let votesFile = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-arena-'));
  const loaded = loadModel(BUNDLED);
  model = loaded.model;
  tok = loaded.tokenizer!;
  votesFile = join(dir, 'votes.jsonl');
  server = createServer({ engine: new ServeEngine(model, tok, { parallel: 1 }), modelId: 'tiny', apiKey: KEY, votesFile, log: () => {} });
});

after(async () => {
  await server.close();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const VOTE = {
  prompt: 'what is the opposite of hot?', config_a: { model: 'tiny' }, config_b: { model: 'tiny', adapters: [{ name: 'math', scale: 0.5 }] },
  reply_a: 'cold', reply_b: 'warm', vote: 'a', judge: 'arena_user_t', sampling: { temperature: 0.7, max_tokens: 32 },
};

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

test('POST /v1/arena/votes appends FastChat\'s battle line; the count follows; the answer names the players', async () => {
  const count = async (): Promise<number> => (JSON.parse((await server.app.inject({ method: 'GET', url: '/v1/arena/votes/count', headers: AUTH })).body) as { count: number }).count;
  assert.equal(await count(), 0);
  const r = await server.app.inject({ method: 'POST', url: '/v1/arena/votes', headers: AUTH, payload: VOTE });
  assert.equal(r.statusCode, 200, r.body);
  const answer = JSON.parse(r.body) as { id: string; object: string; model_a: string; model_b: string; winner: string };
  assert.deepEqual({ ...answer, id: '' }, { id: '', object: 'arena.vote', model_a: 'tiny', model_b: 'tiny+math@0.5', winner: 'model_a' });
  const r2 = await server.app.inject({ method: 'POST', url: '/v1/arena/votes', headers: AUTH, payload: { ...VOTE, vote: 'tie', unknown: 1 } });
  assert.equal(r2.statusCode, 200, r2.body);
  const lines = readFileSync(votesFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0].question_id, answer.id);
  assert.match(answer.id, /^[0-9a-f-]{36}$/);
  for (const k of ['question_id', 'model_a', 'model_b', 'winner', 'judge', 'conversation_a', 'conversation_b', 'turn', 'anony', 'tstamp']) assert.ok(k in lines[0], `FastChat's ${k}`);
  assert.deepEqual(lines[0].conversation_b, [{ role: 'user', content: VOTE.prompt }, { role: 'assistant', content: 'warm' }]);
  assert.deepEqual(lines[0].config_b, VOTE.config_b);
  assert.deepEqual(lines[0].config_a, { model: 'tiny', adapters: [] });
  assert.equal(lines[1].winner, 'tie');
  assert.ok(!('unknown' in lines[1]), 'unknown fields are dropped');
  assert.ok(Math.abs((lines[0].tstamp as number) - Date.now() / 1000) < 60);
  assert.equal(await count(), 2);
});

test('bad votes: 400 naming every bad field; the same configuration twice; no key; nothing written', async () => {
  const before = readFileSync(votesFile, 'utf8');
  const bad = async (payload: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; error: ErrorBody['error'] }> => {
    const r = await server.app.inject({ method: 'POST', url: '/v1/arena/votes', headers, payload: payload as Record<string, unknown> });
    return { status: r.statusCode, error: (JSON.parse(r.body) as ErrorBody).error };
  };
  const r = await bad({ ...VOTE, vote: 'A', config_a: { model: '', adapters: [{ name: 'x', scale: 'big' }] }, reply_b: 3 });
  assert.equal(r.status, 400);
  assert.equal(r.error.param, 'config_a.model');
  assert.equal(r.error.message, 'config_a.model: must not be empty; config_a.adapters[0].scale: must be a number, got "big"; reply_b: must be a string, got 3; vote: must be one of a, b, tie, both_bad');
  const same = await bad({ ...VOTE, config_b: { model: 'tiny', adapters: [] } });
  assert.deepEqual([same.status, same.error.param], [400, 'config_b']);
  assert.match(same.error.message, /must differ from config_a/);
  assert.equal((await bad(VOTE, {})).status, 401);
  assert.equal(readFileSync(votesFile, 'utf8'), before);
});

test('without a votes file the arena endpoints answer 501 saying how to turn them on', async () => {
  const s = createServer({ engine: new ServeEngine(model, tok, { parallel: 1 }), modelId: 'tiny', log: () => {} });
  try {
    for (const [method, url] of [['POST', '/v1/arena/votes'], ['GET', '/v1/arena/votes/count']] as const) {
      const r = await s.app.inject({ method, url, ...(method === 'POST' ? { payload: VOTE } : {}) });
      assert.equal(r.statusCode, 501, `${method} ${url}`);
      const e = (JSON.parse(r.body) as ErrorBody).error;
      assert.equal(e.code, 'votes_disabled');
      assert.match(e.message, /--votes FILE/);
    }
  } finally {
    await s.close();
  }
  assert.throws(() => createServer({ engine: new ServeEngine(model, tok), modelId: 'tiny', votesFile: join(dir, 'no', 'v.jsonl') }), /does not exist/);
});

test('GET / is the page (no key needed), with its CSP; every file it names is served', async () => {
  const r = await server.app.inject({ method: 'GET', url: '/' });
  assert.equal(r.statusCode, 200);
  assert.match(r.headers['content-type'] as string, /^text\/html/);
  assert.match(r.headers['content-security-policy'] as string, /default-src 'none'; script-src 'self'/);
  const refs = [...r.body.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]).filter((ref) => !ref.startsWith('data:'));
  assert.ok(refs.includes('app.js') && refs.includes('style.css'), refs.join());
  const modules = ['app.js', 'api.js', 'ui.js', 'chat.js', 'stack.js', 'arena.js'];
  for (const f of [...refs, ...modules]) {
    const file = await server.app.inject({ method: 'GET', url: `/${f}` });
    assert.equal(file.statusCode, 200, f);
    // every import of a module is one of the page's own files, which is served too
    for (const m of file.body.matchAll(/^import .* from '([^']+)';$/gm)) assert.ok(modules.includes(m[1].replace(/^\.\//, '')), `${f} imports ${m[1]}`);
  }
});
