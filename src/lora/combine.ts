// Combining whole adapters into one new adapter (PEFT add_weighted_adapter), module by module through the pure math
// in ./merge. The result is an ordinary LoraAdapter with scaling 1 per module (alpha = rank, no rsLoRA, as PEFT
// writes it), savable as PEFT or GGUF and attachable like any other.

import { Rng } from '../engine/rng.js';
import { LINEAR_MODULES } from '../models/llama.js';
import { LoraAdapter, type LoraModuleData } from './adapter.js';
import { checkLoraConfig, parseTargetName } from './config.js';
import type { BaseFingerprint } from './fingerprint.js';
import { combineAdapters as combineModule, type CombinationType, type WeightedLora } from './merge/index.js';
import type { MajoritySignMethod } from './merge/index.js';

export interface CombineAdaptersOptions {
  /** one weight per adapter (default 1 each); may be negative */
  weights?: readonly number[];
  /** fraction kept by the pruning methods (ties, dare_*, magnitude_prune*) */
  density?: number;
  majoritySignMethod?: MajoritySignMethod;
  /** svd methods: output rank (default: the largest input rank) */
  svdRank?: number;
  /** svd methods: clamp factors to ±quantile(values, svdClamp) */
  svdClamp?: number;
  /** seed of DARE's drop masks and of the pruned-svd start blocks (default 0) */
  seed?: number;
  name?: string;
}

function sameBase(a: LoraAdapter, b: LoraAdapter): string | null {
  const x = a.base, y = b.base;
  for (const k of ['arch', 'ropeMode', 'numLayers', 'numHeads', 'numKvHeads'] as const) {
    if (x[k] !== y[k]) return `${k}: ${String(x[k])} vs ${String(y[k])}`;
  }
  const f = a.fingerprint, g = b.fingerprint;
  // as checkBase: equal weights hashes, or the same norms under another encoding (dtypes, RoPE layout)
  if (f !== null && g !== null && f.weights.hash !== g.weights.hash) {
    const reencoded = JSON.stringify(f.dtypes) !== JSON.stringify(g.dtypes) || f.ropeMode !== g.ropeMode;
    if (!reencoded || f.norms.hash !== g.norms.hash) return 'recorded base fingerprints differ';
  }
  return null;
}

const order = (name: string): number => {
  const t = parseTargetName(name)!;
  return t.layer * 16 + LINEAR_MODULES.indexOf(t.module);
};

/** A new adapter combining `adapters` with a PEFT combination method; a module takes part in the adapters that have it. */
export function combineAdapters(adapters: readonly LoraAdapter[], method: CombinationType, opts: CombineAdaptersOptions = {}): LoraAdapter {
  if (adapters.length === 0) throw new Error('combineAdapters: no adapters given');
  const weights = opts.weights ?? adapters.map(() => 1);
  if (weights.length !== adapters.length) throw new Error(`combineAdapters: ${weights.length} weights for ${adapters.length} adapters`);
  for (const a of adapters.slice(1)) {
    const diff = sameBase(adapters[0], a);
    if (diff !== null) throw new Error(`combineAdapters: ${a.name} and ${adapters[0].name} were trained on different bases (${diff})`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const names = [...new Set(adapters.flatMap((a) => [...a.modules.keys()]))].sort((x, y) => order(x) - order(y));
  const modules: LoraModuleData[] = names.map((name) => {
    const parts: WeightedLora[] = [];
    adapters.forEach((a, i) => {
      const m = a.modules.get(name);
      if (m === undefined) return;
      parts.push({
        A: { rows: m.r, cols: m.inFeatures, data: m.A.toArray() },
        B: { rows: m.outFeatures, cols: m.r, data: m.B.toArray() },
        scaling: m.scaling,
        weight: weights[i],
        name: `${a.name} ${name}`,
      });
    });
    const c = combineModule(parts, {
      combination: method, density: opts.density, majoritySignMethod: opts.majoritySignMethod, svdRank: opts.svdRank, svdClamp: opts.svdClamp, rng, svdSeed: opts.seed,
    });
    return { name, A: c.A.data, B: c.B.data, r: c.rank, inFeatures: c.A.cols, outFeatures: c.B.rows, alpha: c.rank };
  });
  const r = modules[0].r;
  const targets = LINEAR_MODULES.filter((m) => names.some((n) => parseTargetName(n)!.module === m));
  const config = checkLoraConfig({ r, loraAlpha: r, loraDropout: 0, useRslora: false, targetModules: targets });
  const fp: BaseFingerprint | null = adapters.find((a) => a.fingerprint !== null)?.fingerprint ?? null;
  return new LoraAdapter(config, adapters[0].base, fp, modules, { name: opts.name ?? `${method}(${adapters.map((a) => a.name).join(', ')})` });
}
