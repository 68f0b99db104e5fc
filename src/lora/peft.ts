// Hugging Face PEFT LoRA adapters: a folder with adapter_config.json and adapter_model.safetensors.
//
// Facts from PEFT (tuners/lora/config.py LoraConfig, utils/save_and_load.py, tuners/tuners_utils.py):
//   tensors   base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r] (adapter name removed);
//             safetensors metadata {"format": "pt"}
//   config    every LoraConfig field, inference_mode true on save; rank_pattern / alpha_pattern map a key to a
//             per-module r / alpha, a key matching a module name m when re.match(rf"(.*\.)?({key})$", m)
//   layout    HF checkpoints pair q/k rows as 'halves': B's q/k rows are permuted to and from a base held
//             'interleaved' (GGUF llama)
// Our extra key "nomoat" (config) and metadata entry "nomoat" (safetensors) hold the base fingerprint; PEFT ignores both.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, readSafetensorsF32, writeSafetensors } from '../formats/safetensors.js';
import { writeFileAtomic } from '../formats/writer.js';
import { LINEAR_MODULES, type LlamaModel, type LinearModule } from '../models/llama.js';
import { baseInfo, LoraAdapter, type AdapterOptions, type LoraModuleData } from './adapter.js';
import { checkLoraConfig, parseTargetName, type LoraConfig } from './config.js';
import { checkBase, parseFingerprint, type BaseFingerprint } from './fingerprint.js';
import { permuteLoraB } from './layout.js';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';

export interface PeftSaveOptions {
  /** base_model_name_or_path (a hub id or folder); default null */
  baseModelNameOrPath?: string | null;
  /** tensor dtype in the file (default F32) */
  dtype?: 'F32' | 'F16' | 'BF16';
}

export interface AdapterLoadOptions extends AdapterOptions {
  /** load even when the recorded base differs from the model */
  ignoreFingerprint?: boolean;
  /** receives warnings (no fingerprint, same base in another encoding); default process.emitWarning */
  onWarning?: (message: string) => void;
}

export function defaultWarn(message: string): void {
  process.emitWarning(message, 'NomoatLoraWarning');
}

/** What PEFT's LoraConfig.to_dict() writes (PEFT ≈ 0.17), with our values and the fingerprint under "nomoat". */
export function peftConfigJson(adapter: LoraAdapter, opts: PeftSaveOptions = {}): Record<string, unknown> {
  const c = adapter.config;
  const mods = [...new Set([...adapter.modules.keys()].map((n) => parseTargetName(n)!.module))];
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const m of adapter.modules.values()) {
    if (m.r !== c.r) rankPattern[m.name] = m.r;
    if (m.alpha !== c.loraAlpha) alphaPattern[m.name] = m.alpha;
  }
  return {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: c.layers !== undefined ? [...c.layers] : null,
    loftq_config: {},
    lora_alpha: c.loraAlpha,
    lora_bias: false,
    lora_dropout: c.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    qalora_group_size: 16,
    r: c.r,
    rank_pattern: rankPattern,
    revision: null,
    target_modules: mods,
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: c.useRslora,
    nomoat: { format: 1, fingerprint: adapter.fingerprint },
  };
}

/** Writes adapter_model.safetensors, then adapter_config.json, each atomically (temp file + rename). */
export function savePeftAdapter(adapter: LoraAdapter, dir: string, opts: PeftSaveOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const tensors = [...adapter.modules.values()].flatMap((m) => {
    const B = permuteLoraB(m.name, m.B.toArray(), m.outFeatures, adapter.base.ropeMode, 'halves', adapter.base);
    return [
      { name: m.A.name, dtype, shape: [m.r, m.inFeatures], data: m.A.toArray() },
      { name: m.B.name, dtype, shape: [m.outFeatures, m.r], data: B },
    ];
  });
  const metadata: Record<string, string> = { format: 'pt' };
  if (adapter.fingerprint !== null) metadata.nomoat = JSON.stringify({ format: 1, fingerprint: adapter.fingerprint });
  writeSafetensors(join(dir, PEFT_WEIGHTS_FILE), tensors, metadata);
  const text = JSON.stringify(peftConfigJson(adapter, opts), null, 2) + '\n';
  writeFileAtomic(join(dir, PEFT_CONFIG_FILE), (sink) => sink(Buffer.from(text, 'utf8')));
}

type Json = Record<string, unknown>;

/** The per-module value of a PEFT rank_pattern / alpha_pattern, or undefined. */
function patternValue(pattern: unknown, module: string, field: string, source: string): number | undefined {
  if (pattern === undefined || pattern === null) return undefined;
  if (typeof pattern !== 'object' || Array.isArray(pattern)) throw new Error(`${source}: ${field} must be an object`);
  for (const [key, v] of Object.entries(pattern as Json)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) {
      if (typeof v !== 'number') throw new Error(`${source}: ${field}["${key}"] must be a number`);
      return v;
    }
  }
  return undefined;
}

/** Reads and validates adapter_config.json; throws naming the field. */
function readPeftConfig(path: string): Json {
  if (!existsSync(path)) throw new Error(`${path}: not found (a PEFT adapter folder holds ${PEFT_CONFIG_FILE} and ${PEFT_WEIGHTS_FILE})`);
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${path}: expected a JSON object`);
  const c = j as Json;
  const bad = (field: string, why: string): never => {
    throw new Error(`${path}: field "${field}" ${why}`);
  };
  if (c.peft_type !== 'LORA') bad('peft_type', `is ${JSON.stringify(c.peft_type)}; only "LORA" adapters are supported`);
  if (typeof c.r !== 'number' || !Number.isInteger(c.r) || c.r < 1) bad('r', 'must be a positive integer');
  if (typeof c.lora_alpha !== 'number') bad('lora_alpha', 'must be a number');
  if (c.bias !== undefined && c.bias !== 'none') bad('bias', `is ${JSON.stringify(c.bias)}; only "none" is supported (no bias tensors)`);
  if (c.use_dora === true) bad('use_dora', 'is true; DoRA adapters are not supported');
  if (c.fan_in_fan_out === true) bad('fan_in_fan_out', 'is true; Llama linears store [out, in]');
  if (c.lora_bias === true) bad('lora_bias', 'is true; LoRA bias terms are not supported');
  if (Array.isArray(c.modules_to_save) && c.modules_to_save.length > 0) bad('modules_to_save', 'lists full modules; only LoRA factors are supported');
  if (c.use_rslora !== undefined && typeof c.use_rslora !== 'boolean') bad('use_rslora', 'must be a boolean');
  if (c.lora_dropout !== undefined && typeof c.lora_dropout !== 'number') bad('lora_dropout', 'must be a number');
  return c;
}

const PEFT_NAME = /^(?:base_model\.model\.)?(model\.layers\.\d+\.(?:self_attn|mlp)\.\w+)\.lora_(A|B)(?:\.default)?\.weight$/;

/** The fingerprint recorded in the config (preferred) or in the safetensors metadata; null when none. */
function recordedFingerprint(config: Json, metadata: Record<string, string>, source: string): BaseFingerprint | null {
  const fromConfig = (config.nomoat as Json | undefined)?.fingerprint;
  if (fromConfig !== undefined && fromConfig !== null) return parseFingerprint(fromConfig, source);
  const meta = metadata.nomoat;
  if (meta === undefined) return null;
  const parsed = JSON.parse(meta) as Json;
  return parsed.fingerprint === undefined || parsed.fingerprint === null ? null : parseFingerprint(parsed.fingerprint, source);
}

/** Checks a recorded fingerprint against the model (throws on mismatch), or warns when the file has none. */
export function verifyBase(model: LlamaModel, fp: BaseFingerprint | null, source: string, opts: AdapterLoadOptions): void {
  const warn = opts.onWarning ?? defaultWarn;
  if (fp === null) {
    warn(`${source}: the adapter records no base fingerprint; it cannot be checked against this model`);
    return;
  }
  if (opts.ignoreFingerprint === true) return;
  const note = checkBase(model, fp, source);
  if (note !== null) warn(note);
}

/** Loads a PEFT LoRA folder onto a model's layout (not attached): validates config, names, shapes and the base. */
export function loadPeftAdapter(dir: string, model: LlamaModel, opts: AdapterLoadOptions = {}): LoraAdapter {
  const cfgPath = join(dir, PEFT_CONFIG_FILE);
  const wPath = join(dir, PEFT_WEIGHTS_FILE);
  const pc = readPeftConfig(cfgPath);
  if (!existsSync(wPath)) {
    const bin = existsSync(join(dir, 'adapter_model.bin')) ? ' (adapter_model.bin, a pickle, is not read: convert it to safetensors)' : '';
    throw new Error(`${wPath}: not found${bin}`);
  }
  const file = readSafetensors(wPath);
  try {
    const fp = recordedFingerprint(pc, file.metadata, dir);
    verifyBase(model, fp, dir, opts);
    const pairs = new Map<string, { A?: string; B?: string }>();
    for (const name of file.tensors.keys()) {
      const m = PEFT_NAME.exec(name);
      if (m === null || parseTargetName(m[1]) === null) {
        throw new Error(`${wPath}: tensor "${name}" is not a LoRA factor of a block linear (embedding, lm_head, DoRA and bias tensors are not supported)`);
      }
      const p = pairs.get(m[1]) ?? {};
      p[m[2] as 'A' | 'B'] = name;
      pairs.set(m[1], p);
    }
    if (pairs.size === 0) throw new Error(`${wPath}: no LoRA tensors`);
    const r0 = pc.r as number;
    const alpha0 = pc.lora_alpha as number;
    const useRslora = pc.use_rslora === true;
    const modules: LoraModuleData[] = [];
    for (const [name, p] of [...pairs].sort(([a], [b]) => order(a) - order(b))) {
      if (p.A === undefined || p.B === undefined) throw new Error(`${wPath}: module ${name} has lora_${p.A === undefined ? 'A' : 'B'} missing`);
      const sa = file.tensors.get(p.A)!.shape, sb = file.tensors.get(p.B)!.shape;
      const t = parseTargetName(name)!;
      if (t.layer >= model.config.numLayers) throw new Error(`${wPath}: module ${name} is beyond the model's ${model.config.numLayers} layers`);
      const lin = model.linear(t.layer, t.module);
      const r = sa[0];
      if (sa.length !== 2 || sb.length !== 2 || sb[1] !== r || sa[1] !== lin.inFeatures || sb[0] !== lin.outFeatures) {
        throw new Error(`${wPath}: ${name} has lora_A [${sa.join(', ')}] and lora_B [${sb.join(', ')}]; the model's weight [${lin.outFeatures}, ${lin.inFeatures}] needs [r, ${lin.inFeatures}] and [${lin.outFeatures}, r]`);
      }
      const want = patternValue(pc.rank_pattern, name, 'rank_pattern', cfgPath) ?? r0;
      if (r !== want) throw new Error(`${wPath}: ${name} has rank ${r} but ${PEFT_CONFIG_FILE} gives r = ${want}`);
      const alpha = patternValue(pc.alpha_pattern, name, 'alpha_pattern', cfgPath) ?? alpha0;
      const B = permuteLoraB(name, readSafetensorsF32(file, p.B), lin.outFeatures, 'halves', model.config.ropeMode, model.config);
      modules.push({ name, A: readSafetensorsF32(file, p.A), B, r, inFeatures: lin.inFeatures, outFeatures: lin.outFeatures, alpha });
    }
    const mods = [...new Set(modules.map((m) => parseTargetName(m.name)!.module))] as LinearModule[];
    const ltt = pc.layers_to_transform;
    const layers = typeof ltt === 'number' ? [ltt] : Array.isArray(ltt) ? (ltt as number[]) : undefined;
    const partial: Partial<LoraConfig> = { r: r0, loraAlpha: alpha0, loraDropout: (pc.lora_dropout as number | undefined) ?? 0, useRslora, targetModules: mods };
    if (layers !== undefined) partial.layers = layers;
    const config: LoraConfig = checkLoraConfig(partial);
    return new LoraAdapter(config, baseInfo(model), fp, modules, { name: opts.name ?? dir, seed: opts.seed });
  } finally {
    file.source.close?.();
  }
}

/** Sort key: layer, then module order within the block. */
function order(name: string): number {
  const t = parseTargetName(name)!;
  return t.layer * 16 + LINEAR_MODULES.indexOf(t.module);
}
