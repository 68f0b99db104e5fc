// `nomoat serve` run for real: its help, a refusal to listen beyond loopback without a key, and a server on any
// free port (--port 0) that prints its URL, serves, and on SIGINT lets the stream in flight finish, then exits 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoraAdapter, savePeftAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { randomize } from './lora-helpers.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');

test('nomoat serve --help shows the flags and examples', () => {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const flag of ['--lora NAME=PATH', '--recipe NAME=FILE', '--adapters-dir DIR', '--allow-adapter-loading', '--host HOST', '--port PORT', '--parallel N', '--ctx-size N', '--threads N', '--api-key KEY', '--cors ORIGIN', '--alias NAME', '--votes FILE']) {
    assert.ok(r.stdout.includes(flag), `help lacks ${flag}`);
  }
  assert.match(r.stdout, /Examples:\n {2}nomoat serve\n/);
});

test('nomoat serve refuses a non-loopback address without --api-key, a malformed --lora, a --votes in no folder', () => {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--host', '0.0.0.0', '--port', '0'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NOMOAT_API_KEY: '' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without an API key.*--api-key/);
  const bad = spawnSync(process.execPath, [BIN, 'serve', '--lora', 'nopath'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--lora expects NAME=PATH/);
  const votes = spawnSync(process.execPath, [BIN, 'serve', '--port', '0', '--votes', join(tmpdir(), 'nomoat-no-such-folder', 'v.jsonl')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(votes.status, 1);
  assert.match(votes.stderr, /the votes file's folder .*nomoat-no-such-folder does not exist/);
});

test('nomoat serve --port 0: prints the URL, serves the bundled model and its --lora, records a vote in --votes, drains the stream in flight on SIGINT, exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-serve-cli-'));
  try {
    const { model } = loadModel(BUNDLED);
    const a = randomize(LoraAdapter.create(model, { r: 2, targetModules: ['q_proj'] }, { seed: 3 }), 3, 0.1);
    savePeftAdapter(a, join(dir, 'kind'));
    a.dispose();
    model.dispose();

    const votes = join(dir, 'votes.jsonl');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '-t', '1', '--alias', 'tiny', '--lora', `kind=${join(dir, 'kind')}`, '--votes', votes], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const url = await new Promise<string>((res, rej) => {
      const t = setInterval(() => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m !== null) {
          clearInterval(t);
          res(m[1]);
        }
      }, 20);
      void exited.then((code) => {
        clearInterval(t);
        rej(new Error(`exited ${code} before listening: ${stderr}`));
      });
    });
    assert.ok(!url.endsWith(':8080') && !url.endsWith(':0'), url);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(models.data.map((m) => m.id), ['tiny', 'kind']);
    // --votes: the arena's votes go to that file
    assert.ok(stdout.includes(`arena votes go to ${votes}`), stdout);
    const vote = await fetch(`${url}/v1/arena/votes`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'hi', config_a: { model: 'tiny' }, config_b: { model: 'kind' }, reply_a: 'a', reply_b: 'b', vote: 'tie' }),
    });
    assert.equal(vote.status, 200, await vote.clone().text());
    assert.equal((JSON.parse(readFileSync(votes, 'utf8')) as { winner: string }).winner, 'tie');

    // a long stream in flight when SIGINT arrives: it finishes (all its tokens, then [DONE]) before the exit
    const r = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'kind', prompt: 'Once upon a time', max_tokens: 200, ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let raw = '';
    const first = await reader.read();
    raw += new TextDecoder().decode(first.value);
    child.kill('SIGINT');
    for (let c = await reader.read(); !c.done; c = await reader.read()) raw += new TextDecoder().decode(c.value);
    assert.ok(raw.endsWith('data: [DONE]\n\n'), raw.slice(-200));
    const usage = JSON.parse(raw.split('\n\n').at(-3)!.slice('data: '.length)) as { usage: { completion_tokens: number } };
    assert.equal(usage.usage.completion_tokens, 200);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGINT: finishing 1 request\(s\) in flight/);
    assert.match(stdout, /stopped/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
