// `nomoat pull` and `-m hf://…` first use against a local Hub (hub-server.ts; its header lists the routes and headers
// served): the listing (GET /api/models/{repo}/revision/main), HEAD + GET /{repo}/resolve/{commit}/{file} with ETag /
// X-Linked-Etag / X-Linked-Size / X-Repo-Commit and a 302 Location to a second host for LFS files, Range → 206.
// Checked: the huggingface_hub cache layout written (blobs by ETag, relative links, refs/main), only the model's files
// fetched, a connection cut mid-file resumed with `Range: bytes=N-` in the same run and a `.incomplete` left by an
// earlier run resumed in the next, HF_TOKEN sent as a Bearer header to the Hub and not to the CDN, 401 and 404 as
// errors that say what to do, the progress bar, and the pulled model giving the tokens of the same files by path.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitOf, etagOf, readFolder, sha256 } from './hub-layout.js';
import { startFakeHub, type FakeHub } from './hub-server.js';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
const BUNDLED = join(process.cwd(), 'assets', 'default-model');
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const TOKEN = 'hf_nomoatTestToken123';
let tmp = '';
let gguf: Buffer;
let hub: FakeHub;

interface Result { status: number | null; stdout: string; stderr: string }

/** Runs the CLI without blocking this process's event loop (the fake Hub answers from it). */
function nomoat(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HF_HUB_OFFLINE: '', HF_TOKEN: '', ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const GEN = ['-p', 'Once upon a time', '-n', '10', '--temp', '0', '-t', '1', '--json'];
const tokens = (r: Result): number[] => (JSON.parse(r.stdout) as { tokens: number[] }).tokens;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nomoat-hubdl-'));
  const g = join(tmp, 'tiny-q8_0.gguf');
  const c = await nomoat(['convert', BUNDLED, g, '--outtype', 'q8_0'], {});
  assert.equal(c.status, 0, c.stderr);
  gguf = readFileSync(g);
  hub = await startFakeHub({
    'org/tiny': { commit: commitOf('tiny'), files: { ...readFolder(BUNDLED, FILES), 'README.md': Buffer.from('# tiny\n'), 'pytorch_model.bin': Buffer.alloc(64, 7), 'tiny-Q8_0.gguf': gguf } },
    'org/tiny-GGUF': { commit: commitOf('tiny-gguf'), files: { 'tiny-Q8_0.gguf': gguf, 'tiny-F16.gguf': Buffer.alloc(100, 1), 'README.md': Buffer.from('gguf\n') } },
  }, TOKEN);
});
after(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('pull: huggingface_hub layout, only the model files, resume after a cut, token to the Hub only, then offline use', async () => {
  const home = join(tmp, 'home1');
  const st = readFileSync(join(BUNDLED, 'model.safetensors'));
  hub.cutOnce.set(sha256(st), Math.floor(st.length / 3));
  hub.log.length = 0;
  const env = { HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN };
  const r = await nomoat(['pull', 'hf://org/tiny'], env);
  assert.equal(r.status, 0, r.stderr);
  const folder = join(home, 'hub', 'models--org--tiny');
  const snap = join(folder, 'snapshots', commitOf('tiny'));
  assert.equal(r.stdout.trim(), snap);
  assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), commitOf('tiny'));
  assert.deepEqual(readdirSync(snap).sort(), [...FILES].sort()); // no README, .bin or .gguf
  for (const f of FILES) {
    const bytes = readFileSync(join(BUNDLED, f));
    assert.equal(readlinkSync(join(snap, f)), `../../blobs/${etagOf(f, bytes)}`);
    assert.deepEqual(readFileSync(join(snap, f)), bytes);
  }
  assert.deepEqual(readdirSync(join(folder, 'blobs')).filter((b) => b.endsWith('.incomplete')), []);
  const cdn = hub.log.filter((l) => l.server === 'cdn');
  // the server breaks the connection after writing a third of the blob; what reached the client before the reset (all
  // of it, or less on a loaded machine) is kept, and the second request asks for the rest from there
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0].range, undefined);
  const from = /^bytes=(\d+)-$/u.exec(cdn[1].range ?? '');
  assert.ok(from !== null && Number(from[1]) > 0 && Number(from[1]) <= Math.floor(st.length / 3), `the cut download resumed with a Range request (${String(cdn[1].range)})`);
  assert.ok(cdn.every((l) => l.authorization === undefined), 'the signed CDN URL gets no token');
  const hubReqs = hub.log.filter((l) => l.server === 'hub');
  assert.ok(hubReqs.some((l) => l.path === '/api/models/org/tiny/revision/main'));
  assert.ok(hubReqs.some((l) => l.method === 'HEAD' && l.path === `/org/tiny/resolve/${commitOf('tiny')}/model.safetensors`));
  assert.ok(hubReqs.every((l) => l.authorization === `Bearer ${TOKEN}`));
  assert.match(r.stderr, /model\.safetensors +\[#+\] 100%/);

  hub.log.length = 0;
  const again = await nomoat(['pull', 'hf://org/tiny', '-q'], env);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(hub.log.filter((l) => l.server === 'cdn').length, 0, 'a second pull downloads nothing');

  const byPath = await nomoat(['generate', '-m', BUNDLED, ...GEN], {});
  const offline = await nomoat(['generate', '-m', 'hf://org/tiny', ...GEN], { HF_HOME: home, HF_HUB_OFFLINE: '1' });
  assert.equal(offline.status, 0, offline.stderr);
  assert.deepEqual(tokens(offline), tokens(byPath));
});

test('-m hf://…:QUANT downloads on first use, resuming a .incomplete left by an earlier run', async () => {
  const home = join(tmp, 'home2');
  const etag = sha256(gguf);
  const blobs = join(home, 'hub', 'models--org--tiny-GGUF', 'blobs');
  mkdirSync(blobs, { recursive: true });
  const have = Math.floor(gguf.length / 2);
  writeFileSync(join(blobs, `${etag}.incomplete`), gguf.subarray(0, have));
  hub.log.length = 0;
  const r = await nomoat(['generate', '-m', 'hf://org/tiny-GGUF:q8_0', ...GEN], { HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(hub.log.filter((l) => l.server === 'cdn').map((l) => l.range), [`bytes=${have}-`]);
  assert.match(r.stderr, /resuming at/);
  assert.ok(existsSync(join(blobs, etag)) && !existsSync(join(blobs, `${etag}.incomplete`)));
  const byPath = await nomoat(['generate', '-m', join(tmp, 'tiny-q8_0.gguf'), ...GEN], {});
  assert.deepEqual(tokens(r), tokens(byPath));
});

test('401 without a token and 404 for an unknown repository or file say what to do; nothing is left behind', async () => {
  const home = join(tmp, 'home3');
  const env = { HF_HOME: home, HF_ENDPOINT: hub.url };
  const noToken = await nomoat(['pull', 'hf://org/tiny'], env);
  assert.equal(noToken.status, 1);
  assert.match(noToken.stderr, /HTTP 401[\s\S]*HF_TOKEN=hf_\.\.\. nomoat pull hf:\/\/org\/tiny/);
  const unknown = await nomoat(['pull', 'hf://org/absent'], { ...env, HF_TOKEN: TOKEN });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /HTTP 404: not found on the Hub; check OWNER\/REPO/);
  const noFile = await nomoat(['pull', 'hf://org/tiny-GGUF:tiny-Q2_K.gguf'], { ...env, HF_TOKEN: TOKEN });
  assert.equal(noFile.status, 1);
  assert.match(noFile.stderr, /no file "tiny-Q2_K\.gguf"[\s\S]*tiny-F16\.gguf[\s\S]*tiny-Q8_0\.gguf/);
  const firstUse = await nomoat(['generate', '-m', 'hf://org/absent', '-p', 'x'], { ...env, HF_TOKEN: TOKEN });
  assert.equal(firstUse.status, 1);
  assert.match(firstUse.stderr, /the download failed/);
  assert.ok(!existsSync(join(home, 'hub', 'models--org--tiny', 'refs')));
});

test('two pulls at once fetch each blob once; a lock left by a dead process is taken over', async () => {
  const home = join(tmp, 'home4');
  const env = { HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN };
  const locks = join(home, 'hub', '.locks', 'models--org--tiny-GGUF');
  mkdirSync(locks, { recursive: true });
  const lock = join(locks, `${sha256(gguf)}.nomoat.lock`);
  writeFileSync(lock, '999999999'); // above any pid_max: its owner is gone
  hub.log.length = 0;
  const [a, b] = await Promise.all([1, 2].map(() => nomoat(['pull', 'hf://org/tiny-GGUF:Q8_0', '-q'], env)));
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.deepEqual(readFileSync(a.stdout.trim()), gguf);
  assert.equal(hub.log.filter((l) => l.server === 'cdn' && l.method === 'GET').length, 1);
  assert.ok(!existsSync(lock));
});
