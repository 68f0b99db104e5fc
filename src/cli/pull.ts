// `nomoat pull hf://OWNER/REPO[:QUANT|:FILE.gguf]`: fetch a model from the Hugging Face Hub into the huggingface_hub
// cache, as `ollama pull` and llama.cpp's -hf do; `-m hf://…` then loads it from there (offline too).

import type { FlagSpecs } from './args.js';
import { UsageError } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';

const FLAGS = {
  quiet: { kind: 'boolean', short: 'q', help: 'no progress bars' },
  json: { kind: 'boolean', help: 'print {"path","commit","files","downloaded_bytes"} on stdout instead of the path' },
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'pull',
  summary: 'download a model from the Hugging Face Hub (hf://OWNER/REPO[:QUANT]) into the Hugging Face cache',
  usage: 'hf://OWNER/REPO[@REV][:QUANT|:FILE.gguf] [-q] [--json]',
  description:
    'Fetches only what a model needs: for hf://OWNER/REPO the Hugging Face folder (config.json, *.safetensors and its\n' +
    'index, tokenizer*.json, generation_config.json, chat template files); for :QUANT the one GGUF whose name holds it\n' +
    '(case-insensitive, as llama.cpp\'s -hf); for :FILE.gguf that file. A repository with only GGUFs and no tag gets\n' +
    'Q4_K_M. Files go to $HF_HUB_CACHE (or $HF_HOME/hub, default ~/.cache/huggingface/hub) in huggingface_hub\'s layout,\n' +
    'shared with Transformers. Interrupted downloads resume. Prints the local path on stdout.\n' +
    'Environment: HF_TOKEN (private or gated repositories), HF_ENDPOINT (a mirror), HF_HUB_OFFLINE=1 (no network).\n' +
    'Every -m MODEL also takes hf://… and pulls it on first use; after that the cached copy is used without asking the\n' +
    'Hub (run `nomoat pull` again to update to the newest commit).',
  flags: FLAGS,
  positionals: [{ name: 'model', help: 'hf://OWNER/REPO, hf://OWNER/REPO:Q4_K_M or hf://OWNER/REPO:FILE.gguf (@REV after REPO for a branch, tag or commit)' }],
  examples: [
    'nomoat pull hf://HuggingFaceTB/SmolLM2-135M-Instruct',
    'nomoat pull hf://bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0',
    'nomoat generate -m hf://HuggingFaceTB/SmolLM2-135M-Instruct -p "Hello"',
    'HF_TOKEN=hf_... nomoat pull hf://meta-llama/Llama-3.2-1B-Instruct',
  ],
  async run({ flags: f, positionals: [spec] }) {
    const hub = await import('../hub/index.js');
    if (!hub.isHubSpec(spec)) throw new UsageError(`expected hf://OWNER/REPO[:QUANT], got ${JSON.stringify(spec)}`);
    let r;
    try {
      r = await hub.pullModel(spec, { progress: !f.quiet, log: f.quiet ? () => {} : undefined });
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
    process.stdout.write(f.json ? `${JSON.stringify({ path: r.path, commit: r.commit, files: r.files, downloaded_bytes: r.downloaded })}\n` : `${r.path}\n`);
  },
});
