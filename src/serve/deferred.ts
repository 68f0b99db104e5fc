// The server as the package entry gives it: createServer checks its options at once and starts the server stack
// (Fastify, zod, the routes of http.ts) only in listen(), so `import 'nomoat'` stays free of it. `nomoat/serve`
// exports http.ts's createServer itself, whose Fastify app exists from the start (for app.inject in tests).

import type { FastifyInstance } from 'fastify';
import type { ServeEngine } from './engine.js';
import type { NomoatServer } from './http.js';
import { checkServerOptions, type ServerOptions } from './options.js';
import type { ModelRegistry } from './registry.js';

/**
 * An HTTP server over `opts.engine`, as `nomoat serve` runs it. Options are checked now; adapters, recipes and the
 * library load, and Fastify starts, in listen(). `app` and `registry` exist once listen() has resolved.
 */
export function createServer(opts: ServerOptions): NomoatServer {
  checkServerOptions(opts);
  let server: NomoatServer | null = null;
  let starting: Promise<NomoatServer> | null = null;
  let closed: Promise<void> | null = null;
  const started = (what: string): NomoatServer => {
    if (server === null) throw new Error(`server.${what} exists once listen() has resolved (import createServer from 'nomoat/serve' for a server built at once)`);
    return server;
  };
  return {
    engine: opts.engine,
    get app(): FastifyInstance {
      return started('app').app;
    },
    get registry(): ModelRegistry {
      return started('registry').registry;
    },
    async listen() {
      if (closed !== null) throw new Error('the server is closed');
      starting ??= import('./http.js').then((http) => (server = http.createServer(opts)));
      return (await starting).listen();
    },
    close() {
      closed ??= (async () => {
        const s = starting === null ? null : await starting.catch(() => null);
        if (s !== null) return s.close();
        opts.engine.dispose(); // never started (or failed to): the engine is still the server's to free
      })();
      return closed;
    },
  } satisfies NomoatServer;
}

export type { NomoatServer, ServerOptions, ServeEngine };
