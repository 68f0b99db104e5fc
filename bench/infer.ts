// Inference bench against llama.cpp (node-llama-cpp) on the same GGUF file: prompt processing (512 tokens) and
// greedy generation (128 tokens) in tokens/s, and peak resident memory, for F32, F16, BF16, Q8_0 and Q4_K_M files of a
// ~135M-parameter Llama (SmolLM-135M's shape, random weights). The Q4_K_M file is llama.cpp's own: the F16 file through
// llama_model_quantize (../shared/tools/llamacpp_quantize.py; 576-wide rows fall back to q5_0 / q8_0, ffn_down keeps
// q4_K / q6_K). NOMOAT_INFER_DTYPES=q4_k_m (a comma list) runs only those files. Each engine runs in its own child
// process, so each peak RSS (VmHWM, see peakMb) is that engine's alone: node itself, the loaded model, the KV cache,
// the work.
//
// Protocol, identical on both sides: load the model, make a context of CTX positions, evaluate the PROMPT-token
// prompt (timed; best of PREFILL_REPS with the cache emptied in between; the output is the next token's logits),
// then GEN single-token steps (timed), each feeding back the greedy (argmax) token.
// Child mode: `node dist/bench/infer.js child ours|peer FILE THREADS` prints one JSON object.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dtypeBytes, getBackend, noGrad, Rng, Tensor, tidy } from '../src/engine/index.js';
import { f32ToF16Bits } from '../src/engine/quant/index.js';
import { KVCache } from '../src/models/kvcache.js';
import { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { saveGguf, type OutType } from '../src/models/convert.js';
import type { LlamaConfig } from '../src/models/config.js';
import { GgufTokenizer, TokenType } from '../src/tokenizer/index.js';
import { emit, round, threadCounts } from './common.js';

const PROMPT = 512;
const GEN = 128;
const CTX = 640; // PROMPT + GEN
const PREFILL_REPS = 2;
const PEER_NAME = 'llama.cpp (node-llama-cpp 3.21.1)';
/** The files: our writer's dtypes, and llama.cpp's Q4_K_M mix (the file most people download). */
type InferDType = OutType | 'q4_k_m';
const ALL_DTYPES: readonly InferDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'];
const QUANTIZE = fileURLToPath(new URL('../../../shared/tools/llamacpp_quantize.py', import.meta.url)); // from dist/bench
const Q4_K_M_FTYPE = 15; // llama_ftype (llama.h)

/** The dtypes to run: NOMOAT_INFER_DTYPES (a comma list of ALL_DTYPES) or all of them. */
function benchDTypes(): readonly InferDType[] {
  const env = process.env.NOMOAT_INFER_DTYPES;
  if (env === undefined || env === '') return ALL_DTYPES;
  const picked = env.split(',').map((d) => d.trim());
  for (const d of picked) {
    if (!(ALL_DTYPES as readonly string[]).includes(d)) throw new Error(`NOMOAT_INFER_DTYPES: '${d}' is not one of ${ALL_DTYPES.join(', ')}`);
  }
  return picked as InferDType[];
}

/** SmolLM-135M's shape (HF config of HuggingFaceTB/SmolLM-135M). */
export const SMOLLM_135M: LlamaConfig = {
  arch: 'llama', vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeMode: 'interleaved', maxPositionEmbeddings: 2048,
  tieWordEmbeddings: true, attentionBias: false, bosTokenId: 1, eosTokenId: [2],
};

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
}

/** An SPM vocab of `n` tokens llama.cpp loads: <unk> <s> </s>, the 256 byte tokens (it needs <0x0A>), then
 *  synthetic normal pieces. Only its size matters here: both engines are fed token ids. */
function syntheticVocab(n: number): GgufTokenizer {
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)];
  while (tokens.length < n) tokens.push(`\u2581t${tokens.length}`);
  const types = tokens.map((_, i) => (i === 0 ? TokenType.unknown : i < 3 ? TokenType.control : i < 259 ? TokenType.byte : TokenType.normal));
  return new GgufTokenizer({
    model: 'llama', pre: 'default', tokens, scores: tokens.map((_, i) => -i), tokenTypes: types, merges: [], bosId: 1, eosId: 2,
    unkId: 0, padId: null, eotId: null, addBos: true, chatTemplate: null, name: 'bench-135m',
  });
}

/** The prompt: BOS then seeded random ids of ordinary tokens (the same for both engines). */
export function promptIds(vocab: number): number[] {
  const rng = new Rng(11);
  return [1, ...Array.from({ length: PROMPT - 1 }, () => 259 + rng.int(vocab - 259))];
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

function rates(loadS: number, prefill: { wallS: number; cpuS: number }, gen: { wallS: number; cpuS: number }, tokens: number[]): SideResult {
  return {
    loadS, prefillTps: PROMPT / prefill.wallS, genTps: GEN / gen.wallS, prefillCpuTps: PROMPT / prefill.cpuS, genCpuTps: GEN / gen.cpuS,
    peakRssMb: peakMb(), tokens,
  };
}

// ---- child: nomoat -------------------------------------------------------------------------------------------

function runOurs(path: string, threads: number): SideResult {
  getBackend().setThreads(threads);
  const t0 = process.hrtime.bigint();
  const { model } = loadModel(path);
  const loadS = seconds(t0);
  const prompt = Int32Array.from(promptIds(model.config.vocabSize));
  const cache = new KVCache(model.config, 1, CTX);
  const step = (ids: Int32Array): number => noGrad(() => tidy(() => {
    const logits = model.forwardLast(ids, 1, ids.length, cache); // [1, V]
    return argmax(logits.data);
  }));
  let prefill = { wallS: Infinity, cpuS: Infinity };
  let next = 0;
  for (let r = 0; r < PREFILL_REPS; r++) {
    cache.truncate(0);
    const c = start();
    next = step(prompt);
    const e = elapsed(c);
    if (e.wallS < prefill.wallS) prefill = e;
  }
  const tokens = [next];
  const c = start();
  for (let i = 0; i < GEN; i++) {
    next = step(Int32Array.of(next));
    tokens.push(next);
  }
  const gen = elapsed(c);
  cache.dispose();
  model.dispose();
  return rates(loadS, prefill, gen, tokens);
}

// ---- child: llama.cpp ----------------------------------------------------------------------------------------

async function runPeer(path: string, threads: number): Promise<SideResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
  const t0 = process.hrtime.bigint();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: CTX, batchSize: PROMPT, threads, sequences: 1 });
  const loadS = seconds(t0);
  const seq = ctx.getSequence();
  const prompt = promptIds(SMOLLM_135M.vocabSize);
  let prefill = { wallS: Infinity, cpuS: Infinity };
  const tokens: number[] = [];
  for (let r = 0; r < PREFILL_REPS; r++) {
    await seq.clearHistory();
    // evaluate() decodes the whole prompt before yielding its first token: that wait is the prompt processing
    const it = seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true });
    const c = start();
    const first = await it.next();
    const e = elapsed(c);
    if (e.wallS < prefill.wallS) prefill = e;
    if (first.done === true) throw new Error('llama.cpp produced no token after the prompt');
    if (r < PREFILL_REPS - 1) {
      await it.return();
      continue;
    }
    tokens.push(first.value);
    // each further token is one single-token decode of the previous one, then greedy sampling
    const c2 = start();
    for (let i = 0; i < GEN; i++) {
      const o = await it.next();
      if (o.done === true) throw new Error(`llama.cpp stopped after ${i} generated tokens`);
      tokens.push(o.value);
    }
    const gen = elapsed(c2);
    await it.return();
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
    return rates(loadS, prefill, gen, tokens);
  }
  throw new Error('unreachable: PREFILL_REPS must be ≥ 1');
}

// ---- parent ----------------------------------------------------------------------------------------------------

function child(side: 'ours' | 'peer', path: string, threads: number): SideResult {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', side, path, String(threads)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`infer bench: ${side} child (${path}, ${threads} threads) failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as SideResult;
}

/** [rows, cols] of a 2-D weight of cfg by HF name. */
function weightShape(cfg: LlamaConfig, name: string): [number, number] {
  const [C, I, q, kv] = [cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * cfg.headDim, cfg.numKvHeads * cfg.headDim];
  const byModule: [RegExp, [number, number]][] = [
    [/embed_tokens|lm_head/, [cfg.vocabSize, C]], [/q_proj/, [q, C]], [/[kv]_proj/, [kv, C]], [/o_proj/, [C, q]],
    [/gate_proj|up_proj/, [I, C]], [/down_proj/, [C, I]],
  ];
  const hit = byModule.find(([re]) => re.test(name));
  if (hit === undefined) throw new Error(`infer bench: no shape for ${name}`);
  return hit[1];
}

/**
 * A random SmolLM-135M-shaped model with its 2-D weights directly in `dtype` (uniform values of std 0.02; q8_0
 * blocks of random int8 with one fixed scale), so no slow f32 → q8_0 encoding is needed to write the file.
 */
function randomModel(dtype: OutType): LlamaModel {
  let state = 0x9e3779b9;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const amp = 0.02 * Math.sqrt(3); // uniform(−a, a) has std a/√3
  return new LlamaModel(SMOLLM_135M, (name) => {
    if (/norm\.weight$/.test(name)) return Tensor.full([SMOLLM_135M.hiddenSize], 1).keep();
    const shape = weightShape(SMOLLM_135M, name);
    if (dtype === 'q8_0') {
      const bytes = new Uint8Array(dtypeBytes('q8_0', shape[0] * shape[1]));
      const words = new Uint32Array(bytes.buffer, 0, bytes.length >>> 2);
      for (let i = 0; i < words.length; i++) words[i] = next();
      const scale = f32ToF16Bits(amp / 127);
      for (let b = 0; b < bytes.length; b += 34) {
        bytes[b] = scale & 0xff;
        bytes[b + 1] = scale >>> 8;
      }
      return Tensor.fromBytes(bytes, shape, 'q8_0').keep();
    }
    const t = Tensor.zeros(shape).keep();
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = (next() / 2 ** 31 - 1) * amp;
    return t;
  });
}

/** Writes the GGUF file of each dtype (a random SmolLM-135M-shaped model, a synthetic vocab); returns their paths. */
export function writeModels<D extends InferDType>(dir: string, dtypes: readonly D[]): Map<D, string> {
  const tok = syntheticVocab(SMOLLM_135M.vocabSize);
  const paths = new Map<D, string>();
  for (const dtype of dtypes) {
    const path = join(dir, `smollm135m-random-${dtype}.gguf`);
    const written: OutType = dtype === 'q4_k_m' ? 'f16' : dtype;
    const model = randomModel(written);
    const source = dtype === 'q4_k_m' ? join(dir, 'smollm135m-random-q4_k_m-source-f16.gguf') : path;
    saveGguf(model, tok, source, { dtype: written });
    model.dispose();
    if (dtype === 'q4_k_m') quantizeQ4KM(source, path);
    paths.set(dtype, path);
  }
  return paths;
}

/** llama.cpp's Q4_K_M file of an F16 one (the quantizer loads libllama from node-llama-cpp in the package root). */
function quantizeQ4KM(src: string, dst: string): void {
  if (!existsSync(QUANTIZE)) throw new Error(`infer bench: Q4_K_M needs llama.cpp's quantizer ${QUANTIZE} (../shared/tools beside the clone)`);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync('python3', [QUANTIZE, src, dst, String(Q4_K_M_FTYPE)], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`infer bench: ${QUANTIZE} ${src} → Q4_K_M failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
  rmSync(src);
}

function agreement(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export function runInferBench(): void {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-infer-'));
  try {
    const dtypes = benchDTypes();
    const paths = writeModels(dir, dtypes);
    // all cores first (the headline), then 1 thread
    const threadsList = [...threadCounts()].reverse();
    for (const dtype of dtypes) {
      const path = paths.get(dtype) ?? '';
      const fileMb = statSync(path).size / (1 << 20);
      let peakOurs = 0;
      let peakPeer = 0;
      const runs: { threads: number; ours: SideResult; peer: SideResult }[] = [];
      for (const threads of threadsList) {
        const peer = child('peer', path, threads);
        const ours = child('ours', path, threads);
        runs.push({ threads, ours, peer });
        peakOurs = Math.max(peakOurs, ours.peakRssMb);
        peakPeer = Math.max(peakPeer, peer.peakRssMb);
        const same = agreement(ours.tokens, peer.tokens);
        const note = `${dtype} GGUF ${round(fileMb)} MB; load ${round(ours.loadS)} s ours vs ${round(peer.loadS)} s peer; ` +
          `greedy tokens identical for the first ${same} of ${GEN + 1}; peak RSS ours ${round(ours.peakRssMb)} MB vs peer ${round(peer.peakRssMb)} MB`;
        const rows = [
          ['prefill', ours.prefillTps, peer.prefillTps, ours.prefillCpuTps, peer.prefillCpuTps, PROMPT],
          ['generate', ours.genTps, peer.genTps, ours.genCpuTps, peer.genCpuTps, GEN],
        ] as const;
        for (const [name, o, p, oc, pc, n] of rows) {
          emit({
            bench: 'infer', metric: `${name}_${n}_${dtype}_t${threads}`, unit: 'tokens/s', ours: o, peer: p, peer_name: PEER_NAME, higher_is_better: true,
            peak_rss_mb: ours.peakRssMb,
            note: `${note}; per CPU-second (all threads; at 1 thread robust to other load) ${round(oc)} ours vs ${round(pc)} peer = ${round(oc / pc)}×; ` +
              `target ≥ ${name === 'prefill' ? '1.0' : '0.9'}× llama.cpp`,
          });
        }
      }
      // each side at its own best thread count (on 2 cores llama.cpp's generation is often faster on 1)
      for (const [name, rate, n] of [['prefill', (r: SideResult) => r.prefillTps, PROMPT], ['generate', (r: SideResult) => r.genTps, GEN]] as const) {
        const best = (side: 'ours' | 'peer'): { threads: number; tps: number } =>
          runs.map((r) => ({ threads: r.threads, tps: rate(r[side]) })).reduce((a, b) => (b.tps > a.tps ? b : a));
        const [o, p] = [best('ours'), best('peer')];
        emit({
          bench: 'infer', metric: `${name}_${n}_${dtype}_best`, unit: 'tokens/s', ours: o.tps, peer: p.tps, peer_name: PEER_NAME, higher_is_better: true,
          peak_rss_mb: peakOurs, note: `${dtype} GGUF; best thread count of each side: ours ${o.threads}, llama.cpp ${p.threads} (tried ${threadsList.join(', ')})`,
        });
      }
      emit({
        bench: 'infer', metric: `peak_rss_${dtype}`, unit: 'MB', ours: peakOurs, peer: peakPeer, peer_name: PEER_NAME, higher_is_better: false,
        peak_rss_mb: peakOurs, note: `peak resident memory of the whole child process (node + model + KV cache of ${CTX} + work), max over thread counts; file ${round(fileMb)} MB; target ≤ 1.2× llama.cpp`,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- child entry -----------------------------------------------------------------------------------------------

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'child') {
  const [side, path, threads] = [process.argv[3], process.argv[4] ?? '', Number(process.argv[5] ?? '1')];
  const result = side === 'ours' ? Promise.resolve(runOurs(path, threads)) : side === 'peer' ? runPeer(path, threads) : Promise.reject(new Error(`unknown side ${side}`));
  result.then((r) => console.log(JSON.stringify(r))).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
