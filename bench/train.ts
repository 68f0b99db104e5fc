// Training bench: tokens/s, peak resident memory and model FLOP/s (as a fraction of the FMA peak) of one training
// step (forward, backward, clipping, AdamW) through the real Trainer, against PyTorch training the same model
// (bench/torch_train.py) with the same targets, rank and thread count in the same run. Two cases:
// - LoRA r=16, alpha 32 on every block linear of a SmolLM-135M-shaped model (random weights), seq 512, batch 1;
// - pretraining (every parameter trainable) of the bundled default model's shape, seq 256, batch 8;
// - the same LoRA step over the base frozen in F16 and in BF16 (a Hugging Face checkpoint as it comes, no F32
//   copy), and over the Q4_K_M file llama.cpp's own quantizer makes of it (QLoRA as people have their models: q5_0,
//   q8_0, q4_K and q6_K tensors on this shape, read block by block), whose peer is our own step over the F32 base,
//   run alternately with it (F32, other three times; each side's best median), so that a slow minute of a shared
//   machine does not land on one side only (target ≥ 0.9×).
// The PyTorch peer runs over each of Debian's OpenBLAS builds (pthread, OpenMP) × OMP_WAIT_POLICY passive/active;
// the fastest is kept and named (bestTorch).
// Subsets and a small form for checking the plumbing: NOMOAT_TRAIN_CASES (comma list of lora, pretrain, f16, bf16,
// q4_k_m) and NOMOAT_TRAIN_LAYERS (the SmolLM shape's layer count, 30 unless set; the rows' notes say so).
// Each side runs in its own child process so that its peak RSS is its own: `node dist/bench/train.js child SPEC`
// and `/usr/bin/python3 bench/torch_train.py SPEC`, each printing one JSON object.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/engine/index.js';
import { loadNativeAddon } from '../src/engine/native/addon.js';
import { LoraAdapter } from '../src/lora/adapter.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { saveGguf } from '../src/models/convert.js';
import { loadModel } from '../src/models/load.js';
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
  /** ours only: the frozen 2-D weights' storage type (LoRA over a half-precision or llama.cpp Q4_K_M base); f32 when absent */
  base?: 'f32' | 'f16' | 'bf16' | 'q4_k_m';
  /** ours only: the GGUF file to train over (the q4_k_m base), instead of weights made in the child */
  gguf?: string;
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

const CASE_NAMES = ['lora', 'pretrain', 'f16', 'bf16', 'q4_k_m'] as const;
type CaseName = (typeof CASE_NAMES)[number];

/** The cases NOMOAT_TRAIN_CASES names (all when unset), the SmolLM shape cut to NOMOAT_TRAIN_LAYERS layers when set. */
function cases(threads: number): { name: CaseName; metric: string; spec: TrainSpec }[] {
  const common = { threads, seed: 1, warmup: 1, rank: 16, alpha: 32 };
  const layers = process.env.NOMOAT_TRAIN_LAYERS;
  if (layers !== undefined && !/^[1-9][0-9]*$/.test(layers)) throw new Error(`train bench: NOMOAT_TRAIN_LAYERS=${layers} is not a positive integer`);
  const smol = { ...SMOL_135M, layers: layers === undefined ? SMOL_135M.layers : Number(layers) };
  const all = [
    { name: 'lora' as const, metric: `lora_r16_seq512_t${threads}`, spec: { ...smol, ...common, mode: 'lora' as const, seq: 512, batch: 1, steps: 3 } },
    { name: 'pretrain' as const, metric: `pretrain_default_seq256_b8_t${threads}`, spec: { ...DEFAULT_MODEL, ...common, mode: 'full' as const, seq: 256, batch: 8, steps: 3 } },
    ...(['f16', 'bf16', 'q4_k_m'] as const).map((base) => (
      { name: base, metric: `lora_r16_seq512_${base}_t${threads}`, spec: { ...smol, ...common, mode: 'lora' as const, seq: 512, batch: 1, steps: 3, base } })),
  ];
  const wanted = process.env.NOMOAT_TRAIN_CASES?.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (wanted === undefined) return all;
  const bad = wanted.filter((w) => !(CASE_NAMES as readonly string[]).includes(w));
  if (bad.length > 0) throw new Error(`train bench: NOMOAT_TRAIN_CASES names ${bad.join(', ')}; known: ${CASE_NAMES.join(', ')}`);
  return all.filter((c) => wanted.includes(c.name));
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

/** The model of `s` (tied LM head, as SmolLM), weights normal(0, 0.02) from `s.seed`. */
function specConfig(s: TrainSpec): ReturnType<typeof tinyConfig> {
  return tinyConfig({
    vocabSize: s.vocab, hiddenSize: s.hidden, intermediateSize: s.inter, numLayers: s.layers, numHeads: s.heads, numKvHeads: s.kv_heads,
    headDim: s.head_dim, ropeTheta: s.rope_theta, rmsNormEps: s.eps, maxPositionEmbeddings: Math.max(2048, s.seq), tieWordEmbeddings: true,
  });
}

/** Trains `spec` through the Trainer and returns per-step wall times (from the Trainer's own clock). */
async function runOurs(s: TrainSpec): Promise<SideResult> {
  getBackend().setThreads(s.threads);
  let model: LlamaModel;
  if (s.gguf !== undefined) {
    model = loadModel(s.gguf).model; // frozen weights stay in the file's types
  } else {
    if (s.base === 'q4_k_m') throw new Error('train bench: a q4_k_m base needs the GGUF file (spec.gguf)');
    const cfg = specConfig(s);
    const weights = initWeights(cfg, s.seed, 0.02, s.base ?? 'f32');
    model = new LlamaModel(cfg, (n) => weights.get(n));
  }
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
const LIB_DIR = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`; // Debian's multiarch library folder
/** Debian's two OpenBLAS builds (both install side by side); a child picks one with LD_LIBRARY_PATH. */
const BLAS_BUILDS = ['openblas-pthread', 'openblas-openmp'] as const;
type BlasBuild = (typeof BLAS_BUILDS)[number];
const OMP_POLICIES = ['passive', 'active'] as const;
// Debian's torch calls whatever provides libblas.so.3: alone, python3-torch pulls in the reference libblas3, which
// makes it several times slower than the same torch over OpenBLAS (a strawman peer). Both OpenBLAS builds are
// installed so that the bench can keep the faster: OpenMP's build shares torch's own libgomp thread pool, the pthread
// build runs its own threads beside it (they spin against each other unless OMP_WAIT_POLICY is passive).
const TORCH_INSTALL = 'apt-get update && apt-get install -y python3-torch libopenblas0-pthread libopenblas0-openmp';

const blasDir = (b: BlasBuild): string => join(LIB_DIR, b);
const missingBuilds = (): BlasBuild[] => BLAS_BUILDS.filter((b) => !existsSync(join(blasDir(b), 'libblas.so.3')));
const hasTorch = (): boolean => existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/**
 * Makes sure Debian's python3-torch runs under /usr/bin/python3 (the pyenv python3 on PATH does not see it) with both
 * OpenBLAS builds beside it: installs them when running as root with apt-get, else explains how. Returns the builds
 * the PyTorch peer can run over (empty: no torch or no OpenBLAS, so no peer).
 */
function ensureTorch(): BlasBuild[] {
  if ((!hasTorch() || missingBuilds().length > 0) && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    console.error(`train bench: installing the PyTorch peer (${TORCH_INSTALL}) …`);
    spawnSync('sh', ['-c', `(${TORCH_INSTALL}) >&2`], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!hasTorch()) {
    console.error(`train bench: no PyTorch for ${SYSTEM_PYTHON}; install Debian's python3-torch as root (\`${TORCH_INSTALL}\`). Emitting our numbers without a peer.`);
    return [];
  }
  const missing = missingBuilds();
  if (missing.length === BLAS_BUILDS.length) {
    console.error(`train bench: torch would run over the reference BLAS (a strawman peer); install OpenBLAS as root (\`${TORCH_INSTALL}\`). Emitting our numbers without a peer.`);
    return [];
  }
  if (missing.length > 0) console.error(`train bench: ${missing.join(', ')} missing, so the PyTorch peer is not tried over it (install as root: \`${TORCH_INSTALL}\`)`);
  return BLAS_BUILDS.filter((b) => !missing.includes(b));
}

/** The torch child's environment: BLAS and OpenMP pinned to `threads`, one OpenBLAS build and wait policy chosen. */
function torchEnv(threads: number, blas: BlasBuild, omp: (typeof OMP_POLICIES)[number]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE; // pins an older kernel (see bench/common.ts runPython)
  delete env.OPENBLAS_L2_SIZE;
  env.OMP_WAIT_POLICY = omp.toUpperCase();
  env.LD_LIBRARY_PATH = [blasDir(blas), env.LD_LIBRARY_PATH].filter((p) => p !== undefined && p !== '').join(':');
  return env;
}

/** A PyTorch run and the configuration it ran in. */
type PeerRun = SideResult & { blasBuild: BlasBuild; omp: string };

/**
 * The PyTorch child at its best, chosen in this run: each installed OpenBLAS build × OMP_WAIT_POLICY passive and
 * active (measured here on the LoRA step: 70 tokens/s as Debian installs it, 122 with passive, 131–162 over the
 * OpenMP build with passive), the one with the fastest median step kept. Each child reports the libblas it mapped
 * (/proc/self/maps): a run that did not get the build it asked for stops the bench rather than mislabel the peer.
 */
function bestTorch(script: string, spec: TrainSpec, threads: number, builds: readonly BlasBuild[]): { best: PeerRun; tried: string } {
  const runs: PeerRun[] = [];
  for (const blasBuild of builds) {
    for (const omp of OMP_POLICIES) {
      const who = `the PyTorch child (${blasBuild}, OMP_WAIT_POLICY ${omp})`;
      const r = runChild(SYSTEM_PYTHON, [script, JSON.stringify(spec)], who, torchEnv(threads, blasBuild, omp));
      if (r.blas === undefined || !r.blas.startsWith(blasDir(blasBuild) + '/')) throw new Error(`train bench: ${who} loaded BLAS ${r.blas ?? '?'}, not ${blasDir(blasBuild)}`);
      runs.push({ ...r, blasBuild, omp });
      console.error(`train bench: PyTorch over ${blasBuild}, OMP_WAIT_POLICY ${omp}: median step ${median(r.step_s).toFixed(3)} s`);
    }
  }
  const best = runs.reduce((a, b) => (median(b.step_s) < median(a.step_s) ? b : a));
  console.error(`train bench: PyTorch peer kept: ${best.blasBuild}, OMP_WAIT_POLICY ${best.omp}`);
  const tried = runs.map((r) => `${r.blasBuild}/${r.omp} ${median(r.step_s).toFixed(2)} s`).join(', ');
  return { best, tried };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const QUANTIZE = join(packageRoot(), '..', 'shared', 'tools', 'llamacpp_quantize.py');
const Q4_K_M_FTYPE = 15; // llama_ftype (llama.h)

/**
 * The Q4_K_M file of `s`'s model as users get one: our F16 GGUF of the same seeded weights (the f16 case's base),
 * then llama.cpp's own quantizer on it. Returns its path in `dir`.
 */
function writeQ4KM(s: TrainSpec, dir: string): string {
  if (!existsSync(QUANTIZE)) throw new Error(`train bench: the q4_k_m case needs llama.cpp's quantizer ${QUANTIZE} (../shared/tools beside the clone)`);
  const cfg = specConfig(s);
  const weights = initWeights(cfg, s.seed, 0.02, 'f16');
  const model = new LlamaModel(cfg, (n) => weights.get(n));
  const [f16, out] = [join(dir, 'base-f16.gguf'), join(dir, 'base-q4_k_m.gguf')];
  saveGguf(model, null, f16, { dtype: 'f16' });
  model.dispose();
  const r = spawnSync('python3', [QUANTIZE, f16, out, String(Q4_K_M_FTYPE)], { cwd: packageRoot(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`train bench: ${QUANTIZE} ${f16} → Q4_K_M failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
  rmSync(f16);
  return out;
}

/** The rows of a LoRA step over an f16/bf16/q4_k_m base: against our own step over the f32 base, tokens/s and peak RSS. */
function baseRows(metric: string, spec: TrainSpec, ours: SideResult, f32: SideResult, load0: number): void {
  const tokens = spec.batch * spec.seq;
  const [tps, f32Tps] = [tokens / median(ours.step_s), tokens / median(f32.step_s)];
  const peerName = 'nomoat, the same LoRA step over the F32 base (run alternately with it)';
  const base = spec.base === 'q4_k_m' ? 'Q4_K_M (llama.cpp\'s quantizer on the F16 file: q5_0/q8_0 where rows are 576 wide, q4_K/q6_K on ffn_down)' : spec.base?.toUpperCase();
  const steps = (r: SideResult): string => r.step_s.map((x) => x.toFixed(2)).join('/');
  emit({
    bench: 'train', metric, unit: 'tokens/s', ours: tps, peer: f32Tps, peer_name: peerName, higher_is_better: true, peak_rss_mb: ours.peak_rss_mb,
    note: `LoRA r=${spec.rank} alpha=${spec.alpha} on every block linear of a SmolLM-135M-shaped model whose frozen weights (embedding and tied ` +
      `LM head included) are ${base}, ${spec.layers} layers, seq ${spec.seq}, ${spec.threads} threads; median of ${spec.steps} steps (${steps(ours)} s vs F32 ${steps(f32)} s); ` +
      `loss ${ours.loss[0]?.toFixed(3)} vs F32 ${f32.loss[0]?.toFixed(3)}; target ≥ 0.9× the F32 step; load ${load0.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
  });
  emit({
    bench: 'train', metric: `${metric}_peak_rss`, unit: 'MB', ours: ours.peak_rss_mb, peer: f32.peak_rss_mb, peer_name: peerName, higher_is_better: false,
    peak_rss_mb: ours.peak_rss_mb, note: `peak resident set of each child process; ratio = the F32 run's / ours (> 1: we use less); target > 1`,
  });
}

export function runTrainBench(): void {
  const threads = cpus().length;
  const addon = loadNativeAddon();
  const list = cases(threads);
  const builds = list.some((c) => c.spec.base === undefined) ? ensureTorch() : [];
  const script = join(packageRoot(), 'bench', 'torch_train.py');
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-train-bench-'));
  try {
    for (const { metric, spec } of list) runCase(metric, spec, threads, addon.peakFlops.bind(addon), builds, script, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runCase(metric: string, spec: TrainSpec, threads: number, peakFlops: (t: number) => number, builds: readonly BlasBuild[], script: string, dir: string): void {
  const load0 = loadavg()[0];
  const runOursChild = (s: TrainSpec): SideResult => runChild(process.execPath, [THIS_FILE, 'child', JSON.stringify(s)], 'our training child');
  if (spec.base !== undefined) {
    const other = spec.base === 'q4_k_m' ? { ...spec, gguf: writeQ4KM(spec, dir) } : spec;
    const f32Spec = { ...spec, base: 'f32' as const };
    const pairs = [0, 1, 2].map(() => ({ f32: runOursChild(f32Spec), other: runOursChild(other) }));
    const best = (rs: SideResult[]): SideResult => rs.reduce((a, b) => (median(b.step_s) < median(a.step_s) ? b : a));
    baseRows(metric, spec, best(pairs.map((p) => p.other)), best(pairs.map((p) => p.f32)), load0);
    return;
  }
  const ours = runOursChild(spec);
  const torch = builds.length > 0 ? bestTorch(script, spec, threads, builds) : null;
  const peer = torch?.best ?? null;
  const peakGflops = peakFlops(threads); // measured now, under the same machine load as the runs
  const tokens = spec.batch * spec.seq;
  const flops = stepFlops(spec);
  const oursTps = tokens / median(ours.step_s);
  const peerTps = peer === null ? NaN : tokens / median(peer.step_s); // NaN (null in JSON) without a peer
  const peerName = peer === null ? 'none (python3-torch or OpenBLAS missing)'
    : `PyTorch ${peer.torch ?? '?'} (Debian python3-torch over ${peer.blasBuild} ${basename(peer.blas ?? '?')}, OMP_WAIT_POLICY ${peer.omp}: ` +
      `the fastest of ${builds.join(' and ')} × passive and active)`;
  const frac = (tps: number): number => (flops / tokens) * tps / 1e9 / peakGflops;
  const what = spec.mode === 'lora' ? `LoRA r=${spec.rank} alpha=${spec.alpha} on q,k,v,o,gate,up,down of a SmolLM-135M-shaped model (${spec.layers} layers)` : 'full training of the default model shape';
  const steps = (r: SideResult): string => r.step_s.map((x) => x.toFixed(2)).join('/');
  emit({
    bench: 'train', metric, unit: 'tokens/s', ours: oursTps, peer: peerTps, peer_name: peerName, higher_is_better: true, peak_rss_mb: ours.peak_rss_mb,
    peak_fraction: frac(oursTps), peak_gflops: peakGflops,
    note: `${what}, seq ${spec.seq}, batch ${spec.batch}, ${threads} threads, AdamW + clip; median of ${spec.steps} steps after ${spec.warmup} warm-up (ours ${steps(ours)} s${peer ? `, peer ${steps(peer)} s` : ''}); ` +
      `model ${(flops / 1e9).toFixed(1)} GFLOP/step${peer ? `, peer at ${(frac(peerTps) * 100).toFixed(1)}% of peak` : ''}; trainable ${ours.trainable}; loss ours ${ours.loss[0]?.toFixed(3)} peer ${peer?.loss[0]?.toFixed(3) ?? '-'}; ` +
      `${torch ? `PyTorch medians tried: ${torch.tried}; ` : ''}load ${load0.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
  });
  emit({
    bench: 'train', metric: `${metric}_peak_rss`, unit: 'MB', ours: ours.peak_rss_mb, peer: peer?.peak_rss_mb ?? NaN, peer_name: peerName, higher_is_better: false,
    peak_rss_mb: ours.peak_rss_mb, note: 'peak resident set of each side\'s own process (model, optimizer state, activations, runtime); ratio = peer / ours (> 1: we use less)',
  });
}

if (process.argv[1] === THIS_FILE && process.argv[2] === 'child') {
  const spec = JSON.parse(process.argv[3] ?? '') as TrainSpec;
  console.log(JSON.stringify(await runOurs(spec)));
}
