// `import 'nomoat'` loads the library, not the server stack: Fastify and zod load only with `nomoat/serve` (or when
// the entry's createServer starts listening). Checked in a child process whose module hooks refuse to resolve either
// package, so a static import anywhere under the entry fails the import; the server subpath is the control.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer, type ServeEngine } from '../src/index.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** Hooks that throw on resolving anything inside the fastify or zod packages (ESM imports of either go through them). */
const HOOKS = `
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (/[\\\\/]node_modules[\\\\/](fastify|zod)[\\\\/]/.test(r.url)) throw new Error('server stack loaded: ' + r.url + ' (imported as ' + specifier + ' by ' + context.parentURL + ')');
  return r;
}
`;

/** Imports `specifier` (resolved from the package root, as a user's `import` resolves it) with the hooks on. */
function importGuarded(specifier: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-entry-'));
  try {
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(hooks, HOOKS);
    const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`;
    const main = `
      const m = await import(${JSON.stringify(specifier)});
      const { createRequire } = await import('node:module');
      const cjs = Object.keys(createRequire(import.meta.url).cache).filter((p) => /[\\\\/]node_modules[\\\\/](fastify|zod)[\\\\/]/.test(p));
      console.log(JSON.stringify({ exports: Object.keys(m).length, cjs }));
    `;
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', main], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("import 'nomoat' loads neither fastify nor zod", () => {
  const r = importGuarded('nomoat');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { exports: number; cjs: string[] };
  assert.ok(out.exports > 50, `${out.exports} exports`);
  assert.deepEqual(out.cjs, []);
});

test("the guard works: 'nomoat/serve' (the server) trips it", () => {
  const r = importGuarded('nomoat/serve');
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stderr, /server stack loaded: .*node_modules\/(fastify|zod)\//);
});

test("the entry's createServer: options checked at once, the server built at listen(), close() before it frees the engine", async () => {
  let disposed = 0;
  const engine = { dispose: () => void disposed++ } as unknown as ServeEngine;
  assert.throws(() => createServer({ engine, modelId: 'm', host: '0.0.0.0' }), /without an API key/);
  assert.throws(() => createServer({ engine, modelId: 'm', port: 70000 }), /port must be an integer/);
  const server = createServer({ engine, modelId: 'm', port: 0 });
  assert.equal(server.engine, engine);
  assert.throws(() => server.app, /exists once listen\(\) has resolved.*nomoat\/serve/);
  await server.close();
  await server.close();
  assert.equal(disposed, 1);
  await assert.rejects(server.listen(), /closed/);
});
