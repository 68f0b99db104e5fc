// `--recipe FILE` for generate and chat: a recipe names a base and adapters at scales (optionally a combination);
// -m defaults to its base. src/lora loads only when the flag is given, so plain generation does not pay for it.

import { existsSync } from 'node:fs';
import type { LlamaModel } from '../models/llama.js';
import type { Recipe } from '../lora/recipe.js';
import type { FlagSpecs } from './args.js';
import { CliError } from './common.js';

export const RECIPE_FLAG = {
  recipe: { kind: 'string', metavar: 'FILE', help: 'apply a recipe: JSON {base, adapters: [{path, scale}], merge?}; -m defaults to its base' },
} as const satisfies FlagSpecs;

/** Reads and validates the recipe named by --recipe (null when absent); errors name the bad field. */
export async function readRecipeFlag(path: string | undefined): Promise<Recipe | null> {
  if (path === undefined) return null;
  if (!existsSync(path)) throw new CliError(`recipe not found: ${path}`);
  const { loadRecipe } = await import('../lora/recipe.js');
  try {
    return loadRecipe(path);
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

/** Loads the recipe's adapters onto the model and attaches them (stacked, or combined when it has "merge"). */
export async function applyRecipeFlag(model: LlamaModel, recipe: Recipe | null): Promise<number> {
  if (recipe === null) return 0;
  for (const a of recipe.adapters) {
    if (!existsSync(a.path)) throw new CliError(`recipe: LoRA adapter not found: ${a.path} (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
  }
  const { applyRecipe } = await import('../lora/recipe.js');
  return applyRecipe(model, recipe).length;
}
