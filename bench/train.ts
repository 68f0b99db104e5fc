// Training bench: tokens/s, peak resident memory and model FLOP/s (as a fraction of the FMA peak) of one training
// step (forward, backward, clipping, AdamW) through the real Trainer, against PyTorch training the same model
// (bench/torch_train.py) with the same targets, rank and thread count in the same run. Two cases:
// - LoRA r=16, alpha 32 on every block linear of a SmolLM-135M-shaped model (random weights), seq 512, batch 1;
// - pretraining (every parameter trainable) of the bundled default model's shape, seq 256, batch 8;
// - the same LoRA step over the base frozen in F16 and in BF16 (a Hugging Face checkpoint as it comes, no F32
//   copy), whose peer is our own step over the F32 base, run alternately with it (F32, half three times; each side's
//   better median), so that a slow minute of a shared machine does not land on one side only (target ≥ 0.9×).
// Each side runs in its own child process so that its peak RSS is its own: `node dist/bench/train.js child SPEC`
// and `/usr/bin/python3 bench/torch_train.py SPEC`, each printing one JSON object.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/engine/index.js';
import { loadNativeAddon } from '../src/engine/native/addon.js';
import { LoraAdapter } from '../src/lora/adapter.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { Loader, Trainer, type NamedParam, type Row } from '../src/train/index.js';
import { emit } from './common.js';

/** One training setup, given identically to both sides (field names are torch_train.py's). */
export interface TrainSpec {
  mode: 'lora' | 'full';
  vocab: number; // V
  hidden: number; // C
  inter: number; // I, MLP width
  layers: number; // L
  heads: number; // H
  kv_heads: number; // G
  head_dim: number; // D
  seq: number; // T
  batch: number; // B
  rank: number; // LoRA r (ignored for full training)
  alpha: number; // LoRA alpha
  threads: number;
  warmup: number; // untimed steps first
  steps: number; // timed steps
  seed: number;
  rope_theta: number;
  eps: number;
  /** ours only: the frozen 2-D weights' storage type (LoRA over a half-precision base); f32 when absent */
  base?: 'f32' | 'f16' | 'bf16';
}

/** What each child prints. */
interface SideResult {
  step_s: number[];
  loss: number[];
  peak_rss_mb: number;
  threads: number;
  trainable: number;
  torch?: string;
  blas?: string; // the library torch's BLAS calls resolve to
}

const SMOL_135M = { vocab: 49152, hidden: 576, inter: 1536, layers: 30, heads: 9, kv_heads: 3, head_dim: 64, rope_theta: 10000, eps: 1e-5 };
const DEFAULT_MODEL = { vocab: 4096, hidden: 256, inter: 768, layers: 6, heads: 8, kv_heads: 4, head_dim: 32, rope_theta: 10000, eps: 1e-5 };

function cases(threads: number): { metric: string; spec: TrainSpec }[] {
  const common = { threads, seed: 1, warmup: 1, rank: 16, alpha: 32 };
  return [
    { metric: `lora_r16_seq512_t${threads}`, spec: { ...SMOL_135M, ...common, mode: 'lora', seq: 512, batch: 1, steps: 3 } },
    { metric: `pretrain_default_seq256_b8_t${threads}`, spec: { ...DEFAULT_MODEL, ...common, mode: 'full', seq: 256, batch: 8, steps: 3 } },
    ...(['f16', 'bf16'] as const).map((base) => (
      { metric: `lora_r16_seq512_${base}_t${threads}`, spec: { ...SMOL_135M, ...common, mode: 'lora' as const, seq: 512, batch: 1, steps: 3, base } })),
  ];
}

/**
 * Model FLOPs of one step. Matmul parameters N = block linears + the (tied) LM head; the embedding lookup is free.
 * Full training: 6·N per token (forward, dX, dW). LoRA: 4·N per token for the frozen base (forward and dX, no dW),
 * 6 per token per LoRA parameter. Attention: QKᵀ and P·V over the causal T(T+1)/2 pairs, 2 FLOPs per
 * multiply-add, backward twice the forward (dP, dV, dQ, dK).
 */
export function stepFlops(s: TrainSpec): number {
  const [C, I, q, kv] = [s.hidden, s.inter, s.heads * s.head_dim, s.kv_heads * s.head_dim];
  const N = s.layers * (C * q + 2 * C * kv + q * C + 3 * C * I) + s.vocab * C;
  const tokens = s.batch * s.seq;
  const attnFwd = s.layers * s.heads * s.batch * ((s.seq * (s.seq + 1)) / 2) * s.head_dim * 4;
  if (s.mode === 'full') return 6 * N * tokens + 3 * attnFwd;
  const loraParams = s.layers * s.rank * ((C + q) + 2 * (C + kv) + (q + C) + 3 * (C + I));
  return 4 * N * tokens + 6 * loraParams * tokens + 3 * attnFwd;
}

// ---- our side (child process) ----------------------------------------------------------------------------------

function randomRows(n: number, T: number, V: number, seed: number): Row[] {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % V;
  };
  return Array.from({ length: n }, () => ({ ids: Int32Array.from({ length: T }, next), labels: Int32Array.from({ length: T }, next) }));
}

/** Trains `spec` through the Trainer and returns per-step wall times (from the Trainer's own clock). */
async function runOurs(s: TrainSpec): Promise<SideResult> {
  getBackend().setThreads(s.threads);
  const cfg = tinyConfig({
    vocabSize: s.vocab, hiddenSize: s.hidden, intermediateSize: s.inter, numLayers: s.layers, numHeads: s.heads, numKvHeads: s.kv_heads,
    headDim: s.head_dim, ropeTheta: s.rope_theta, rmsNormEps: s.eps, maxPositionEmbeddings: Math.max(2048, s.seq), tieWordEmbeddings: true,
  });
  const weights = initWeights(cfg, s.seed, 0.02, s.base ?? 'f32');
  const model = new LlamaModel(cfg, (n) => weights.get(n));
  let params: NamedParam[];
  let adapter: LoraAdapter | null = null;
  if (s.mode === 'lora') {
    adapter = LoraAdapter.create(model, { r: s.rank, loraAlpha: s.alpha, loraDropout: 0, targetModules: 'all-linear' }, { seed: s.seed });
    adapter.attach(model, { checkBase: false });
    adapter.training = true;
    params = adapter.namedParameters().map(([name, tensor]) => ({ name, tensor }));
  } else {
    params = model.namedTensors().map(([name, tensor]) => {
      tensor.requiresGrad = true;
      return { name, tensor };
    });
  }
  const total = s.warmup + s.steps;
  const loader = new Loader(randomRows(total * s.batch, s.seq, s.vocab, s.seed + 1), s.batch, s.seed);
  const stepS: number[] = [];
  const loss: number[] = [];
  let prev = 0;
  const trainer = new Trainer(model, params, { train: loader }, { steps: total, lr: 1e-4, schedule: 'constant', maxGradNorm: 1, progress: 'none', handleSigint: false, outDir: null }, {
    onStep: (r) => {
      if (r.step > s.warmup) stepS.push(r.elapsed_s - prev);
      prev = r.elapsed_s;
      loss.push(r.loss);
    },
  });
  await trainer.run();
  trainer.dispose();
  adapter?.dispose();
  model.dispose();
  return { step_s: stepS, loss, peak_rss_mb: process.resourceUsage().maxRSS / 1024, threads: s.threads, trainable: params.reduce((n, p) => n + p.tensor.size, 0) };
}

// ---- the parent: both sides, then the records ------------------------------------------------------------------

const THIS_FILE = fileURLToPath(import.meta.url);

/** The package root (holds package.json and bench/torch_train.py), from dist/bench/ or bench/. */
function packageRoot(): string {
  let dir = dirname(THIS_FILE);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`train bench: no package.json above ${THIS_FILE}`);
    dir = up;
  }
  return dir;
}

function lastJsonLine<T>(stdout: string, who: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`train bench: ${who} printed no JSON result (last line: ${JSON.stringify(line.slice(0, 200))})`);
  }
}

function runChild(cmd: string, args: string[], who: string, env: NodeJS.ProcessEnv = process.env): SideResult {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`train bench: ${who} failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  return lastJsonLine<SideResult>(r.stdout, who);
}

const SYSTEM_PYTHON = '/usr/bin/python3';
// Debian's torch calls whatever provides libblas.so.3: alone, python3-torch pulls in the reference libblas3, which
// makes it several times slower than the same torch over OpenBLAS (a strawman peer); libopenblas0-pthread takes over.
const TORCH_INSTALL = 'apt-get update && apt-get install -y python3-torch libopenblas0-pthread';

function peerStatus(): 'ok' | 'no-torch' | 'reference-blas' {
  if (!existsSync(SYSTEM_PYTHON) || spawnSync(SYSTEM_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return 'no-torch';
  return existsSync('/usr/lib/x86_64-linux-gnu/blas/libblas.so.3') && !existsSync('/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3') ? 'reference-blas' : 'ok';
}

/**
 * Makes sure Debian's python3-torch (over OpenBLAS) runs under /usr/bin/python3 (the pyenv python3 on PATH does not
 * see it): installs it when running as root with apt-get, else explains how. False: no torch, so no peer.
 */
function ensureTorch(): boolean {
  let status = peerStatus();
  if (status !== 'ok' && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    console.error(`train bench: installing the PyTorch peer (${TORCH_INSTALL}) …`);
    spawnSync('sh', ['-c', `(${TORCH_INSTALL}) >&2`], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    status = peerStatus();
  }
  if (status === 'reference-blas') console.error(`train bench: torch runs over the reference BLAS (slow peer); install OpenBLAS as root: \`${TORCH_INSTALL}\``);
  if (status === 'no-torch') console.error(`train bench: no PyTorch for ${SYSTEM_PYTHON}; install Debian's python3-torch as root (\`${TORCH_INSTALL}\`). Emitting our numbers without a peer.`);
  return status !== 'no-torch';
}

/** The torch child's environment: BLAS and OpenMP pinned to `threads`; the OpenBLAS kernel overrides removed. */
function torchEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE; // pins an older kernel (see bench/common.ts runPython)
  delete env.OPENBLAS_L2_SIZE;
  delete env.OMP_WAIT_POLICY; // bestTorch tries it both ways
  return env;
}

/**
 * The PyTorch child at its best: as configured, and with OMP_WAIT_POLICY=passive (Debian's torch spins its OpenMP
 * threads against OpenBLAS's pthreads otherwise: 70 → 122 tokens/s on the LoRA step here); the faster one, its
 * setting recorded in `omp`.
 */
function bestTorch(script: string, spec: TrainSpec, threads: number): SideResult & { omp: string } {
  const runs = ['default', 'passive'].map((omp) => {
    const env = torchEnv(threads);
    if (omp === 'passive') env.OMP_WAIT_POLICY = 'PASSIVE';
    return { ...runChild(SYSTEM_PYTHON, [script, JSON.stringify(spec)], `the PyTorch child (OMP_WAIT_POLICY ${omp})`, env), omp };
  });
  return runs.reduce((a, b) => (median(b.step_s) < median(a.step_s) ? b : a));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The rows of a LoRA step over an f16/bf16 base: against our own step over the f32 base, tokens/s and peak RSS. */
function halfRows(metric: string, spec: TrainSpec, ours: SideResult, f32: SideResult, load0: number): void {
  const tokens = spec.batch * spec.seq;
  const [tps, f32Tps] = [tokens / median(ours.step_s), tokens / median(f32.step_s)];
  const peerName = 'nomoat, the same LoRA step over the F32 base (run alternately with it)';
  const steps = (r: SideResult): string => r.step_s.map((x) => x.toFixed(2)).join('/');
  emit({
    bench: 'train', metric, unit: 'tokens/s', ours: tps, peer: f32Tps, peer_name: peerName, higher_is_better: true, peak_rss_mb: ours.peak_rss_mb,
    note: `LoRA r=${spec.rank} alpha=${spec.alpha} on every block linear of a SmolLM-135M-shaped model whose frozen weights (embedding and tied ` +
      `LM head included) are ${spec.base?.toUpperCase()}, seq ${spec.seq}, ${spec.threads} threads; median of ${spec.steps} steps (${steps(ours)} s vs F32 ${steps(f32)} s); ` +
      `loss ${ours.loss[0]?.toFixed(3)} vs F32 ${f32.loss[0]?.toFixed(3)}; target ≥ 0.9× the F32 step; load ${load0.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
  });
  emit({
    bench: 'train', metric: `${metric}_peak_rss`, unit: 'MB', ours: ours.peak_rss_mb, peer: f32.peak_rss_mb, peer_name: peerName, higher_is_better: false,
    peak_rss_mb: ours.peak_rss_mb, note: `peak resident set of each child process; target below the F32 run's`,
  });
}

export function runTrainBench(): void {
  const threads = cpus().length;
  const addon = loadNativeAddon();
  const withTorch = ensureTorch();
  const script = join(packageRoot(), 'bench', 'torch_train.py');
  for (const { metric, spec } of cases(threads)) {
    const load0 = loadavg()[0];
    const runOursChild = (s: TrainSpec): SideResult => runChild(process.execPath, [THIS_FILE, 'child', JSON.stringify(s)], 'our training child');
    if (spec.base !== undefined) {
      const f32Spec = { ...spec, base: 'f32' as const };
      const pairs = [0, 1, 2].map(() => ({ f32: runOursChild(f32Spec), half: runOursChild(spec) }));
      const best = (rs: SideResult[]): SideResult => rs.reduce((a, b) => (median(b.step_s) < median(a.step_s) ? b : a));
      halfRows(metric, spec, best(pairs.map((p) => p.half)), best(pairs.map((p) => p.f32)), load0);
      continue;
    }
    const ours = runOursChild(spec);
    const peer = withTorch ? bestTorch(script, spec, threads) : null;
    const peakGflops = addon.peakFlops(threads); // measured now, under the same machine load as the runs
    const tokens = spec.batch * spec.seq;
    const flops = stepFlops(spec);
    const oursTps = tokens / median(ours.step_s);
    const peerTps = peer === null ? NaN : tokens / median(peer.step_s); // NaN (null in JSON) without a peer
    const peerName = peer === null ? 'none (python3-torch missing)'
      : `PyTorch ${peer.torch ?? '?'} (Debian python3-torch, BLAS ${basename(peer.blas ?? '?')}, OMP_WAIT_POLICY ${peer.omp}: the faster of default and passive)`;
    const frac = (tps: number): number => (flops / tokens) * tps / 1e9 / peakGflops;
    const what = spec.mode === 'lora' ? `LoRA r=${spec.rank} alpha=${spec.alpha} on q,k,v,o,gate,up,down of a SmolLM-135M-shaped model` : 'full training of the default model shape';
    const steps = (r: SideResult): string => r.step_s.map((x) => x.toFixed(2)).join('/');
    emit({
      bench: 'train', metric, unit: 'tokens/s', ours: oursTps, peer: peerTps, peer_name: peerName, higher_is_better: true, peak_rss_mb: ours.peak_rss_mb,
      peak_fraction: frac(oursTps), peak_gflops: peakGflops,
      note: `${what}, seq ${spec.seq}, batch ${spec.batch}, ${threads} threads, AdamW + clip; median of ${spec.steps} steps after ${spec.warmup} warm-up (ours ${steps(ours)} s${peer ? `, peer ${steps(peer)} s` : ''}); ` +
        `model ${(flops / 1e9).toFixed(1)} GFLOP/step${peer ? `, peer at ${(frac(peerTps) * 100).toFixed(1)}% of peak` : ''}; trainable ${ours.trainable}; loss ours ${ours.loss[0]?.toFixed(3)} peer ${peer?.loss[0]?.toFixed(3) ?? '-'}; load ${load0.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
    });
    emit({
      bench: 'train', metric: `${metric}_peak_rss`, unit: 'MB', ours: ours.peak_rss_mb, peer: peer?.peak_rss_mb ?? NaN, peer_name: peerName, higher_is_better: false,
      peak_rss_mb: ours.peak_rss_mb, note: 'peak resident set of each side\'s own process (model, optimizer state, activations, runtime)',
    });
  }
}

if (process.argv[1] === THIS_FILE && process.argv[2] === 'child') {
  const spec = JSON.parse(process.argv[3] ?? '') as TrainSpec;
  console.log(JSON.stringify(await runOurs(spec)));
}
