// One resolver for every place that takes a model: a local path passes through; `hf://…` becomes the cached
// snapshot folder or GGUF file, fetched first when it is not cached and the Hub may be reached (as llama.cpp's -hf and
// `ollama run` fetch on first use). Callers (loadForCli, recipes, inspect) are synchronous, so the download runs in a
// child process (pull-child.ts) whose progress bar goes to this process's stderr.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedCommit, hubCacheDir, hubOffline, repoFolder, snapshotFiles } from './cache.js';
import { chooseTarget } from './select.js';
import { formatHubSpec, isHubSpec, parseHubSpec } from './spec.js';

/** A model named by a spec that is not in the cache while HF_HUB_OFFLINE is set, or a download that failed. */
export class HubError extends Error {}

export type CacheLookup = { path: string } | { missing: string };

/** Where `spec` is in the cache, without any network; `missing` says why not. */
export function findInCache(specText: string, cacheDir = hubCacheDir()): CacheLookup {
  const spec = parseHubSpec(specText);
  const folder = repoFolder(spec.repo, cacheDir);
  const commit = cachedCommit(folder, spec.revision);
  if (commit === null) return { missing: `not in the Hugging Face cache (${folder} has no ${spec.revision.length === 40 ? `snapshot ${spec.revision}` : `refs/${spec.revision}`})` };
  const snapshot = join(folder, 'snapshots', commit);
  const files = snapshotFiles(snapshot);
  if (files.length === 0) return { missing: `the cached snapshot ${snapshot} is empty` };
  try {
    const t = chooseTarget(files, spec, `the cached snapshot ${snapshot}`);
    return { path: t.kind === 'folder' ? snapshot : join(snapshot, ...t.file.split('/')) };
  } catch (e) {
    return { missing: e instanceof Error ? e.message : String(e) };
  }
}

const PULL_CHILD = fileURLToPath(new URL('./pull-child.js', import.meta.url));

/** A model path for the loaders: local paths unchanged, `hf://…` from the cache, downloaded on first use when online. */
export function resolveModelPath(path: string): string {
  if (!isHubSpec(path)) return path;
  const text = formatHubSpec(parseHubSpec(path));
  const found = findInCache(path);
  if ('path' in found) return found.path;
  if (hubOffline()) {
    throw new HubError(`${text}: ${found.missing}, and HF_HUB_OFFLINE=1 forbids downloading it.\n  Fetch it once while online: nomoat pull ${text}`);
  }
  const r = spawnSync(process.execPath, [PULL_CHILD, path], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new HubError(`${text}: the download failed (its reason is above)`);
  const after = findInCache(path);
  if ('path' in after) return after.path;
  throw new HubError(`${text}: downloaded, but ${after.missing}`);
}
