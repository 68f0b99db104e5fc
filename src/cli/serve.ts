// `nomoat serve`: an OpenAI-compatible HTTP server for one base model and any number of named adapters and
// recipes (src/serve/http.ts). Prints the URL; SIGINT/SIGTERM stop accepting, let running requests finish, exit 0.

import { existsSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlagSpecs } from './args.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError, THREAD_FLAG, loadForCli, requireTokenizer, setThreads } from './common.js';

/** Where the arena's votes go without --votes: beside where the server was started, created at the first vote. */
const DEFAULT_VOTES = 'arena-votes.jsonl';

/** The bundled model, so that `npx nomoat serve` works offline on a fresh clone. */
const BUNDLED_MODEL = fileURLToPath(new URL('../../../assets/default-model', import.meta.url));

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'GGUF file, Hugging Face folder or llama2.c .bin (default: the bundled assets/default-model, or the first recipe\'s base)' },
  alias: { kind: 'string', metavar: 'NAME', help: 'the base\'s model id in the API (default: the model\'s file or folder name)' },
  lora: { kind: 'list', metavar: 'NAME=PATH', help: 'serve an adapter (PEFT folder or .gguf LoRA) as model NAME: the base + it at scale 1' },
  recipe: { kind: 'list', metavar: 'NAME=FILE', help: 'serve a recipe (JSON {base, adapters, merge?}) as model NAME; a "merge" is combined once, at start' },
  library: { kind: 'string', metavar: 'DIR', help: 'serve a folder of signed adapters as model "auto": the prompt router picks one (or none) per request' },
  'adapters-dir': { kind: 'string', metavar: 'DIR', help: 'the only folder POST /v1/load_lora_adapter may load from' },
  'allow-adapter-loading': { kind: 'boolean', help: 'enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter (needs --adapters-dir)' },
  host: { kind: 'string', metavar: 'HOST', help: 'address to listen on; anything but loopback needs --api-key', default: '127.0.0.1' },
  port: { kind: 'int', metavar: 'PORT', help: 'port to listen on; 0 = any free port', default: 8080 },
  parallel: { kind: 'int', metavar: 'N', help: 'rows in the running batch (requests generating at once)', default: 4 },
  'ctx-size': { kind: 'int', short: 'c', metavar: 'N', help: 'context per request, prompt and reply (default: the model\'s, at most 4096)' },
  ...THREAD_FLAG,
  'api-key': { kind: 'string', metavar: 'KEY', help: 'require Authorization: Bearer KEY (default: $NOMOAT_API_KEY; none on loopback)' },
  cors: { kind: 'string', metavar: 'ORIGIN', help: 'let web pages from ORIGIN (or *) call the API from a browser; off by default' },
  votes: { kind: 'string', metavar: 'FILE', help: 'append the web page\'s arena votes to FILE, one JSON line each (FastChat\'s battle fields); created at the first vote', default: DEFAULT_VOTES },
} as const satisfies FlagSpecs;

/** NAME=PATH pairs of a repeatable flag. */
function namedPaths(flag: string, values: readonly string[]): { name: string; path: string }[] {
  return values.map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw new UsageError(`--${flag} expects NAME=PATH, got ${JSON.stringify(v)}`);
    const path = v.slice(eq + 1);
    if (!existsSync(path)) throw new CliError(`--${flag} ${v}: ${path} not found`);
    return { name: v.slice(0, eq), path };
  });
}

/** The default model id: the file or folder name without a model extension. */
export function modelIdOf(path: string): string {
  const b = basename(path.replace(/[\\/]+$/, ''));
  const ext = extname(b).toLowerCase();
  return ext === '.gguf' || ext === '.bin' ? b.slice(0, -ext.length) : b;
}

export const command = defineCommand({
  name: 'serve',
  summary: 'serve a model and its adapters over an OpenAI-compatible HTTP API',
  usage: '[-m MODEL] [--lora NAME=PATH]... [--recipe NAME=FILE]... [options]',
  description:
    'OpenAI API: POST /v1/chat/completions, POST /v1/completions (streaming with "stream": true), GET /v1/models.\n' +
    'A request\'s "model" is the base\'s id, an adapter\'s NAME (the base + it) or a recipe\'s NAME (its stack); the\n' +
    'extension field "adapters": [{"name", "scale"}] (or llama.cpp\'s "lora": [{"id", "scale"}], ids from GET\n' +
    '/lora-adapters) adds any stack per request. Every request gets the tokens it would get alone. Also: /health,\n' +
    '/metrics (Prometheus), the web page at / (chat, stack builder, arena; votes go to --votes FILE through\n' +
    'POST /v1/arena/votes). Request bodies up to 1 MiB. Ctrl-C finishes running requests, then exits.',
  flags: FLAGS,
  examples: [
    'nomoat serve',
    'nomoat serve -m model.gguf --lora math=./math-adapter --lora style=style.gguf --parallel 8',
    'nomoat serve --recipe stack=stack.json --alias tiny -c 2048 --port 0',
    'nomoat serve --adapters-dir ./adapters --allow-adapter-loading --votes runs/arena.jsonl',
    'nomoat serve --host 0.0.0.0 --api-key "$(cat key.txt)" --cors https://example.org',
  ],
  async run({ flags: f }) {
    const loras = namedPaths('lora', f.lora);
    const recipes = namedPaths('recipe', f.recipe);
    const parallel = f.parallel ?? 4;
    if (parallel < 1) throw new UsageError(`--parallel must be ≥ 1, got ${parallel}`);
    if (f['ctx-size'] !== undefined && f['ctx-size'] < 2) throw new UsageError(`-c must be ≥ 2, got ${f['ctx-size']}`);
    if (f['adapters-dir'] !== undefined && !existsSync(f['adapters-dir'])) throw new CliError(`--adapters-dir ${f['adapters-dir']}: not found`);
    setThreads(f.threads);
    let modelPath = f.model;
    if (modelPath === undefined && recipes.length > 0) {
      const { loadRecipe } = await import('../lora/recipe.js');
      try {
        modelPath = loadRecipe(recipes[0].path).base;
      } catch (e) {
        throw new CliError(e instanceof Error ? e.message : String(e));
      }
    }
    modelPath ??= BUNDLED_MODEL;
    const loaded = loadForCli(modelPath);
    const tokenizer = requireTokenizer(loaded);
    const { ServeEngine } = await import('../serve/engine.js');
    const { createServer } = await import('../serve/http.js');
    const engine = new ServeEngine(loaded.model, tokenizer, { parallel, ...(f['ctx-size'] !== undefined ? { contextSize: f['ctx-size'] } : {}) });
    const modelId = f.alias ?? modelIdOf(modelPath);
    let server;
    try {
      server = createServer({
        engine, modelId, modelPath, loras, recipes, library: f.library, adaptersDir: f['adapters-dir'], allowAdapterLoading: f['allow-adapter-loading'],
        host: f.host, port: f.port, apiKey: f['api-key'] ?? process.env.NOMOAT_API_KEY, cors: f.cors, votesFile: f.votes ?? DEFAULT_VOTES,
      });
    } catch (e) {
      engine.dispose();
      loaded.model.dispose();
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
    let url: string;
    try {
      url = await server.listen();
    } catch (e) {
      await server.close();
      loaded.model.dispose();
      throw new CliError(`cannot listen on ${f.host ?? '127.0.0.1'}:${f.port ?? 8080}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const names = server.registry.models(engine.options.contextSize).map((m) => m.id);
    process.stdout.write(`nomoat serve: listening on ${url}\n`);
    process.stdout.write(`nomoat serve: models ${names.join(', ')}; ${parallel} parallel rows, context ${engine.options.contextSize}; Ctrl-C to stop\n`);
    process.stdout.write(`nomoat serve: the web page is ${url}/; arena votes go to ${resolve(f.votes ?? DEFAULT_VOTES)}\n`);
    const srv = server;
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          process.stderr.write(`nomoat serve: ${signal} again: stopping at once\n`);
          process.exit(130);
        }
        stopping = true;
        const s = srv.engine.stats();
        process.stderr.write(`nomoat serve: ${signal}: finishing ${s.running + s.queued} request(s) in flight, then exiting (${signal} again stops at once)\n`);
        srv.close().then(resolve, (e: unknown) => {
          process.stderr.write(`nomoat serve: error while stopping: ${e instanceof Error ? e.message : String(e)}\n`);
          resolve();
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    loaded.model.dispose();
    process.stdout.write('nomoat serve: stopped\n');
  },
});
