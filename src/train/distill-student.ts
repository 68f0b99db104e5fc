// A full-weight student for distillation: its shape (parsed from `layers=2,hidden=128,…` or a config.json), its
// weights (random, or taken from the teacher: chosen layers, the teacher's adapters merged in, MLP rows pruned when
// narrower), and its output folder (config.json + model.safetensors + the teacher's tokenizer files).

import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tensor } from '../engine/tensor.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { tensorValues } from '../engine/quant/index.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { configToHf, type LlamaConfig } from '../models/config.js';
import { initWeights } from '../models/init.js';
import { LINEAR_MODULES, linearName, type LlamaModel } from '../models/llama.js';

/** The keys of --student-shape and the config fields they set. */
const SHAPE_KEYS = {
  layers: 'numLayers', hidden: 'hiddenSize', intermediate: 'intermediateSize', heads: 'numHeads', 'kv-heads': 'numKvHeads', 'head-dim': 'headDim',
} as const satisfies Record<string, keyof LlamaConfig>;

/**
 * The teacher's config with `layers=2,hidden=128,…` applied (vocabulary, RoPE, norms and special ids kept: the
 * student shares the teacher's tokenizer). head-dim follows hidden/heads unless given.
 */
export function parseStudentShape(spec: string, teacher: LlamaConfig): LlamaConfig {
  const c: LlamaConfig = { ...teacher, ropeFreqFactors: null };
  let headDimGiven = false;
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [k, v, extra] = part.split('=');
    if (!(k in SHAPE_KEYS) || v === undefined || extra !== undefined) throw new Error(`--student-shape: "${part}" is not KEY=N with KEY one of ${Object.keys(SHAPE_KEYS).join(', ')}`);
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--student-shape: ${k} must be a positive integer, got ${v}`);
    c[SHAPE_KEYS[k as keyof typeof SHAPE_KEYS]] = n;
    if (k === 'head-dim') headDimGiven = true;
  }
  if (!headDimGiven && (c.hiddenSize !== teacher.hiddenSize || c.numHeads !== teacher.numHeads)) c.headDim = c.hiddenSize / c.numHeads;
  checkStudentConfig(c, teacher);
  return c;
}

/** Refuses a student that cannot share the teacher's vocabulary or whose attention shape is inconsistent. */
export function checkStudentConfig(c: LlamaConfig, teacher: LlamaConfig): void {
  if (c.vocabSize !== teacher.vocabSize) throw new Error(`student vocabulary ${c.vocabSize} ≠ the teacher's ${teacher.vocabSize}: the student must use the teacher's tokenizer`);
  if (!Number.isInteger(c.headDim) || c.headDim < 2 || c.headDim % 2 !== 0) throw new Error(`student head dim ${c.headDim} (hidden ${c.hiddenSize} / heads ${c.numHeads}) must be an even integer`);
  if (c.numHeads % c.numKvHeads !== 0) throw new Error(`student kv-heads ${c.numKvHeads} must divide heads ${c.numHeads}`);
}

/** `n` of `total` layers spread evenly, first and last included (DistilBART's "maximally spaced" choice). */
export function spacedLayers(n: number, total: number): number[] {
  if (n > total) throw new Error(`a student of ${n} layers cannot take them from a teacher of ${total}`);
  if (n === 1) return [total - 1];
  return Array.from({ length: n }, (_, i) => Math.round((i * (total - 1)) / (n - 1)));
}

/** The teacher's weight `name` in f32 with its attached adapters' deltas (scale·alpha/r·B·A) added. */
function mergedWeight(name: string, t: Tensor, stack: readonly { adapter: LoraAdapter; scale: number }[]): Float32Array {
  const w = tensorValues(t).slice();
  const module = name.replace(/\.weight$/, '');
  for (const { adapter, scale } of stack) {
    for (const m of adapter.moduleData()) {
      if (m.name !== module) continue;
      const k = (scale * m.alpha) / m.r;
      for (let o = 0; o < m.outFeatures; o++) {
        for (let j = 0; j < m.r; j++) {
          const b = k * m.B[o * m.r + j];
          if (b === 0) continue;
          for (let i = 0; i < m.inFeatures; i++) w[o * m.inFeatures + i] += b * m.A[j * m.inFeatures + i];
        }
      }
    }
  }
  return w;
}

/**
 * Student weights taken from the teacher (f32, HF names): embeddings, final norm and the layers `pick` (teacher
 * indices, in order), with the teacher's adapters merged in. Needs the same hidden size and attention shape; a
 * narrower MLP keeps the first `intermediate` units (rows of gate/up, columns of down).
 */
export function weightsFromTeacher(teacher: LlamaModel, c: LlamaConfig, pick: readonly number[], stack: readonly { adapter: LoraAdapter; scale: number }[] = []): Map<string, Tensor> {
  const tc = teacher.config;
  for (const k of ['hiddenSize', 'numHeads', 'numKvHeads', 'headDim', 'tieWordEmbeddings', 'attentionBias'] as const) {
    if (c[k] !== tc[k]) throw new Error(`cannot initialise the student from the teacher: ${k} differs (${String(c[k])} vs ${String(tc[k])}); use --student-init random`);
  }
  if (c.intermediateSize > tc.intermediateSize) throw new Error(`cannot initialise the student from the teacher: intermediate ${c.intermediateSize} > the teacher's ${tc.intermediateSize}`);
  if (pick.length !== c.numLayers || pick.some((l) => !(l >= 0 && l < tc.numLayers))) throw new Error(`student layers ${pick.join(',')}: need ${c.numLayers} indices in [0, ${tc.numLayers})`);
  const src = new Map(teacher.namedTensors());
  const I = c.intermediateSize;
  const w = new Map<string, Tensor>();
  const put = (name: string, values: Float32Array, shape: number[]): void => void w.set(name, Tensor.from(values, shape).keep());
  const get = (from: string): Tensor => {
    const t = src.get(from);
    if (t === undefined) throw new Error(`teacher has no tensor ${from}`);
    return t;
  };
  for (const n of ['model.embed_tokens.weight', 'model.norm.weight', ...(c.tieWordEmbeddings ? [] : ['lm_head.weight'])]) put(n, mergedWeight(n, get(n), stack), [...get(n).shape]);
  pick.forEach((l, i) => {
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) put(`model.layers.${i}.${norm}.weight`, tensorValues(get(`model.layers.${l}.${norm}.weight`)).slice(), [c.hiddenSize]);
    for (const m of LINEAR_MODULES) {
      const from = `${linearName(l, m)}.weight`;
      const t = get(from);
      const [out, inn] = t.shape as [number, number];
      const full = mergedWeight(from, t, stack);
      let vals = full;
      let shape = [out, inn];
      if ((m === 'gate_proj' || m === 'up_proj') && I < out) [vals, shape] = [full.slice(0, I * inn), [I, inn]];
      if (m === 'down_proj' && I < inn) {
        vals = new Float32Array(out * I);
        for (let o = 0; o < out; o++) vals.set(full.subarray(o * inn, o * inn + I), o * I);
        shape = [out, I];
      }
      put(`${linearName(i, m)}.weight`, vals, shape);
      if (c.attentionBias && (m === 'q_proj' || m === 'k_proj' || m === 'v_proj')) put(`${linearName(i, m)}.bias`, tensorValues(get(`${linearName(l, m)}.bias`)).slice(), [out]);
    }
  });
  return w;
}

/** Fresh student weights (f32), seeded. */
export function randomStudentWeights(c: LlamaConfig, seed: number, std = 0.02): Map<string, Tensor> {
  return initWeights(c, seed, std);
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'generation_config.json'];

/**
 * Writes a loadable Hugging Face folder: config.json, model.safetensors (f32), and the tokenizer files of
 * `tokenizerFrom` (an HF folder) when it has them. Each file is written beside and renamed into place.
 */
export function saveStudentFolder(model: LlamaModel, dir: string, tokenizerFrom: string | null): string[] {
  mkdirSync(dir, { recursive: true });
  const atomic = (name: string, write: (tmp: string) => void): void => {
    const tmp = join(dir, `.${name}.tmp-${process.pid}`);
    write(tmp);
    renameSync(tmp, join(dir, name));
  };
  atomic('model.safetensors', (tmp) => writeSafetensors(tmp, model.namedTensors().map(([name, t]) => ({ name, dtype: 'F32', shape: [...t.shape], data: tensorValues(t) })), { format: 'pt' }));
  atomic('config.json', (tmp) => writeFileSync(tmp, JSON.stringify(configToHf(model.config), null, 2) + '\n'));
  const copied: string[] = [];
  const from = tokenizerFrom === null ? null : existsSync(join(tokenizerFrom, 'config.json')) ? tokenizerFrom : dirname(tokenizerFrom);
  if (from !== null) {
    for (const f of TOKENIZER_FILES) {
      if (!existsSync(join(from, f))) continue;
      atomic(f, (tmp) => copyFileSync(join(from, f), tmp));
      copied.push(f);
    }
  }
  return copied;
}
