// A recipe: which base, which adapters at which scales, and optionally how to combine them into one. A JSON file:
//   { "base": "models/tiny", "adapters": [{ "path": "a", "scale": 1.0 }, …],
//     "merge"?: { "method": "linear"|"cat"|"svd"|"ties"|…, "weights"?: [..], "density"?: 0.5,
//                 "majority_sign_method"?: "total"|"frequency", "svd_rank"?: 8, "svd_clamp"?: 0.99, "seed"?: 0 } }
// Paths are relative to the recipe file. Without "merge" the adapters stack unmerged, each at its scale; with it
// they are combined (PEFT add_weighted_adapter; weights default to the adapters' scales) and the result attached.
// Or a routed library instead of adapters: { "base": …, "route": "prompt"|"arrow", "library": DIR, "top_k"?: 1,
// "router_temperature"?: 1, "route_threshold"?: τ, "route_quantile"?: 0.05, "calibration"?: FILE }: the prompt
// router picks per prompt (generate, chat), Arrow per token (./route.ts, ./arrow.ts).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { LlamaModel } from '../models/llama.js';
import type { LoraAdapter } from './adapter.js';
import { combineAdapters } from './combine.js';
import { loadGgufLora } from './gguf.js';
import { COMBINATION_TYPES, type CombinationType, type MajoritySignMethod } from './merge/index.js';
import { loadPeftAdapter, PEFT_CONFIG_FILE, type AdapterLoadOptions } from './peft.js';

export interface RecipeAdapter {
  /** a PEFT adapter folder (or its adapter_config.json) or a GGUF LoRA file */
  path: string;
  /** runtime scale (default 1; negative subtracts) */
  scale: number;
}

export interface RecipeMerge {
  method: CombinationType;
  /** combination weights, one per adapter (default: the adapters' scales) */
  weights?: number[];
  density?: number;
  majority_sign_method?: MajoritySignMethod;
  svd_rank?: number;
  svd_clamp?: number;
  seed?: number;
}

/** A routed library instead of a fixed stack. */
export interface RecipeRoute {
  mode: 'prompt' | 'arrow';
  /** the library folder (resolved against the recipe's folder) */
  library: string;
  top_k?: number;
  router_temperature?: number;
  /** prompt router: a fixed threshold τ instead of calibrating one */
  route_threshold?: number;
  /** prompt router: the calibration quantile of general prompts' nearest distance */
  route_quantile?: number;
  /** prompt router: the general prompts to calibrate on (default assets/data/generic-chats.jsonl) */
  calibration?: string;
}

export interface Recipe {
  /** the base model (folder or GGUF file), as written or resolved against the recipe's folder */
  base: string;
  /** empty when the recipe routes a library */
  adapters: RecipeAdapter[];
  merge?: RecipeMerge;
  route?: RecipeRoute;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const NEEDS_DENSITY = (m: CombinationType): boolean => m.includes('ties') || m.startsWith('dare') || m.startsWith('magnitude_prune');

/** Validates a parsed recipe; throws naming the bad field (e.g. `recipe.json: adapters[1].scale …`). */
export function parseRecipe(v: unknown, source = 'recipe'): Recipe {
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} ${why}`);
  };
  const only = (o: Json, allowed: string[], where: string): void => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(`${where}${k}`, `is not a recipe field (expected ${allowed.join(', ')})`);
  };
  const finite = (x: unknown, field: string): number => (typeof x === 'number' && Number.isFinite(x) ? x : bad(field, `must be a finite number, got ${JSON.stringify(x)}`));
  if (!isObj(v)) return bad('recipe', 'must be a JSON object');
  only(v, ['base', 'adapters', 'merge', ...ROUTE_FIELDS], '');
  const base = typeof v.base === 'string' && v.base !== '' ? v.base : bad('base', 'must be a non-empty path string');
  if (v.route !== undefined || v.library !== undefined) return { base, adapters: [], route: parseRoute(v, source) };
  for (const k of ROUTE_FIELDS) if (v[k] !== undefined) bad(k, 'belongs to a routed recipe: add "route": "prompt" or "arrow" and "library": DIR');
  if (!Array.isArray(v.adapters) || v.adapters.length === 0) return bad('adapters', 'must be a non-empty list of { "path", "scale" }');
  const adapters = v.adapters.map((a: unknown, i): RecipeAdapter => {
    if (!isObj(a)) return bad(`adapters[${i}]`, 'must be an object { "path", "scale" }');
    only(a, ['path', 'scale'], `adapters[${i}].`);
    const path = typeof a.path === 'string' && a.path !== '' ? a.path : bad(`adapters[${i}].path`, 'must be a non-empty path string');
    return { path, scale: a.scale === undefined ? 1 : finite(a.scale, `adapters[${i}].scale`) };
  });
  const recipe: Recipe = { base, adapters };
  if (v.merge !== undefined) {
    const m = v.merge;
    if (!isObj(m)) return bad('merge', 'must be an object');
    only(m, ['method', 'weights', 'density', 'majority_sign_method', 'svd_rank', 'svd_clamp', 'seed'], 'merge.');
    if (typeof m.method !== 'string' || !(COMBINATION_TYPES as readonly string[]).includes(m.method)) {
      bad('merge.method', `must be one of ${COMBINATION_TYPES.join('|')}, got ${JSON.stringify(m.method)}`);
    }
    const merge: RecipeMerge = { method: m.method as CombinationType };
    if (m.weights !== undefined) {
      if (!Array.isArray(m.weights) || m.weights.length !== adapters.length) bad('merge.weights', `must be a list of ${adapters.length} numbers (one per adapter)`);
      merge.weights = (m.weights as unknown[]).map((w, i) => finite(w, `merge.weights[${i}]`));
      adapters.forEach((a, i) => {
        if (a.scale !== 1) bad(`adapters[${i}].scale`, 'cannot be combined with merge.weights: give the weights in one place');
      });
    }
    if (m.density !== undefined) {
      const d = finite(m.density, 'merge.density');
      if (d < 0 || d > 1) bad('merge.density', `must be in [0, 1], got ${d}`);
      merge.density = d;
    } else if (NEEDS_DENSITY(merge.method) && adapters.length > 1) bad('merge.density', `is required by method "${merge.method}"`);
    const msm = m.majority_sign_method;
    if (msm !== undefined) {
      if (msm !== 'total' && msm !== 'frequency') return bad('merge.majority_sign_method', `must be "total" or "frequency", got ${JSON.stringify(msm)}`);
      merge.majority_sign_method = msm;
    }
    if (m.svd_rank !== undefined) {
      const r = finite(m.svd_rank, 'merge.svd_rank');
      if (!Number.isInteger(r) || r < 1) bad('merge.svd_rank', `must be a positive integer, got ${r}`);
      merge.svd_rank = r;
    }
    if (m.svd_clamp !== undefined) {
      const q = finite(m.svd_clamp, 'merge.svd_clamp');
      if (q < 0 || q > 1) bad('merge.svd_clamp', `must be a quantile in [0, 1], got ${q}`);
      merge.svd_clamp = q;
    }
    if (m.seed !== undefined) {
      const s = finite(m.seed, 'merge.seed');
      if (!Number.isInteger(s)) bad('merge.seed', 'must be an integer');
      merge.seed = s;
    }
    recipe.merge = merge;
  }
  return recipe;
}

const ROUTE_FIELDS = ['route', 'library', 'top_k', 'router_temperature', 'route_threshold', 'route_quantile', 'calibration'];

/** The routed part of a recipe: "route" and "library" required, no "adapters" or "merge" beside them. */
function parseRoute(v: Json, source: string): RecipeRoute {
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} ${why}`);
  };
  if (v.adapters !== undefined || v.merge !== undefined) bad(v.adapters !== undefined ? 'adapters' : 'merge', 'cannot be given with "route": a routed recipe picks among the adapters of its "library"');
  if (v.route !== 'prompt' && v.route !== 'arrow') return bad('route', `must be "prompt" or "arrow", got ${JSON.stringify(v.route)}`);
  const library = typeof v.library === 'string' && v.library !== '' ? v.library : bad('library', 'must be the path of a folder of adapters (PEFT folders and/or .gguf LoRA files)');
  const r: RecipeRoute = { mode: v.route, library };
  const num = (k: 'top_k' | 'router_temperature' | 'route_threshold' | 'route_quantile', ok: (x: number) => boolean, what: string): void => {
    const x = v[k];
    if (x === undefined) return;
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) bad(k, `must be ${what}, got ${JSON.stringify(x)}`);
    r[k] = x as number;
  };
  num('top_k', (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  num('router_temperature', (x) => x > 0, 'a number > 0');
  num('route_threshold', (x) => x > 0, 'a number > 0');
  num('route_quantile', (x) => x >= 0 && x <= 1, 'in [0, 1]');
  if (v.calibration !== undefined) r.calibration = typeof v.calibration === 'string' && v.calibration !== '' ? v.calibration : bad('calibration', 'must be a prompt file path');
  if (r.mode === 'arrow' && (r.route_threshold !== undefined || r.route_quantile !== undefined || r.calibration !== undefined)) {
    bad('route', '"arrow" takes no threshold or calibration (those are the prompt router\'s): use "top_k" and "router_temperature"');
  }
  return r;
}

/** Reads and validates a recipe file; base and adapter paths are resolved against the file's folder. */
export function loadRecipe(path: string): Recipe {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const r = parseRecipe(j, path);
  const dir = dirname(resolve(path));
  const abs = (p: string): string => (isAbsolute(p) ? p : join(dir, p));
  const route = r.route === undefined ? {} : { route: { ...r.route, library: abs(r.route.library), ...(r.route.calibration !== undefined ? { calibration: abs(r.route.calibration) } : {}) } };
  // a Hub spec (hf://…) is not a path: it is resolved where the base is loaded
  return { ...r, base: r.base.startsWith('hf://') ? r.base : abs(r.base), adapters: r.adapters.map((a) => ({ ...a, path: abs(a.path) })), ...route };
}

/** Loads an adapter file for a model: a PEFT folder (or its adapter_config.json) or a .gguf LoRA. */
export function loadAdapter(path: string, model: LlamaModel, opts: AdapterLoadOptions = {}): LoraAdapter {
  if (path.endsWith('.gguf')) return loadGgufLora(path, model, opts);
  if (path.endsWith(PEFT_CONFIG_FILE)) return loadPeftAdapter(dirname(path), model, opts);
  if (existsSync(path) && statSync(path).isDirectory()) return loadPeftAdapter(path, model, opts);
  throw new Error(`${path}: not a PEFT adapter folder or a .gguf LoRA file`);
}

/**
 * Loads a recipe's adapters for a base model (checking each against it) without attaching them: the stack, each
 * adapter at its scale, or, when the recipe has "merge", the one combined adapter at scale 1. On any error every
 * adapter loaded so far is freed. (The server keeps such a stack detached and applies it per request.)
 */
export function loadRecipeStack(model: LlamaModel, recipe: Recipe, opts: AdapterLoadOptions = {}): { adapter: LoraAdapter; scale: number }[] {
  if (recipe.route !== undefined) {
    throw new Error(`this recipe routes the library ${recipe.route.library} ("route": "${recipe.route.mode}"): it has no fixed stack; generate and chat route it per prompt (or per token with "arrow")`);
  }
  const loaded: LoraAdapter[] = [];
  try {
    for (const a of recipe.adapters) loaded.push(loadAdapter(a.path, model, opts));
    const m = recipe.merge;
    if (m === undefined) return loaded.map((adapter, i) => ({ adapter, scale: recipe.adapters[i].scale }));
    const combined = combineAdapters(loaded, m.method, {
      weights: m.weights ?? recipe.adapters.map((a) => a.scale),
      density: m.density, majoritySignMethod: m.majority_sign_method, svdRank: m.svd_rank, svdClamp: m.svd_clamp, seed: m.seed,
    });
    for (const a of loaded) a.dispose();
    return [{ adapter: combined, scale: 1 }];
  } catch (e) {
    for (const a of loaded) a.dispose();
    throw e;
  }
}

/**
 * Applies a recipe to a loaded base model: loads every adapter (checking each against the base), then either
 * attaches them all at their scales, or combines them with recipe.merge and attaches the result at scale 1.
 * Returns the attached adapters. On any error nothing stays attached.
 */
export function applyRecipe(model: LlamaModel, recipe: Recipe, opts: AdapterLoadOptions = {}): LoraAdapter[] {
  const stack = loadRecipeStack(model, recipe, opts);
  try {
    for (const { adapter, scale } of stack) adapter.attach(model, { scale, checkBase: false });
  } catch (e) {
    for (const { adapter } of stack) adapter.dispose(); // dispose detaches
    throw e;
  }
  return stack.map((s) => s.adapter);
}
