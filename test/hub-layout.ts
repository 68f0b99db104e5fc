// Lays out a Hugging Face cache by hand exactly as Python's huggingface_hub writes it (file_download.py), for the
// hub tests: blobs named by ETag (sha256 for LFS files, the git blob sha1 otherwise), relative snapshot symlinks,
// refs/<revision> holding the commit hash with no newline.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** git's blob id: sha1("blob <size>\0" + bytes), the ETag the Hub gives a file stored in git. */
export function gitBlobSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Files the Hub stores in LFS (by .gitattributes' defaults): weights; their ETag is the sha256. */
export function isLfs(name: string): boolean {
  return /\.(safetensors|gguf|bin)$/.test(name);
}

export function etagOf(name: string, bytes: Buffer): string {
  return isLfs(name) ? sha256(bytes) : gitBlobSha1(bytes);
}

/** A deterministic 40-hex commit id for a test repository. */
export function commitOf(label: string): string {
  return createHash('sha1').update(label).digest('hex');
}

/** Writes `files` (repo path → bytes) as snapshot `commit` of `repo` under `cacheDir`, with refs/<revision>. */
export function layOut(cacheDir: string, repo: string, commit: string, files: Record<string, Buffer>, revision = 'main'): string {
  const folder = join(cacheDir, `models--${repo.replace('/', '--')}`);
  for (const [name, bytes] of Object.entries(files)) {
    const etag = etagOf(name, bytes);
    const blob = join(folder, 'blobs', etag);
    mkdirSync(dirname(blob), { recursive: true });
    writeFileSync(blob, bytes);
    const pointer = join(folder, 'snapshots', commit, name);
    mkdirSync(dirname(pointer), { recursive: true });
    symlinkSync(relative(dirname(pointer), blob), pointer);
  }
  mkdirSync(join(folder, 'refs'), { recursive: true });
  writeFileSync(join(folder, 'refs', revision), commit);
  return join(folder, 'snapshots', commit);
}

/** The files of a local model folder as repo path → bytes. */
export function readFolder(dir: string, names: readonly string[]): Record<string, Buffer> {
  return Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n))]));
}
