// Serving bench: the engine behind `nomoat serve` (continuous batching, per-request adapter stacks) on a
// SmolLM-135M-shaped model (random weights, the same GGUF files for both sides).
// - streams: 1, 4 and 16 concurrent greedy requests (32-token prompts, 32 generated tokens each) against llama.cpp
//   (node-llama-cpp) with as many parallel sequences in one context, F32 and Q8_0, each side warmed up by one short
//   request first (page faults, thread pools, first-call allocations are not serving), at its best thread
//   count: aggregate tokens/s (generated tokens over the wall time from the first request to the last token), p50
//   and p99 time to first token and inter-token latency, peak RSS.
// - adapters: 16 streams over 8 LoRA adapters (r16, every block linear) vs the same 16 on one adapter (the
//   low-rank products grouped by adapter should cost little more), and vs the 16 served one at a time.
// Batch invariance (each row reduced as if alone) costs nothing to measure separately here: the engine has no other
// mode; its price is the per-row dots of rowwise products instead of a packed GEMM for F32 weights.
// - load: hundreds of requests over HTTP to a real `nomoat serve` process (serve_load.ts).
// Each run is its own child process (`node dist/bench/serve.js child JSON`), so each peak RSS is its own.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, Rng } from '../src/engine/index.js';
import { LoraAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { GREEDY } from '../src/models/sampling.js';
import { ServeEngine, type AdapterRef } from '../src/serve/engine.js';
import { bestTime, emit, round, threadCounts } from './common.js';
import { peakMb, SMOLLM_135M, writeModels } from './infer.js';
import { runServeLoad } from './serve_load.js';

const PROMPT = 32;
const GEN = 64;
const STREAMS = [1, 4, 16];
const PEER_NAME = 'llama.cpp (node-llama-cpp 3.21.1, one context with as many sequences)';

interface ChildSpec {
  side: 'ours' | 'peer';
  path: string;
  threads: number;
  streams: number;
  /** ours only: adapters to spread the streams over (0: none), and rows in the batch (default: streams) */
  adapters?: number;
  spread?: 'mixed' | 'one';
  parallel?: number;
}

interface ChildResult {
  tokens: number;
  wallS: number;
  ttftMs: number[];
  itlMs: number[];
  peakRssMb: number;
}

/** Distinct seeded prompts of ordinary tokens, one per stream (BOS first). */
function prompts(n: number): number[][] {
  const rng = new Rng(7);
  return Array.from({ length: n }, () => [1, ...Array.from({ length: PROMPT - 1 }, () => 259 + rng.int(SMOLLM_135M.vocabSize - 259))]);
}

/** Per-request timing from token timestamps (ms since the start): TTFT from submit, then the gaps. */
function timings(starts: number[], stamps: number[][]): { ttftMs: number[]; itlMs: number[] } {
  return {
    ttftMs: stamps.map((s, i) => (s[0] ?? NaN) - starts[i]),
    itlMs: stamps.flatMap((s) => s.slice(1).map((t, k) => t - s[k])),
  };
}

async function runOurs(s: ChildSpec): Promise<ChildResult> {
  getBackend().setThreads(s.threads);
  const { model, tokenizer } = loadModel(s.path);
  if (tokenizer === null) throw new Error(`${s.path}: no tokenizer`);
  const engine = new ServeEngine(model, tokenizer, { parallel: s.parallel ?? s.streams, contextSize: PROMPT + GEN + 1, maxQueue: 1024 });
  const n = s.adapters ?? 0;
  for (let i = 0; i < n; i++) {
    const a = LoraAdapter.create(model, { r: 16, loraAlpha: 32, targetModules: 'all-linear' }, { seed: i, name: `a${i}` });
    const rng = new Rng(100 + i);
    for (const m of a.modules.values()) for (let k = 0; k < m.B.data.length; k++) m.B.data[k] = rng.normal() * 0.01;
    engine.addAdapter(`a${i}`, a);
  }
  const stackOf = (i: number): AdapterRef[] => (n === 0 ? [] : [{ name: `a${s.spread === 'one' ? 0 : i % n}`, scale: 1 }]);
  const ps = prompts(s.streams);
  await engine.submit({ prompt: ps[0].slice(0, 8), adapters: stackOf(0), maxTokens: 4, sampling: GREEDY, stopTokens: [] }); // warm-up
  const t0 = performance.now();
  const stamps = ps.map((): number[] => []);
  const starts = ps.map(() => 0);
  await Promise.all(ps.map((p, i) => {
    starts[i] = performance.now() - t0;
    return engine.submit({ prompt: p, adapters: stackOf(i), maxTokens: GEN, sampling: GREEDY, stopTokens: [] }, {
      onToken: (ev) => { if (ev.id >= 0) stamps[i].push(performance.now() - t0); },
    });
  }));
  const wallS = (performance.now() - t0) / 1000;
  engine.dispose();
  return { tokens: stamps.reduce((a, x) => a + x.length, 0), wallS, ...timings(starts, stamps), peakRssMb: peakMb() };
}

async function runPeer(s: ChildSpec): Promise<ChildResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: s.threads });
  const model = await llama.loadModel({ modelPath: s.path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: s.streams * (PROMPT + GEN + 8), sequences: s.streams, threads: s.threads, batchSize: Math.max(512, s.streams * PROMPT) });
  const seqs = Array.from({ length: s.streams }, () => ctx.getSequence());
  const ps = prompts(s.streams);
  { // warm-up
    const it = seqs[0].evaluate(ps[0].slice(0, 8) as never[], { temperature: 0, yieldEogToken: true });
    for (let k = 0; k < 4; k++) await it.next();
    await it.return();
    await seqs[0].clearHistory();
  }
  const t0 = performance.now();
  const stamps = ps.map((): number[] => []);
  const starts = ps.map(() => 0);
  await Promise.all(ps.map(async (p, i) => {
    starts[i] = performance.now() - t0;
    const it = seqs[i].evaluate(p as never[], { temperature: 0, yieldEogToken: true });
    for (let k = 0; k < GEN; k++) {
      const r = await it.next();
      if (r.done === true) throw new Error(`llama.cpp sequence ${i} stopped after ${k} tokens`);
      stamps[i].push(performance.now() - t0);
    }
    await it.return();
  }));
  const wallS = (performance.now() - t0) / 1000;
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { tokens: stamps.reduce((a, x) => a + x.length, 0), wallS, ...timings(starts, stamps), peakRssMb: peakMb() };
}

function child(spec: ChildSpec): ChildResult {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', JSON.stringify(spec)], {
    env: { ...process.env, OMP_NUM_THREADS: String(spec.threads) }, encoding: 'utf8', maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`serve bench: ${spec.side} child ${JSON.stringify(spec)} failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ChildResult;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const tps = (r: ChildResult): number => r.tokens / r.wallS;
const lat = (r: ChildResult): string =>
  `TTFT p50 ${round(pct(r.ttftMs, 50))} / p99 ${round(pct(r.ttftMs, 99))} ms, inter-token p50 ${round(pct(r.itlMs, 50))} / p99 ${round(pct(r.itlMs, 99))} ms`;

/**
 * What batch invariance costs: a 16-row decode step's F32 base products (one layer's seven linears and the LM head
 * of the 135M shape) as rowwise products (each row's bits as if alone: what the engine runs) vs the packed GEMM
 * (faster where compute-bound, but a row's bits then depend on how many rows share the call). q8_0/f16 products
 * are row-invariant on their fast paths already, so only F32 pays.
 */
export function invarianceCost(threads: number): void {
  const be = getBackend();
  be.setThreads(threads);
  const c = SMOLLM_135M;
  const [C, I, q, kv] = [c.hiddenSize, c.intermediateSize, c.numHeads * c.headDim, c.numKvHeads * c.headDim];
  const shapes = [[q, C], [kv, C], [kv, C], [C, q], [I, C], [I, C], [C, I]].map(([N, K]) => ({ N, K, n: c.numLayers }));
  shapes.push({ N: c.vocabSize, K: C, n: 1 });
  const M = 16;
  const rng = new Rng(5);
  const run = (rowwise: boolean): number => {
    let total = 0;
    for (const { N, K, n } of shapes) {
      const [x, w, out] = [be.alloc(M * K), be.alloc(N * K), be.alloc(M * N)];
      for (let i = 0; i < w.length; i++) w[i] = rng.normal() * 0.02;
      x.fill(0.5);
      const p = { batch: 1, M, N, K, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, offA: 0, offB: 0, offC: 0, accumulate: false, rowwise };
      total += n * bestTime(() => be.matmul(x, w, out, p), 3);
      for (const b of [x, w, out]) be.free(b);
    }
    return total;
  };
  const [packed, rowwise] = [run(false), run(true)];
  emit({
    bench: 'serve', metric: 'batch_invariance_cost_f32_16rows', unit: 'ms', ours: rowwise * 1000, peer: packed * 1000, peer_name: 'the same products as a packed GEMM (not batch-invariant)',
    higher_is_better: false, note: `base products of one 16-row decode step of the F32 135M shape (30 layers × 7 linears + the LM head), ${threads} threads; ratio < 1 is what invariance costs`,
  });
}

export async function runServeBench(): Promise<void> {
  invarianceCost(Math.max(...threadCounts()));
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-serve-'));
  try {
    const paths = writeModels(dir, ['f32', 'q8_0']);
    for (const [dtype, path] of paths) {
      for (const streams of STREAMS) {
        const runs = threadCounts().map((threads) => ({ threads, ours: child({ side: 'ours', path, threads, streams }), peer: child({ side: 'peer', path, threads, streams }) }));
        const best = (side: 'ours' | 'peer'): { threads: number; r: ChildResult } =>
          runs.map((x) => ({ threads: x.threads, r: x[side] })).reduce((a, b) => (tps(b.r) > tps(a.r) ? b : a));
        const [o, p] = [best('ours'), best('peer')];
        emit({
          bench: 'serve', metric: `streams${streams}_${dtype}_tokens_per_s`, unit: 'tokens/s', ours: tps(o.r), peer: tps(p.r), peer_name: PEER_NAME, higher_is_better: true,
          peak_rss_mb: o.r.peakRssMb,
          note: `${streams} concurrent greedy requests, ${PROMPT}-token prompts, ${GEN} tokens each, ${dtype} GGUF; best thread count: ours ${o.threads}, llama.cpp ${p.threads}; ` +
            `ours ${lat(o.r)}; llama.cpp ${lat(p.r)}; peak RSS ours ${round(o.r.peakRssMb)} MB vs ${round(p.r.peakRssMb)} MB; target ≥ 1.0×`,
        });
        emit({
          bench: 'serve', metric: `streams${streams}_${dtype}_peak_rss`, unit: 'MB', ours: o.r.peakRssMb, peer: p.r.peakRssMb, peer_name: PEER_NAME, higher_is_better: false,
          peak_rss_mb: o.r.peakRssMb, note: 'peak resident memory of each side\'s process at its best thread count; target ≤ 1.2×',
        });
      }
    }
    // adapters: 16 streams over 8 adapters vs one adapter vs one at a time (q8_0, every thread)
    const path = paths.get('q8_0') ?? '';
    const threads = Math.max(...threadCounts());
    const base = { side: 'ours' as const, path, threads, streams: 16, adapters: 8 };
    const mixed = child({ ...base, spread: 'mixed' });
    const one = child({ ...base, spread: 'one' });
    const sequential = child({ ...base, spread: 'mixed', parallel: 1 });
    const note = `16 greedy requests of ${GEN} tokens over 8 LoRA adapters (r16, every block linear), q8_0 135M shape, ${threads} threads`;
    emit({
      bench: 'serve', metric: 'adapters8_vs_one_16streams', unit: 'tokens/s', ours: tps(mixed), peer: tps(one), peer_name: 'nomoat, the same 16 streams on one adapter', higher_is_better: true,
      peak_rss_mb: mixed.peakRssMb, note: `${note}; mixed ${lat(mixed)}; one adapter ${lat(one)}; target ≥ 0.8×`,
    });
    emit({
      bench: 'serve', metric: 'adapters8_batched_vs_one_at_a_time', unit: 'tokens/s', ours: tps(mixed), peer: tps(sequential), peer_name: 'nomoat, the same 16 requests served one at a time', higher_is_better: true,
      peak_rss_mb: mixed.peakRssMb, note: `${note}; one at a time ${lat(sequential)}; target ≥ 3×`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await runServeLoad();
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'child') {
  const spec = JSON.parse(process.argv[3] ?? '') as ChildSpec;
  const result = spec.side === 'ours' ? runOurs(spec) : runPeer(spec);
  result.then((r) => console.log(JSON.stringify(r))).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
