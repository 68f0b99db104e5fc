// Training checkpoints: one folder per saved step holding everything an exact resume needs, written atomically.
//
// Layout of <root>/step-000006/:
//   params.safetensors     trainable parameters, F32, under their own names
//   optimizer.safetensors  AdamW moments, "<name>.exp_avg" and "<name>.exp_avg_sq" (PyTorch's state names)
//   state.json             step, AdamW step, loader position, elapsed time, loss history, run settings
// The folder is built as step-000006.tmp-<pid>, fsynced, then renamed, so a folder named step-N is always
// complete; a process killed mid-save leaves only a .tmp folder, swept by the next save.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Buf } from '../engine/backend.js';
import type { AdamW } from '../engine/optim.js';
import { readSafetensors, readSafetensorsF32, writeSafetensors, type SafetensorsTensorSpec } from '../formats/safetensors.js';
import { writeFileAtomic } from '../formats/writer.js';
import type { LoaderState } from './batching.js';
import type { NamedParam } from './types.js';

export const CHECKPOINT_VERSION = 1;

/** One metrics point kept for the loss curve (and restored with the checkpoint). */
export interface HistoryPoint {
  step: number;
  loss?: number;
  evalLoss?: number;
}

export interface CheckpointState {
  version: number;
  /** optimizer updates completed (the next update is number `step`, 0-based) */
  step: number;
  /** AdamW's own step counter (bias correction) */
  adamStep: number;
  loader: LoaderState;
  /** seconds of training before this checkpoint, over every resumed segment */
  elapsedS: number;
  /** targets trained on so far */
  tokensSeen: number;
  /** training forward passes (micro-batches) run so far */
  forwards: number;
  history: HistoryPoint[];
  /** state of the run's Stateful hooks, by key */
  extra: Record<string, unknown>;
  /** the run's settings, compared on resume so a changed run is not silently continued */
  settings: Record<string, unknown>;
  params: { name: string; shape: number[] }[];
}

const STEP_DIR = /^step-(\d+)$/;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some platforms (Windows) cannot fsync a directory; the rename is still atomic there
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Saved checkpoints under root, oldest first. */
export function listCheckpoints(root: string): { step: number; dir: string }[] {
  if (!existsSync(root)) return [];
  const out: { step: number; dir: string }[] = [];
  for (const name of readdirSync(root)) {
    const m = STEP_DIR.exec(name);
    if (m !== null && existsSync(join(root, name, 'state.json'))) out.push({ step: Number(m[1]), dir: join(root, name) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder under root, or null. */
export function latestCheckpoint(root: string): string | null {
  const all = listCheckpoints(root);
  return all.length === 0 ? null : all[all.length - 1].dir;
}

function spec(name: string, shape: readonly number[], data: Buf): SafetensorsTensorSpec {
  return { name, dtype: 'F32', shape: [...shape], data: data instanceof Float32Array ? data : Float32Array.from(data) };
}

/** Writes a checkpoint for `state.step` under root; keeps only the newest `keepLast` (0 = keep all). Returns its folder. */
export function saveCheckpoint(root: string, params: readonly NamedParam[], opt: AdamW, state: CheckpointState, keepLast = 0): string {
  mkdirSync(root, { recursive: true });
  for (const name of readdirSync(root)) if (/^step-\d+\.tmp-\d+$/.test(name)) rmSync(join(root, name), { recursive: true, force: true });
  const final = join(root, checkpointDirName(state.step));
  const tmp = `${final}.tmp-${process.pid}`;
  mkdirSync(tmp);
  writeSafetensors(join(tmp, 'params.safetensors'), params.map((p) => spec(p.name, p.tensor.shape, p.tensor.data)));
  const moments = opt.state();
  writeSafetensors(
    join(tmp, 'optimizer.safetensors'),
    params.flatMap((p, i) => [spec(`${p.name}.exp_avg`, p.tensor.shape, moments[i].m.data), spec(`${p.name}.exp_avg_sq`, p.tensor.shape, moments[i].v.data)]),
  );
  const json = Buffer.from(JSON.stringify(state, null, 1) + '\n', 'utf8');
  writeFileAtomic(join(tmp, 'state.json'), (sink) => sink(json));
  fsyncDir(tmp);
  if (existsSync(final)) rmSync(final, { recursive: true, force: true }); // re-saving a step after resuming from an older one
  renameSync(tmp, final);
  fsyncDir(root);
  if (keepLast > 0) for (const c of listCheckpoints(root).slice(0, -keepLast)) rmSync(c.dir, { recursive: true, force: true });
  return final;
}

function parseState(path: string): CheckpointState {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const s = j as Partial<CheckpointState>;
  if (typeof j !== 'object' || j === null || s.version !== CHECKPOINT_VERSION) throw new Error(`${path}: not a version ${CHECKPOINT_VERSION} checkpoint state`);
  for (const k of ['step', 'adamStep', 'elapsedS', 'tokensSeen', 'forwards'] as const) {
    if (typeof s[k] !== 'number') throw new Error(`${path}: field "${k}" must be a number`);
  }
  if (typeof s.loader !== 'object' || typeof s.extra !== 'object' || !Array.isArray(s.params) || !Array.isArray(s.history)) throw new Error(`${path}: missing loader, extra, params or history`);
  return s as CheckpointState;
}

/** Reads a checkpoint's state.json without touching tensors. */
export function readCheckpointState(dir: string): CheckpointState {
  return parseState(join(dir, 'state.json'));
}

/** Copies a checkpoint's parameters and AdamW moments into the live tensors and returns its state. */
export function loadCheckpoint(dir: string, params: readonly NamedParam[], opt: AdamW): CheckpointState {
  const state = readCheckpointState(dir);
  const saved = new Map(state.params.map((p) => [p.name, p.shape]));
  if (saved.size !== params.length) throw new Error(`${dir}: checkpoint holds ${saved.size} parameters, the run trains ${params.length}`);
  for (const p of params) {
    const shape = saved.get(p.name);
    if (shape === undefined) throw new Error(`${dir}: checkpoint has no parameter "${p.name}"`);
    if (shape.join(',') !== p.tensor.shape.join(',')) throw new Error(`${dir}: parameter "${p.name}" is [${shape.join(', ')}] in the checkpoint, [${p.tensor.shape.join(', ')}] in the model`);
  }
  const pf = readSafetensors(join(dir, 'params.safetensors'));
  const of = readSafetensors(join(dir, 'optimizer.safetensors'));
  try {
    const moments = opt.state();
    params.forEach((p, i) => {
      p.tensor.data.set(readSafetensorsF32(pf, p.name));
      moments[i].m.data.set(readSafetensorsF32(of, `${p.name}.exp_avg`));
      moments[i].v.data.set(readSafetensorsF32(of, `${p.name}.exp_avg_sq`));
    });
  } finally {
    pf.source.close?.();
    of.source.close?.();
  }
  opt.step = state.adamStep;
  return state;
}
