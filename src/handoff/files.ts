// Writing a hand-off folder as one atomic step: everything goes into a sibling temp folder that is renamed to DIR only
// when complete, so an interrupted export never leaves a half-written folder that an engine would try to load.

import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../formats/writer.js';

/** Writes a UTF-8 text file atomically (temp file + rename), creating its folder. */
export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, (sink) => sink(Buffer.from(text, 'utf8')));
}

export function writeJson(path: string, v: unknown): void {
  writeText(path, JSON.stringify(v, null, 2) + '\n');
}

/**
 * Runs `fill(tmp)` on a fresh temp folder beside `out`, then moves it to `out`. An existing `out` is refused unless
 * `force`, in which case it is replaced only after the new folder is complete. On failure the temp folder is removed.
 */
export function writeFolderAtomic<T>(out: string, force: boolean, fill: (dir: string) => T): T {
  if (existsSync(out) && !force) throw new Error(`${out} exists; pass --force to replace it`);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const r = fill(tmp);
    if (existsSync(out)) {
      const old = `${out}.old-${process.pid}`;
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, out);
    return r;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** `path` relative to a folder for READMEs: posix separators, "./" in front. */
export function rel(...parts: string[]): string {
  return './' + join(...parts).split('\\').join('/');
}
