// `nomoat tokenizer train`: a byte-level BPE tokenizer learned from text files, written as tokenizer.json plus a
// tokenizer_config.json beside it (special tokens and a ChatML chat template). Also the corpus reading and
// tokenizer writing that `nomoat pretrain` shares.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HfTokenizer, trainBpe, type TokenizerConfig, type TokenizerJson } from '../tokenizer/index.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';

/** How a corpus file is cut into documents: at blank lines (paragraphs/stories), at every line, or whole files. */
export type DocSplit = 'blank-line' | 'line' | 'file';
export const DOC_SPLITS: readonly DocSplit[] = ['blank-line', 'line', 'file'];

export const DEFAULT_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** ChatML, as the bundled default model uses (no BOS; every turn ends with <|im_end|>). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEXT_EXT = /\.(txt|md|text)$/i;

/** The files named by CLI arguments: files as given, folders as their .txt/.md files (recursively, sorted). */
export function corpusFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    for (const name of readdirSync(p).sort()) {
      const q = join(p, name);
      if (statSync(q).isDirectory()) walk(q);
      else if (TEXT_EXT.test(name)) out.push(q);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new CliError(`corpus not found: ${p}`);
    if (statSync(p).isDirectory()) {
      const before = out.length;
      walk(p);
      if (out.length === before) throw new CliError(`${p}: the folder holds no .txt or .md files`);
    } else out.push(p);
  }
  return out;
}

/** Documents of the corpus files, split as asked; empty documents dropped. */
export function readCorpus(files: readonly string[], split: DocSplit): string[] {
  const docs: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const parts = split === 'file' ? [text] : text.split(split === 'line' ? /\r?\n/ : /\r?\n\s*\r?\n/);
    for (const p of parts) {
      const d = p.trim();
      if (d !== '') docs.push(d);
    }
  }
  if (docs.length === 0) throw new CliError(`the corpus (${files.join(', ')}) holds no text`);
  return docs;
}

export function parseDocSplit(s: string | undefined): DocSplit {
  const v = s ?? 'blank-line';
  if (!(DOC_SPLITS as readonly string[]).includes(v)) throw new UsageError(`--split must be ${DOC_SPLITS.join('|')}, got ${v}`);
  return v as DocSplit;
}

/** tokenizer_config.json for a trained tokenizer: ChatML when its specials allow it, EOS <|im_end|> (else the first special). */
export function tokenizerConfigFor(specials: readonly string[], maxLength: number): TokenizerConfig {
  const chatml = specials.includes('<|im_start|>') && specials.includes('<|im_end|>');
  const eos = chatml ? '<|im_end|>' : (specials[0] ?? null);
  const pad = specials.includes('<|endoftext|>') ? '<|endoftext|>' : eos;
  return { bos_token: null, eos_token: eos, pad_token: pad, add_bos_token: false, model_max_length: maxLength, ...(chatml ? { chat_template: CHATML_TEMPLATE } : {}) };
}

export interface TrainedTokenizer {
  json: TokenizerJson;
  config: TokenizerConfig;
  tokenizer: HfTokenizer;
}

export function trainTokenizer(docs: readonly string[], vocabSize: number, specials: readonly string[], minFrequency: number, maxLength = 2048): TrainedTokenizer {
  let json: TokenizerJson;
  try {
    json = trainBpe(docs, { vocabSize, specialTokens: [...specials], minFrequency });
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  const config = tokenizerConfigFor(specials, maxLength);
  return { json, config, tokenizer: new HfTokenizer(json, config) };
}

/** Writes tokenizer.json and tokenizer_config.json into dir. */
export function writeTokenizerFiles(dir: string, t: { json: TokenizerJson; config: TokenizerConfig }, jsonName = 'tokenizer.json'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, jsonName), JSON.stringify(t.json) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(t.config, null, 2) + '\n');
}

const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'FILE', help: 'where to write tokenizer.json (tokenizer_config.json goes beside it)', default: 'tokenizer.json' },
  input: { kind: 'list', metavar: 'PATH', help: 'another corpus file or folder' },
  'vocab-size': { kind: 'int', metavar: 'N', help: 'final vocabulary size (special tokens and the 256 bytes included)', default: 4096 },
  'special-tokens': { kind: 'string', metavar: 'A,B,…', help: 'special tokens, first ids first (comma-separated)', default: DEFAULT_SPECIALS.join(',') },
  'min-frequency': { kind: 'int', metavar: 'N', help: 'stop merging when the best pair occurs fewer times', default: 2 },
  split: { kind: 'string', metavar: 'HOW', help: `documents: ${DOC_SPLITS.join('|')}`, default: 'blank-line' },
} as const satisfies FlagSpecs;

export function parseSpecials(s: string | undefined): string[] {
  const list = (s ?? DEFAULT_SPECIALS.join(',')).split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (new Set(list).size !== list.length) throw new UsageError(`--special-tokens lists a token twice: ${s ?? ''}`);
  return list;
}

export const command = defineCommand({
  name: 'tokenizer train',
  summary: 'train a byte-level BPE tokenizer on text files',
  usage: 'CORPUS [-o tokenizer.json] [options]',
  description:
    'Learns GPT-2 style byte-level BPE merges (any UTF-8 text round-trips) and writes a Hugging Face tokenizer.json,\n' +
    'plus tokenizer_config.json beside it (BOS none, EOS <|im_end|>, a ChatML chat template when <|im_start|> and\n' +
    '<|im_end|> are special tokens). CORPUS is a text file or a folder of .txt/.md files; --input adds more.',
  flags: FLAGS,
  positionals: [{ name: 'corpus', help: 'a text file, or a folder of .txt/.md files' }],
  examples: [
    'nomoat tokenizer train stories.txt --vocab-size 4096 -o my-tok/tokenizer.json',
    'nomoat tokenizer train ./corpus --input extra.txt --vocab-size 8192 --split line',
    'nomoat tokenizer train book.txt --special-tokens "<s>,</s>" --min-frequency 5 -o tok.json',
  ],
  run({ flags: f, positionals }) {
    const out = f.output ?? 'tokenizer.json';
    const vocab = f['vocab-size'] ?? 4096;
    const specials = parseSpecials(f['special-tokens']);
    const files = corpusFiles([positionals[0], ...f.input]);
    const docs = readCorpus(files, parseDocSplit(f.split));
    const t0 = performance.now();
    const t = trainTokenizer(docs, vocab, specials, f['min-frequency'] ?? 2);
    const s = (performance.now() - t0) / 1000;
    const jsonName = out.split(/[\\/]/).pop() ?? 'tokenizer.json';
    writeTokenizerFiles(dirname(out), t, jsonName);
    // compression on (a sample of) the corpus: what a token is worth
    const sample = docs.slice(0, 2000).join('\n');
    const tokens = t.tokenizer.encode(sample, { addBos: false, addEos: false }).length;
    process.stderr.write(
      `nomoat: ${docs.length} documents from ${files.length} file(s); vocabulary ${t.tokenizer.vocabSize} (${specials.length} special, ` +
        `${t.tokenizer.vocabSize - specials.length - 256} merges) in ${s.toFixed(1)} s; ${(sample.length / Math.max(1, tokens)).toFixed(2)} characters per token\n`,
    );
    process.stdout.write(`wrote ${out} and ${join(dirname(out), 'tokenizer_config.json')}\n`);
  },
});
