// The `nomoat` entry point as a function: picks the command from the registry, prints help and errors.
// Exit status: 0 success, 1 a failure the user can fix (message, no stack), 2 a usage error.

import { readFileSync } from 'node:fs';
import { UsageError, suggest } from './args.js';
import { COMMANDS, type CommandEntry } from './commands.js';
import { CliError } from './common.js';
import { nativeBackend, nativeLoadError } from '../engine/default.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return [
    'nomoat — run, convert and fine-tune small Llama-family models on a laptop',
    '',
    'Usage: nomoat <command> [options]      nomoat <command> --help',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Models: a GGUF file, a Hugging Face folder (config.json + model.safetensors + tokenizer.json) or a llama2.c .bin.',
    '',
    'Examples:',
    '  nomoat generate -m model.gguf -p "Once upon a time" -n 64',
    '  nomoat convert ./hf-model model-q8.gguf --outtype q8_0',
    '  nomoat inspect model.gguf',
    '',
  ].join('\n');
}

/** Says once per command, on stderr, when the C addon did not load: the fallback is several times slower, and silent otherwise. */
function backendNotice(): void {
  if (process.env.NOMOAT_BACKEND === 'reference' || nativeBackend() !== null) return;
  const why = nativeLoadError().replace(/^nomoat: /, '').split('\n')[0];
  process.stderr.write(
    'nomoat: running on the TypeScript backend (several times slower): the C addon did not load.\n' +
    `  ${why}\n` +
    '  Fix: install a C compiler and Python (Debian/Ubuntu: sudo apt install build-essential python3; macOS: xcode-select --install;\n' +
    '  Windows: Visual Studio Build Tools), then run `npm rebuild nomoat`. NOMOAT_BACKEND=reference silences this note.\n',
  );
}

/** The longest registered command name that argv starts with (commands may be two words). */
function findCommand(argv: readonly string[]): { entry: CommandEntry; rest: readonly string[] } | null {
  let best: { entry: CommandEntry; rest: readonly string[] } | null = null;
  for (const entry of COMMANDS) {
    const words = entry.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (best === null || words.length > best.entry.name.split(' ').length)) {
      best = { entry, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(mainHelp());
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`nomoat ${version()}\n`);
    return 0;
  }
  const found = findCommand(argv);
  if (found === null) {
    const hint = suggest(first, COMMANDS.map((c) => c.name.split(' ')[0]));
    process.stderr.write(`nomoat: unknown command "${first}"${hint !== null ? ` (did you mean "${hint}"?)` : ''}\nRun "nomoat --help" for the list of commands.\n`);
    return 2;
  }
  const name = found.entry.name;
  backendNotice();
  try {
    const { command } = await found.entry.load();
    return await command.main(found.rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`nomoat ${name}: ${e.message}\nRun "nomoat ${name} --help" for usage.\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`nomoat ${name}: error: ${msg}\n`);
    if (!(e instanceof CliError) && process.env.NOMOAT_DEBUG !== undefined && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    return 1;
  }
}
