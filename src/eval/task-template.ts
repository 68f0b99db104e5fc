// How a task file's doc_to_text / doc_to_target / doc_to_choice / description turn a document into text, exactly
// as lm-eval's ConfigurableTask resolves them:
//   - a string naming one of the dataset's fields → that field's value as it is (an int label stays an int);
//   - any other string → a Jinja template rendered with the document's fields; for doc_to_target and doc_to_text, an
//     all-digit result becomes an int when the task has choices, and for doc_to_target a "[…]" result a list
//     (Python's ast.literal_eval); for doc_to_choice the result is always literal_eval'ed into a list;
//   - an int → itself (an index into the choices); a list (doc_to_choice, doc_to_target) → itself.
// Undefined variables are an error, as lm-eval's StrictUndefined makes them (the test `is defined` and the
// `default` filter still see them), so a document lacking a field fails naming it, not with an empty prompt.

import * as jinja from '@huggingface/jinja';

/** A dataset row. */
export type Doc = Readonly<Record<string, unknown>>;

/** A doc_to_* value after resolution. */
export type Resolved = string | number | readonly unknown[];

/** A field the template needed and the document lacks. */
export class MissingFieldError extends Error {
  constructor(readonly field: string) {
    super(`missing field \`${field}\``);
  }
}

// The parts of @huggingface/jinja we use (typed here: its .d.ts files use extension-less imports NodeNext cannot follow).
interface RuntimeValue {
  type: string;
}
interface AstNode {
  type: string;
  value?: unknown;
  filter?: AstNode & { name?: AstNode };
}
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
interface JinjaInterpreterInstance {
  run(program: unknown): { value: unknown };
  evaluateIdentifier(node: AstNode, env: JinjaEnvironment): RuntimeValue;
  evaluateTestExpression(node: AstNode, env: JinjaEnvironment): RuntimeValue;
  evaluateFilterExpression(node: AstNode, env: JinjaEnvironment): RuntimeValue;
}
type InterpreterClass = new (env: JinjaEnvironment) => JinjaInterpreterInstance;
const lib = jinja as unknown as {
  Template: new (source: string) => { parsed: unknown };
  Environment: new () => JinjaEnvironment;
  Interpreter: InterpreterClass;
};

/** An interpreter whose undefined variables throw MissingFieldError, except under `is defined` tests and `default`. */
class StrictInterpreter extends (lib.Interpreter) {
  private lenient = 0;

  override evaluateIdentifier(node: AstNode, env: JinjaEnvironment): RuntimeValue {
    const v = super.evaluateIdentifier(node, env);
    if (v.type === 'UndefinedValue' && this.lenient === 0) throw new MissingFieldError(String(node.value));
    return v;
  }

  override evaluateTestExpression(node: AstNode, env: JinjaEnvironment): RuntimeValue {
    this.lenient++;
    try {
      return super.evaluateTestExpression(node, env);
    } finally {
      this.lenient--;
    }
  }

  override evaluateFilterExpression(node: AstNode, env: JinjaEnvironment): RuntimeValue {
    const f = node.filter;
    const name = f?.type === 'Identifier' ? f.value : f?.type === 'CallExpression' ? (f as { callee?: AstNode }).callee?.value : undefined;
    const tolerant = name === 'default' || name === 'd';
    if (tolerant) this.lenient++;
    try {
      return super.evaluateFilterExpression(node, env);
    } finally {
      if (tolerant) this.lenient--;
    }
  }
}

const compiled = new Map<string, { parsed: unknown }>();

/** Parses a template once (a syntax error names the template). */
export function compileTemplate(source: string): { parsed: unknown } {
  let t = compiled.get(source);
  if (t === undefined) {
    try {
      t = new lib.Template(source);
    } catch (e) {
      throw new Error(`template ${JSON.stringify(source)}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (compiled.size > 256) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/**
 * Renders a Jinja template with a document's fields (Python's True/False/None spelled either way). Trailing newlines
 * are kept, as lm-eval's keep_trailing_newline=True does (a description "…\n\n" must end in its blank line); the
 * engine would drop one, so they are cut off before rendering and put back after.
 */
export function renderTemplate(source: string, doc: Doc): string {
  const tail = /\n*$/.exec(source)?.[0] ?? '';
  const body = source.slice(0, source.length - tail.length);
  const env = new lib.Environment();
  for (const [k, v] of Object.entries({ true: true, false: false, none: null, True: true, False: false, None: null })) env.set(k, v);
  for (const [k, v] of Object.entries(doc)) env.set(k, v);
  const out = new StrictInterpreter(env).run(compileTemplate(body).parsed).value;
  if (typeof out !== 'string') throw new Error(`template ${JSON.stringify(source)} did not render to text`);
  return out + tail;
}

/**
 * Python's ast.literal_eval for the literals task templates produce: lists and tuples of strings (either quote),
 * numbers, True/False/None. Jinja renders a list as `["a", "b"]` here and as `['a', 'b']` in Python; both parse.
 */
export function literalEval(text: string): unknown {
  let i = 0;
  const s = text;
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`cannot read ${JSON.stringify(text)} as a Python literal: ${what} at offset ${i}`);
  };
  const value = (): unknown => {
    ws();
    const c = s[i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const items: unknown[] = [];
      ws();
      while (s[i] !== close) {
        items.push(value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] !== close) fail(`expected , or ${close}`);
        ws();
      }
      i++;
      return items;
    }
    if (c === '"' || c === "'") {
      i++;
      let out = '';
      while (i < s.length && s[i] !== c) {
        if (s[i] === '\\') {
          const e = s[i + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
          if (e === 'u' || e === 'x') {
            const len = e === 'u' ? 4 : 2;
            out += String.fromCharCode(parseInt(s.slice(i + 2, i + 2 + len), 16));
            i += 2 + len;
            continue;
          }
          out += map[e] ?? `\\${e}`;
          i += 2;
          continue;
        }
        out += s[i++];
      }
      if (s[i] !== c) fail('unterminated string');
      i++;
      return out;
    }
    const word = /^(?:-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|True|False|None|true|false|null)/.exec(s.slice(i));
    if (word === null) return fail('unexpected character');
    i += word[0].length;
    const w = word[0];
    return w === 'True' || w === 'true' ? true : w === 'False' || w === 'false' ? false : w === 'None' || w === 'null' ? null : Number(w);
  };
  const v = value();
  ws();
  if (i !== s.length) fail('trailing text');
  return v;
}

/** What a doc_to_* setting is: a template or field name, an index, or a literal list (doc_to_choice / doc_to_target). */
export type DocTo = string | number | readonly unknown[] | Readonly<Record<string, unknown>>;

/**
 * Resolves one doc_to_* setting for a document. `features` are the dataset's field names (a name in it is a field,
 * anything else a template); `hasChoices` turns an all-digit doc_to_text/doc_to_target into an index.
 */
export function resolveDocTo(kind: 'text' | 'target' | 'choice' | 'description', spec: DocTo, doc: Doc, features: ReadonlySet<string>, hasChoices: boolean): Resolved {
  if (typeof spec === 'number') return spec;
  if (Array.isArray(spec)) return spec as readonly unknown[];
  if (typeof spec === 'object') return Object.values(spec); // doc_to_choice given as a mapping: its values
  const s = spec;
  if (features.has(s)) {
    if (!Object.hasOwn(doc, s)) throw new MissingFieldError(s);
    const v = doc[s];
    if (typeof v === 'string' || typeof v === 'number' || Array.isArray(v)) return v as Resolved;
    if (typeof v === 'boolean' || v === null) return String(v);
    throw new Error(`field \`${s}\` holds ${typeof v}, not text, a number or a list`);
  }
  const out = renderTemplate(s, doc);
  if (kind === 'choice') {
    const v = literalEval(out);
    if (!Array.isArray(v)) throw new Error(`doc_to_choice rendered ${JSON.stringify(out)}, not a list`);
    return v as unknown[];
  }
  if ((kind === 'text' || kind === 'target') && hasChoices && /^\d+$/.test(out)) return Number(out);
  if (kind === 'target' && out.length >= 2 && out.startsWith('[') && out.endsWith(']')) {
    try {
      return literalEval(out) as readonly unknown[];
    } catch {
      return out;
    }
  }
  return out;
}
