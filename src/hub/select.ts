// Which files of a Hub repository make the model a spec names: the Hugging Face folder's few files, or one GGUF chosen
// by file name or quant tag. Pure functions of the repository's file list, used alike on the Hub's listing and on a
// cached snapshot, so online and offline pick the same file.

import type { HubSpec } from './spec.js';
import { formatHubSpec } from './spec.js';

/** What a spec resolves to inside the repository. */
export type HubTarget = { kind: 'folder'; files: string[] } | { kind: 'gguf'; file: string };

/** llama.cpp's -hf default when a GGUF repository is named without a tag. */
export const DEFAULT_QUANT = 'Q4_K_M';

/** The files a Hugging Face folder needs to load here (top level only): weights, config, tokenizer, chat template. */
export function folderFiles(files: readonly string[]): string[] {
  const wanted = (f: string): boolean =>
    !f.includes('/') && (
      f === 'config.json' || f === 'generation_config.json' || f.endsWith('.safetensors') || f === 'model.safetensors.index.json' ||
      /^tokenizer.*\.json$/.test(f) || f === 'special_tokens_map.json' || f === 'chat_template.jinja' || f === 'chat_template.json');
  return files.filter(wanted).sort();
}

function isFolderModel(files: readonly string[]): boolean {
  return files.includes('config.json') && files.some((f) => !f.includes('/') && f.endsWith('.safetensors'));
}

/** GGUF model files: not the vision projectors (mmproj), which llama.cpp's -hf also sets apart. */
export function ggufFiles(files: readonly string[]): string[] {
  return files.filter((f) => f.toLowerCase().endsWith('.gguf') && !/(^|\/)mmproj/i.test(f)).sort();
}

/**
 * The GGUF files whose name holds the quant tag, case-insensitively (as the Hub's llama.cpp/Ollama tag lookup does).
 * Where the tag also matches as a whole word (`-Q4_K_M.gguf`, not `-Q4_K_M_L.gguf` for `Q4_K_M`) only those count,
 * so `Q4_K` does not pick `Q4_K_M` and `Q4_K_S` at random.
 */
export function matchQuant(files: readonly string[], tag: string): string[] {
  const t = tag.toLowerCase();
  const base = (f: string): string => f.slice(f.lastIndexOf('/') + 1).toLowerCase();
  const hits = ggufFiles(files).filter((f) => base(f).includes(t));
  const word = new RegExp(`(^|[-._])${t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([-.]|$)`);
  const whole = hits.filter((f) => word.test(base(f)));
  return whole.length > 0 ? whole : hits;
}

const listing = (fs: readonly string[]): string => fs.map((f) => `\n  ${f}`).join('');

/** What the spec names among `files`; `where` says in messages whether that list is the Hub's or the cache's. */
export function chooseTarget(files: readonly string[], spec: HubSpec, where: string): HubTarget {
  const name = formatHubSpec(spec);
  const ggufs = ggufFiles(files);
  const pick = (tag: string): HubTarget => {
    const hits = matchQuant(files, tag);
    if (hits.length === 1) return { kind: 'gguf', file: hits[0] };
    if (hits.length === 0) throw new Error(`${name}: no GGUF file matching "${tag}" in ${where}${ggufs.length > 0 ? `; its GGUF files:${listing(ggufs)}` : ' (it has no GGUF files)'}`);
    if (hits.some((h) => /-\d{5}-of-\d{5}\.gguf$/i.test(h))) throw new Error(`${name}: "${tag}" is a split GGUF (${hits.length} parts), which nomoat does not load; merge the parts with llama.cpp's \`llama-gguf-split --merge\`, or pick another quant:${listing(ggufs)}`);
    throw new Error(`${name}: "${tag}" matches ${hits.length} GGUF files in ${where}; name one with hf://${spec.repo}:FILE.gguf:${listing(hits)}`);
  };
  if (spec.tag !== undefined) {
    if (!spec.tag.toLowerCase().endsWith('.gguf')) return pick(spec.tag);
    if (files.includes(spec.tag)) return { kind: 'gguf', file: spec.tag };
    throw new Error(`${name}: no file "${spec.tag}" in ${where}${ggufs.length > 0 ? `; its GGUF files:${listing(ggufs)}` : ''}`);
  }
  if (isFolderModel(files)) return { kind: 'folder', files: folderFiles(files) };
  if (ggufs.length === 1) return { kind: 'gguf', file: ggufs[0] };
  if (ggufs.length > 1) {
    if (matchQuant(files, DEFAULT_QUANT).length === 1) return pick(DEFAULT_QUANT);
    throw new Error(`${name}: ${where} holds ${ggufs.length} GGUF files and no single ${DEFAULT_QUANT}; name a quant or file, e.g. hf://${spec.repo}:${ggufs[0].slice(ggufs[0].lastIndexOf('/') + 1)}:${listing(ggufs)}`);
  }
  throw new Error(`${name}: ${where} has neither config.json + *.safetensors (a Hugging Face folder) nor a .gguf file`);
}
