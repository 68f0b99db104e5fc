// Downloads a Hub model into the huggingface_hub cache layout (cache.ts). The listing (commit + file names) comes
// from @huggingface/hub's modelInfo (`GET /api/models/{repo}/revision/{rev}`, as huggingface_hub's snapshot_download
// calls repo_info); each file then follows file_download.py: `HEAD /{repo}/resolve/{commit}/{file}` without following
// a redirect to another host (Accept-Encoding: identity) for X-Repo-Commit, X-Linked-Etag / ETag, X-Linked-Size /
// Content-Length and Location; then a GET of Location into blobs/<etag>.incomplete, resumed with `Range: bytes=N-`,
// renamed to blobs/<etag> only once complete (and its sha256 checked when the etag is one), then the snapshot link.
// The bytes are fetched here rather than by the library's downloadFileToCacheDir, which neither resumes nor names
// Xet-stored blobs by the ETag huggingface_hub uses, and whose WebBlob hides whether a Range was honoured (206).

import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HubApiError, modelInfo } from '@huggingface/hub';
import { hubCacheDir, hubEndpoint, hubOffline, hubToken, linkSnapshotFile, repoFolder, writeRef } from './cache.js';
import { ProgressBar, formatBytes } from './progress.js';
import { chooseTarget } from './select.js';
import { formatHubSpec, parseHubSpec, type HubSpec } from './spec.js';

export interface PullOptions {
  cacheDir?: string;
  /** default HF_ENDPOINT or https://huggingface.co */
  endpoint?: string;
  /** default HF_TOKEN or the saved token */
  token?: string;
  /** progress bars on stderr (default true) */
  progress?: boolean;
  /** one line per file fetched or found (default: stderr) */
  log?: (line: string) => void;
  /** attempts per file when a connection breaks mid-download, each resuming where the last stopped (default 3) */
  attempts?: number;
}

/** What a pull left in the cache. */
export interface PullResult {
  /** the snapshot folder (HF folder) or the GGUF file inside it */
  path: string;
  commit: string;
  files: string[];
  /** bytes fetched over the network by this pull */
  downloaded: number;
}

/** huggingface_hub's _normalize_etag: drop a weak marker and the quotes. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** A Hub answer turned into what to do next. */
export function hubErrorMessage(spec: string, status: number, what: string): string {
  const pull = `nomoat pull ${spec}`;
  if (status === 401 || status === 403) {
    return `${spec}: ${what}: HTTP ${status}: the repository is private or gated, or does not exist. If it exists, accept its terms on the Hub, ` +
      `create a read token at https://huggingface.co/settings/tokens and run: HF_TOKEN=hf_... ${pull}`;
  }
  if (status === 404) return `${spec}: ${what}: HTTP 404: not found on the Hub; check OWNER/REPO, the revision and the file name`;
  return `${spec}: ${what}: HTTP ${status} from the Hub; try again later (\`${pull}\` resumes)`;
}

interface FileMeta {
  etag: string;
  size: number;
  commit: string | null;
  /** where the bytes are: the resolve URL itself or the CDN it redirects to */
  location: string;
}

/** HEAD on the resolve URL, following only same-host redirects (a renamed repository), as get_hf_file_metadata does. */
async function fileMeta(url: string, headers: Record<string, string>, spec: string, file: string): Promise<FileMeta> {
  let at = url;
  for (let hop = 0; hop < 5; hop++) {
    const r = await fetch(at, { method: 'HEAD', redirect: 'manual', headers: { ...headers, 'Accept-Encoding': 'identity' } });
    const loc = r.headers.get('location');
    if (r.status >= 300 && r.status < 400 && loc !== null) {
      const next = new URL(loc, at);
      if (next.origin === new URL(url).origin && r.headers.get('x-linked-etag') === null && r.headers.get('etag') === null) {
        at = next.href;
        continue;
      }
      return meta(r, next.href);
    }
    if (!r.ok) throw new Error(hubErrorMessage(spec, r.status, file));
    return meta(r, at);
  }
  throw new Error(`${spec}: ${file}: too many redirects`);

  function meta(r: Response, location: string): FileMeta {
    const etag = r.headers.get('x-linked-etag') ?? r.headers.get('etag');
    const size = Number(r.headers.get('x-linked-size') ?? r.headers.get('content-length'));
    if (etag === null || !Number.isFinite(size)) throw new Error(`${spec}: ${file}: the server sent no ETag or size; is HF_ENDPOINT (${new URL(url).origin}) a Hugging Face Hub?`);
    return { etag: normalizeEtag(etag), size, commit: r.headers.get('x-repo-commit'), location };
  }
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Streams GET `url` into `incomplete`, resuming from its current size; returns the bytes received. */
async function fetchInto(url: string, headers: Record<string, string>, incomplete: string, size: number, bar: ProgressBar | null, spec: string, file: string): Promise<number> {
  const have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (have === size && size > 0) return 0;
  const r = await fetch(url, { headers: have > 0 ? { ...headers, Range: `bytes=${have}-` } : headers });
  if (r.status === 416 && have > 0) { // our partial file is longer than the blob: start over
    rmSync(incomplete, { force: true });
    await r.body?.cancel();
    return fetchInto(url, headers, incomplete, size, bar, spec, file);
  }
  if (!r.ok) throw new Error(hubErrorMessage(spec, r.status, file));
  const append = r.status === 206; // a 200 answer to a Range request sends the whole file: start from 0
  const out = createWriteStream(incomplete, { flags: append ? 'a' : 'w' });
  let done = append ? have : 0;
  let got = 0;
  try {
    if (r.body === null) throw new Error('empty body');
    for await (const chunk of r.body) {
      const b = chunk as Uint8Array;
      if (!out.write(b)) await new Promise<void>((res) => out.once('drain', res));
      done += b.length;
      got += b.length;
      bar?.update(done);
    }
  } finally {
    await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  }
  return got;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One downloader per blob across processes (two commands started at once on a new hf:// model): an exclusive lock
 * file holding the owner's pid, where huggingface_hub keeps its locks (<cache>/.locks/models--OWNER--REPO/), under a
 * name of its own (Python's filelock leaves its empty `<etag>.lock` files behind). A lock whose owner died is taken over.
 */
async function lockBlob(folder: string, etag: string): Promise<() => void> {
  const path = join(dirname(folder), '.locks', basename(folder), `${etag}.nomoat.lock`);
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(path, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    // no pid yet: its owner is between creating and writing the file, unless that was long ago (it died there)
    const stale = Number.isInteger(pid) && pid > 0 ? !alive(pid) : Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 10_000;
    if (stale) rmSync(path, { force: true });
    else await new Promise((r) => setTimeout(r, 200));
  }
}

/** Fetches one file of the repository at `commit` into the cache (blob + snapshot link); returns bytes downloaded. */
async function pullFile(folder: string, repo: string, commit: string, file: string, o: Required<Omit<PullOptions, 'cacheDir' | 'token'>> & { token?: string }, spec: string): Promise<number> {
  const pointer = join(folder, 'snapshots', commit, ...file.split('/'));
  if (existsSync(pointer)) return 0; // a snapshot file never changes: its commit names it
  const url = `${o.endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const headers: Record<string, string> = { 'User-Agent': 'nomoat; hf_hub-compatible' };
  if (o.token !== undefined) headers.Authorization = `Bearer ${o.token}`;
  const m = await fileMeta(url, headers, spec, file);
  if (m.commit !== null && m.commit !== commit) throw new Error(`${spec}: ${file}: the Hub answered for commit ${m.commit}, not ${commit}; run the pull again`);
  const blob = join(folder, 'blobs', m.etag);
  const release = await lockBlob(folder, m.etag);
  try {
    if (existsSync(blob) && statSync(blob).size === m.size) {
      linkSnapshotFile(folder, commit, file, m.etag);
      o.log(`${file}: already in the cache (${formatBytes(m.size)})`);
      return 0;
    }
    return await fetchBlob(folder, commit, file, blob, m, url, headers, o, spec);
  } finally {
    release();
  }
}

/** Downloads blob `m` (resuming its .incomplete), checks it, renames it into place and links the snapshot file. */
async function fetchBlob(folder: string, commit: string, file: string, blob: string, m: FileMeta, url: string, headers: Record<string, string>,
  o: { progress: boolean; attempts: number; log: (l: string) => void }, spec: string): Promise<number> {
  mkdirSync(join(folder, 'blobs'), { recursive: true });
  const incomplete = `${blob}.incomplete`;
  // A signed CDN URL takes no token (file_download.py drops authorization when the host changes).
  const getHeaders = new URL(m.location).host === new URL(url).host ? headers : { 'User-Agent': headers['User-Agent'] };
  const resumed = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (resumed > 0) o.log(`${file}: resuming at ${formatBytes(resumed)} of ${formatBytes(m.size)}`);
  const bar = o.progress ? new ProgressBar(file, m.size, resumed) : null;
  let got = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      got += await fetchInto(m.location, getHeaders, incomplete, m.size, bar, spec, file);
      if (statSync(incomplete).size === m.size) break;
      throw new Error(`connection closed at ${formatBytes(statSync(incomplete).size)} of ${formatBytes(m.size)}`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (msg.startsWith(spec) || attempt >= o.attempts) {
        throw new Error(msg.startsWith(spec) ? msg : `${spec}: ${file}: download interrupted (${msg}); the part is kept: run \`nomoat pull ${spec}\` again to resume`);
      }
    }
  }
  bar?.update(m.size, true);
  if (/^[0-9a-f]{64}$/.test(m.etag)) {
    const sum = await sha256Of(incomplete);
    if (sum !== m.etag) {
      rmSync(incomplete, { force: true });
      throw new Error(`${spec}: ${file}: downloaded bytes have sha256 ${sum}, not the Hub's ${m.etag}; removed them, run the pull again`);
    }
  }
  renameSync(incomplete, blob); // only now does the blob exist: a partial download never looks complete
  linkSnapshotFile(folder, commit, file, m.etag);
  return got;
}

/** The commit a revision is at and the repository's file names (huggingface_hub's repo_info). */
async function listing(spec: HubSpec, endpoint: string, token: string | undefined, text: string): Promise<{ commit: string; files: string[] }> {
  try {
    const info = await modelInfo({ name: spec.repo, revision: spec.revision, hubUrl: endpoint, additionalFields: ['sha', 'filePaths'], ...(token !== undefined ? { accessToken: token } : {}) });
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha)) throw new Error(`${text}: the Hub's answer has no commit hash ("sha")`);
    return { commit: info.sha, files: info.filePaths };
  } catch (e) {
    if (e instanceof HubApiError) throw new Error(hubErrorMessage(text, e.statusCode, 'listing the repository'));
    if (e instanceof TypeError && /access token/.test(e.message)) throw new Error(`${text}: HF_TOKEN must be a Hugging Face token (hf_...), see https://huggingface.co/settings/tokens`);
    if (e instanceof TypeError) throw new Error(`${text}: cannot reach ${endpoint} (${e.cause instanceof Error ? e.cause.message : e.message}); check the network, or use the cache only with HF_HUB_OFFLINE=1`);
    throw e;
  }
}

/** Downloads what `spec` names (only the files a model needs) into the cache; returns the local path. */
export async function pullModel(specText: string, opts: PullOptions = {}): Promise<PullResult> {
  const spec = parseHubSpec(specText);
  const text = formatHubSpec(spec);
  if (hubOffline()) throw new Error(`${text}: HF_HUB_OFFLINE=1 is set, so nothing is downloaded; unset it to pull`);
  const o = {
    endpoint: (opts.endpoint ?? hubEndpoint()).replace(/\/+$/, ''), progress: opts.progress ?? true, attempts: opts.attempts ?? 3,
    log: opts.log ?? ((l: string) => process.stderr.write(`${l}\n`)), token: opts.token ?? hubToken(),
  };
  const folder = repoFolder(spec.repo, opts.cacheDir ?? hubCacheDir());
  const { commit, files: all } = await listing(spec, o.endpoint, o.token, text);
  const target = chooseTarget(all, spec, `the Hub repository ${spec.repo}`);
  const files = target.kind === 'folder' ? target.files : [target.file];
  let downloaded = 0;
  for (const f of files) downloaded += await pullFile(folder, spec.repo, commit, f, o, text);
  writeRef(folder, spec.revision, commit);
  const snapshot = join(folder, 'snapshots', commit);
  return { path: target.kind === 'folder' ? snapshot : join(snapshot, ...target.file.split('/')), commit, files, downloaded };
}
