// What a request's `model` can name, and the adapters behind the names: the base (the served model id), each
// adapter (base + it at scale 1, as vLLM and LoRAX do) and each recipe (its stack). Adapters live in the engine;
// this registry adds their paths, llama.cpp-style ids, the recipes, and runtime loading confined to one folder.

import { readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BaseMismatchError } from '../lora/fingerprint.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { loadAdapter, loadRecipe, loadRecipeStack } from '../lora/recipe.js';
import { loadLibrary } from '../lora/library.js';
import { calibratedRouter, routePrompt, type PromptRouter } from '../lora/route.js';
import type { AdapterRef, ServeEngine } from './engine.js';
import { ApiError, type ModelCard } from './protocol.js';

interface RecipeEntry {
  path: string;
  stack: AdapterRef[];
}

export interface RegistryOptions {
  /** the base's id: what `model` names to get the base alone */
  baseId: string;
  /** shown as the base's `root` in /v1/models */
  basePath: string;
  /** the only folder POST /v1/load_lora_adapter may load from (with allowLoading) */
  adaptersDir?: string;
  allowLoading: boolean;
  /** warnings from adapter loaders (no fingerprint recorded…) */
  onWarning: (message: string) => void;
}

export class ModelRegistry {
  private readonly paths = new Map<string, string>();
  /** llama.cpp's `lora[].id`: given in order of first sight, never reused after an unload */
  private readonly ids = new Map<string, number>();
  private nextId = 0;
  private readonly recipes = new Map<string, RecipeEntry>();
  /** engine adapters that belong to a recipe: not listed, not unloadable by name */
  private readonly hidden = new Set<string>();
  /** unloaded while requests still used them: disposed by sweep() once none does */
  private readonly retired: LoraAdapter[] = [];
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly adaptersRoot: string | null;
  /** the prompt router behind model "auto" (--library), its adapters held under hidden names auto/NAME */
  private router: PromptRouter | null = null;

  constructor(
    private readonly engine: ServeEngine,
    private readonly opts: RegistryOptions,
  ) {
    this.adaptersRoot = opts.adaptersDir === undefined ? null : realpathSync(opts.adaptersDir);
    for (const name of engine.adapterNames()) this.idOf(name); // adapters given at start keep their order
  }

  // ---- names ------------------------------------------------------------------------------------------------------

  /** Adapters that `model`, `adapters` and `lora` may name, in id order. */
  adapterNames(): string[] {
    return this.engine.adapterNames().filter((n) => !this.hidden.has(n)).sort((a, b) => this.idOf(a) - this.idOf(b));
  }

  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) this.ids.set(name, (id = this.nextId++));
    return id;
  }

  private taken(name: string): boolean {
    return name === this.opts.baseId || (name === 'auto' && this.router !== null) || this.recipes.has(name) || this.engine.getAdapter(name) !== undefined;
  }

  /** The stack `model` names (the base: none); 404 model_not_found for a name nothing answers to. */
  resolve(model: string | null | undefined): AdapterRef[] {
    if (model === undefined || model === null || model === this.opts.baseId) return [];
    const recipe = this.recipes.get(model);
    if (recipe !== undefined) return recipe.stack;
    if (!this.hidden.has(model) && this.engine.getAdapter(model) !== undefined) return [{ name: model, scale: 1 }];
    throw new ApiError(404, `The model \`${model}\` does not exist. GET /v1/models lists the base (${this.opts.baseId}), its adapters and recipes.`, 'invalid_request_error', 'model', 'model_not_found');
  }

  /** The extension field `adapters: [{name, scale}]`, checked against the loaded adapters. */
  named(refs: readonly { name: string; scale: number }[]): AdapterRef[] {
    return refs.map(({ name, scale }, i) => {
      if (this.hidden.has(name) || this.engine.getAdapter(name) === undefined) {
        throw new ApiError(404, `no adapter named "${name}" is loaded (GET /lora-adapters lists them)`, 'invalid_request_error', `adapters[${i}].name`, 'model_not_found');
      }
      return { name, scale };
    });
  }

  /** llama.cpp's `lora: [{id, scale}]`; ids are those of GET /lora-adapters. */
  byId(refs: readonly { id: number; scale: number }[]): AdapterRef[] {
    return refs.map(({ id, scale }, i) => {
      const name = this.adapterNames().find((n) => this.ids.get(n) === id);
      if (name === undefined) throw new ApiError(404, `no adapter has id ${id} (GET /lora-adapters lists them)`, 'invalid_request_error', `lora[${i}].id`, 'model_not_found');
      return { name, scale };
    });
  }

  models(contextSize: number): ModelCard[] {
    const card = (id: string, kind: ModelCard['kind'], root: string): ModelCard => ({
      id, object: 'model', created: this.created, owned_by: 'nomoat', root, parent: kind === 'base' ? null : this.opts.baseId, max_model_len: contextSize, kind,
    });
    return [
      card(this.opts.baseId, 'base', this.opts.basePath),
      ...this.adapterNames().map((n) => card(n, 'adapter', this.paths.get(n) ?? n)),
      ...[...this.recipes].map(([n, r]) => card(n, 'recipe', r.path)),
    ];
  }

  /** GET /lora-adapters, llama-server's shape plus the name; scale 0: an adapter applies only when a request asks. */
  loraAdapters(): { id: number; name: string; path: string; scale: number }[] {
    return this.adapterNames().map((name) => ({ id: this.idOf(name), name, path: this.paths.get(name) ?? '', scale: 0 }));
  }

  // ---- adapters at start --------------------------------------------------------------------------------------------

  /**
   * A library of signed adapters served as model "auto" (--library DIR): each request goes to the adapter the prompt
   * router picks for its last user message (or prompt), or to the base; the response's `model` says which
   * (auto/NAME, or auto/BASE). Returns how the router's threshold was set.
   */
  addLibrary(dir: string): string {
    if (this.router !== null) throw new Error('--library: one library per server');
    this.checkFreeName('auto', 'library');
    const { model, tokenizer } = this.engine;
    const lib = loadLibrary(dir, model, { signatures: true, onWarning: this.opts.onWarning });
    try {
      const { router, note } = calibratedRouter(model, tokenizer, lib.map((e) => ({ name: e.name, signature: e.signature! })));
      for (const e of lib) {
        this.engine.addAdapter(`auto/${e.name}`, e.adapter);
        this.hidden.add(`auto/${e.name}`);
      }
      this.router = router;
      return `library ${dir} (${lib.map((e) => e.name).join(', ')}) as model "auto"; ${note}`;
    } catch (e) {
      for (const l of lib) if (!this.hidden.has(`auto/${l.name}`)) l.adapter.dispose();
      throw e;
    }
  }

  /** model "auto": the stack the prompt router picks for a request's text, and the model name to report. */
  route(text: string): { stack: AdapterRef[]; model: string } {
    if (this.router === null) throw new ApiError(404, 'model "auto" routes among a library of adapters: start the server with --library DIR', 'invalid_request_error', 'model', 'model_not_found');
    const d = routePrompt(this.router, this.engine.model, this.engine.tokenizer, text.trim() === '' ? ' ' : text);
    const stack = d.chosen.map((c) => ({ name: `auto/${c.name}`, scale: c.weight }));
    return { stack, model: `auto/${d.chosen.length === 0 ? this.opts.baseId : d.chosen.map((c) => c.name).join('+')}` };
  }

  /** Loads an adapter (PEFT folder or GGUF LoRA) from any path: the command line's --lora NAME=PATH. */
  addAdapterFile(name: string, path: string): void {
    this.checkFreeName(name, 'lora_name');
    this.register(name, loadAdapter(path, this.engine.model, { onWarning: this.opts.onWarning }), path);
  }

  /**
   * A recipe file as a model: its adapters are loaded (fingerprints checked) under hidden names `NAME/i`; with
   * "merge" they are combined once, here, into one adapter applied at scale 1 (the combination is a new adapter:
   * the stack is not re-evaluated per request). The recipe's "base" is not loaded: the fingerprints decide.
   */
  addRecipeFile(name: string, path: string): void {
    this.checkFreeName(name, 'recipe');
    const stack = loadRecipeStack(this.engine.model, loadRecipe(path), { onWarning: this.opts.onWarning });
    const refs = stack.map(({ adapter, scale }, i) => {
      const part = `${name}/${i}`;
      this.engine.addAdapter(part, adapter);
      this.hidden.add(part);
      return { name: part, scale };
    });
    this.recipes.set(name, { path: resolve(path), stack: refs });
  }

  private checkFreeName(name: string, param: string): void {
    if (this.taken(name)) throw new ApiError(400, `the name "${name}" is already taken (a model, an adapter or a recipe)`, 'invalid_request_error', param);
    if (name.includes('/')) throw new ApiError(400, `an adapter name may not contain "/", got "${name}"`, 'invalid_request_error', param);
  }

  private register(name: string, adapter: LoraAdapter, path: string): void {
    try {
      this.engine.addAdapter(name, adapter);
    } catch (e) {
      adapter.dispose();
      throw e;
    }
    this.paths.set(name, path);
    this.idOf(name);
  }

  // ---- runtime loading ----------------------------------------------------------------------------------------------

  private requireLoading(): string {
    if (!this.opts.allowLoading || this.adaptersRoot === null) {
      throw new ApiError(404, 'runtime adapter loading is off; start the server with --allow-adapter-loading --adapters-dir DIR to load adapters from DIR', 'invalid_request_error', null, 'not_found');
    }
    return this.adaptersRoot;
  }

  /** POST /v1/load_lora_adapter: lora_path must lie inside the adapters folder once symlinks are resolved. */
  load(name: string, loraPath: string): void {
    const root = this.requireLoading();
    this.checkFreeName(name, 'lora_name');
    const path = insideRoot(root, loraPath);
    let adapter: LoraAdapter;
    try {
      adapter = loadAdapter(path, this.engine.model, { onWarning: this.opts.onWarning });
    } catch (e) {
      const why = e instanceof BaseMismatchError ? e.message.replaceAll(path, loraPath) : `cannot load ${loraPath}: ${e instanceof Error ? e.message.replaceAll(path, loraPath) : String(e)}`;
      throw new ApiError(400, why, 'invalid_request_error', 'lora_path', e instanceof BaseMismatchError ? 'base_mismatch' : null);
    }
    if (this.taken(name)) { // loaded meanwhile under the same name (loading is synchronous, so only by a bug)
      adapter.dispose();
      throw new ApiError(400, `the name "${name}" is already taken`, 'invalid_request_error', 'lora_name');
    }
    this.register(name, adapter, loraPath);
  }

  /** POST /v1/unload_lora_adapter: gone for new requests at once; freed when no running request uses it. */
  unload(name: string): void {
    this.requireLoading();
    if (this.hidden.has(name)) throw new ApiError(400, `"${name}" belongs to a recipe and cannot be unloaded alone`, 'invalid_request_error', 'lora_name');
    const adapter = this.engine.removeAdapter(name);
    if (adapter === null) throw new ApiError(404, `no adapter named "${name}" is loaded`, 'invalid_request_error', 'lora_name', 'model_not_found');
    this.paths.delete(name);
    this.ids.delete(name);
    this.retired.push(adapter);
    this.sweep();
  }

  /** Frees unloaded adapters that no request uses any more (called after each request ends). */
  sweep(): void {
    for (let i = this.retired.length - 1; i >= 0; i--) {
      if (!this.engine.inUse(this.retired[i])) this.retired.splice(i, 1)[0].dispose();
    }
  }

  /** Frees every adapter (after the engine has stopped). */
  dispose(): void {
    for (const a of this.retired.splice(0)) a.dispose();
    for (const n of this.engine.adapterNames()) this.engine.removeAdapter(n)?.dispose();
  }
}

/**
 * The real path of `p` (relative to root, or absolute) if it lies inside root, else a 400: `..` and symlinks are
 * resolved first (realpath), and for a folder every entry the loader may read is checked too, so a link inside
 * the folder cannot point out of it.
 */
export function insideRoot(root: string, p: string): string {
  const bad = (why: string): never => {
    throw new ApiError(400, `lora_path ${JSON.stringify(p)} ${why}`, 'invalid_request_error', 'lora_path');
  };
  if (p.includes('\0')) bad('is not a valid path');
  let real: string;
  try {
    real = realpathSync(isAbsolute(p) ? p : join(root, p));
  } catch {
    return bad('does not exist in the adapters folder');
  }
  const inside = (q: string): boolean => {
    const rel = relative(root, q);
    return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  };
  if (!inside(real)) bad('is outside the adapters folder (--adapters-dir)');
  if (real === root) bad('is the adapters folder itself; name an adapter inside it');
  if (statSync(real).isDirectory()) {
    for (const entry of readdirSync(real)) {
      let target: string;
      try {
        target = realpathSync(join(real, entry));
      } catch {
        continue; // a dangling link: the loader fails on it if it needs it
      }
      if (!inside(target)) bad(`holds ${entry}, which points outside the adapters folder`);
    }
  }
  return real;
}
