// The Hugging Face cache, laid out exactly as Python's huggingface_hub lays it out (file_download.py), so a model that
// Transformers or `hf download` already fetched is used in place, and what nomoat fetches Transformers reuses:
//   $HF_HUB_CACHE (or $HF_HOME/hub, or ~/.cache/huggingface/hub)
//     models--OWNER--REPO/
//       blobs/<etag>                     the bytes, named by the ETag (sha256 for LFS files, git sha1 otherwise)
//       blobs/<etag>.incomplete          a download in progress (resumed with a Range request)
//       snapshots/<commit>/<file>        a relative symlink → ../../blobs/<etag> (one more ../ per folder level)
//       refs/<revision>                  the commit hash the revision pointed to (no newline)

import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** huggingface_hub's constants.py order: HF_HUB_CACHE, then the legacy HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? join(home, 'hub');
}

/** HF_HUB_OFFLINE as huggingface_hub reads it (_is_true: "1", "ON", "YES", "TRUE", any case). */
export function hubOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').toUpperCase());
}

/** HF_ENDPOINT (a mirror or a private Hub), default https://huggingface.co, without a trailing slash. */
export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

/** HF_TOKEN, else the token `hf auth login` saved ($HF_TOKEN_PATH or $HF_HOME/token); undefined when neither. */
export function hubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.HF_TOKEN !== undefined && env.HF_TOKEN !== '') return env.HF_TOKEN;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH ?? join(home, 'token');
  try {
    const t = readFileSync(file, 'utf8').trim();
    return t === '' ? undefined : t;
  } catch {
    return undefined;
  }
}

/** "OWNER/REPO" → <cache>/models--OWNER--REPO (huggingface_hub's repo_folder_name). */
export function repoFolder(repo: string, cacheDir = hubCacheDir()): string {
  return join(cacheDir, `models--${repo.split('/').join('--')}`);
}

/** The commit a revision points to in the cache: itself if it is a commit hash, else refs/<revision>; null if unknown. */
export function cachedCommit(folder: string, revision: string): string | null {
  if (COMMIT_HASH.test(revision)) return existsSync(join(folder, 'snapshots', revision)) ? revision : null;
  try {
    const c = readFileSync(join(folder, 'refs', revision), 'utf8').trim();
    return COMMIT_HASH.test(c) ? c : null;
  } catch {
    return null;
  }
}

/** Every file of a snapshot (relative paths, '/'-separated) whose link resolves to a blob; dangling links are left out. */
export function snapshotFiles(snapshot: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, `${prefix}${e.name}/`);
      else if (existsSync(p) && statSync(p).isFile()) out.push(`${prefix}${e.name}`); // follows the symlink
    }
  };
  if (existsSync(snapshot)) walk(snapshot, '');
  return out.sort();
}

/** Writes refs/<revision> = commit atomically (huggingface_hub's _cache_commit_hash_for_specific_revision). */
export function writeRef(folder: string, revision: string, commit: string): void {
  if (revision === commit) return;
  const ref = join(folder, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  writeFileSync(tmp, commit);
  renameSync(tmp, ref);
}

/** Points snapshots/<commit>/<file> at blobs/<etag> with a relative link (as _create_symlink does), replacing any old one. */
export function linkSnapshotFile(folder: string, commit: string, file: string, etag: string): string {
  const pointer = join(folder, 'snapshots', commit, ...file.split('/'));
  const blob = join(folder, 'blobs', etag);
  mkdirSync(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(relative(dirname(pointer), blob), tmp);
  renameSync(tmp, pointer); // atomic: the pointer is the old link or the new one, never missing
  return pointer;
}
