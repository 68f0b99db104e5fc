// The HTTP server: OpenAI's API (chat, completions, models) over the serving engine, vLLM's runtime LoRA
// endpoints, /health, Prometheus /metrics, the web page at / and its arena's votes. Routes are thin: protocol.ts
// validates, completions.ts runs requests, registry.ts names models, engine.ts batches, arena.ts logs votes.
//
// Fastify, because it is maintained (the OpenJS Foundation's, v5 current), has request-body limits and JSON
// parsing built in (a too-large body is a 413 before any of it is buffered; __proto__ keys are refused), and is
// among the fastest Node HTTP frameworks; Hono would do as well, but needs an adapter for Node's http module.
//
// Safety: loopback by default, and any other address only with an API key (Authorization: Bearer KEY, compared in
// constant time on SHA-256 digests); bodies up to 1 MiB; only application/json bodies (so a web page elsewhere
// cannot post a "simple" cross-site request without a CORS preflight); CORS off unless one origin is given;
// errors never carry a stack trace.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyInstance, type FastifyReply } from 'fastify';
import { configName, VoteLog } from './arena.js';
import { chatFormat, chatPlan, completionFormat, completionPlan, runPlan, type Format, type GenerationDeps, type Plan } from './completions.js';
import type { ServeEngine } from './engine.js';
import { HttpCounters, PROMETHEUS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import { ApiError, ArenaVoteRequest, ChatRequest, CompletionRequest, LoadLoraRequest, parseBody, UnloadLoraRequest } from './protocol.js';
import { checkServerOptions, isLoopback, type ServerOptions } from './options.js';
import { ModelRegistry } from './registry.js';
import { DEFAULT_WEB_DIR, PLACEHOLDER_PAGE, readStatic } from './static.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** served without the API key (health and the web page's files) */
    public?: boolean;
  }
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export { isLoopback, type ServerOptions };

export interface NomoatServer {
  readonly app: FastifyInstance;
  readonly engine: ServeEngine;
  readonly registry: ModelRegistry;
  /** starts listening; resolves with the URL (http://host:port) */
  listen(): Promise<string>;
  /** stops accepting requests (new ones get 503), lets the running ones finish, then frees the engine and adapters */
  close(): Promise<void>;
}

/** Any error as the API's: ApiErrors as they are, Fastify's body errors by their code, anything else a bare 500. */
export function toApiError(e: unknown, bodyLimit = DEFAULT_BODY_LIMIT): ApiError {
  if (e instanceof ApiError) return e;
  const f = e as { code?: unknown; statusCode?: unknown; message?: unknown };
  const status = typeof f.statusCode === 'number' ? f.statusCode : 500;
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, `the request body is larger than this server's limit of ${bodyLimit} bytes`, 'invalid_request_error', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'the request body must be JSON, sent with Content-Type: application/json', 'invalid_request_error', null, 'unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'the request body is empty; send a JSON object', 'invalid_request_error');
    case 'FST_ERR_CTP_INVALID_JSON_BODY': // also a __proto__ or constructor.prototype key
      return new ApiError(400, 'the request body is not valid JSON', 'invalid_request_error', null, 'invalid_json');
  }
  if (status >= 400 && status < 500 && typeof f.message === 'string') return new ApiError(status, f.message, 'invalid_request_error');
  return new ApiError(500, 'internal server error', 'server_error');
}

/** Headers that go with an error status. */
function errorHeaders(e: ApiError): Record<string, string> {
  if (e.status === 401) return { 'WWW-Authenticate': 'Bearer' };
  if (e.status === 429) return { 'Retry-After': '1' };
  if (e.status === 503) return { Connection: 'close' };
  return {};
}

function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The page loads only its own files and talks only to this server: no inline script, nothing from elsewhere. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function createServer(opts: ServerOptions): NomoatServer {
  const { host, port } = checkServerOptions(opts);
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const log = opts.log ?? ((line: string): void => void process.stderr.write(`${line}\n`));
  const { engine } = opts;
  const registry = new ModelRegistry(engine, {
    baseId: opts.modelId, basePath: opts.modelPath ?? opts.modelId, adaptersDir: opts.adaptersDir, allowLoading: opts.allowAdapterLoading === true,
    onWarning: (m) => log(`nomoat serve: warning: ${m}`),
  });
  try {
    for (const l of opts.loras ?? []) registry.addAdapterFile(l.name, l.path);
    for (const r of opts.recipes ?? []) registry.addRecipeFile(r.name, r.path);
    if (opts.library !== undefined) log(`nomoat serve: ${registry.addLibrary(opts.library)}`);
  } catch (e) {
    registry.dispose();
    throw e;
  }
  let votes: VoteLog | null = null;
  try {
    if (opts.votesFile !== undefined) votes = new VoteLog(opts.votesFile);
  } catch (e) {
    registry.dispose();
    throw e;
  }
  const deps: GenerationDeps = { engine, registry, modelId: opts.modelId };
  const keyHash = opts.apiKey !== undefined && opts.apiKey !== '' ? sha256(opts.apiKey) : null;
  const counters = new HttpCounters();
  const webDir = opts.webDir ?? DEFAULT_WEB_DIR;
  let closing = false;

  const app = fastify({ bodyLimit, logger: false, return503OnClosing: false });
  app.removeContentTypeParser('text/plain'); // JSON only: a text/plain post is a "simple" cross-site request
  const logError = (e: unknown): void => log(`nomoat serve: error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  /** The API's error for any failure; an unexpected one is logged (its details stay here). */
  const apiError = (e: unknown): ApiError => {
    const err = toApiError(e, bodyLimit);
    if (err.status >= 500 && !(e instanceof ApiError)) logError(e);
    return err;
  };
  const sendError = (res: ServerResponse, e: unknown): void => {
    const err = apiError(e);
    writeJson(res, err.status, err.body(), errorHeaders(err));
  };

  app.setErrorHandler((e, _request, reply) => {
    const err = apiError(e);
    return reply.code(err.status).headers(errorHeaders(err)).send(err.body());
  });
  app.setNotFoundHandler((request) => {
    throw new ApiError(404, `no route for ${request.method} ${request.url.split('?')[0]}`, 'invalid_request_error', null, 'not_found');
  });

  app.addHook('onRequest', async (request, reply) => {
    const res = reply.raw;
    res.once('close', () => counters.count(request.routeOptions.url ?? 'unmatched', res.writableFinished ? res.statusCode : 499));
    // CORS first, so that a browser can read the errors below
    const origin = request.headers.origin;
    if (opts.cors !== undefined && opts.cors !== '*') res.setHeader('Vary', 'Origin');
    if (opts.cors !== undefined && origin !== undefined && (opts.cors === '*' || origin === opts.cors)) {
      res.setHeader('Access-Control-Allow-Origin', opts.cors === '*' ? '*' : origin);
    }
    if (closing) throw new ApiError(503, 'the server is shutting down', 'service_unavailable', null, 'shutting_down');
    if (keyHash !== null && request.routeOptions.config.public !== true) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (m === null) throw new ApiError(401, 'You didn\'t provide an API key. Send it as Authorization: Bearer KEY.', 'invalid_request_error', null, 'invalid_api_key');
      if (!timingSafeEqual(sha256(m[1]), keyHash)) throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
    }
    return undefined;
  });

  if (opts.cors !== undefined) {
    app.options('*', { config: { public: true } }, async (_request, reply) => {
      reply.code(204).headers({ 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Authorization, Content-Type', 'Access-Control-Max-Age': '600' });
      return reply.send();
    });
  }

  // ---- generation ---------------------------------------------------------------------------------------------------

  /** Hands the response to runPlan (raw: streamed or not), aborting the engine requests if the client goes away. */
  const generate = async (plan: Plan, format: Format, reply: FastifyReply): Promise<void> => {
    reply.hijack();
    const res = reply.raw;
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    try {
      await runPlan(deps, plan, format, {
        res, signal: gone.signal, json: (status, body) => writeJson(res, status, body), fail: (e) => sendError(res, e), log: logError,
      });
    } catch (e) { // a bug in building the answer: a 500 if nothing was written yet
      if (!res.headersSent) sendError(res, e);
      else {
        logError(e);
        res.destroy();
      }
    } finally {
      registry.sweep();
    }
  };

  app.post('/v1/chat/completions', async (request, reply) => {
    const plan = chatPlan(deps, parseBody(ChatRequest, request.body));
    await generate(plan, chatFormat(engine), reply);
  });

  app.post('/v1/completions', async (request, reply) => {
    const plan = completionPlan(deps, parseBody(CompletionRequest, request.body));
    await generate(plan, completionFormat(engine), reply);
  });

  // ---- models and adapters ----------------------------------------------------------------------------------------

  app.get('/v1/models', () => ({ object: 'list', data: registry.models(engine.options.contextSize) }));

  app.get<{ Params: { model: string } }>('/v1/models/:model', (request) => {
    const card = registry.models(engine.options.contextSize).find((m) => m.id === request.params.model);
    if (card === undefined) throw new ApiError(404, `The model \`${request.params.model}\` does not exist.`, 'invalid_request_error', 'model', 'model_not_found');
    return card;
  });

  app.get('/lora-adapters', () => registry.loraAdapters());

  app.post('/v1/load_lora_adapter', (request) => {
    const { lora_name, lora_path } = parseBody(LoadLoraRequest, request.body);
    registry.load(lora_name, lora_path);
    const id = registry.loraAdapters().find((a) => a.name === lora_name)?.id ?? null;
    return { status: 'ok', message: `Success: LoRA adapter '${lora_name}' added successfully.`, lora_name, id };
  });

  app.post('/v1/unload_lora_adapter', (request) => {
    const { lora_name } = parseBody(UnloadLoraRequest, request.body);
    registry.unload(lora_name);
    return { status: 'ok', message: `Success: LoRA adapter '${lora_name}' removed successfully.`, lora_name };
  });

  // ---- the arena's votes ------------------------------------------------------------------------------------------

  /** The log, or llama-server's answer to a feature left off: 501 saying how to turn it on. */
  const voteLog = (): VoteLog => {
    if (votes !== null) return votes;
    throw new ApiError(501, 'This server records no arena votes: start it with --votes FILE (createServer\'s votesFile option).', 'not_supported_error', null, 'votes_disabled');
  };

  app.post('/v1/arena/votes', async (request) => {
    const log = voteLog();
    const vote = parseBody(ArenaVoteRequest, request.body, { all: true });
    if (configName(vote.config_a) === configName(vote.config_b)) {
      throw new ApiError(400, `config_b: must differ from config_a (both are ${configName(vote.config_a)})`, 'invalid_request_error', 'config_b');
    }
    let r;
    try {
      r = await log.append(vote);
    } catch (e) {
      logError(e);
      throw new ApiError(500, 'the vote could not be written to the server\'s votes file (the server\'s log says why)', 'server_error', null, 'votes_write_failed');
    }
    return { id: r.question_id, object: 'arena.vote', model_a: r.model_a, model_b: r.model_b, winner: r.winner };
  });

  app.get('/v1/arena/votes/count', async () => ({ object: 'arena.votes.count', count: await voteLog().count() }));

  // ---- operations ---------------------------------------------------------------------------------------------------

  app.get('/health', { config: { public: true } }, () => ({ status: 'ok' }));

  app.get('/metrics', (_request, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(renderMetrics(engine.stats(), counters)));

  // ---- the web page -------------------------------------------------------------------------------------------------

  const page = (path: string, reply: FastifyReply): FastifyReply => {
    const file = readStatic(webDir, path);
    reply.headers({ 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': PAGE_CSP, 'Referrer-Policy': 'no-referrer' });
    if (file !== null) {
      return reply.type(file.type).send(file.body);
    }
    if (path === '' || path === 'index.html') {
      return reply.type('text/html; charset=utf-8').send(PLACEHOLDER_PAGE);
    }
    throw new ApiError(404, `no route for GET /${path}`, 'invalid_request_error', null, 'not_found');
  };
  app.get('/', { config: { public: true } }, (_request, reply) => page('', reply));
  app.get<{ Params: { '*': string } }>('/*', { config: { public: true } }, (request, reply) => page(request.params['*'], reply));

  // ---- lifetime -----------------------------------------------------------------------------------------------------

  let closed: Promise<void> | null = null;
  return {
    app, engine, registry,
    async listen() {
      await app.listen({ host, port });
      const a = app.server.address() as AddressInfo;
      return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        const httpClosed = app.close(); // stops listening; requests in flight go on
        await engine.drain();
        // every answer is written once the engine is idle; connections kept alive by clients are closed after a grace
        const grace = setTimeout(() => app.server.closeAllConnections(), 1000);
        await httpClosed;
        clearTimeout(grace);
        engine.dispose();
        registry.dispose();
      })();
      return closed;
    },
  };
}
