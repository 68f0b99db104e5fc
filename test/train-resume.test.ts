// Exact resume: a training run killed with SIGKILL (or stopped by Ctrl-C) and resumed from its last checkpoint
// ends with the same parameter and optimizer bytes, and the same metrics, as a run that was never interrupted.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMetrics } from '../src/train/index.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'train-resume-child.js');

let uninterrupted: string | null = null;
const root = mkdtempSync(join(tmpdir(), 'nomoat-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The reference run, trained once for both tests. */
function reference(): string {
  if (uninterrupted === null) {
    uninterrupted = join(root, 'uninterrupted');
    assert.deepEqual(runChild(uninterrupted, 'fresh'), { step: 12, interrupted: false, checkpoint: join(uninterrupted, 'checkpoints', 'step-000012') });
  }
  return uninterrupted;
}

function runChild(out: string, mode: 'fresh' | 'resume'): { step: number; interrupted: boolean } {
  const r = spawnSync(process.execPath, [CHILD, out, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, `child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { step: number; interrupted: boolean };
}

/** Starts a slowed-down child, waits for `waitFor` under its checkpoints, then sends `signal`. */
async function interrupt(out: string, waitFor: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; finalExisted: boolean }> {
  const child = spawn(process.execPath, [CHILD, out, 'fresh', '80'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, sig) => res({ code, signal: sig })));
  const target = join(out, 'checkpoints', waitFor, 'state.json');
  const deadline = Date.now() + 30_000;
  while (!existsSync(target)) {
    if (child.exitCode !== null) assert.fail(`child exited before ${waitFor}: ${stderr}`);
    if (Date.now() > deadline) assert.fail(`no ${waitFor} after 30 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const finalExisted = existsSync(join(out, 'checkpoints', 'step-000012'));
  child.kill(signal);
  const e = await exited;
  return { ...e, stdout, finalExisted };
}

function bytes(out: string, file: string): Buffer {
  return readFileSync(join(out, 'checkpoints', 'step-000012', file));
}

/** Metrics without the wall-clock fields. */
function trajectory(out: string): unknown[] {
  return readMetrics(join(out, 'metrics.jsonl')).map((r) => ({ step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.grad_norm, eval_loss: r.eval_loss }));
}

test('SIGKILL after the step-6 checkpoint, then --resume, ends byte-identical to an uninterrupted run', async () => {
  const a = reference();
  const b = join(root, 'killed');
  const k = await interrupt(b, 'step-000006', 'SIGKILL');
  assert.equal(k.signal, 'SIGKILL');
  assert.equal(k.finalExisted, false, 'the run finished before it was killed: the test did not test resuming');
  assert.equal(existsSync(join(b, 'loss.svg')), false);
  const r = runChild(b, 'resume');
  assert.equal(r.step, 12);

  for (const f of ['params.safetensors', 'optimizer.safetensors']) assert.ok(bytes(a, f).equals(bytes(b, f)), `${f} differs after resume`);
  assert.deepEqual(trajectory(b), trajectory(a));
  assert.deepEqual(trajectory(a).map((r) => (r as { step: number }).step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
});

test('Ctrl-C (SIGINT) saves a checkpoint at the current step and exits cleanly; resuming finishes identically', async () => {
  const a = reference();
  const b = join(root, 'interrupted');
  const k = await interrupt(b, 'step-000003', 'SIGINT');
  assert.equal(k.code, 0);
  const res = JSON.parse(k.stdout) as { step: number; interrupted: boolean; checkpoint: string };
  assert.equal(res.interrupted, true);
  assert.ok(res.step >= 3 && res.step < 12, `stopped at step ${res.step}`);
  assert.equal(res.checkpoint, join(b, 'checkpoints', `step-${String(res.step).padStart(6, '0')}`));
  assert.ok(existsSync(join(res.checkpoint, 'params.safetensors')));
  runChild(b, 'resume');
  for (const f of ['params.safetensors', 'optimizer.safetensors']) assert.ok(bytes(a, f).equals(bytes(b, f)), `${f} differs after resume`);
  assert.deepEqual(trajectory(b), trajectory(a));
});
