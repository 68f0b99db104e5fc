// `nomoat pretrain`: a small Llama trained from scratch on text files, with a tokenizer trained on the same corpus
// (--vocab-size) or given (--tokenizer tokenizer.json); the result is a Hugging Face folder that every other
// command loads (config.json, model.safetensors, tokenizer.json, tokenizer_config.json).

import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { paramCount, type LlamaConfig } from '../models/config.js';
import { HfTokenizer, type TokenizerConfig, type TokenizerJson } from '../tokenizer/index.js';
import { parseScheduleKind, pretrain } from '../train/index.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, setThreads, THREAD_FLAG } from './common.js';
import { parseProgress } from './finetune.js';
import { corpusFiles, parseDocSplit, parseSpecials, readCorpus, trainTokenizer, writeTokenizerFiles, DOC_SPLITS } from './tokenizer-train.js';

const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'DIR', help: 'output Hugging Face folder (also metrics.jsonl, loss.svg, checkpoints/)' },
  input: { kind: 'list', metavar: 'PATH', help: 'another corpus file or folder' },
  split: { kind: 'string', metavar: 'HOW', help: `documents: ${DOC_SPLITS.join('|')}`, default: 'blank-line' },
  tokenizer: { kind: 'string', metavar: 'FILE', help: 'use this tokenizer.json (tokenizer_config.json beside it is used too)' },
  'vocab-size': { kind: 'int', metavar: 'N', help: 'train a byte-level BPE tokenizer of N tokens on the corpus', default: 4096 },
  'special-tokens': { kind: 'string', metavar: 'A,B,…', help: 'special tokens of a trained tokenizer', default: '<|endoftext|>,<|im_start|>,<|im_end|>' },
  hidden: { kind: 'int', metavar: 'C', help: 'hidden size', default: 256 },
  layers: { kind: 'int', metavar: 'L', help: 'transformer blocks', default: 6 },
  heads: { kind: 'int', metavar: 'H', help: 'attention heads', default: 8 },
  'kv-heads': { kind: 'int', metavar: 'G', help: 'key/value heads (grouped-query attention; divides H)', default: 4 },
  intermediate: { kind: 'int', metavar: 'I', help: 'MLP width', default: '3 × hidden' },
  'max-positions': { kind: 'int', metavar: 'N', help: 'context length the model is built for', default: 512 },
  'rope-theta': { kind: 'number', metavar: 'X', help: 'RoPE base', default: 10000 },
  'untied-embeddings': { kind: 'boolean', help: 'a separate output head (default: tied to the token embedding)' },
  steps: { kind: 'int', metavar: 'N', help: 'optimizer updates', default: 1000 },
  batch: { kind: 'int', short: 'b', metavar: 'N', help: 'rows per micro-batch', default: 8 },
  'seq-len': { kind: 'int', short: 'c', metavar: 'N', help: 'tokens per row', default: 256 },
  'grad-accum': { kind: 'int', metavar: 'N', help: 'micro-batches per update', default: 1 },
  lr: { kind: 'number', metavar: 'LR', help: 'peak learning rate', default: 3e-3 },
  warmup: { kind: 'int', metavar: 'N', help: 'warmup updates', default: 'steps / 10, at most 100' },
  schedule: { kind: 'string', metavar: 'S', help: 'constant|constant_with_warmup|linear|cosine', default: 'cosine' },
  'weight-decay': { kind: 'number', metavar: 'W', help: 'AdamW decoupled weight decay', default: 0.1 },
  'eval-split': { kind: 'number', metavar: 'F', help: 'fraction of rows held out for evaluation', default: 0.05 },
  'eval-every': { kind: 'int', metavar: 'N', help: 'evaluate every N updates (and at the end)', default: 0 },
  'save-every': { kind: 'int', metavar: 'N', help: 'checkpoint every N updates (also at the end and on Ctrl-C)', default: 0 },
  resume: { kind: 'boolean', help: 'continue from the newest checkpoint in the output folder' },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the initialization and data order', default: 0 },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none', default: 'auto' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new CliError(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The tokenizer: given (copied into out), reused from out on --resume, or trained on the docs and written to out. */
function tokenizerFor(f: { tokenizer: string | undefined; 'vocab-size': number | undefined; 'special-tokens': string | undefined; resume: boolean }, docs: readonly string[], out: string, maxLen: number): HfTokenizer {
  if (f.tokenizer !== undefined) {
    if (!existsSync(f.tokenizer)) throw new CliError(`tokenizer not found: ${f.tokenizer}`);
    const cfgPath = join(dirname(f.tokenizer), 'tokenizer_config.json');
    const config: TokenizerConfig = existsSync(cfgPath) ? readJson<TokenizerConfig>(cfgPath) : {};
    const tok = new HfTokenizer(readJson<TokenizerJson>(f.tokenizer), config);
    mkdirSync(out, { recursive: true });
    copyFileSync(f.tokenizer, join(out, 'tokenizer.json'));
    if (existsSync(cfgPath)) copyFileSync(cfgPath, join(out, 'tokenizer_config.json'));
    return tok;
  }
  if (f.resume && existsSync(join(out, 'tokenizer.json'))) return HfTokenizer.fromDirectory(out);
  const t0 = performance.now();
  const t = trainTokenizer(docs, f['vocab-size'] ?? 4096, parseSpecials(f['special-tokens']), 2, maxLen);
  writeTokenizerFiles(out, t); // written before training, so --resume finds the same tokenizer
  process.stderr.write(`nomoat: trained a ${t.tokenizer.vocabSize}-token BPE tokenizer in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return t.tokenizer;
}

export const command = defineCommand({
  name: 'pretrain',
  summary: 'pretrain a small Llama from scratch on text files',
  usage: 'CORPUS -o DIR [options]',
  description:
    'Cuts the corpus into documents, tokenizes them (a BPE tokenizer is trained on the corpus unless --tokenizer is\n' +
    'given), packs them into rows separated by <|endoftext|> (else the tokenizer\'s EOS), and trains every weight of\n' +
    'a freshly initialized Llama. DIR becomes a Hugging Face folder (F32 weights; `nomoat convert` makes GGUF/F16).\n' +
    'Ctrl-C saves a checkpoint; the same command with --resume continues it.',
  flags: FLAGS,
  positionals: [{ name: 'corpus', help: 'a text file, or a folder of .txt/.md files' }],
  examples: [
    'nomoat pretrain tinystories.txt -o my-model --steps 2000',
    'nomoat pretrain ./books --input extra.txt --vocab-size 8192 --hidden 384 --layers 8 --heads 6 --kv-heads 2 -o m2',
    'nomoat pretrain corpus.txt --tokenizer tok/tokenizer.json -c 128 -b 16 --lr 1e-3 --eval-every 100 -o m3',
    'nomoat generate -m my-model -p "Once upon a time"',
  ],
  async run({ flags: f, positionals }) {
    const out = f.output;
    if (out === undefined) throw new UsageError('missing -o DIR (where the model is written)');
    const [C, L, H] = [f.hidden ?? 256, f.layers ?? 6, f.heads ?? 8];
    const G = f['kv-heads'] ?? Math.min(4, H);
    const maxPos = f['max-positions'] ?? 512;
    const seqLen = f['seq-len'] ?? Math.min(256, maxPos);
    const steps = f.steps ?? 1000;
    const schedule = (() => {
      try {
        return parseScheduleKind(f.schedule ?? 'cosine');
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
    })();
    for (const [name, v] of [['--hidden', C], ['--layers', L], ['--heads', H], ['--kv-heads', G], ['--steps', steps], ['-c', seqLen]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
    }
    if (C % H !== 0) throw new UsageError(`--hidden ${C} must be a multiple of --heads ${H}`);
    if (H % G !== 0) throw new UsageError(`--kv-heads ${G} must divide --heads ${H}`);
    if ((C / H) % 2 !== 0) throw new UsageError(`the head size (hidden / heads = ${C / H}) must be even for RoPE`);
    if (seqLen > maxPos) throw new UsageError(`-c ${seqLen} exceeds --max-positions ${maxPos}`);
    const progress = parseProgress(f.progress);

    const threads = setThreads(f.threads);
    const docs = readCorpus(corpusFiles([positionals[0], ...f.input]), parseDocSplit(f.split));
    const tokenizer = tokenizerFor(f, docs, out, maxPos);
    const sep = tokenizer.tokenToId('<|endoftext|>') ?? tokenizer.eosId;
    const eos = [tokenizer.eosId, sep].filter((x): x is number => x !== null);
    const config: LlamaConfig = {
      arch: 'llama', vocabSize: tokenizer.vocabSize, hiddenSize: C, intermediateSize: f.intermediate ?? 3 * C, numLayers: L, numHeads: H,
      numKvHeads: G, headDim: C / H, rmsNormEps: 1e-5, ropeTheta: f['rope-theta'] ?? 10000, ropeScaling: null, ropeMode: 'halves',
      maxPositionEmbeddings: maxPos, tieWordEmbeddings: !f['untied-embeddings'], attentionBias: false, bosTokenId: tokenizer.bosId,
      eosTokenId: [...new Set(eos)],
    };
    process.stderr.write(
      `nomoat: ${docs.length} documents; model ${(paramCount(config) / 1e6).toFixed(2)}M parameters (C ${C}, ${L} layers, ${H}/${G} heads, ` +
        `vocab ${config.vocabSize}); ${steps} steps of ${f.batch ?? 8}×${seqLen} tokens on ${threads} thread(s)\n`,
    );
    const r = await pretrain({
      config, texts: docs, tokenizer: { encode: (t, o) => tokenizer.encode(t, o), eosId: sep }, seqLen, batchSize: f.batch ?? 8,
      evalFraction: f['eval-split'] ?? 0.05, dataSeed: f.seed ?? 0, initSeed: f.seed ?? 0,
      train: {
        steps, lr: f.lr ?? 3e-3, schedule, warmupSteps: f.warmup ?? Math.min(100, Math.floor(steps / 10)), weightDecay: f['weight-decay'] ?? 0.1,
        beta2: 0.95, gradAccum: f['grad-accum'] ?? 1, evalEvery: f['eval-every'] ?? 0, saveEvery: f['save-every'] ?? 0, outDir: out,
        resume: f.resume, progress,
      },
    });
    r.model.dispose();
    const res = r.result;
    if (res.interrupted) {
      process.stderr.write(`nomoat: stopped at step ${res.step}/${steps}; checkpoint ${res.checkpoint ?? '(none)'}\n  continue with the same command and --resume\n`);
      return 130;
    }
    const ev = res.evalLoss !== null ? `, eval loss ${res.evalLoss.toFixed(4)}` : '';
    process.stderr.write(`nomoat: done: ${res.step} steps, loss ${res.loss.toFixed(4)}${ev} (${r.trainRows} training rows)\n`);
    process.stdout.write(`wrote ${out} (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)\ntry it: nomoat generate -m ${out} -p "Once upon a time"\n`);
  },
});
