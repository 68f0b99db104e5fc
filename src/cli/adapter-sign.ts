// `nomoat adapter sign`: the signature of an adapter's prompts (src/lora/signature.ts), written beside it, so a
// prompt router can choose it from a library: nomoat_signature.json in a PEFT folder, FILE.signature.json beside a
// GGUF LoRA. The adapter itself is not changed (PEFT and llama.cpp load it as before); it is loaded only to check
// that -m is its base.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, THREAD_FLAG, loadForCli, requireTokenizer, setThreads } from './common.js';

const DEFAULT_MODEL = fileURLToPath(new URL('../../../assets/default-model', import.meta.url));

const FLAGS = {
  prompts: { kind: 'string', metavar: 'FILE', help: 'prompts like the ones the adapter was trained on: JSONL (its training data will do) or one prompt a line' },
  model: { kind: 'string', short: 'm', metavar: 'BASE', help: 'the adapter\'s base model (default: the bundled assets/default-model)' },
  layer: { kind: 'int', metavar: 'L', help: 'blocks of the base run before pooling (default: half of them)' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'adapter sign',
  summary: 'store a signature of an adapter\'s prompts beside it, for routing (--library DIR --route prompt)',
  usage: 'ADAPTER --prompts FILE [-m BASE] [--layer L]',
  description:
    'The signature is the mean and spread of the base model\'s hidden state (after L blocks, averaged over each\n' +
    'prompt\'s tokens) over up to 512 of the prompts. `nomoat finetune` signs what it trains; this command signs\n' +
    'an adapter from elsewhere (a PEFT folder or a GGUF LoRA). Same base, same prompts: same signature.',
  flags: FLAGS,
  positionals: [{ name: 'adapter', help: 'a PEFT adapter folder or a .gguf LoRA file' }],
  examples: [
    'nomoat adapter sign ./math-adapter --prompts math-train.jsonl -m model.gguf',
    'nomoat adapter sign lib/style.gguf --prompts style-prompts.txt -m ./base-hf',
  ],
  async run({ flags: f, positionals: [adapterPath] }) {
    if (f.prompts === undefined) throw new UsageError('missing --prompts FILE (prompts like the ones the adapter was trained on)');
    if (!existsSync(adapterPath)) throw new CliError(`LoRA adapter not found: ${adapterPath} (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
    const lora = await import('../lora/index.js');
    const { readPromptFile } = await import('../lora/prompts.js');
    const sig = await import('../lora/signature.js');
    const wrap = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new CliError(e instanceof Error ? e.message : String(e));
      }
    };
    const prompts = wrap(() => readPromptFile(f.prompts!));
    const out = wrap(() => sig.signaturePath(adapterPath));
    setThreads(f.threads);
    const loaded = loadForCli(f.model ?? DEFAULT_MODEL);
    const tokenizer = requireTokenizer(loaded);
    const adapter = wrap(() => lora.loadAdapter(adapterPath, loaded.model, { onWarning: (m) => void process.stderr.write(`warning: ${m}\n`) }));
    adapter.dispose();
    const t0 = performance.now();
    const s = wrap(() => sig.signPrompts(loaded.model, tokenizer, prompts, { layer: f.layer, source: f.prompts }));
    sig.saveSignature(s, out);
    process.stderr.write(`nomoat adapter sign: ${s.prompts} of ${prompts.length} prompts, layer ${s.layer} of ${loaded.model.config.numLayers}, in ${Math.round(performance.now() - t0)} ms; ` +
      `own prompts' distance d² median ${s.ownDistance.q50.toFixed(3)}, 90th percentile ${s.ownDistance.q90.toFixed(3)}\n`);
    process.stdout.write(`wrote ${out}\n`);
    loaded.model.dispose();
  },
});
