// An adapter library: a folder of adapters of one base, each a PEFT folder (a subfolder with adapter_config.json)
// or a GGUF LoRA (DIR/*.gguf), each with its signature beside it (./signature.ts) when a prompt router is to pick
// among them. Loading refuses a library whose adapters (or signatures) record different bases, naming the adapter
// and what differs, and checks the base against the model it is loaded onto.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LlamaModel } from '../models/llama.js';
import type { LoraAdapter } from './adapter.js';
import { checkBase, type BaseFingerprint } from './fingerprint.js';
import { PEFT_CONFIG_FILE, type AdapterLoadOptions } from './peft.js';
import { loadAdapter } from './recipe.js';
import { loadSignature, type AdapterSignature } from './signature.js';

export interface LibraryEntry {
  /** the folder or file name, without .gguf: what stderr and the server report */
  name: string;
  path: string;
}

export interface LoadedLibraryEntry extends LibraryEntry {
  adapter: LoraAdapter;
  /** null when signatures were not asked for (Arrow needs none) */
  signature: AdapterSignature | null;
}

/** The adapters of a library folder, sorted by name; refuses a missing folder or one holding none. */
export function listLibrary(dir: string): LibraryEntry[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`adapter library ${dir}: not a folder (a library is a folder of PEFT adapter folders and/or .gguf LoRA files)`);
  const out: LibraryEntry[] = [];
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (n.endsWith('.gguf') && statSync(p).isFile()) out.push({ name: n.slice(0, -'.gguf'.length), path: p });
    else if (statSync(p).isDirectory() && existsSync(join(p, PEFT_CONFIG_FILE))) out.push({ name: n, path: p });
  }
  if (out.length === 0) throw new Error(`adapter library ${dir}: no adapters in it (expected subfolders with ${PEFT_CONFIG_FILE}, or .gguf LoRA files)`);
  const seen = new Set<string>();
  for (const e of out) {
    if (seen.has(e.name)) throw new Error(`adapter library ${dir}: two adapters are named ${e.name} (a folder and a .gguf file); rename one`);
    seen.add(e.name);
  }
  return out;
}

/**
 * What differs between two recorded bases, [] when they are the same base. The same base means same architecture
 * and shapes, and the same weights hash, or (when stored in other dtypes or RoPE layouts) the same norms hash.
 */
export function fingerprintDifferences(a: BaseFingerprint, b: BaseFingerprint): string[] {
  const diffs: string[] = [];
  if (a.arch !== b.arch) diffs.push(`architecture ${a.arch} vs ${b.arch}`);
  for (const k of Object.keys(a.shapes) as (keyof BaseFingerprint['shapes'])[]) {
    if (a.shapes[k] !== b.shapes[k]) diffs.push(`${k} ${a.shapes[k]} vs ${String(b.shapes[k])}`);
  }
  if (diffs.length > 0) return diffs;
  if (a.weights.hash === b.weights.hash && a.weights.coverage === b.weights.coverage) return [];
  const reencoded = JSON.stringify(Object.entries(a.dtypes).sort()) !== JSON.stringify(Object.entries(b.dtypes).sort()) || a.ropeMode !== b.ropeMode || a.weights.coverage !== b.weights.coverage;
  if (reencoded && a.norms.hash === b.norms.hash) return [];
  return [`base weights sha256 ${a.weights.hash.slice(0, 12)}… vs ${b.weights.hash.slice(0, 12)}…`];
}

function sameBaseOrThrow(dir: string, what: string, items: readonly { name: string; fp: BaseFingerprint | null }[]): void {
  const ref = items.find((x) => x.fp !== null);
  if (ref === undefined) return;
  for (const x of items) {
    if (x.fp === null || x === ref) continue;
    const d = fingerprintDifferences(ref.fp!, x.fp);
    if (d.length > 0) {
      throw new Error(`adapter library ${dir}: ${x.name} and ${ref.name} ${what} different base models (${d.join('; ')}); a library holds adapters of one base: move ${x.name} out of it`);
    }
  }
}

/**
 * Loads every adapter of a library onto a model (not attached), with its signature when `signatures` is true (then
 * an unsigned adapter is an error that says how to sign it). On any error everything loaded so far is freed.
 */
export function loadLibrary(dir: string, model: LlamaModel, opts: AdapterLoadOptions & { signatures: boolean }): LoadedLibraryEntry[] {
  const entries = listLibrary(dir);
  const sigs = entries.map((e) => (opts.signatures ? loadSignature(e.path) : null));
  if (opts.signatures) sameBaseOrThrow(dir, 'were signed on', entries.map((e, i) => ({ name: e.name, fp: sigs[i]!.base })));
  const loaded: LoadedLibraryEntry[] = [];
  try {
    for (const [i, e] of entries.entries()) {
      const adapter = loadAdapter(e.path, model, { ...opts, ignoreFingerprint: true, name: e.name });
      loaded.push({ ...e, adapter, signature: sigs[i] });
    }
    sameBaseOrThrow(dir, 'were trained on', loaded.map((e) => ({ name: e.name, fp: e.adapter.fingerprint })));
    for (const e of loaded) {
      const fp = e.adapter.fingerprint;
      if (e.signature !== null && fp !== null) {
        const d = fingerprintDifferences(fp, e.signature.base);
        if (d.length > 0) throw new Error(`adapter library ${dir}: ${e.name}'s signature was made on another base than the adapter's (${d.join('; ')}); re-sign it with \`nomoat adapter sign ${e.path} --prompts FILE -m BASE\``);
      }
    }
    // the library is one base: checking one recorded fingerprint (or a signature's) against the model checks all
    const fp = loaded.find((e) => e.adapter.fingerprint !== null)?.adapter.fingerprint ?? loaded.find((e) => e.signature !== null)?.signature?.base ?? null;
    if (opts.ignoreFingerprint !== true && fp !== null) {
      const note = checkBase(model, fp, `adapter library ${dir}`);
      if (note !== null) opts.onWarning?.(note);
    }
    return loaded;
  } catch (e) {
    for (const l of loaded) l.adapter.dispose();
    throw e;
  }
}

/** A short label for a library path (its folder name). */
export function libraryLabel(dir: string): string {
  return basename(dir.replace(/\/+$/, ''));
}
