// `nomoat import`: a PEFT adapter or Hugging Face model folder that came back from a GPU run, checked against its
// base and registered in a library folder (src/handoff/import.ts says what registering means).

import { BaseMismatchError } from '../lora/index.js';
import { importFolder, libraryDir } from '../handoff/index.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, setThreads, THREAD_FLAG } from './common.js';

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'BASE', help: 'the base it must belong to (GGUF, HF folder)' },
  into: { kind: 'string', metavar: 'DIR', help: `the library folder (default: ${libraryDir('adapter')} for adapters, ${libraryDir('model')} for models; $NOMOAT_HOME moves both)` },
  name: { kind: 'string', metavar: 'NAME', help: 'the name inside the library (default: the folder\'s name)' },
  force: { kind: 'boolean', help: 'replace an entry of the same name' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

export const command = defineCommand({
  name: 'import',
  summary: 'check an adapter or model trained elsewhere against its base and register it in a library folder',
  usage: 'DIR -m BASE [--into LIBRARY] [--name NAME]',
  description:
    'DIR is a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) or a Hugging Face model folder.\n' +
    'An adapter recording nomoat\'s base fingerprint (exports and `finetune --handoff` runs record it) is refused when\n' +
    'BASE is another model, naming what differs; one without is checked for tensor names and shapes. A model must\n' +
    'have BASE\'s architecture and shapes. Registered: LIBRARY/NAME as a PEFT folder (F32, the fingerprint recorded)\n' +
    'plus adapter.gguf, usable at once as `--lora LIBRARY/NAME` by chat, generate, serve, eval, stack and merge, or a\n' +
    'model folder for -m.',
  flags: FLAGS,
  positionals: [{ name: 'dir', help: 'the folder that came back' }],
  examples: [
    'nomoat import handoff/output/adapter -m assets/default-model',
    'nomoat import ./checkpoint-final -m model.gguf --into ./adapters --name support-v2',
    'nomoat chat -m assets/default-model --lora ~/.nomoat/adapters/support-v2',
  ],
  run({ flags: f, positionals: [dir] }) {
    if (f.model === undefined) throw new UsageError('missing -m BASE (the base model the folder was trained on)');
    setThreads(f.threads);
    const loaded = loadForCli(f.model);
    try {
      const r = importFolder({
        source: dir, base: loaded.model, basePath: loaded.path, force: f.force,
        ...(f.into !== undefined ? { into: f.into } : {}), ...(f.name !== undefined ? { name: f.name } : {}),
      });
      for (const n of r.notes) process.stderr.write(`nomoat import: ${n}\n`);
      process.stderr.write(`nomoat import: ${r.kind} ${dir}: ${r.check}\n`);
      process.stdout.write(`${r.path}\n`);
      process.stdout.write(r.kind === 'adapter' ? `try it: nomoat chat -m ${f.model} --lora ${r.path}\n` : `try it: nomoat chat -m ${r.path}\n`);
    } catch (e) {
      if (e instanceof BaseMismatchError) throw new CliError(`refused: ${e.message}`);
      throw new CliError(e instanceof Error ? e.message : String(e));
    } finally {
      loaded.model.dispose();
    }
  },
});
