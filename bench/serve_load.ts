// Load test of `nomoat serve` on loopback: a real server process (the bundled model and two adapters, 8 rows) and a
// client sending hundreds of requests, 16 at a time for a few minutes: chat and completions, streaming and not,
// base and adapters, some clients going away mid-stream. Every request that should succeed must (0 failures), and
// the server's resident memory at the end must stay within 10 % of what it was after the warm-up requests (the first
// 300: V8 sizes its heap to the traffic over the first few hundred; the note prints RSS every 100 requests).
// Server mode: `node dist/bench/serve_load.js server` prints its URL, serves until SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, Rng } from '../src/engine/index.js';
import { LoraAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine } from '../src/serve/engine.js';
import { createServer } from '../src/serve/http.js';
import { emit, round } from './common.js';

const REQUESTS = 1500;
const WARMUP = 300;
const CONCURRENCY = 16;
const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');

async function serve(): Promise<void> {
  const { model, tokenizer } = loadModel(BUNDLED);
  if (tokenizer === null) throw new Error('the bundled model has no tokenizer');
  const engine = new ServeEngine(model, tokenizer, { parallel: 8, contextSize: 512 });
  for (let i = 0; i < 2; i++) {
    const a = LoraAdapter.create(model, { r: 8, loraAlpha: 16, targetModules: 'all-linear' }, { seed: i, name: `a${i}` });
    const rng = new Rng(10 + i);
    for (const m of a.modules.values()) for (let k = 0; k < m.B.data.length; k++) m.B.data[k] = rng.normal() * 0.05;
    engine.addAdapter(`a${i}`, a);
  }
  const server = createServer({ engine, modelId: 'base', port: 0, log: () => {} });
  console.log(await server.listen());
  if (process.env.NOMOAT_LOAD_TRACE === '1') {
    setInterval(() => {
      const m = process.memoryUsage();
      console.error(`rss ${(m.rss / 1e6).toFixed(1)} heap ${(m.heapUsed / 1e6).toFixed(1)}/${(m.heapTotal / 1e6).toFixed(1)} external ${(m.external / 1e6).toFixed(1)} native-live ${(getBackend().liveBytes() / 1e6).toFixed(1)}`);
    }, 5000).unref();
  }
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m?.[1] === undefined ? NaN : Number(m[1]) / 1024;
}

/** Starts the server child; resolves with its URL once it prints it. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /http:\/\/\S+/.exec(out)?.[0];
      if (url !== undefined) resolve({ child, url });
    });
    child.on('exit', (code) => reject(new Error(`serve load: the server exited (${code}) before listening`)));
  });
}

type Outcome = 'ok' | 'cancelled' | 'failed';

/** One request of a random kind; a cancelled stream is one the client dropped on purpose after a few chunks. */
async function one(url: string, rng: Rng, i: number): Promise<{ outcome: Outcome; why?: string }> {
  const model = ['base', 'a0', 'a1'][rng.int(3)];
  const stream = rng.next() < 0.6;
  const cancel = stream && rng.next() < 0.15;
  const chat = rng.next() < 0.7;
  const max = 8 + rng.int(56);
  const body = chat
    ? { model, messages: [{ role: 'user', content: `Tell me about a ${['dog', 'cat', 'bird', 'tree'][rng.int(4)]} ${i}.` }], max_tokens: max, temperature: 0.7, seed: i, stream }
    : { model, prompt: `Once upon a time ${i}`, max_tokens: max, temperature: 0.7, seed: i, stream };
  const ac = new AbortController();
  try {
    const res = await fetch(`${url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal,
    });
    if (res.status !== 200) return { outcome: 'failed', why: `status ${res.status}: ${await res.text()}` };
    if (!stream) {
      const j = (await res.json()) as { choices?: { finish_reason?: string }[]; usage?: { completion_tokens?: number } };
      const fine = j.choices?.length === 1 && ['stop', 'length'].includes(j.choices[0].finish_reason ?? '') && typeof j.usage?.completion_tokens === 'number';
      return fine ? { outcome: 'ok' } : { outcome: 'failed', why: JSON.stringify(j).slice(0, 200) };
    }
    const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
    if (reader === undefined) return { outcome: 'failed', why: 'no body' };
    let text = '';
    let chunks = 0;
    for (;;) {
      const part = await reader.read();
      if (part.done) break;
      text += new TextDecoder().decode(part.value);
      chunks++;
      if (cancel && chunks >= 3) {
        ac.abort();
        return { outcome: 'cancelled' };
      }
    }
    return text.trimEnd().endsWith('data: [DONE]') ? { outcome: 'ok' } : { outcome: 'failed', why: `stream ended without [DONE]: ${text.slice(-200)}` };
  } catch (e) {
    if (cancel && ac.signal.aborted) return { outcome: 'cancelled' };
    return { outcome: 'failed', why: e instanceof Error ? e.message : String(e) };
  }
}

export async function runServeLoad(): Promise<void> {
  const { child, url } = await startServer();
  const pid = child.pid ?? -1;
  try {
    const rng = new Rng(3);
    const counts: Record<Outcome, number> = { ok: 0, cancelled: 0, failed: 0 };
    const failures: string[] = [];
    let next = 0;
    let warmRss = NaN;
    const trace: number[] = []; // RSS every 100 requests
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < REQUESTS) {
        const i = next++;
        const r = await one(url, rng, i);
        counts[r.outcome]++;
        if (r.outcome === 'failed') failures.push(`#${i}: ${r.why ?? ''}`);
        const done = counts.ok + counts.cancelled + counts.failed;
        if (done === WARMUP) warmRss = rssMb(pid);
        if (done % 100 === 0) trace.push(round(rssMb(pid)));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // let cancelled rows be freed
    const endRss = rssMb(pid);
    const health = await fetch(`${url}/health`).then((r) => r.status).catch(() => 0);
    const note = `${REQUESTS} requests (chat and completions, 60 % streamed, 15 % of streams dropped by the client after 3 chunks), ${CONCURRENCY} at a time, ` +
      `bundled model + 2 adapters, 8 rows, ${round(seconds)} s; ok ${counts.ok}, cancelled ${counts.cancelled}, failed ${counts.failed}; /health after: ${health}` +
      (failures.length > 0 ? `; first failures: ${failures.slice(0, 3).join(' | ')}` : '');
    emit({
      bench: 'serve', metric: 'load_requests_ok', unit: 'fraction', ours: counts.ok / (REQUESTS - counts.cancelled), peer: 1, peer_name: 'target: every request that should succeed does',
      higher_is_better: true, note,
    });
    emit({
      bench: 'serve', metric: 'load_server_rss_end_vs_warm', unit: 'MB', ours: endRss, peer: warmRss, peer_name: `the server's RSS after ${WARMUP} warm-up requests`,
      higher_is_better: false, peak_rss_mb: endRss, note: `server RSS at the end vs after the warm-up; target: within 10 % (ratio ≥ 0.91); every 100 requests: ${trace.join(', ')} MB; ${note}`,
    });
  } finally {
    child.kill('SIGTERM');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'server') {
  serve().catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
