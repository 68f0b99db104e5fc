// A local stand-in for the Hugging Face Hub (node:http), answering the routes nomoat's pulls use as the Hub
// documents and answers them, and logging every request (method, path, Range, Authorization) for the tests:
//   GET  /api/models/{owner}/{repo}/revision/{rev}   → {_id, id, sha, siblings: [{rfilename}], …} (what @huggingface/hub's
//        modelInfo reads); 404 + X-Error-Code: RepoNotFound for an unknown repo; 401 when a token is required and absent
//   HEAD /{owner}/{repo}/resolve/{rev}/{file}        → git files: 200 with ETag "<git sha1>", Content-Length, X-Repo-Commit;
//        LFS files: 302 with X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit, Location → the CDN server
//   GET  /{owner}/{repo}/resolve/{rev}/{file}        → the same, with the body for git files
//   GET  {cdn}/blobs/{sha256}                        → the bytes; `Range: bytes=N-` → 206 + Content-Range; can cut the
//        connection mid-body once per blob (to test resuming)

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { etagOf, isLfs, sha256 } from './hub-layout.js';

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface FakeRepo {
  commit: string;
  files: Record<string, Buffer>;
}

export interface FakeHub {
  url: string;
  log: LoggedRequest[];
  /** blob sha256s whose next GET is cut after this many bytes */
  cutOnce: Map<string, number>;
  close(): Promise<void>;
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

export async function startFakeHub(repos: Record<string, FakeRepo>, token?: string): Promise<FakeHub> {
  const log: LoggedRequest[] = [];
  const cutOnce = new Map<string, number>();
  const blobs = new Map<string, Buffer>();
  for (const r of Object.values(repos)) for (const [n, b] of Object.entries(r.files)) if (isLfs(n)) blobs.set(sha256(b), b);
  const record = (server: 'hub' | 'cdn', req: IncomingMessage): void => {
    log.push({ server, method: req.method ?? '', path: decodeURIComponent((req.url ?? '').split('?')[0]), range: req.headers.range, authorization: req.headers.authorization });
  };

  const cdn = createServer((req, res) => {
    record('cdn', req);
    const m = /^\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
    const body = m === null ? undefined : blobs.get(m[1]);
    if (m === null || body === undefined) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range === null ? 0 : Number(range[1]);
    if (start > body.length) return void res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
    const part = body.subarray(start);
    res.writeHead(range === null ? 200 : 206, {
      'Content-Length': part.length, 'Accept-Ranges': 'bytes', ETag: `"${m[1]}"`,
      ...(range === null ? {} : { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` }),
    });
    const cut = cutOnce.get(m[1]);
    if (cut !== undefined && req.method === 'GET') {
      cutOnce.delete(m[1]);
      res.write(part.subarray(0, cut), () => res.destroy()); // the connection breaks mid-body
      return;
    }
    res.end(req.method === 'HEAD' ? undefined : part);
  });
  const cdnUrl = await listen(cdn);

  const deny = (res: ServerResponse, status: number, code: string, message: string): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message }).end(JSON.stringify({ error: message }));
  };
  const hub = createServer((req, res) => {
    record('hub', req);
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) return deny(res, 401, 'GatedRepo', 'Invalid credentials in Authorization header');
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api !== null) {
      const repo = repos[api[1]];
      if (repo === undefined || (api[2] !== 'main' && api[2] !== repo.commit)) return deny(res, 404, 'RepoNotFound', 'Repository not found');
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({
        _id: '0123456789abcdef01234567', id: api[1], sha: repo.commit, private: false, gated: false, downloads: 0, likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z', pipeline_tag: 'text-generation', siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
      }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = resolve === null ? undefined : repos[resolve[1]];
    if (resolve === null || repo === undefined) return deny(res, 404, 'RepoNotFound', 'Repository not found');
    if (resolve[2] !== 'main' && resolve[2] !== repo.commit) return deny(res, 404, 'RevisionNotFound', 'Invalid rev id');
    const body = repo.files[resolve[3]];
    if (body === undefined) return deny(res, 404, 'EntryNotFound', 'Entry not found');
    const etag = etagOf(resolve[3], body);
    if (isLfs(resolve[3])) {
      res.writeHead(302, { 'X-Linked-Etag': `"${etag}"`, 'X-Linked-Size': body.length, 'X-Repo-Commit': repo.commit, Location: `${cdnUrl}/blobs/${etag}`, ETag: '"pointer-etag"' }).end();
      return;
    }
    res.writeHead(200, { ETag: `"${etag}"`, 'Content-Length': body.length, 'X-Repo-Commit': repo.commit });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const url = await listen(hub);
  const close = async (): Promise<void> => {
    hub.closeAllConnections();
    cdn.closeAllConnections();
    await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
  };
  return { url, log, cutOnce, close };
}
