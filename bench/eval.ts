// Evaluation bench against llama.cpp (node-llama-cpp 3.21.1) on the same GGUF file (the bundled model, F16 as it is
// shipped): loglikelihood requests per second, multiple-choice style (one context of 100–300 tokens, 4 answers of
// 2–8 tokens) and single requests (context 20–200, continuation 1–10), and perplexity tokens per second (HF sliding
// windows, ctx 256, stride 128). Token ids are seeded random ids of ordinary tokens: the cost does not depend on the
// text, and both sides get the same ids.
//
// Each side runs in its own child process, at every setting tried, and the fastest setting of each side is reported
// (printed in the note): ours over threads × batchSize, llama.cpp over threads × parallel sequences. llama.cpp at its
// best through node-llama-cpp: a context is evaluated once per question and each answer is evaluated after it, then
// erased (prefix reuse); several questions run in parallel sequences, which node-llama-cpp batches into one decode.
// node-llama-cpp exposes a scored token's probability only as the full next-token distribution
// (controlledEvaluate with generateNext.probabilities: a sorted vocabulary-sized list per row, built in C++ and
// revived into a Map); that cost is part of the peer's time, as it is part of any node-llama-cpp evaluator. The note
// also gives llama.cpp's time for the same decodes with nothing read back, a ceiling no node-llama-cpp scorer reaches.
// Child mode: `node dist/bench/eval.js child ours|peer FILE THREADS BATCH VOCAB` prints one JSON object.
// Ours at batchSize b: b sequences per loglikelihood forward, b/4 windows of PPL_CTX per perplexity forward.
// NOMOAT_EVAL_BENCH_QUICK=1: a few requests only (checks that the bench runs; the numbers mean little).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlamaContextSequence as Seq } from 'node-llama-cpp';
import { getBackend, Rng } from '../src/engine/index.js';
import { hfWindows, loglikelihoods, perplexity, type LoglikelihoodRequest, type Window } from '../src/eval/index.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
import { emit, round, threadCounts } from './common.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const BUNDLED = join(ROOT, 'assets', 'default-model');
const PEER_NAME = 'llama.cpp (node-llama-cpp 3.21.1)';
const QUICK = process.env.NOMOAT_EVAL_BENCH_QUICK === '1';
const MC_QUESTIONS = QUICK ? 4 : 32;
const MC_CHOICES = 4;
const SINGLES = QUICK ? 8 : 64;
const PPL_TOKENS = QUICK ? 512 : 2048;
const PPL_CTX = 256;
const PPL_STRIDE = 128;
const REPS = QUICK ? 1 : 2; // best of, after one untimed warm-up pass
const OURS_BATCH = [8, 16];
const PEER_SEQUENCES = [1, 4];

type Workload = 'mc' | 'single' | 'ppl';
const WORKLOADS: readonly Workload[] = ['mc', 'single', 'ppl'];

interface Requests {
  mc: LoglikelihoodRequest[];
  single: LoglikelihoodRequest[];
  ppl: number[];
}

/** The seeded workloads (the same ids on both sides): ordinary tokens only, after the first 3 (unk, bos, eos). */
function requests(V: number): Requests {
  const rng = new Rng(13);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 3 + rng.int(V - 3));
  const mc: LoglikelihoodRequest[] = [];
  for (let q = 0; q < MC_QUESTIONS; q++) {
    const context = [1, ...ids(99 + rng.int(201))];
    for (let c = 0; c < MC_CHOICES; c++) mc.push({ context, continuation: ids(2 + rng.int(7)) });
  }
  const single = Array.from({ length: SINGLES }, () => ({ context: [1, ...ids(19 + rng.int(181))], continuation: ids(1 + rng.int(10)) }));
  return { mc, single, ppl: [1, ...ids(PPL_TOKENS - 1)] };
}

/** What a child reports per workload: best seconds, and the scores (to compare the two engines). */
export interface SideResult {
  seconds: Record<Workload, number>;
  /** process CPU seconds (all threads) of the run timed in `seconds` */
  cpuSeconds: Record<Workload, number>;
  logprobs: number[]; // mc then single
  ppl: number;
  /** llama.cpp only: the same decodes without asking for any distribution (no LM-head rows, no probability lists) */
  decodeSeconds?: Record<Workload, number>;
}

/** Wall and process-CPU seconds of the fastest of REPS runs, after one untimed run. */
async function bestOf(fn: () => Promise<void> | void): Promise<{ wall: number; cpu: number }> {
  await fn(); // warm-up
  let best = { wall: Infinity, cpu: Infinity };
  for (let r = 0; r < REPS; r++) {
    const [t0, c0] = [process.hrtime.bigint(), process.cpuUsage()];
    await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    if (wall < best.wall) best = { wall, cpu: (c.user + c.system) / 1e6 };
  }
  return best;
}

/** Splits {workload: {wall, cpu}} into the two records a child reports. */
function split(t: Record<Workload, { wall: number; cpu: number }>): { seconds: Record<Workload, number>; cpuSeconds: Record<Workload, number> } {
  return {
    seconds: { mc: t.mc.wall, single: t.single.wall, ppl: t.ppl.wall },
    cpuSeconds: { mc: t.mc.cpu, single: t.single.cpu, ppl: t.ppl.cpu },
  };
}

// ---- child: nomoat -------------------------------------------------------------------------------------------

async function runOurs(path: string, threads: number, batchSize: number, V: number): Promise<SideResult> {
  getBackend().setThreads(threads);
  const { model } = loadModel(path);
  if (model.config.vocabSize !== V) throw new Error(`eval bench: the file has ${model.config.vocabSize} tokens, the parent said ${V}`);
  const reqs = requests(V);
  let logprobs: number[] = [];
  let ppl = NaN;
  const timed = {
    mc: await bestOf(() => void (logprobs = loglikelihoods(model, reqs.mc, { batchSize }).map((r) => r.logprob))),
    single: await bestOf(() => void logprobs.push(...loglikelihoods(model, reqs.single, { batchSize }).map((r) => r.logprob))),
    ppl: await bestOf(() => void (ppl = perplexity(model, reqs.ppl, { ctx: PPL_CTX, stride: PPL_STRIDE, batchSize: Math.max(1, batchSize / 4) }).ppl)),
  };
  model.dispose();
  return { ...split(timed), logprobs: logprobs.slice(0, reqs.mc.length + reqs.single.length), ppl };
}

// ---- child: llama.cpp ----------------------------------------------------------------------------------------

async function runPeer(path: string, threads: number, sequences: number, V: number): Promise<SideResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: 512, batchSize: 512, threads, sequences });
  const seqs = Array.from({ length: sequences }, () => ctx.getSequence());
  const reqs = requests(V);

  /** log p of each target at the flagged positions of input, appended to what the sequence holds. */
  const score = async (seq: Seq, input: readonly number[], rows: readonly number[], targets: readonly number[]): Promise<number[]> => {
    const want = new Set(rows);
    const out = await seq.controlledEvaluate(input.map((t, i) => (want.has(i) ? [t, { generateNext: { probabilities: true } }] : t)) as never);
    return rows.map((r, j) => {
      const p = out[r]?.next.probabilities?.get(targets[j] as never);
      if (p === undefined) throw new Error(`llama.cpp gave no probability for token ${targets[j]} at row ${r}`);
      return Math.log(p);
    });
  };
  /** One context and its continuations: the context once, each continuation after it, then erased. */
  const group = async (seq: Seq, context: readonly number[], conts: readonly (readonly number[])[]): Promise<number[]> => {
    await seq.clearHistory();
    const P = context.length;
    const first = await seq.controlledEvaluate(context.map((t, i) => (i === P - 1 ? [t, { generateNext: { probabilities: true } }] : t)) as never);
    const dist = first[P - 1]?.next.probabilities;
    if (dist === undefined) throw new Error('llama.cpp gave no distribution after the context');
    const res: number[] = [];
    for (const c of conts) {
      let lp = Math.log(dist.get(c[0] as never) ?? NaN);
      if (c.length > 1) {
        for (const x of await score(seq, c.slice(0, -1), c.slice(0, -1).map((_, j) => j), c.slice(1))) lp += x;
        await seq.eraseContextTokenRanges([{ start: P, end: seq.nextTokenIndex }]);
      }
      res.push(lp);
    }
    return res;
  };
  /** Runs jobs on the sequences in parallel (each sequence takes the next job when free); results in job order. */
  const pool = async <T>(jobs: readonly ((seq: Seq) => Promise<T>)[]): Promise<T[]> => {
    const out: T[] = new Array<T>(jobs.length);
    let next = 0;
    await Promise.all(seqs.map(async (seq) => {
      while (next < jobs.length) {
        const j = next++;
        out[j] = await jobs[j](seq);
      }
    }));
    return out;
  };

  const mcGroups: { context: readonly number[]; conts: (readonly number[])[] }[] = [];
  for (let i = 0; i < reqs.mc.length; i += MC_CHOICES) {
    mcGroups.push({ context: reqs.mc[i].context, conts: reqs.mc.slice(i, i + MC_CHOICES).map((r) => r.continuation) });
  }
  const windows: Window[] = hfWindows(reqs.ppl, PPL_CTX, PPL_STRIDE);
  let mcLp: number[] = [];
  let singleLp: number[] = [];
  let ppl = NaN;
  /** The decodes of group() alone: what llama.cpp's engine costs when nothing is read back (a ceiling for the peer). */
  const decodeOnly = async (seq: Seq, context: readonly number[], conts: readonly (readonly number[])[]): Promise<void> => {
    await seq.clearHistory();
    await seq.evaluateWithoutGeneratingNewTokens(context as never);
    for (const c of conts) {
      if (c.length === 1) continue;
      await seq.evaluateWithoutGeneratingNewTokens(c.slice(0, -1) as never);
      await seq.eraseContextTokenRanges([{ start: context.length, end: seq.nextTokenIndex }]);
    }
  };
  const decodeTimed = {
    mc: await bestOf(async () => void (await pool(mcGroups.map((g) => (s: Seq) => decodeOnly(s, g.context, g.conts))))),
    single: await bestOf(async () => void (await pool(reqs.single.map((r) => (s: Seq) => decodeOnly(s, r.context, [r.continuation]))))),
    ppl: await bestOf(async () => void (await pool(windows.map((w) => (s: Seq) => decodeOnly(s, w.input, []))))),
  };
  const timed = {
    mc: await bestOf(async () => void (mcLp = (await pool(mcGroups.map((g) => (s: Seq) => group(s, g.context, g.conts)))).flat())),
    single: await bestOf(async () => void (singleLp = (await pool(reqs.single.map((r) => (s: Seq) => group(s, r.context, [r.continuation])))).flat())),
    ppl: await bestOf(async () => {
      const lps = (await pool(windows.map((w) => async (s: Seq) => {
        await s.clearHistory();
        return score(s, w.input, w.rows, w.targets);
      }))).flat();
      ppl = Math.exp(-lps.reduce((a, x) => a + x, 0) / lps.length);
    }),
  };
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { ...split(timed), logprobs: [...mcLp, ...singleLp], ppl, decodeSeconds: split(decodeTimed).seconds };
}

// ---- parent ----------------------------------------------------------------------------------------------------

function child(side: 'ours' | 'peer', path: string, threads: number, batch: number, V: number): SideResult {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', side, path, String(threads), String(batch), String(V)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`eval bench: ${side} child (${threads} threads, batch ${batch}) failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as SideResult;
}

/** One child's run: which side, at which setting (ours: batchSize; llama.cpp: sequences), and what it reported. */
export interface Run {
  side: 'ours' | 'peer';
  threads: number;
  batch: number;
  r: SideResult;
}

/** The records of the bench from every run of both sides (V: the vocabulary size the requests were drawn from). */
export function report(runs: readonly Run[], V: number): void {
  const counts = requests(V);
  const work: Record<Workload, { n: number; unit: string; metric: string }> = {
    mc: { n: counts.mc.length, unit: 'requests/s', metric: `loglikelihood_mc${MC_CHOICES}_${counts.mc.length}` },
    single: { n: counts.single.length, unit: 'requests/s', metric: `loglikelihood_single_${counts.single.length}` },
    ppl: { n: PPL_TOKENS - 1, unit: 'tokens/s', metric: `perplexity_ctx${PPL_CTX}_stride${PPL_STRIDE}` },
  };
  const ours = runs.filter((x) => x.side === 'ours');
  const peers = runs.filter((x) => x.side === 'peer');
  if (ours.length === 0 || peers.length === 0) throw new Error('eval bench: a side has no runs');
  let worst = 0;
  ours[0].r.logprobs.forEach((lp, i) => (worst = Math.max(worst, Math.abs(lp - (peers[0].r.logprobs[i] ?? NaN)))));
  for (const w of WORKLOADS) {
    const rate = (x: Run): number => work[w].n / x.r.seconds[w];
    const best = (list: readonly Run[]): Run => list.reduce((a, b) => (rate(b) > rate(a) ? b : a));
    const [o, p] = [best(ours), best(peers)];
    const tried = (list: readonly Run[], what: string): string => list.map((x) => `t${x.threads}/${what}${x.batch} ${round(rate(x))}`).join(', ');
    const agree = w === 'ppl' ? `ppl ours ${round(o.r.ppl)} vs llama.cpp ${round(p.r.ppl)}` : `largest |Δ logprob| vs llama.cpp ${worst.toExponential(2)} (F16: llama.cpp rounds activations to f16)`;
    // at 1 thread, work per CPU-second is robust to other load on the machine (wall time is not)
    const cpuRate = (list: readonly Run[]): number => Math.max(...list.filter((x) => x.threads === 1).map((x) => work[w].n / x.r.cpuSeconds[w]));
    const perCpu = `; per CPU-second at 1 thread (robust to other load) ours ${round(cpuRate(ours))} vs llama.cpp ${round(cpuRate(peers))} = ${round(cpuRate(ours) / cpuRate(peers))}×`;
    const ceiling = p.r.decodeSeconds === undefined ? '' : `; llama.cpp's decodes alone (no distribution read back, same setting) ${round(work[w].n / p.r.decodeSeconds[w])} ${work[w].unit}, ours ${round(rate(o) * p.r.decodeSeconds[w] / work[w].n)}× that`;
    emit({
      bench: 'eval', metric: work[w].metric, unit: work[w].unit, ours: rate(o), peer: rate(p), peer_name: PEER_NAME, higher_is_better: true,
      note: `bundled model, F16 GGUF; best of each side: ours ${o.threads} threads batchSize ${o.batch}, llama.cpp ${p.threads} threads ${p.batch} sequences; ` +
        `tried ours [${tried(ours, 'batch')}], llama.cpp [${tried(peers, 'seq')}]; ${agree}${QUICK ? '; QUICK sizes' : ''}${perCpu}${ceiling}; target ≥ 1.0× llama.cpp`,
    });
  }
}

export function runEvalBench(): void {
  if (!existsSync(join(BUNDLED, 'config.json'))) throw new Error(`eval bench: the bundled model is missing (${BUNDLED})`);
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-evalbench-'));
  try {
    const path = join(dir, 'default-f16.gguf');
    const { model, tokenizer } = loadModel(BUNDLED);
    saveGguf(model, tokenizer, path, { dtype: 'f16' });
    const V = model.config.vocabSize;
    model.dispose();
    const runs: Run[] = [];
    for (const threads of threadCounts()) {
      for (const s of PEER_SEQUENCES) runs.push({ side: 'peer', threads, batch: s, r: child('peer', path, threads, s, V) });
      for (const b of OURS_BATCH) runs.push({ side: 'ours', threads, batch: b, r: child('ours', path, threads, b, V) });
    }
    report(runs, V);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- child entry -----------------------------------------------------------------------------------------------

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'child') {
  const [side, path, threads, batch, V] = [process.argv[3], process.argv[4] ?? '', Number(process.argv[5] ?? '1'), Number(process.argv[6] ?? '1'), Number(process.argv[7] ?? '0')];
  const result = side === 'ours' ? runOurs(path, threads, batch, V) : side === 'peer' ? runPeer(path, threads, batch, V) : Promise.reject(new Error(`unknown side ${side}`));
  result.then((r) => console.log(JSON.stringify(r))).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
