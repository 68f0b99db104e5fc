// Shared benchmark helpers: timing, the one-JSON-object-per-line record, peak RSS, and the python/numpy peer.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

export interface BenchRecord {
  bench: string;
  metric: string;
  unit: string;
  ours: number;
  peer: number;
  peer_name: string;
  ratio: number;
  higher_is_better: boolean;
  peak_fraction?: number;
  peak_gflops?: number;
  peak_rss_mb: number;
  note?: string;
}

/** Rounds to 3 significant decimals for the report (values are throughputs, never tiny). */
export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024);
}

/** Prints one record as one JSON line, fields in the documented order (note, when given, last). `peak_rss_mb`
 *  defaults to this process's peak; benches that measure in child processes pass the measured side's. */
export function emit(r: Omit<BenchRecord, 'peak_rss_mb' | 'ratio'> & { ratio?: number; peak_rss_mb?: number }): void {
  const ratio = r.ratio ?? (r.higher_is_better ? r.ours / r.peer : r.peer / r.ours);
  const rec: BenchRecord = {
    bench: r.bench, metric: r.metric, unit: r.unit, ours: round(r.ours), peer: round(r.peer), peer_name: r.peer_name,
    ratio: round(ratio), higher_is_better: r.higher_is_better, peak_rss_mb: 0,
  };
  if (r.peak_fraction !== undefined) rec.peak_fraction = round(r.peak_fraction);
  if (r.peak_gflops !== undefined) rec.peak_gflops = round(r.peak_gflops);
  rec.peak_rss_mb = r.peak_rss_mb !== undefined ? round(r.peak_rss_mb) : peakRssMb();
  const ordered: Record<string, unknown> = {};
  for (const key of ['bench', 'metric', 'unit', 'ours', 'peer', 'peer_name', 'ratio', 'higher_is_better', 'peak_fraction', 'peak_gflops', 'peak_rss_mb'] as const) {
    if (rec[key] !== undefined) ordered[key] = rec[key];
  }
  if (r.note !== undefined) ordered.note = r.note;
  console.log(JSON.stringify(ordered));
}

/** Best wall time in seconds of `reps` runs of fn after `warmup` untimed runs. */
export function bestTime(fn: () => void, reps: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

/** Threads settings to measure: 1 and all cores (deduplicated on a 1-core machine). */
export function threadCounts(): number[] {
  const all = cpus().length;
  return all > 1 ? [1, all] : [1];
}

/**
 * Runs a python3 script with numpy's OpenBLAS pinned to `threads` and prints what it returns (one JSON value on
 * stdout). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed for this command only when set: they pin an older
 * kernel and slow a current numpy (see the environment notes).
 */
export function runPython<T>(script: string, threads: number): T {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  if (env.OPENBLAS_CORETYPE !== undefined) delete env.OPENBLAS_CORETYPE;
  if (env.OPENBLAS_L2_SIZE !== undefined) delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync('python3', ['-c', script], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`python3 peer failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`);
  return JSON.parse(r.stdout) as T;
}

/** Python snippet naming OpenBLAS's run-time kernel (core) as `corename`; works for numpy's bundled OpenBLAS. */
export const PY_OPENBLAS_CORE = `
import ctypes
def corename():
    libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l.lower()})
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ('scipy_openblas_get_corename64_', 'scipy_openblas_get_corename', 'openblas_get_corename64_', 'openblas_get_corename'):
            f = getattr(lib, sym, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return 'unknown'
`;
