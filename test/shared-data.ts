// Data that the repository does not hold: ../shared/data beside the clone (there in CI too; NOMOAT_SHARED_DATA
// points elsewhere). On a machine without it a test that needs it is skipped, naming what is missing; under CI=true
// a missing file fails the test instead, so CI cannot pass by skipping.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..'); // dist/test → the clone
export const SHARED_DATA = process.env.NOMOAT_SHARED_DATA ?? join(ROOT, '..', 'shared', 'data');
const CI = process.env.CI === 'true';

/** A path under the shared data folder. */
export function sharedPath(...parts: string[]): string {
  return join(SHARED_DATA, ...parts);
}

function missingError(missing: string[]): Error {
  return new Error(`missing shared data under CI=true: ${missing.join(', ')} (../shared/data beside the clone)`);
}

/** Test options for a test that reads `paths`: skipped (saying which are absent) outside CI, run (and failed) in CI. */
export function needsShared(...paths: string[]): { skip: string | false } {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length === 0 || CI) return { skip: false };
  return { skip: `${missing.join(', ')} absent (../shared/data beside the clone; CI=true requires it)` };
}

/** Call first in a test given needsShared's options: throws naming the missing paths (only reachable in CI). */
export function requireShared(...paths: string[]): void {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length > 0) throw missingError(missing);
}

/** For data a test can do without (a smaller check): whether `path` exists; under CI=true its absence throws. */
export function optionalShared(path: string): boolean {
  if (existsSync(path)) return true;
  if (CI) throw missingError([path]);
  return false;
}
