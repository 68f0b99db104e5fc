// `nomoat import`: what comes back from a GPU run (a PEFT adapter folder, or a Hugging Face model folder) checked
// against the base it must belong to and registered in a library folder.
//
// Registering means copying into LIBRARY/NAME in nomoat's own layout, so that any command taking an adapter or model
// by path uses it at once:
//   adapter  LIBRARY/NAME/adapter_config.json + adapter_model.safetensors (F32, the base fingerprint recorded) and
//            LIBRARY/NAME/adapter.gguf: `chat|generate|serve|eval --lora LIBRARY/NAME`, `stack`/`merge --lora …`,
//            a recipe's "path", `--lora LIBRARY/NAME/adapter.gguf` (llama.cpp too); LIBRARY is an adapter library for
//            `--library LIBRARY` (routing) when its adapters share one base.
//   model    LIBRARY/NAME/ (config.json, model.safetensors, generation_config.json, tokenizer files): `-m LIBRARY/NAME`.
// The default LIBRARY is $NOMOAT_HOME/adapters or $NOMOAT_HOME/models (NOMOAT_HOME default ~/.nomoat).
//
// The base check: an adapter carrying nomoat's fingerprint (exported or handed off by nomoat, train.py records it)
// must match -m BASE (checkBase: same arch and shapes, same weights hash or, re-encoded, same norms hash), else it is
// refused naming what differs; one without a fingerprint is checked for shapes only (the loader refuses any tensor
// that does not fit the base) and the report says so. A model folder must have the base's architecture and shapes.

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { LoraAdapter } from '../lora/adapter.js';
import { baseFingerprint, BaseMismatchError, checkBase } from '../lora/fingerprint.js';
import { saveGgufLora } from '../lora/gguf.js';
import { loadPeftAdapter, PEFT_CONFIG_FILE, savePeftAdapter } from '../lora/peft.js';
import { saveHfFolder, type HfDType } from '../models/convert.js';
import type { LlamaModel } from '../models/llama.js';
import { loadModel } from '../models/load.js';
import { writeFolderAtomic } from './files.js';

export type ImportKind = 'adapter' | 'model';

export interface ImportOptions {
  /** the folder that came back */
  source: string;
  /** the base it belongs to, loaded */
  base: LlamaModel;
  /** the base's path (recorded as base_model_name_or_path) */
  basePath: string;
  /** the library folder (default libraryDir(kind)) */
  into?: string;
  /** the name inside the library (default: the source folder's name) */
  name?: string;
  force?: boolean;
}

export interface ImportResult {
  kind: ImportKind;
  path: string;
  /** how the base was checked */
  check: string;
  /** warnings met on the way (e.g. no fingerprint) */
  notes: string[];
}

export function nomoatHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.NOMOAT_HOME ?? join(homedir(), '.nomoat');
}

export function libraryDir(kind: ImportKind, env: NodeJS.ProcessEnv = process.env): string {
  return join(nomoatHome(env), kind === 'adapter' ? 'adapters' : 'models');
}

/** What a returned folder is: a PEFT adapter (adapter_config.json) or an HF model (config.json). */
export function importKind(dir: string): ImportKind {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder (import takes a PEFT adapter folder or a Hugging Face model folder)`);
  if (existsSync(join(dir, PEFT_CONFIG_FILE))) return 'adapter';
  if (existsSync(join(dir, 'config.json'))) return 'model';
  throw new Error(`${dir}: neither ${PEFT_CONFIG_FILE} (a PEFT adapter) nor config.json (a Hugging Face model) is in it`);
}

export function importFolder(o: ImportOptions): ImportResult {
  const kind = importKind(o.source);
  const name = o.name ?? basename(resolve(o.source));
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`import: name ${JSON.stringify(name)} must be letters, digits, ".", "_" or "-" (pass --name)`);
  const dest = join(o.into ?? libraryDir(kind), name);
  return kind === 'adapter' ? importAdapter(o, dest) : importModel(o, dest);
}

function importAdapter(o: ImportOptions, dest: string): ImportResult {
  const notes: string[] = [];
  let fingerprinted = true;
  // loadPeftAdapter checks the recorded fingerprint (throwing BaseMismatchError) and every tensor's name and shape
  const adapter = loadPeftAdapter(o.source, o.base, {
    name: basename(dest),
    onWarning: (m) => {
      if (m.includes('records no base fingerprint')) fingerprinted = false;
      notes.push(m);
    },
  });
  try {
    const check = fingerprinted ? 'base fingerprint matches' : 'no fingerprint recorded: tensor names and shapes checked against the base only';
    // re-recorded with the base's fingerprint, so that later loads check it
    const withFp = adapter.fingerprint !== null ? adapter : adapterWithBase(adapter, o.base);
    writeFolderAtomic(dest, o.force === true, (tmp) => {
      savePeftAdapter(withFp, tmp, { baseModelNameOrPath: resolve(o.basePath) });
      saveGgufLora(withFp, join(tmp, 'adapter.gguf'), { name: basename(dest) });
    });
    if (withFp !== adapter) withFp.dispose();
    return { kind: 'adapter', path: dest, check, notes };
  } finally {
    adapter.dispose();
  }
}

function adapterWithBase(a: LoraAdapter, base: LlamaModel): LoraAdapter {
  return new LoraAdapter(a.config, a.base, baseFingerprint(base), a.moduleData(), { name: a.name });
}

function importModel(o: ImportOptions, dest: string): ImportResult {
  const { model, tokenizer } = loadModel(o.source);
  try {
    const a = model.config, b = o.base.config;
    const diffs: string[] = [];
    if (a.arch !== b.arch) diffs.push(`architecture: returned ${a.arch}, base ${b.arch}`);
    for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim'] as const) {
      if (a[k] !== b[k]) diffs.push(`${k}: returned ${a[k]}, base ${b[k]}`);
    }
    if (diffs.length > 0) throw new BaseMismatchError(o.source, diffs);
    const same = (() => {
      try {
        return checkBase(model, baseFingerprint(o.base), o.source) === null ? 'the same weights as the base' : 'the base re-encoded';
      } catch {
        return 'fine-tuned weights of the base\'s architecture and shapes';
      }
    })();
    writeFolderAtomic(dest, o.force === true, (tmp) => saveHfFolder(model, tokenizer, tmp, { dtype: keptDtype(model) }));
    return { kind: 'model', path: dest, check: `architecture and shapes match the base (${same})`, notes: [] };
  } finally {
    model.dispose();
  }
}

/** The safetensors dtype that keeps a returned model's precision (bf16 stays bf16; anything else F32). */
function keptDtype(m: LlamaModel): HfDType {
  const kinds = new Set(m.namedTensors().filter(([, t]) => t.shape.length === 2).map(([, t]) => t.dtype));
  return kinds.size === 1 && kinds.has('bf16') ? 'BF16' : kinds.size === 1 && kinds.has('f16') ? 'F16' : 'F32';
}
