// Inference bench against llama.cpp (node-llama-cpp) on the same GGUF file: prompt processing (512 tokens) and
// greedy generation (128 tokens) in tokens/s, and peak resident memory, for F32 and Q8_0 files of a ~135M-parameter
// Llama (SmolLM-135M's shape, random weights). Each engine runs in its own child process, so each peak RSS
// (process.resourceUsage().maxRSS) is that engine's alone: node itself, the loaded model, the KV cache, the work.
//
// Protocol, identical on both sides: load the model, make a context of CTX positions, evaluate the PROMPT-token
// prompt (timed; best of PREFILL_REPS with the cache emptied in between; the output is the next token's logits),
// then GEN single-token steps (timed), each feeding back the greedy (argmax) token.
// Child mode: `node dist/bench/infer.js child ours|peer FILE THREADS` prints one JSON object.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, noGrad, Rng, tidy } from '../src/engine/index.js';
import { KVCache } from '../src/models/kvcache.js';
import { LlamaModel } from '../src/models/llama.js';
import { initWeights } from '../src/models/init.js';
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
const DTYPES: readonly OutType[] = ['f32', 'q8_0'];

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
function promptIds(vocab: number): number[] {
  const rng = new Rng(11);
  return [1, ...Array.from({ length: PROMPT - 1 }, () => 259 + rng.int(vocab - 259))];
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] ?? -Infinity) > (x[best] ?? -Infinity)) best = i;
  return best;
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
const peakMb = (): number => process.resourceUsage().maxRSS / 1024;

// ---- child: nomoat -------------------------------------------------------------------------------------------

function runOurs(path: string, threads: number): SideResult {
  getBackend().setThreads(threads);
  let t0 = process.hrtime.bigint();
  const { model } = loadModel(path);
  const loadS = seconds(t0);
  const prompt = Int32Array.from(promptIds(model.config.vocabSize));
  const cache = new KVCache(model.config, 1, CTX);
  const step = (ids: Int32Array): number => noGrad(() => tidy(() => {
    const logits = model.forwardLast(ids, 1, ids.length, cache); // [1, V]
    return argmax(logits.data);
  }));
  let prefillS = Infinity;
  let next = 0;
  for (let r = 0; r < PREFILL_REPS; r++) {
    cache.truncate(0);
    t0 = process.hrtime.bigint();
    next = step(prompt);
    prefillS = Math.min(prefillS, seconds(t0));
  }
  const tokens = [next];
  t0 = process.hrtime.bigint();
  for (let i = 0; i < GEN; i++) {
    next = step(Int32Array.of(next));
    tokens.push(next);
  }
  const genS = seconds(t0);
  cache.dispose();
  model.dispose();
  return { loadS, prefillTps: PROMPT / prefillS, genTps: GEN / genS, peakRssMb: peakMb(), tokens };
}

// ---- child: llama.cpp ----------------------------------------------------------------------------------------

async function runPeer(path: string, threads: number): Promise<SideResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
  let t0 = process.hrtime.bigint();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: CTX, batchSize: PROMPT, threads, sequences: 1 });
  const loadS = seconds(t0);
  const seq = ctx.getSequence();
  const prompt = promptIds(SMOLLM_135M.vocabSize);
  let prefillS = Infinity;
  const tokens: number[] = [];
  for (let r = 0; r < PREFILL_REPS; r++) {
    await seq.clearHistory();
    // evaluate() decodes the whole prompt before yielding its first token: that wait is the prompt processing
    const it = seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true });
    t0 = process.hrtime.bigint();
    const first = await it.next();
    prefillS = Math.min(prefillS, seconds(t0));
    if (first.done === true) throw new Error('llama.cpp produced no token after the prompt');
    if (r < PREFILL_REPS - 1) {
      await it.return();
      continue;
    }
    tokens.push(first.value);
    // each further token is one single-token decode of the previous one, then greedy sampling
    t0 = process.hrtime.bigint();
    for (let i = 0; i < GEN; i++) {
      const o = await it.next();
      if (o.done === true) throw new Error(`llama.cpp stopped after ${i} generated tokens`);
      tokens.push(o.value);
    }
    const genS = seconds(t0);
    await it.return();
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
    return { loadS, prefillTps: PROMPT / prefillS, genTps: GEN / genS, peakRssMb: peakMb(), tokens };
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

/** Writes the F32 and Q8_0 GGUF files of a random SmolLM-135M-shaped model; returns their paths. */
function writeModels(dir: string): Map<OutType, string> {
  const w = initWeights(SMOLLM_135M, 5, 0.02);
  const model = new LlamaModel(SMOLLM_135M, (n) => w.get(n));
  const tok = syntheticVocab(SMOLLM_135M.vocabSize);
  const paths = new Map<OutType, string>();
  for (const dtype of DTYPES) {
    const path = join(dir, `smollm135m-random-${dtype}.gguf`);
    saveGguf(model, tok, path, { dtype });
    paths.set(dtype, path);
  }
  model.dispose();
  return paths;
}

function agreement(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export function runInferBench(): void {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-infer-'));
  try {
    const paths = writeModels(dir);
    // all cores first (the headline), then 1 thread
    const threadsList = [...threadCounts()].reverse();
    for (const dtype of DTYPES) {
      const path = paths.get(dtype) ?? '';
      const fileMb = statSync(path).size / (1 << 20);
      let peakOurs = 0;
      let peakPeer = 0;
      for (const threads of threadsList) {
        const peer = child('peer', path, threads);
        const ours = child('ours', path, threads);
        peakOurs = Math.max(peakOurs, ours.peakRssMb);
        peakPeer = Math.max(peakPeer, peer.peakRssMb);
        const same = agreement(ours.tokens, peer.tokens);
        const note = `${dtype} GGUF ${round(fileMb)} MB; load ${round(ours.loadS)} s ours vs ${round(peer.loadS)} s peer; ` +
          `greedy tokens identical for the first ${same} of ${GEN + 1}; peak RSS ours ${round(ours.peakRssMb)} MB vs peer ${round(peer.peakRssMb)} MB`;
        for (const [name, o, p, n] of [['prefill', ours.prefillTps, peer.prefillTps, PROMPT], ['generate', ours.genTps, peer.genTps, GEN]] as const) {
          emit({
            bench: 'infer', metric: `${name}_${n}_${dtype}_t${threads}`, unit: 'tokens/s', ours: o, peer: p, peer_name: PEER_NAME, higher_is_better: true,
            peak_rss_mb: ours.peakRssMb, note: `${note}; target ≥ ${name === 'prefill' ? '1.0' : '0.9'}× llama.cpp`,
          });
        }
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
