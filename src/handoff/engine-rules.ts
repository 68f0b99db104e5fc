// What each serving engine refuses or silently ignores in an adapter, checked before anything is written, so that the
// exporter refuses (naming the field) instead of writing files an engine would mis-load.
//
// vLLM (vllm/lora/peft_helper.py PEFTHelper._validate_features and __post_init__, vllm/config/lora.py LoRAConfig,
// tests/lora/test_peft_helper.py ERROR_CASES):
//   - modules_to_save must be None ("vLLM only supports modules_to_save being None"); use_dora refused ("does not yet
//     support DoRA"); bias other than "none" needs bias_enabled;
//   - r > max_lora_rank refused; max_lora_rank is one of 1, 8, 16, 32, 64, 128, 256, 320, 512 (LoRAConfig's
//     possible_max_ranks), so r > 512 cannot be served at all;
//   - ONE scaling per adapter: lora_alpha / r, or lora_alpha / √r with use_rslora; rank_pattern / alpha_pattern are
//     not read, so an adapter with per-module ranks or alphas would be served at the wrong strength;
//   - Llama's LoRA layers are the packed qkv_proj (q, k, v), o_proj, gate_up_proj (gate, up) and down_proj
//     (LlamaForCausalLM.packed_modules_mapping): every linear of a block, nothing else (no embed_tokens / lm_head).
// llama.cpp (src/llama-adapter.cpp llama_adapter_lora_init): one adapter.lora.alpha per file (the GGUF LoRA writer
//   folds per-module scalings into lora_b), no rsLoRA flag; adapters stack, each at its --lora-scaled scale.
// Ollama (docs/modelfile.md, server/create.go): ADAPTER applies one LoRA; several are refused at create time.

import type { LoraAdapter } from '../lora/adapter.js';
import { peftConfigJson } from '../lora/peft.js';

export type ExportTarget = 'vllm' | 'llama.cpp' | 'ollama' | 'peft';
export const EXPORT_TARGETS: readonly ExportTarget[] = ['vllm', 'llama.cpp', 'ollama', 'peft'];

/** vLLM's LoRAConfig.possible_max_ranks. */
export const VLLM_MAX_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512] as const;

/** The HF module names vLLM's Llama LoRA layers cover (the members of its packed modules plus o_proj, down_proj). */
export const VLLM_LLAMA_LORA_MODULES: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Thrown when an engine cannot take what is being exported; `field` is the adapter_config.json / recipe field. */
export class ExportRefusal extends Error {
  constructor(
    readonly target: ExportTarget,
    readonly field: string,
    why: string,
  ) {
    super(`export --for ${target}: ${field} ${why}`);
    this.name = 'ExportRefusal';
  }
}

/** The smallest --max-lora-rank vLLM accepts that holds rank r. */
export function vllmMaxLoraRank(r: number): number {
  const v = VLLM_MAX_LORA_RANKS.find((x) => x >= r);
  if (v === undefined) throw new ExportRefusal('vllm', 'r', `is ${r}; vLLM serves ranks up to ${VLLM_MAX_LORA_RANKS[VLLM_MAX_LORA_RANKS.length - 1]} (--max-lora-rank)`);
  return v;
}

const nonEmpty = (v: unknown): boolean => (Array.isArray(v) ? v.length > 0 : typeof v === 'object' && v !== null ? Object.keys(v).length > 0 : v !== null && v !== undefined && v !== false);

/** Checks a PEFT adapter_config.json (as written or read) against vLLM's rules; throws ExportRefusal naming the field. */
export function checkVllmAdapterConfig(cfg: Record<string, unknown>, name: string): void {
  const refuse = (field: string, why: string): never => {
    throw new ExportRefusal('vllm', field, `(adapter ${name}) ${why}`);
  };
  if (nonEmpty(cfg.modules_to_save)) refuse('modules_to_save', 'lists full modules; vLLM only supports modules_to_save being None');
  if (cfg.use_dora === true) refuse('use_dora', 'is true; vLLM does not support DoRA');
  if (cfg.bias !== undefined && cfg.bias !== 'none') refuse('bias', `is ${JSON.stringify(cfg.bias)}; vLLM needs bias "none" (unless served with bias_enabled)`);
  if (nonEmpty(cfg.rank_pattern)) refuse('rank_pattern', 'gives modules their own ranks; vLLM reads one r per adapter and would scale them wrongly (train with one rank, or merge the adapter into the base)');
  if (nonEmpty(cfg.alpha_pattern)) refuse('alpha_pattern', 'gives modules their own alphas; vLLM applies one lora_alpha per adapter');
  const r = cfg.r;
  if (typeof r !== 'number') return refuse('r', 'is missing');
  vllmMaxLoraRank(r);
  const mods = Array.isArray(cfg.target_modules) ? (cfg.target_modules as unknown[]) : [cfg.target_modules];
  const bad = mods.find((m) => typeof m !== 'string' || !VLLM_LLAMA_LORA_MODULES.includes(m));
  if (bad !== undefined) refuse('target_modules', `has ${JSON.stringify(bad)}; vLLM's Llama LoRA covers ${VLLM_LLAMA_LORA_MODULES.join(', ')}`);
}

/** Checks one adapter for a target (the config it would be written with). */
export function checkAdapterFor(target: ExportTarget, adapter: LoraAdapter, name: string): void {
  if (target === 'vllm') checkVllmAdapterConfig(peftConfigJson(adapter), name);
}

/**
 * Checks a stack: llama.cpp applies several adapters at their scales; vLLM, PEFT and Ollama apply one adapter (vLLM
 * one per request, Ollama one per model), so a stack must be combined first.
 */
export function checkStackFor(target: ExportTarget, count: number): void {
  if (count <= 1 || target === 'llama.cpp') return;
  const field = target === 'ollama' ? 'ADAPTER' : 'adapters';
  const engine = target === 'ollama' ? 'Ollama applies one ADAPTER per model' : target === 'vllm' ? 'vLLM applies one LoRA per request' : 'a PEFT model runs one active adapter here';
  throw new ExportRefusal(
    target, field,
    `lists ${count} adapters to apply together; ${engine}. Combine them into one first, exactly: add "merge": { "method": "cat" } ` +
      'to the recipe (ranks add up), or run `nomoat stack RECIPE -o one/` and export that folder; or export --for llama.cpp, which stacks them',
  );
}
