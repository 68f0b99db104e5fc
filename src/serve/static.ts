// The web page's files: GET / is web/index.html, GET /x is web/x, from the package's web/ folder. Only plain
// files inside that folder are served (the path normalized, `..` refused, symlinks resolved and checked); a
// folder without index.html (another webDir, a trimmed package) gives a short placeholder page.

import { readFileSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's web/ folder (from dist/src/serve/, three levels up). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../web', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8', '.woff2': 'font/woff2', '.map': 'application/json; charset=utf-8',
};

export const PLACEHOLDER_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nomoat</title></head>
<body><h1>nomoat</h1><p>The web page is not built yet (web/index.html is missing from this package).
The OpenAI-compatible API is up: <code>GET /v1/models</code>, <code>POST /v1/chat/completions</code>,
<code>POST /v1/completions</code>; <code>GET /health</code>, <code>GET /metrics</code>.</p></body></html>
`;

export interface StaticFile {
  body: Buffer;
  type: string;
}

/**
 * The file a URL path names under root, or null (not found, not a plain file, or outside root). `urlPath` is the
 * decoded path after the leading slash; '' and folders mean their index.html.
 */
export function readStatic(root: string, urlPath: string): StaticFile | null {
  if (urlPath.includes('\0') || urlPath.includes('\\')) return null;
  const parts = urlPath.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..')) return null;
  let realRoot: string;
  let real: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(join(realRoot, ...parts));
    if (statSync(real).isDirectory()) real = realpathSync(join(real, 'index.html'));
  } catch {
    return null;
  }
  const rel = relative(realRoot, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
  try {
    if (!statSync(real).isFile()) return null;
    return { body: readFileSync(real), type: TYPES[extname(real).toLowerCase()] ?? 'application/octet-stream' };
  } catch {
    return null;
  }
}
