// A LoRA adapter: one LoraLinear per targeted linear of a Llama model, trainable A/B tensors with PEFT names, and a
// runtime scale. Attaching pushes its layers onto the model's Linear.deltas (detaching removes them), so any number
// of adapters stack unmerged over one frozen base and the active set changes without reloading the base.

import type { RopeMode } from '../engine/backend.js';
import { Rng } from '../engine/rng.js';
import { Tensor } from '../engine/tensor.js';
import type { ArchName } from '../models/config.js';
import type { LlamaModel } from '../models/llama.js';
import { checkLoraConfig, loraScaling, loraTargets, parseTargetName, type LoraConfig } from './config.js';
import { baseFingerprint, checkBase, type BaseFingerprint } from './fingerprint.js';
import { kaimingUniformA, LoraLinear, SeedStream, type LoraRuntime } from './layer.js';

/** What an adapter must know about its base to be attached, saved or converted (the layout of its q/k rows). */
export interface BaseInfo {
  arch: ArchName;
  /** the RoPE layout of the base's q/k rows, which B's q_proj/k_proj rows follow */
  ropeMode: RopeMode;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
}

export function baseInfo(model: LlamaModel): BaseInfo {
  const c = model.config;
  return { arch: c.arch, ropeMode: c.ropeMode, numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads };
}

/** One module's factors, as loaders and combiners hand them over. */
export interface LoraModuleData {
  /** HF module name: model.layers.N.self_attn.q_proj */
  name: string;
  A: Float32Array; // [r, in]
  B: Float32Array; // [out, r]
  r: number;
  inFeatures: number;
  outFeatures: number;
  /** this module's lora_alpha */
  alpha: number;
}

export interface AdapterOptions {
  /** a label for messages and recipes */
  name?: string;
  /** seed of A's initialization (create) and of the dropout masks */
  seed?: number;
}

/** PEFT's tensor name for a module's factor: base_model.model.<module>.lora_A.weight */
export function peftTensorName(module: string, which: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${which}.weight`;
}

export class LoraAdapter implements LoraRuntime {
  /** runtime multiplier on every delta; 0 silences the adapter, negative subtracts it */
  scale = 1;
  /** dropout is active only while training */
  training = false;
  readonly name: string;
  /** by HF module name, in layer then module order */
  readonly modules: ReadonlyMap<string, LoraLinear>;
  private readonly seeds: SeedStream;
  private model: LlamaModel | null = null;
  /** the scale before an attach that set one: detach() restores it (an attach's scale lasts that attachment) */
  private scaleBeforeAttach: number | null = null;

  constructor(
    readonly config: LoraConfig,
    readonly base: BaseInfo,
    /** the base it was trained on; null for adapters from files that carry none */
    readonly fingerprint: BaseFingerprint | null,
    modules: readonly LoraModuleData[],
    opts: AdapterOptions = {},
  ) {
    this.name = opts.name ?? 'adapter';
    this.seeds = new SeedStream(opts.seed ?? 0);
    const map = new Map<string, LoraLinear>();
    for (const m of modules) {
      if (parseTargetName(m.name) === null) throw new Error(`LoRA adapter ${this.name}: "${m.name}" is not a block linear`);
      if (map.has(m.name)) throw new Error(`LoRA adapter ${this.name}: module ${m.name} given twice`);
      const A = param(m.A, [m.r, m.inFeatures], peftTensorName(m.name, 'A'));
      const B = param(m.B, [m.outFeatures, m.r], peftTensorName(m.name, 'B'));
      map.set(m.name, new LoraLinear(m.name, A, B, m.alpha, loraScaling(m.r, m.alpha, config.useRslora), this));
    }
    this.modules = map;
  }

  /** A fresh adapter for a model: A Kaiming-uniform (seeded), B zeros, one module per target of config. */
  static create(model: LlamaModel, config: Partial<LoraConfig>, opts: AdapterOptions = {}): LoraAdapter {
    const c = checkLoraConfig(config, model.config.numLayers);
    const rng = new Rng(opts.seed ?? 0);
    const modules = loraTargets(c, model.config.numLayers).map((t): LoraModuleData => {
      const lin = model.linear(t.layer, t.module);
      const [out, inF] = [lin.outFeatures, lin.inFeatures];
      return { name: t.name, A: kaimingUniformA(c.r, inF, rng), B: new Float32Array(out * c.r), r: c.r, inFeatures: inF, outFeatures: out, alpha: c.loraAlpha };
    });
    return new LoraAdapter(c, baseInfo(model), baseFingerprint(model), modules, opts);
  }

  get dropout(): number {
    return this.config.loraDropout;
  }

  nextSeed(): number {
    return this.seeds.next();
  }

  /** The trainable tensors (A then B per module). */
  parameters(): Tensor[] {
    return [...this.modules.values()].flatMap((m) => [m.A, m.B]);
  }

  /** [PEFT name, tensor] pairs, as adapter_model.safetensors names them. */
  namedParameters(): [string, Tensor][] {
    return this.parameters().map((t) => [t.name, t]);
  }

  /** The model this adapter is attached to, if any. */
  get attachedTo(): LlamaModel | null {
    return this.model;
  }

  /**
   * Adds this adapter's deltas to the model's linears. Checks that the model is its base: architecture, RoPE
   * layout and every module's shape, and the recorded fingerprint unless checkBase is false. A scale given here
   * holds for this attachment only: detach() puts back the scale the adapter had before (so evaluating a stack at
   * 1/n and then attaching the adapter alone does not silently keep 1/n). Setting `scale` directly persists.
   */
  attach(model: LlamaModel, opts: { scale?: number; checkBase?: boolean } = {}): void {
    if (this.model !== null) throw new Error(`LoRA adapter ${this.name} is already attached; detach it first`);
    this.checkModel(model);
    if (opts.checkBase !== false && this.fingerprint !== null) checkBase(model, this.fingerprint, `LoRA adapter ${this.name}`);
    if (opts.scale !== undefined) {
      const s = checkScale(opts.scale);
      this.scaleBeforeAttach = this.scale;
      this.scale = s;
    }
    for (const m of this.modules.values()) linearOf(model, m.name).deltas.push(m);
    this.model = model;
  }

  /** Removes this adapter's deltas from the model it is attached to (no-op when detached); restores the scale an
   *  attach({ scale }) replaced. */
  detach(): void {
    const model = this.model;
    if (model === null) return;
    if (this.scaleBeforeAttach !== null) {
      this.scale = this.scaleBeforeAttach;
      this.scaleBeforeAttach = null;
    }
    for (const m of this.modules.values()) {
      const deltas = linearOf(model, m.name).deltas;
      const i = deltas.indexOf(m);
      if (i >= 0) deltas.splice(i, 1);
    }
    this.model = null;
  }

  /** Throws naming what differs when this adapter's modules do not fit the model's linears. */
  checkModel(model: LlamaModel): void {
    const c = model.config;
    const who = `LoRA adapter ${this.name}`;
    if (c.arch !== this.base.arch) throw new Error(`${who} is for architecture ${this.base.arch}, the model is ${c.arch}`);
    if (c.ropeMode !== this.base.ropeMode) {
      throw new Error(`${who} holds q/k rows in the ${this.base.ropeMode} RoPE layout, the model uses ${c.ropeMode}: load the adapter from its file onto this model (loaders permute the rows)`);
    }
    for (const m of this.modules.values()) {
      const t = parseTargetName(m.name);
      if (t === null || t.layer >= c.numLayers) throw new Error(`${who}: module ${m.name} does not exist in a ${c.numLayers}-layer model`);
      const lin = model.linear(t.layer, t.module);
      if (lin.inFeatures !== m.inFeatures || lin.outFeatures !== m.outFeatures) {
        throw new Error(`${who}: module ${m.name} is [${m.outFeatures}, ${m.inFeatures}] but the model's weight is [${lin.outFeatures}, ${lin.inFeatures}]`);
      }
    }
  }

  /** Each module's factors as plain arrays (copies). */
  moduleData(): LoraModuleData[] {
    return [...this.modules.values()].map((m) => ({ name: m.name, A: m.A.toArray(), B: m.B.toArray(), r: m.r, inFeatures: m.inFeatures, outFeatures: m.outFeatures, alpha: m.alpha }));
  }

  /** Detaches and frees the tensors. */
  dispose(): void {
    this.detach();
    for (const t of this.parameters()) t.dispose();
  }
}

function param(values: Float32Array, shape: number[], name: string): Tensor {
  const t = Tensor.from(values, shape).keep();
  t.requiresGrad = true;
  t.name = name;
  return t;
}

export function checkScale(s: number): number {
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new Error(`LoRA scale must be a finite number, got ${String(s)}`);
  return s;
}

/** The model's linear a LoRA module name (model.layers.N.self_attn.q_proj) targets. */
export function linearOf(model: LlamaModel, name: string): ReturnType<LlamaModel['linear']> {
  const t = parseTargetName(name);
  if (t === null) throw new Error(`"${name}" is not a block linear`);
  return model.linear(t.layer, t.module);
}
