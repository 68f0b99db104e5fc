// llama.cpp GGUF LoRA adapters (what convert_lora_to_gguf.py writes and llama_adapter_lora_init reads).
//
//   metadata  general.architecture (the base's), general.type = "adapter", adapter.type = "lora",
//             adapter.lora.alpha (float32)
//   tensors   blk.N.<gguf name>.weight.lora_a: PEFT's A as is, row-major [r, in] (ggml ne = [in, r])
//             blk.N.<gguf name>.weight.lora_b: PEFT's B as is, row-major [out, r] (ne = [r, out])
//             neither is transposed; for a llama base, B's attn_q/attn_k rows are in GGUF's interleaved RoPE layout
//   scale     llama.cpp applies adapter_scale · alpha / r with r = lora_b's ne[0], or adapter_scale alone when
//             alpha is 0. It knows no rsLoRA and one alpha per file: when modules' scalings do not fit
//             alpha / r_i, the ratio is folded into lora_b on export (the product B·A·scale is what is kept).
// Our fingerprint is stored as the string key nomoat.fingerprint.

import type { DType } from '../engine/dtype.js';
import { readGguf, readGgufTensorF32, type GgufFile } from '../formats/gguf.js';
import { writeGguf } from '../formats/gguf-write.js';
import type { GgufKV } from '../formats/gguf-types.js';
import { ggufToHfName, hfToGgufName } from '../formats/names.js';
import { ARCHITECTURES, archFromGguf } from '../models/config.js';
import { LINEAR_MODULES, type LlamaModel, type LinearModule } from '../models/llama.js';
import { baseInfo, LoraAdapter, type LoraModuleData } from './adapter.js';
import { checkLoraConfig, parseTargetName } from './config.js';
import { parseFingerprint, type BaseFingerprint } from './fingerprint.js';
import { permuteLoraB } from './layout.js';
import { verifyBase, type AdapterLoadOptions } from './peft.js';

export interface GgufLoraSaveOptions {
  /** tensor type (default f32, as convert_lora_to_gguf.py's default outtype) */
  dtype?: Extract<DType, 'f32' | 'f16' | 'bf16'>;
  /** general.name */
  name?: string;
}

const FINGERPRINT_KEY = 'nomoat.fingerprint';

/** The alpha written to the file and each module's factor folded into lora_b so that alpha / r_i · fold_i = s_i. */
function fileAlpha(adapter: LoraAdapter): { alpha: number; fold: Map<string, number> } {
  const mods = [...adapter.modules.values()];
  const first = mods[0];
  const alpha = first === undefined ? adapter.config.loraAlpha : first.scaling * first.r; // alpha/r = s for the first
  const fold = new Map<string, number>();
  for (const m of mods) {
    const fileScale = alpha !== 0 ? alpha / m.r : 1;
    fold.set(m.name, m.scaling / fileScale);
  }
  return { alpha, fold };
}

/** Writes a GGUF LoRA atomically (the GGUF writer streams into a temp file and renames it). */
export function saveGgufLora(adapter: LoraAdapter, path: string, opts: GgufLoraSaveOptions = {}): void {
  const arch = ARCHITECTURES[adapter.base.arch];
  const { alpha, fold } = fileAlpha(adapter);
  const dtype = opts.dtype ?? 'f32';
  const metadata: GgufKV[] = [
    { key: 'general.architecture', type: 'string', value: arch.gguf },
    { key: 'general.type', type: 'string', value: 'adapter' },
  ];
  if (opts.name !== undefined) metadata.push({ key: 'general.name', type: 'string', value: opts.name });
  metadata.push({ key: 'adapter.type', type: 'string', value: 'lora' }, { key: 'adapter.lora.alpha', type: 'float32', value: alpha });
  if (adapter.fingerprint !== null) metadata.push({ key: FINGERPRINT_KEY, type: 'string', value: JSON.stringify(adapter.fingerprint) });
  const tensors = [...adapter.modules.values()].flatMap((m) => {
    const gg = hfToGgufName(`${m.name}.weight`);
    if (gg === null) throw new Error(`GGUF LoRA: no GGUF name for ${m.name}`);
    const B = permuteLoraB(m.name, m.B.toArray(), m.outFeatures, adapter.base.ropeMode, arch.ggufRopeMode, adapter.base);
    const f = fold.get(m.name) ?? 1;
    if (f !== 1) for (let i = 0; i < B.length; i++) B[i] *= f;
    return [
      { name: `${gg}.lora_a`, dtype, shape: [m.r, m.inFeatures], data: m.A.toArray() },
      { name: `${gg}.lora_b`, dtype, shape: [m.outFeatures, m.r], data: B },
    ];
  });
  writeGguf(path, { metadata, tensors });
}

function str(file: GgufFile, key: string, path: string): string {
  const v = file.metadata.get(key);
  if (typeof v !== 'string') throw new Error(`${path}: GGUF key ${key} is ${v === undefined ? 'missing' : 'not a string'}`);
  return v;
}

/** Loads a GGUF LoRA onto a model's layout (not attached). Per-module alpha = file alpha (scale alpha / r_i). */
export function loadGgufLora(path: string, model: LlamaModel, opts: AdapterLoadOptions = {}): LoraAdapter {
  const file = readGguf(path);
  try {
    if (str(file, 'general.type', path) !== 'adapter') throw new Error(`${path}: general.type is not "adapter" (is this a model, not a LoRA?)`);
    if (str(file, 'adapter.type', path) !== 'lora') throw new Error(`${path}: adapter.type is "${str(file, 'adapter.type', path)}", expected "lora"`);
    const arch = archFromGguf(str(file, 'general.architecture', path));
    if (arch !== model.config.arch) throw new Error(`${path}: adapter is for architecture ${arch}, the model is ${model.config.arch}`);
    const alphaV = file.metadata.get('adapter.lora.alpha');
    const alpha = typeof alphaV === 'number' ? alphaV : 0; // absent: llama.cpp reads 0 → scale 1
    const fpText = file.metadata.get(FINGERPRINT_KEY);
    const fp: BaseFingerprint | null = typeof fpText === 'string' ? parseFingerprint(JSON.parse(fpText), path) : null;
    verifyBase(model, fp, path, opts);
    const pairs = new Map<string, { a?: number; b?: number }>();
    file.tensors.forEach((t, i) => {
      const m = /^(.+\.weight)\.lora_(a|b)$/.exec(t.name);
      const hf = m === null ? null : ggufToHfName(m[1]);
      const name = hf?.slice(0, -'.weight'.length) ?? null;
      if (m === null || name === null || parseTargetName(name) === null) {
        throw new Error(`${path}: tensor "${t.name}" is not a lora_a/lora_b of a block linear (embedding, output and norm tensors are not supported)`);
      }
      const p = pairs.get(name) ?? {};
      p[m[2] as 'a' | 'b'] = i;
      pairs.set(name, p);
    });
    if (pairs.size === 0) throw new Error(`${path}: no LoRA tensors`);
    const fileMode = ARCHITECTURES[arch].ggufRopeMode;
    const modules: LoraModuleData[] = [];
    for (const [name, p] of pairs) {
      if (p.a === undefined || p.b === undefined) throw new Error(`${path}: ${name} has lora_${p.a === undefined ? 'a' : 'b'} missing`);
      const ta = file.tensors[p.a], tb = file.tensors[p.b];
      const t = parseTargetName(name)!;
      if (t.layer >= model.config.numLayers) throw new Error(`${path}: ${ta.name} is beyond the model's ${model.config.numLayers} layers`);
      const lin = model.linear(t.layer, t.module);
      const r = ta.shape[0];
      if (ta.shape.length !== 2 || tb.shape.length !== 2 || tb.shape[1] !== r || ta.shape[1] !== lin.inFeatures || tb.shape[0] !== lin.outFeatures) {
        throw new Error(`${path}: ${ta.name} is [${ta.shape.join(', ')}] and ${tb.name} [${tb.shape.join(', ')}] (row-major); the model's weight [${lin.outFeatures}, ${lin.inFeatures}] needs [r, ${lin.inFeatures}] and [${lin.outFeatures}, r]`);
      }
      const B = permuteLoraB(name, readGgufTensorF32(file, tb), lin.outFeatures, fileMode, model.config.ropeMode, model.config);
      modules.push({ name, A: readGgufTensorF32(file, ta), B, r, inFeatures: lin.inFeatures, outFeatures: lin.outFeatures, alpha: alpha !== 0 ? alpha : r });
    }
    modules.sort((x, y) => key(x.name) - key(y.name));
    const r0 = modules[0].r;
    const mods: LinearModule[] = LINEAR_MODULES.filter((m) => modules.some((x) => parseTargetName(x.name)!.module === m));
    const config = checkLoraConfig({ r: r0, loraAlpha: modules[0].alpha, loraDropout: 0, useRslora: false, targetModules: mods });
    return new LoraAdapter(config, baseInfo(model), fp, modules, { name: opts.name ?? path, seed: opts.seed });
  } finally {
    file.source.close?.();
  }
}

function key(name: string): number {
  const t = parseTargetName(name)!;
  return t.layer * 16 + LINEAR_MODULES.indexOf(t.module);
}
