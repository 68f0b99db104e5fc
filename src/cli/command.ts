// What a command is: a name, a one-line summary, typed flags and positionals, examples, and a run function.
// defineCommand wraps one so the registry and main.ts treat every command alike (parse, --help, errors).

import { formatFlags, parseArgs, type FlagSpecs, type Parsed, type PositionalSpec } from './args.js';

export interface CommandSpec<F extends FlagSpecs> {
  /** as typed after `nomoat`, e.g. 'generate' or 'tokenizer train' */
  name: string;
  summary: string;
  /** the synopsis after `nomoat <name>`, e.g. '-m MODEL -p PROMPT [options]' */
  usage: string;
  /** paragraphs shown under the usage line */
  description?: string;
  flags: F;
  positionals?: readonly PositionalSpec[];
  /** full command lines, each shown under "Examples:" */
  examples: readonly string[];
  /** returns the exit status (0 when nothing is returned) */
  run(args: Parsed<F>): Promise<number | void> | number | void;
}

/** A command ready to run from argv. */
export interface Command {
  name: string;
  summary: string;
  help(): string;
  main(argv: readonly string[]): Promise<number>;
}

const HELP: FlagSpecs = { help: { kind: 'boolean', short: 'h', help: 'show this help and exit' } };

/** --help / -h anywhere, except as the value of a flag (as in `-p -h`). */
function wantsHelp(argv: readonly string[], flags: FlagSpecs): boolean {
  const takesValue = (a: string | undefined): boolean => {
    if (a === undefined || !a.startsWith('-') || a.includes('=')) return false;
    const s = a.startsWith('--') ? flags[a.slice(2)] : Object.values(flags).find((f) => f.short === a.slice(1));
    return s !== undefined && s.kind !== 'boolean';
  };
  const end = argv.indexOf('--');
  return argv.some((a, i) => (end < 0 || i < end) && (a === '--help' || a === '-h') && !takesValue(argv[i - 1]));
}

export function defineCommand<F extends FlagSpecs>(spec: CommandSpec<F>): Command {
  const help = (): string => {
    const parts = [`nomoat ${spec.name} — ${spec.summary}`, '', `Usage: nomoat ${spec.name} ${spec.usage}`];
    if (spec.description !== undefined) parts.push('', spec.description);
    if (spec.positionals !== undefined && spec.positionals.length > 0) {
      const w = Math.max(...spec.positionals.map((p) => p.name.length)) + 4;
      parts.push('', 'Arguments:', ...spec.positionals.map((p) => `  ${p.name.toUpperCase().padEnd(w)}${p.help}${p.optional === true ? ' (optional)' : ''}`));
    }
    parts.push('', 'Options:', formatFlags({ ...spec.flags, ...HELP }), '', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
    return parts.join('\n') + '\n';
  };
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async main(argv) {
      if (wantsHelp(argv, spec.flags)) {
        process.stdout.write(help());
        return 0;
      }
      const parsed = parseArgs(argv, spec.flags, spec.positionals ?? []);
      return (await spec.run(parsed)) ?? 0;
    },
  };
}
