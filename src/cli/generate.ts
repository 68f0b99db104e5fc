// `nomoat generate`: text from a prompt, streamed to stdout as it is decoded, or one JSON object with --json.

import { readFileSync } from 'node:fs';
import { generateTokens } from '../models/generate.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import {
  CliError, LORA_FLAGS, SAMPLING_FLAGS, THREAD_FLAG, applyLoraFlags, loadForCli, makeTimings, requireTokenizer, samplingFrom, setThreads,
  timedModel, timingLine,
} from './common.js';
import { RECIPE_FLAG, applyRecipeFlag, readRecipeFlag } from './recipe.js';
import { ROUTE_FLAGS, routeFrom, setupRouting } from './route.js';

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'GGUF file, Hugging Face folder or llama2.c .bin' },
  prompt: { kind: 'string', short: 'p', metavar: 'TEXT', help: 'the prompt (special tokens like <|im_start|> are parsed)' },
  file: { kind: 'string', short: 'f', metavar: 'FILE', help: 'read the prompt from FILE' },
  'n-predict': { kind: 'int', short: 'n', metavar: 'N', help: 'tokens to generate; -1 = until the context is full', default: 128 },
  'ctx-size': { kind: 'int', short: 'c', metavar: 'N', help: 'context size (prompt + generated tokens)', default: 'prompt + n' },
  ...THREAD_FLAG,
  ...SAMPLING_FLAGS,
  stop: { kind: 'list', metavar: 'TEXT', help: 'stop when TEXT appears (it is not printed)' },
  'ignore-eos': { kind: 'boolean', help: 'keep generating past end-of-sequence tokens' },
  tokenizer: { kind: 'string', metavar: 'FILE', help: 'tokenizer.bin for a llama2.c checkpoint (default: beside it)' },
  ...LORA_FLAGS,
  ...RECIPE_FLAG,
  ...ROUTE_FLAGS,
  json: { kind: 'boolean', help: 'print one JSON object {tokens, text, stop_reason, timings} instead of streaming' },
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'generate',
  summary: 'generate text from a prompt',
  usage: '-m MODEL -p PROMPT [options]',
  description:
    'Streams the continuation (not the prompt) to stdout; a timing line goes to stderr.\n' +
    'Sampling follows llama.cpp: repetition penalty, top-k, top-p, min-p, then temperature.',
  flags: FLAGS,
  examples: [
    'nomoat generate -m model.gguf -p "Once upon a time" -n 64',
    'nomoat generate -m ./my-hf-model --temp 0 -p "The capital of France is" --stop "." --json',
    'nomoat generate -m stories260K.bin --tokenizer tok512.bin -p "Lily" -t 4 --seed 7',
    'nomoat generate -m model.gguf --lora-scaled ./adapter 0.5 -p "Hello"',
    'nomoat generate -m model.gguf --lora ./math --lora-scaled ./style -0.5 -p "12+30="',
    'nomoat generate --recipe stack.json -p "Hello" --temp 0',
    'nomoat generate -m model.gguf --library ./adapters --route auto -p "what is 3 plus 4?" --temp 0',
  ],
  async run({ flags: f }) {
    if (f.prompt !== undefined && f.file !== undefined) throw new UsageError('give either -p or -f, not both');
    const prompt = f.file !== undefined ? readPrompt(f.file) : f.prompt;
    if (prompt === undefined) throw new UsageError('missing -p PROMPT (or -f FILE)');
    const sampling = samplingFrom(f);
    setThreads(f.threads);
    const recipe = await readRecipeFlag(f.recipe);
    const loaded = loadForCli(f.model ?? recipe?.base, f.tokenizer);
    const tokenizer = requireTokenizer(loaded);
    const cfg = loaded.model.config;
    await applyLoraFlags(loaded.model, f);
    const route = await routeFrom(f, recipe); // --library / a recipe's "route": adapters chosen per prompt or token
    if (route === null) await applyRecipeFlag(loaded.model, recipe);
    const routing = route === null ? null : await setupRouting(loaded.model, tokenizer, route);

    const ids = tokenizer.encode(prompt, { parseSpecial: true });
    if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens (and the tokenizer adds no BOS): give some text');
    const ctx = f['ctx-size'];
    const n = f['n-predict'] ?? 128;
    if (n === 0 || n < -1) throw new UsageError(`-n must be a positive number of tokens or -1, got ${n}`);
    const maxTokens = n === -1 ? (ctx ?? cfg.maxPositionEmbeddings) - ids.length : n;
    if (ctx !== undefined && ids.length + maxTokens > ctx) {
      throw new CliError(`the prompt (${ids.length} tokens) + -n ${maxTokens} do not fit the context of ${ctx} tokens; raise -c or lower -n`);
    }
    if (maxTokens < 1) throw new CliError(`the prompt (${ids.length} tokens) fills the context; raise -c`);

    routing?.select(prompt);
    const { model, timings } = timedModel(loaded.model);
    const t0 = performance.now();
    const [g] = generateTokens(model, tokenizer, [ids], {
      maxTokens,
      sampling,
      stopStrings: f.stop,
      ...(f['ignore-eos'] ? { stopTokens: [] } : {}),
      ...(f.json ? {} : { onText: (t: string) => void process.stdout.write(t) }),
    });
    const total = performance.now() - t0;
    const tm = timings();
    const t = makeTimings(loaded.loadMs, ids.length, tm.promptMs, g.tokens.length, tm.steps - 1, Math.max(0, total - tm.promptMs));
    if (f.json) {
      const out = { tokens: g.tokens, text: g.text, stop_reason: g.stopReason, prompt_tokens: ids, seed: sampling.seed, timings: t };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      process.stdout.write('\n');
    }
    process.stderr.write(timingLine(t) + '\n');
  },
});

function readPrompt(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the prompt file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
