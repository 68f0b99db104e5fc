// Inference bench against llama.cpp (node-llama-cpp) on the same GGUF file: prompt processing in tokens/s (prompt
// 512, and 2,048 / 4,096 on the 135M shape where attention dominates), greedy generation (128 tokens after the
// prompt) in tokens/s, and peak resident memory, for the models of infer-models.ts: SmolLM-135M's shape (F32, F16,
// BF16, Q8_0, Q4_K_M), Qwen2.5-0.5B's and TinyLlama-1.1B's (F16, BF16, Q8_0, Q4_K_M), random weights; the Q4_K_M
// files are llama.cpp's own quantizer's output. Each engine runs in its own child process, so each peak RSS (VmHWM,
// see peakMb) is that engine's alone: node itself, the loaded model, the KV cache, the work.
//
// Protocol, identical on both sides: load the model, make a context of PROMPT + GEN positions, evaluate a WARMUP-token
// prompt (untimed: it touches every weight once, so page faults and first-use allocations stay out of the timing),
// empty the cache, evaluate the PROMPT-token prompt (timed; the output is the next token's logits), then GEN
// single-token steps (timed), each feeding back the greedy (argmax) token. llama.cpp's child tries flash attention
// off and on, each in its own context on the one loaded model, and generates with the setting of the faster prefill
// (the note says which); its peak RSS is that setting's (VmHWM is reset between them). Both thread counts of each
// side are printed, and a `_best` row compares each side at its own best count. (Before session 11 each setting
// had its own child, generated twice and took the best of 2 prefills: the same rows, in about half the time.)
//
// Subsets (comma lists): NOMOAT_INFER_SHAPES (135m, qwen2.5-0.5b, tinyllama-1.1b), NOMOAT_INFER_DTYPES (f32, f16,
// bf16, q8_0, q4_k_m), NOMOAT_INFER_PROMPTS (e.g. 512,4096). Unset, each shape runs its default dtypes at prompt 512,
// and the 135M shape also runs F16 at 2,048 and 4,096 (the long prompts take the F16 file only unless
// NOMOAT_INFER_DTYPES names the dtypes). NOMOAT_INFER_THREADS (e.g. 1) runs only those thread counts (default 1 and
// all cores).
// Child mode: `node dist/bench/infer.js child JSON` (a ChildSpec) prints one JSON object.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, noGrad, Rng, tidy } from '../src/engine/index.js';
import { KVCache } from '../src/models/kvcache.js';
import { loadModel } from '../src/models/load.js';
import { emit, round, threadCounts } from './common.js';
import { ALL_DTYPES, SHAPES, writeModel, type InferDType, type ShapeName } from './infer-models.js';

export { SMOLLM_135M, writeModels } from './infer-models.js';

const GEN = 128;
const WARMUP = 16;
const PEER_NAME = 'llama.cpp (node-llama-cpp 3.21.1)';
const SHORT_PROMPT = 512;
const LONG_PROMPTS = [2048, 4096] as const; // 135M shape only by default
const LONG_DTYPE: InferDType = 'f16';

/** One row group: a shape's file of one dtype at one prompt length. */
interface Case {
  shape: ShapeName;
  dtype: InferDType;
  prompt: number;
}

/** What the parent asks a child to run. */
interface ChildSpec {
  side: 'ours' | 'peer';
  path: string;
  threads: number;
  prompt: number;
  vocab: number;
}

/** A comma list from env var `name`, each checked against `allowed`; null when unset. */
function envList<T extends string>(name: string, allowed: readonly T[]): T[] | null {
  const env = process.env[name];
  if (env === undefined || env.trim() === '') return null;
  const picked = env.split(',').map((d) => d.trim());
  for (const d of picked) if (!(allowed as readonly string[]).includes(d)) throw new Error(`${name}: '${d}' is not one of ${allowed.join(', ')}`);
  return picked as T[];
}

/** The cases to run, from the defaults and the NOMOAT_INFER_* subsets (see the header). */
export function benchCases(): Case[] {
  const shapes = envList('NOMOAT_INFER_SHAPES', Object.keys(SHAPES) as ShapeName[]) ?? (Object.keys(SHAPES) as ShapeName[]);
  const dtypes = envList('NOMOAT_INFER_DTYPES', ALL_DTYPES);
  const promptEnv = process.env.NOMOAT_INFER_PROMPTS;
  const prompts = promptEnv === undefined || promptEnv.trim() === '' ? null : promptEnv.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 2 || n > 16384) throw new Error(`NOMOAT_INFER_PROMPTS: '${p}' is not a prompt length in [2, 16384]`);
    return n;
  });
  const cases: Case[] = [];
  for (const shape of shapes) {
    const shapeDtypes = dtypes ?? (shape === '135m' ? ALL_DTYPES : ALL_DTYPES.filter((d) => d !== 'f32'));
    const shapePrompts = prompts ?? (shape === '135m' ? [SHORT_PROMPT, ...LONG_PROMPTS] : [SHORT_PROMPT]);
    for (const dtype of shapeDtypes) {
      for (const prompt of shapePrompts) {
        if (prompt > SHORT_PROMPT && dtypes === null && dtype !== LONG_DTYPE) continue;
        cases.push({ shape, dtype, prompt });
      }
    }
  }
  return cases;
}

/** What a child reports. */
interface SideResult {
  loadS: number;
  prefillTps: number;
  genTps: number;
  /** the same rates per second of process CPU time (all threads): at 1 thread, robust to other load on the machine */
  prefillCpuTps: number;
  genCpuTps: number;
  peakRssMb: number;
  tokens: number[]; // the greedy tokens (both engines should agree on most of them; printed as a sanity note)
  /** llama.cpp only: prefill tokens/s with flash attention off and on, and the one kept */
  flash?: { off: number; on: number; kept: boolean; ownPeak: boolean };
}

/** The prompt: BOS then seeded random ids of ordinary tokens (the same for both engines). */
export function promptIds(vocab: number, n = SHORT_PROMPT): number[] {
  const rng = new Rng(11);
  return [1, ...Array.from({ length: n - 1 }, () => 259 + rng.int(vocab - 259))];
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] ?? -Infinity) > (x[best] ?? -Infinity)) best = i;
  return best;
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** Wall and process-CPU seconds since `start()`. */
interface Clock {
  wall: bigint;
  cpu: NodeJS.CpuUsage;
}
const start = (): Clock => ({ wall: process.hrtime.bigint(), cpu: process.cpuUsage() });
function elapsed(c: Clock): { wallS: number; cpuS: number } {
  const u = process.cpuUsage(c.cpu);
  return { wallS: seconds(c.wall), cpuS: (u.user + u.system) / 1e6 };
}
/**
 * Peak RSS of this process in MB: VmHWM, the high-water mark of this process's own address space. Not
 * resourceUsage().maxRSS: Linux carries the forking parent's RSS into an exec'ed child's maxRSS (the old address
 * space, a copy of the parent's, is counted at exec), so a child of a big parent would report the parent's size.
 * resetPeak() restarts the mark.
 */
export function peakMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1] !== undefined) return Number(m[1]) / 1024;
  } catch {
    // no /proc (macOS): fall back below
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** Restarts VmHWM at the current RSS (Linux ≥ 4.0: "5" to clear_refs); false where that is not possible. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

type Timing = { wallS: number; cpuS: number };
function rates(prompt: number, loadS: number, prefill: Timing, gen: Timing, tokens: number[]): SideResult {
  return {
    loadS, prefillTps: prompt / prefill.wallS, genTps: GEN / gen.wallS, prefillCpuTps: prompt / prefill.cpuS, genCpuTps: GEN / gen.cpuS,
    peakRssMb: peakMb(), tokens,
  };
}

// ---- child: nomoat -------------------------------------------------------------------------------------------

function runOurs(s: ChildSpec): SideResult {
  getBackend().setThreads(s.threads);
  const t0 = process.hrtime.bigint();
  const { model } = loadModel(s.path);
  const loadS = seconds(t0);
  const prompt = Int32Array.from(promptIds(model.config.vocabSize, s.prompt));
  const cache = new KVCache(model.config, 1, s.prompt + GEN);
  const step = (ids: Int32Array): number => noGrad(() => tidy(() => {
    const logits = model.forwardLast(ids, 1, ids.length, cache); // [1, V]
    return argmax(logits.data);
  }));
  step(prompt.subarray(0, WARMUP));
  cache.truncate(0);
  const c0 = start();
  let next = step(prompt);
  const prefill = elapsed(c0);
  const tokens = [next];
  const c = start();
  for (let i = 0; i < GEN; i++) {
    next = step(Int32Array.of(next));
    tokens.push(next);
  }
  const gen = elapsed(c);
  cache.dispose();
  model.dispose();
  return rates(s.prompt, loadS, prefill, gen, tokens);
}

// ---- child: llama.cpp ----------------------------------------------------------------------------------------

async function runPeer(s: ChildSpec): Promise<SideResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: s.threads });
  const t0 = process.hrtime.bigint();
  const model = await llama.loadModel({ modelPath: s.path, gpuLayers: 0 });
  const loadS = seconds(t0);
  const prompt = promptIds(s.vocab, s.prompt);
  const context = (flash: boolean) => model.createContext({ contextSize: s.prompt + GEN, batchSize: s.prompt, threads: s.threads, sequences: 1, flashAttention: flash });
  type Ctx = Awaited<ReturnType<typeof context>>;
  /** Warm-up, then the timed prompt; the iterator is left after the prompt's first token. */
  const prefillIn = async (ctx: Ctx) => {
    const seq = ctx.getSequence();
    const warm = seq.evaluate(prompt.slice(0, WARMUP) as never[], { temperature: 0, yieldEogToken: true });
    await warm.next();
    await warm.return();
    await seq.clearHistory();
    // evaluate() decodes the whole prompt before yielding its first token: that wait is the prompt processing
    const it = seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true });
    const c = start();
    const first = await it.next();
    const timing = elapsed(c);
    if (first.done === true) throw new Error('llama.cpp produced no token after the prompt');
    return { it, timing, first: first.value };
  };
  // flash attention off, then on; generation continues in the faster one's context (off's made again when off wins)
  const offCtx = await context(false);
  const off = await prefillIn(offCtx);
  await off.it.return();
  await offCtx.dispose();
  let ownPeak = resetPeak();
  let ctx = await context(true);
  let run = await prefillIn(ctx);
  const on = run.timing;
  const kept = s.prompt / on.wallS > s.prompt / off.timing.wallS;
  if (!kept) {
    await run.it.return();
    await ctx.dispose();
    ownPeak = resetPeak() && ownPeak;
    ctx = await context(false);
    run = await prefillIn(ctx);
  }
  const tokens: number[] = [run.first];
  // each further token is one single-token decode of the previous one, then greedy sampling
  const c2 = start();
  for (let i = 0; i < GEN; i++) {
    const o = await run.it.next();
    if (o.done === true) throw new Error(`llama.cpp stopped after ${i} generated tokens`);
    tokens.push(o.value);
  }
  const gen = elapsed(c2);
  await run.it.return();
  const result = rates(s.prompt, loadS, kept ? on : off.timing, gen, tokens);
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { ...result, flash: { off: s.prompt / off.timing.wallS, on: s.prompt / on.wallS, kept, ownPeak } };
}

// ---- parent ----------------------------------------------------------------------------------------------------

function child(s: ChildSpec): SideResult {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(s.threads) };
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', JSON.stringify(s)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`infer bench: ${s.side} child (${s.path}, ${s.threads} threads, prompt ${s.prompt}) failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as SideResult;
}

/** llama.cpp at its best for this file and thread count: its child tries flash attention off and on (see runPeer). */
function bestPeer(base: Omit<ChildSpec, 'side'>): { peer: SideResult; note: string } {
  const peer = child({ ...base, side: 'peer' });
  const f = peer.flash;
  if (f === undefined) throw new Error('infer bench: the llama.cpp child reported no flash attention timings');
  const peak = f.ownPeak ? '' : '; its peak RSS covers both settings (VmHWM could not be reset here)';
  return { peer, note: `llama.cpp flash attention ${f.kept ? 'on' : 'off'} (prefill ${round(f.on)} tokens/s on vs ${round(f.off)} off)${peak}` };
}

function agreement(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Runs one case on both sides at every thread count and emits its rows. */
function runCase(c: Case, path: string, threadsList: readonly number[]): void {
  const fileMb = statSync(path).size / (1 << 20);
  const tag = `${c.shape}_${c.dtype}`;
  const what = `${c.shape} shape, ${c.dtype} GGUF ${round(fileMb)} MB, prompt ${c.prompt}`;
  const runs: { threads: number; ours: SideResult; peer: SideResult }[] = [];
  for (const threads of threadsList) {
    const base = { path, threads, prompt: c.prompt, vocab: SHAPES[c.shape].vocabSize };
    const { peer, note: flashNote } = bestPeer(base);
    const ours = child({ ...base, side: 'ours' });
    runs.push({ threads, ours, peer });
    const same = agreement(ours.tokens, peer.tokens);
    const note = `${what}; ${flashNote}; load ${round(ours.loadS)} s ours vs ${round(peer.loadS)} s peer; ` +
      `greedy tokens identical for the first ${same} of ${GEN + 1}; peak RSS ours ${round(ours.peakRssMb)} MB vs peer ${round(peer.peakRssMb)} MB`;
    const rows = [
      ['prefill', ours.prefillTps, peer.prefillTps, ours.prefillCpuTps, peer.prefillCpuTps, c.prompt],
      ['generate', ours.genTps, peer.genTps, ours.genCpuTps, peer.genCpuTps, GEN],
    ] as const;
    for (const [name, o, p, oc, pc, n] of rows) {
      const metric = name === 'prefill' ? `prefill_${n}_${tag}_t${threads}` : `generate_${n}_after_${c.prompt}_${tag}_t${threads}`;
      emit({
        bench: 'infer', metric, unit: 'tokens/s', ours: o, peer: p, peer_name: PEER_NAME, higher_is_better: true, peak_rss_mb: ours.peakRssMb,
        note: `${note}; per CPU-second (all threads; at 1 thread robust to other load) ${round(oc)} ours vs ${round(pc)} peer = ${round(oc / pc)}×; target ≥ 1.0× llama.cpp`,
      });
    }
  }
  // each side at its own best thread count (on 2 cores llama.cpp's generation is often faster on 1)
  const best = (side: 'ours' | 'peer', rate: (r: SideResult) => number): { threads: number; tps: number; rss: number } =>
    runs.map((r) => ({ threads: r.threads, tps: rate(r[side]), rss: r[side].peakRssMb })).reduce((a, b) => (b.tps > a.tps ? b : a));
  for (const [name, rate, n] of [['prefill', (r: SideResult) => r.prefillTps, c.prompt], ['generate', (r: SideResult) => r.genTps, GEN]] as const) {
    const [o, p] = [best('ours', rate), best('peer', rate)];
    const metric = name === 'prefill' ? `prefill_${n}_${tag}_best` : `generate_${n}_after_${c.prompt}_${tag}_best`;
    emit({
      bench: 'infer', metric, unit: 'tokens/s', ours: o.tps, peer: p.tps, peer_name: PEER_NAME, higher_is_better: true, peak_rss_mb: o.rss,
      note: `${what}; best thread count of each side: ours ${o.threads}, llama.cpp ${p.threads} (tried ${threadsList.join(', ')})`,
    });
  }
  const peak = (side: 'ours' | 'peer'): number => Math.max(...runs.map((r) => r[side].peakRssMb));
  emit({
    bench: 'infer', metric: `peak_rss_${c.prompt}_${tag}`, unit: 'MB', ours: peak('ours'), peer: peak('peer'), peer_name: PEER_NAME, higher_is_better: false,
    peak_rss_mb: peak('ours'),
    note: `${what}; peak resident memory of the whole child process (node + model + KV cache of ${c.prompt + GEN} + work), max over thread counts (llama.cpp's of the flash setting kept); target ≤ 1.1× llama.cpp`,
  });
}

export function runInferBench(): void {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-infer-'));
  const t0 = process.hrtime.bigint();
  try {
    const cases = benchCases();
    const all = [...threadCounts()].reverse(); // all cores first (the headline), then 1 thread
    const threadsList = envList('NOMOAT_INFER_THREADS', all.map(String))?.map(Number) ?? all;
    // one file at a time (a 1.1B F16 file is 2.2 GB), every prompt length of it before the next
    const files = [...new Set(cases.map((c) => `${c.shape}/${c.dtype}`))];
    for (const file of files) {
      const [shape, dtype] = file.split('/') as [ShapeName, InferDType];
      const path = writeModel(dir, shape, dtype);
      for (const c of cases.filter((k) => k.shape === shape && k.dtype === dtype)) runCase(c, path, threadsList);
      rmSync(path);
    }
    console.error(`infer bench: ${cases.length} cases in ${round(seconds(t0))} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- child entry -----------------------------------------------------------------------------------------------

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'child') {
  const spec = JSON.parse(process.argv[3] ?? '{}') as ChildSpec;
  const result = spec.side === 'ours' ? Promise.resolve(runOurs(spec)) : spec.side === 'peer' ? runPeer(spec) : Promise.reject(new Error(`unknown side ${String(spec.side)}`));
  result.then((r) => console.log(JSON.stringify(r))).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
