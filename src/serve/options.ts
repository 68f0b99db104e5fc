// The server's options and the checks made before anything listens. Kept apart from http.ts so that the package
// entry can check them without loading Fastify or zod (the server stack loads when a server starts).

import type { ServeEngine } from './engine.js';

export interface ServerOptions {
  /** the engine to serve; the server owns it from here (close() drains and disposes it) */
  engine: ServeEngine;
  /** the base's id in the API: what `model` names to get the base alone */
  modelId: string;
  /** shown as the base's `root` in /v1/models (default: modelId) */
  modelPath?: string;
  /** adapters to load now, by name: a PEFT folder or a GGUF LoRA each (adapters already in the engine are served too) */
  loras?: readonly { name: string; path: string }[];
  /** recipe files to serve, by name (see ModelRegistry.addRecipeFile) */
  recipes?: readonly { name: string; path: string }[];
  /** a folder of signed adapters served as model "auto" (the prompt router picks per request) */
  library?: string;
  /** the folder runtime-loaded adapters must come from */
  adaptersDir?: string;
  /** enables POST /v1/load_lora_adapter and /v1/unload_lora_adapter (needs adaptersDir) */
  allowAdapterLoading?: boolean;
  /** default 127.0.0.1; any non-loopback address needs apiKey */
  host?: string;
  /** default 8080; 0 = any free port (listen() returns the URL with the real one) */
  port?: number;
  /** required as `Authorization: Bearer KEY` on everything but /health and the web page */
  apiKey?: string;
  /** the one origin allowed to call from a browser ('*' for any); CORS is off without it */
  cors?: string;
  /** largest request body in bytes (default 1 MiB) */
  bodyLimit?: number;
  /** the web page's folder (default: the package's web/) */
  webDir?: string;
  /**
   * the JSONL file POST /v1/arena/votes appends to (created at the first vote; its folder must exist). Default:
   * none, and the votes endpoints answer 501 (`nomoat serve` passes ./arena-votes.jsonl unless given --votes)
   */
  votesFile?: string;
  /** where errors and warnings go (default: stderr) */
  log?: (line: string) => void;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** Refuses options no server should start with (an exposed address without a key, loading without a folder, a bad
 *  port); returns the address to listen on. */
export function checkServerOptions(opts: ServerOptions): { host: string; port: number } {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  if (!isLoopback(host) && (opts.apiKey === undefined || opts.apiKey === '')) {
    throw new Error(`refusing to listen on ${host} without an API key: any machine that reaches it could use the server. Pass --api-key KEY (clients send Authorization: Bearer KEY), or bind 127.0.0.1`);
  }
  if (opts.allowAdapterLoading === true && opts.adaptersDir === undefined) {
    throw new Error('--allow-adapter-loading needs --adapters-dir DIR: the one folder lora_path may point into');
  }
  if (opts.port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new Error(`port must be an integer in [0, 65535], got ${port}`);
  return { host, port };
}
