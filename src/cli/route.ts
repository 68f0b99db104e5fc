// `--library DIR --route auto|prompt|arrow` for generate and chat (and a recipe's "route"): the adapters of a
// library chosen per prompt by their signatures (src/lora/route.ts) or mixed per token by Arrow (src/lora/arrow.ts).
// The choice is printed on stderr. src/lora loads only when routing is asked for.

import { existsSync } from 'node:fs';
import type { LlamaModel } from '../models/llama.js';
import type { LoraAdapter } from '../lora/adapter.js';
import type { Recipe, RecipeRoute } from '../lora/recipe.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { CliError } from './common.js';

export const ROUTE_FLAGS = {
  library: { kind: 'string', metavar: 'DIR', help: 'route among the adapters in DIR (PEFT folders, .gguf LoRAs; one base), per prompt or per token' },
  route: { kind: 'string', metavar: 'MODE', help: 'auto (prompt router when every adapter is signed, else arrow), prompt, or arrow', default: 'auto' },
  'route-top-k': { kind: 'int', metavar: 'K', help: 'adapters mixed per prompt (prompt router; default 1) or per token (arrow; default 3)' },
  'route-temp': { kind: 'number', metavar: 'T', help: 'softmax temperature of the mixture weights (default 1)' },
  'route-threshold': { kind: 'number', metavar: 'D', help: 'prompt router: fixed distance threshold instead of calibrating one' },
  'route-calibration': { kind: 'string', metavar: 'FILE', help: 'prompt router: general prompts the threshold is calibrated on (default: assets/data/generic-chats.jsonl)' },
} as const satisfies FlagSpecs;

export interface Routing {
  /** 'prompt' or 'arrow' */
  mode: RecipeRoute['mode'];
  /** Chooses for a prompt and attaches the choice; `changed`: the attached adapters differ from before. */
  select(prompt: string): { label: string; changed: boolean };
  dispose(): void;
}

const wrap = <T>(fn: () => T): T => {
  try {
    return fn();
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
};

/** The route the flags (over a recipe's "route") ask for, or null when neither routes. */
export async function routeFrom(f: FlagValues<typeof ROUTE_FLAGS>, recipe: Recipe | null): Promise<RecipeRoute | null> {
  const given = f.route !== undefined || f['route-top-k'] !== undefined || f['route-temp'] !== undefined || f['route-threshold'] !== undefined || f['route-calibration'] !== undefined;
  if (f.library === undefined) {
    if (recipe?.route !== undefined) return { ...recipe.route, ...overrides(f) };
    if (given) throw new UsageError('--route and its options need --library DIR (a folder of adapters to route among)');
    return null;
  }
  if (recipe !== null && recipe.adapters.length > 0) throw new UsageError('--library routes its own adapters: give it without a recipe that names adapters (or put "route" and "library" in the recipe)');
  const mode = f.route ?? 'auto';
  if (mode !== 'auto' && mode !== 'prompt' && mode !== 'arrow') throw new UsageError(`--route must be auto, prompt or arrow, got ${JSON.stringify(mode)}`);
  return { mode: mode === 'auto' ? await autoMode(f.library) : mode, library: f.library, ...overrides(f) };
}

function overrides(f: FlagValues<typeof ROUTE_FLAGS>): Partial<RecipeRoute> {
  const o: Partial<RecipeRoute> = {};
  if (f['route-top-k'] !== undefined) o.top_k = f['route-top-k'];
  if (f['route-temp'] !== undefined) o.router_temperature = f['route-temp'];
  if (f['route-threshold'] !== undefined) o.route_threshold = f['route-threshold'];
  if (f['route-calibration'] !== undefined) o.calibration = f['route-calibration'];
  return o;
}

/** auto: the prompt router when every adapter of the library is signed, else Arrow (which needs no signatures). */
async function autoMode(dir: string): Promise<RecipeRoute['mode']> {
  const { listLibrary } = await import('../lora/library.js');
  const { signaturePath } = await import('../lora/signature.js');
  const entries = wrap(() => listLibrary(dir));
  const unsigned = entries.filter((e) => !existsSync(signaturePath(e.path)));
  if (unsigned.length === 0) return 'prompt';
  process.stderr.write(`nomoat: --route auto: ${unsigned.map((e) => e.name).join(', ')} ${unsigned.length === 1 ? 'has' : 'have'} no signature, so Arrow routes per token ` +
    `(sign with \`nomoat adapter sign ADAPTER --prompts FILE\` for the prompt router)\n`);
  return 'arrow';
}

/** Sets up routing over the library; prints what it does on stderr. */
export async function setupRouting(model: LlamaModel, tokenizer: Tokenizer, route: RecipeRoute): Promise<Routing> {
  const { loadLibrary } = await import('../lora/library.js');
  const warn = (m: string): void => void process.stderr.write(`warning: ${m}\n`);
  if (route.mode === 'arrow') {
    const { ArrowRouter } = await import('../lora/arrow.js');
    const lib = wrap(() => loadLibrary(route.library, model, { signatures: false, onWarning: warn }));
    const arrow = wrap(() => new ArrowRouter(lib.map((e) => e.adapter), { topK: route.top_k, temperature: route.router_temperature }));
    arrow.attach(model);
    process.stderr.write(`nomoat: Arrow routes each token among ${lib.length} adapters of ${route.library} (${lib.map((e) => e.name).join(', ')}), top_k ${arrow.topK}, router_temperature ${arrow.temperature}\n`);
    return {
      mode: 'arrow',
      select: () => ({ label: 'arrow (per token)', changed: false }),
      dispose: () => {
        arrow.detach();
        for (const e of lib) e.adapter.dispose();
      },
    };
  }
  const { calibratedRouter, routePrompt, describeDecision } = await import('../lora/route.js');
  const lib = wrap(() => loadLibrary(route.library, model, { signatures: true, onWarning: warn }));
  const { router, note } = wrap(() => calibratedRouter(model, tokenizer, lib.map((e) => ({ name: e.name, signature: e.signature! })), {
    topK: route.top_k, temperature: route.router_temperature, threshold: route.route_threshold, calibration: route.calibration, quantile: route.route_quantile,
  }));
  process.stderr.write(`nomoat: prompt router over ${lib.length} adapters of ${route.library} (${lib.map((e) => e.name).join(', ')}), layer ${router.layer}; ${note}\n`);
  const byName = new Map<string, LoraAdapter>(lib.map((e) => [e.name, e.adapter]));
  let attached: { name: string; weight: number }[] = [];
  const names = lib.map((e) => e.name);
  return {
    mode: 'prompt',
    select(prompt) {
      const d = wrap(() => routePrompt(router, model, tokenizer, prompt));
      const next = d.chosen.map((c) => ({ name: c.name, weight: c.weight }));
      const changed = JSON.stringify(next) !== JSON.stringify(attached);
      if (changed) {
        for (const a of attached) byName.get(a.name)!.detach();
        for (const c of next) byName.get(c.name)!.attach(model, { scale: c.weight, checkBase: false });
        attached = next;
      }
      const label = describeDecision(d, names);
      process.stderr.write(`nomoat: route → ${label}\n`);
      return { label, changed };
    },
    dispose() {
      for (const e of lib) e.adapter.dispose();
    },
  };
}
