// `nomoat chat`: a conversation in the terminal. Each line read from stdin is a user turn; the reply streams to
// stdout. Works the same when stdin is a pipe (one turn per line, no prompt shown), which is how tests drive it.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { GenerationSession, generateTokens } from '../models/generate.js';
import { chatPromptIds, type ChatMessage } from '../tokenizer/index.js';
import type { FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import {
  CliError, LORA_FLAGS, SAMPLING_FLAGS, THREAD_FLAG, applyLoraFlags, loadForCli, makeTimings, requireTokenizer, samplingFrom, setThreads,
  timedModel, timingLine,
} from './common.js';
import { RECIPE_FLAG, applyRecipeFlag, readRecipeFlag } from './recipe.js';
import { ROUTE_FLAGS, routeFrom, setupRouting } from './route.js';

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'MODEL', help: 'GGUF file, Hugging Face folder or llama2.c .bin' },
  'chat-template': { kind: 'string', metavar: 'FILE', help: 'a Jinja chat template file (default: the tokenizer\'s)' },
  'system-prompt': { kind: 'string', metavar: 'TEXT', help: 'a system message opening the conversation' },
  'n-predict': { kind: 'int', short: 'n', metavar: 'N', help: 'most tokens per reply', default: 256 },
  'ctx-size': { kind: 'int', short: 'c', metavar: 'N', help: 'context size (conversation + reply)', default: 'the model\'s' },
  ...THREAD_FLAG,
  ...SAMPLING_FLAGS,
  tokenizer: { kind: 'string', metavar: 'FILE', help: 'tokenizer.bin for a llama2.c checkpoint (default: beside it)' },
  ...LORA_FLAGS,
  ...RECIPE_FLAG,
  ...ROUTE_FLAGS,
  perf: { kind: 'boolean', help: 'print a timing line on stderr after each reply' },
} as const satisfies FlagSpecs;

function readTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the chat template ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export const command = defineCommand({
  name: 'chat',
  summary: 'chat with a model in the terminal',
  usage: '-m MODEL [options]',
  description:
    'Type a message and press Enter; the reply streams back. Commands: /reset forgets the conversation, /exit (or\n' +
    'end of input) quits. With a pipe on stdin every line is one user turn and only the replies are printed.',
  flags: FLAGS,
  examples: [
    'nomoat chat -m qwen2.5-0.5b-instruct-q8_0.gguf',
    'nomoat chat -m ./my-model --chat-template chatml.jinja --system-prompt "You are terse." --temp 0.7',
    'printf "hello\\nhow are you?\\n" | nomoat chat -m model.gguf --temp 0',
    'nomoat chat --recipe stack.json',
    'nomoat chat -m model.gguf --library ./adapters --route prompt',
  ],
  async run({ flags: f }) {
    const sampling = samplingFrom(f);
    setThreads(f.threads);
    const recipe = await readRecipeFlag(f.recipe);
    const loaded = loadForCli(f.model ?? recipe?.base, f.tokenizer);
    const tokenizer = requireTokenizer(loaded);
    const template = f['chat-template'] !== undefined ? readTemplate(f['chat-template']) : tokenizer.chatTemplate;
    if (template === null) {
      throw new CliError(`${loaded.path}: the tokenizer has no chat template; pass --chat-template FILE (a Jinja template, e.g. from a model's tokenizer_config.json)`);
    }
    await applyLoraFlags(loaded.model, f);
    const route = await routeFrom(f, recipe); // --library / a recipe's "route": adapters chosen per prompt or token
    if (route === null) await applyRecipeFlag(loaded.model, recipe);
    const routing = route === null ? null : await setupRouting(loaded.model, tokenizer, route);
    const ctx = f['ctx-size'] ?? loaded.model.config.maxPositionEmbeddings;
    const maxReply = f['n-predict'] ?? 256;
    const opening: ChatMessage[] = f['system-prompt'] !== undefined ? [{ role: 'system', content: f['system-prompt'] }] : [];
    let messages: ChatMessage[] = [...opening];
    // earlier turns stay in the KV cache: each turn computes only its new tokens
    const session = new GenerationSession(loaded.model, ctx);

    const interactive = process.stdin.isTTY;
    const rl = createInterface({ input: process.stdin, terminal: interactive });
    if (interactive) {
      process.stderr.write('nomoat chat: type a message; /reset forgets the conversation, /exit quits.\n');
      rl.setPrompt('> ');
      rl.prompt();
    }
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        messages = [...opening];
        session.reset();
        process.stderr.write('(conversation cleared)\n');
      } else if (line !== '') {
        if (routing?.select(line).changed === true) session.reset(); // cached turns were computed with other adapters
        const turn = [...messages, { role: 'user', content: line }];
        const ids = chatPromptIds(tokenizer, template, turn);
        const room = Math.min(maxReply, ctx - ids.length);
        if (room < 1) {
          process.stderr.write(`nomoat chat: the conversation (${ids.length} tokens) fills the context of ${ctx}; /reset to start over or raise -c\n`);
        } else {
          const { model, timings } = timedModel(loaded.model);
          const t0 = performance.now();
          const [g] = generateTokens(model, tokenizer, [ids], { maxTokens: room, sampling, session, onText: (t) => void process.stdout.write(t) });
          process.stdout.write('\n');
          messages = [...turn, { role: 'assistant', content: g.text }];
          if (f.perf) {
            const tm = timings();
            const total = performance.now() - t0;
            process.stderr.write(timingLine(makeTimings(loaded.loadMs, ids.length - session.reused, tm.promptMs, g.tokens.length, tm.steps - 1, Math.max(0, total - tm.promptMs))) + '\n');
          }
        }
      }
      if (interactive) rl.prompt();
    }
    rl.close();
    session.dispose();
    routing?.dispose();
  },
});
