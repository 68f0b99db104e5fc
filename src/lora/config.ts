// LoRA configuration: one typed struct (PEFT's LoraConfig fields we support), its validation, and which linears it
// targets. Scaling is PEFT's: lora_alpha / r, or lora_alpha / √r with rsLoRA.

import { LINEAR_MODULES, linearName, type LinearModule } from '../models/llama.js';

export interface LoraConfig {
  /** rank r of A [r, in] and B [out, r] */
  r: number;
  /** lora_alpha: the delta is scaled by alpha / r (alpha / √r with rsLoRA) */
  loraAlpha: number;
  /** dropout probability on the adapter's input while training (0 disables) */
  loraDropout: number;
  /** rank-stabilized LoRA (scale alpha / √r) */
  useRslora: boolean;
  /** which block linears get an adapter */
  targetModules: readonly LinearModule[] | 'all-linear';
  /** layers to adapt (PEFT layers_to_transform); undefined: every layer */
  layers?: readonly number[];
}

export const LORA_DEFAULTS: LoraConfig = { r: 8, loraAlpha: 16, loraDropout: 0, useRslora: false, targetModules: ['q_proj', 'v_proj'] };

/** PEFT's scaling for one module. */
export function loraScaling(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** The target module list, 'all-linear' expanded (PEFT's all-linear excludes the output head; so does this). */
export function resolveTargets(t: LoraConfig['targetModules']): LinearModule[] {
  return t === 'all-linear' ? [...LINEAR_MODULES] : [...t];
}

/** Throws naming the first bad field of a configuration (a partial one is filled from LORA_DEFAULTS). */
export function checkLoraConfig(c: Partial<LoraConfig>, numLayers?: number): LoraConfig {
  const full: LoraConfig = { ...LORA_DEFAULTS, ...c };
  const bad = (field: string, why: string): never => {
    throw new Error(`LoRA config: ${field} ${why}`);
  };
  if (!Number.isInteger(full.r) || full.r < 1) bad('r', `must be a positive integer, got ${String(full.r)}`);
  if (typeof full.loraAlpha !== 'number' || !Number.isFinite(full.loraAlpha)) bad('loraAlpha', `must be a finite number, got ${String(full.loraAlpha)}`);
  if (!(full.loraDropout >= 0 && full.loraDropout < 1)) bad('loraDropout', `must be in [0, 1), got ${String(full.loraDropout)}`);
  if (typeof full.useRslora !== 'boolean') bad('useRslora', 'must be a boolean');
  if (full.targetModules !== 'all-linear') {
    const list: unknown = full.targetModules;
    if (!Array.isArray(list) || list.length === 0) return bad('targetModules', `must be 'all-linear' or a non-empty list of ${LINEAR_MODULES.join('|')}`);
    for (const m of list as unknown[]) {
      if (typeof m !== 'string' || !(LINEAR_MODULES as readonly string[]).includes(m)) bad('targetModules', `has unknown module "${String(m)}" (expected ${LINEAR_MODULES.join('|')})`);
    }
  }
  if (full.layers !== undefined) {
    for (const l of full.layers) {
      if (!Number.isInteger(l) || l < 0 || (numLayers !== undefined && l >= numLayers)) {
        bad('layers', `has ${String(l)}, not a layer index${numLayers !== undefined ? ` in [0, ${numLayers})` : ''}`);
      }
    }
  }
  return full;
}

/** One targeted linear: its layer, module and HF name (model.layers.N.self_attn.q_proj). */
export interface LoraTarget {
  layer: number;
  module: LinearModule;
  name: string;
}

/** The targeted linears of a model with numLayers blocks, in layer then module order. */
export function loraTargets(c: LoraConfig, numLayers: number): LoraTarget[] {
  const mods = resolveTargets(c.targetModules);
  const layers = c.layers ?? Array.from({ length: numLayers }, (_, i) => i);
  const out: LoraTarget[] = [];
  for (const layer of [...layers].sort((a, b) => a - b)) {
    for (const m of LINEAR_MODULES) if (mods.includes(m)) out.push({ layer, module: m, name: linearName(layer, m) });
  }
  return out;
}

/** Parses "model.layers.N.self_attn.q_proj" back into a target, or null. */
export function parseTargetName(name: string): LoraTarget | null {
  const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)$/.exec(name);
  if (m === null) return null;
  const module = m[3] as LinearModule;
  if (!(LINEAR_MODULES as readonly string[]).includes(module) || linearName(Number(m[1]), module) !== name) return null;
  return { layer: Number(m[1]), module, name };
}
