// `nomoat finetune` at dataset scale: time to the first optimizer step and peak RSS of the same command on a 1 GB
// JSONL (assets/data/generic-chats.jsonl repeated) against a 1 MB one. Training streams its data (an index of line
// offsets, conversations read a batch at a time), so both should be close: ratio = (1 MB) / (1 GB), near 1 is the
// goal. Each run is a child process; the first step is the moment OUT/metrics.jsonl gets its first line (the run has
// no eval set, so nothing else happens between the step and that line); peak RSS is the child's own maxRSS, written
// at its exit by a preloaded hook. The files live under os.tmpdir() and are deleted afterwards.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // dist/bench → the package root
const CHATS = join(ROOT, 'assets', 'data', 'generic-chats.jsonl');
const BIN = join(ROOT, 'bin', 'nomoat.js');

/** Writes `bytes` (at least) of the chats file repeated to path, in 64 MB blocks. */
export function writeRepeated(path: string, bytes: number): number {
  let unit = readFileSync(CHATS);
  if (unit[unit.length - 1] !== 0x0a) unit = Buffer.concat([unit, Buffer.from('\n')]);
  const block = Buffer.concat(Array<Buffer>(Math.max(1, Math.floor((64 << 20) / unit.length))).fill(unit));
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    while (written < bytes) {
      const b = written + block.length <= bytes ? block : Buffer.concat(Array<Buffer>(Math.ceil((bytes - written) / unit.length)).fill(unit));
      writeSync(fd, b);
      written += b.length;
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

export interface FinetuneRun {
  /** seconds from spawning the command to its first metrics line */
  firstStepS: number;
  /** the child's peak resident set, MB */
  peakRssMb: number;
  /** seconds until it exited */
  totalS: number;
}

/** Runs `node BIN finetune data -o out --steps 1 --eval-split 0` and measures it (bin: another build, for a before). */
export async function measureFinetune(data: string, out: string, bin = BIN): Promise<FinetuneRun> {
  const rssFile = `${out}.rss`;
  const code = `import{writeFileSync}from"node:fs";process.on("exit",()=>writeFileSync(${JSON.stringify(rssFile)},String(process.resourceUsage().maxRSS)))`;
  const hook = `data:text/javascript,${encodeURIComponent(code)}`;
  const args = ['--import', hook, bin, 'finetune', data, '-o', out, '--steps', '1', '--eval-split', '0', '--progress', 'none'];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const metrics = join(out, 'metrics.jsonl');
  let firstStepS = NaN;
  const poll = setInterval(() => {
    if (Number.isNaN(firstStepS) && existsSync(metrics) && statSync(metrics).size > 0) firstStepS = (performance.now() - t0) / 1000;
  }, 20);
  const status = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(poll);
  const totalS = (performance.now() - t0) / 1000;
  if (status !== 0) throw new Error(`finetune on ${data} failed (exit ${status}): ${stderr}`);
  if (Number.isNaN(firstStepS)) firstStepS = totalS; // the step and the exit fell within one poll
  const peakRssMb = Number(readFileSync(rssFile, 'utf8')) / 1024;
  return { firstStepS, peakRssMb, totalS };
}

/** The bench: a 1 MB and a 1 GB file, the same command on each, two lines (time to first step, peak RSS). */
export async function finetuneScaleRows(emit: (line: object) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-finetune-scale-'));
  try {
    const small = join(dir, 'chats-1MB.jsonl');
    const big = join(dir, 'chats-1GB.jsonl');
    writeRepeated(small, 1e6);
    writeRepeated(big, 1e9);
    const s = await measureFinetune(small, join(dir, 'out-1MB'));
    const b = await measureFinetune(big, join(dir, 'out-1GB'));
    const peer_name = 'same command on a 1 MB file';
    const note = `nomoat finetune FILE --steps 1 --eval-split 0 (bundled model); 1 GB run: ${b.totalS.toFixed(1)} s in all, 1 MB run: ${s.totalS.toFixed(1)} s`;
    emit({ bench: 'finetune-scale', metric: 'time_to_first_step_1GB', unit: 's', ours: round(b.firstStepS), peer: round(s.firstStepS), peer_name, ratio: round(s.firstStepS / b.firstStepS), higher_is_better: false, note });
    emit({ bench: 'finetune-scale', metric: 'peak_rss_1GB', unit: 'MB', ours: round(b.peakRssMb), peer: round(s.peakRssMb), peer_name, ratio: round(s.peakRssMb / b.peakRssMb), higher_is_better: false, note });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
