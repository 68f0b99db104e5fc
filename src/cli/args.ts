// The command-line parser: typed flags declared once per command (with their help), positionals, and errors that
// say what to do (unknown flag → the closest known one). No dependency; llama.cpp's flag spellings where they overlap.

/** How a flag takes its value. `list`: repeatable, values collected in order; `pairs`: repeatable, two values each. */
export type FlagKind = 'string' | 'number' | 'int' | 'boolean' | 'list' | 'pairs';

export interface FlagSpec {
  kind: FlagKind;
  /** one-letter alias, without the dash */
  short?: string;
  /** placeholder(s) shown in help, e.g. FILE or ['FILE', 'SCALE'] */
  metavar?: string | readonly [string, string];
  help: string;
  /** shown in help as "(default: …)"; commands apply their defaults themselves */
  default?: string | number | boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface PositionalSpec {
  name: string;
  help: string;
  optional?: boolean;
  /** the last positional only: it takes every remaining argument (FILE...) */
  variadic?: boolean;
}

type ValueOf<K extends FlagKind> = K extends 'boolean'
  ? boolean
  : K extends 'list'
    ? string[]
    : K extends 'pairs'
      ? [string, string][]
      : K extends 'number' | 'int'
        ? number | undefined
        : string | undefined;

/** Parsed flag values keyed by long name: booleans default to false, lists to [], others to undefined. */
export type FlagValues<F extends FlagSpecs> = { [K in keyof F]: ValueOf<F[K]['kind']> };

export interface Parsed<F extends FlagSpecs> {
  flags: FlagValues<F>;
  positionals: string[];
}

/** A usage error: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {}

/** Edit distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The closest candidate within a distance that makes a typo plausible, else null. */
export function suggest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** The placeholder text of a flag's value(s). */
function metavarText(s: FlagSpec): string {
  const m = s.metavar;
  return m === undefined ? 'VALUE' : typeof m === 'string' ? m : m.join(' ');
}

function toNumber(flag: string, kind: 'number' | 'int', raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} expects a number, got ${JSON.stringify(raw)}`);
  if (kind === 'int' && !Number.isInteger(v)) throw new UsageError(`${flag} expects a whole number, got ${raw}`);
  return v;
}

/** Parses argv (without the command name) against flag and positional specs. */
export function parseArgs<F extends FlagSpecs>(argv: readonly string[], specs: F, positionals: readonly PositionalSpec[] = []): Parsed<F> {
  const values: Record<string, unknown> = {};
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) {
    values[name] = s.kind === 'boolean' ? false : s.kind === 'list' || s.kind === 'pairs' ? [] : undefined;
    if (s.short !== undefined) byShort.set(s.short, name);
  }
  const rest: string[] = [];
  let i = 0;
  const take = (flag: string, inline: string | undefined, what: string): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag} needs a value (${what})`);
    return v;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const name = key.startsWith('--') ? key.slice(2) : byShort.get(key.slice(1));
    const spec = name === undefined ? undefined : specs[name];
    if (name === undefined || spec === undefined) {
      const known = Object.entries(specs).flatMap(([n, s]) => [`--${n}`, ...(s.short !== undefined ? [`-${s.short}`] : [])]);
      const hint = suggest(key, known);
      throw new UsageError(`unknown flag ${key}${hint !== null ? ` (did you mean ${hint}?)` : ''}`);
    }
    const metavar = metavarText(spec);
    switch (spec.kind) {
      case 'boolean':
        if (inline !== undefined) throw new UsageError(`${key} takes no value`);
        values[name] = true;
        break;
      case 'string':
        values[name] = take(key, inline, metavar);
        break;
      case 'number':
      case 'int':
        values[name] = toNumber(key, spec.kind, take(key, inline, metavar));
        break;
      case 'list':
        (values[name] as string[]).push(take(key, inline, metavar));
        break;
      case 'pairs': {
        const a = take(key, inline, metavar);
        const b = argv[++i];
        if (b === undefined) throw new UsageError(`${key} needs two values (${metavar})`);
        (values[name] as [string, string][]).push([a, b]);
        break;
      }
    }
  }
  const required = positionals.filter((p) => p.optional !== true).length;
  if (rest.length < required) {
    const missing = positionals.slice(rest.length, required).map((p) => p.name.toUpperCase());
    throw new UsageError(`missing ${missing.join(' ')}`);
  }
  if (rest.length > positionals.length && positionals.at(-1)?.variadic !== true) throw new UsageError(`unexpected argument ${JSON.stringify(rest[positionals.length])}`);
  return { flags: values as FlagValues<F>, positionals: rest };
}

/** The options table of a help text. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const mv = s.kind === 'boolean' ? '' : ` ${metavarText(s)}`;
    const left = `${s.short !== undefined ? `-${s.short}, ` : '    '}--${name}${mv}`;
    const more = s.kind === 'list' || s.kind === 'pairs' ? ' (repeatable)' : '';
    const dflt = s.default !== undefined ? ` (default: ${String(s.default)})` : '';
    return [left, `${s.help}${more}${dflt}`];
  });
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${l.length >= width ? `\n  ${''.padEnd(width)}` : ''}${r}`).join('\n');
}
