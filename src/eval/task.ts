// Task files in lm-evaluation-harness's vocabulary (YAML or JSON), checked field by field, with their local data
// (JSONL, JSON or Parquet). A field nomoat does not implement is refused by name, never ignored.
//
// Data: `dataset_path: FILE` (relative to the task file) serves every split the task asks for; lm-eval's
// `dataset_path: json|parquet` + `dataset_kwargs: {data_files: …}` names one file (every split) or a file per split
// ({test: a.jsonl, train: b.jsonl}). `dataset_name` (a Hub subset) is kept in the config only: local files have none.

import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { pyRegex, type ExactMatchOptions, type RegexFilterOptions } from './metrics.js';
import { MissingFieldError, resolveDocTo, type Doc, type DocTo, type Resolved } from './task-template.js';

export type OutputType = 'loglikelihood' | 'multiple_choice' | 'generate_until';
export const OUTPUT_TYPES: readonly OutputType[] = ['loglikelihood', 'multiple_choice', 'generate_until'];

export type MetricName = 'acc' | 'acc_norm' | 'acc_bytes' | 'exact_match';
/** Metrics each output type can compute (lm-eval's defaults are the first ones listed). */
export const METRICS_OF: Readonly<Record<OutputType, readonly MetricName[]>> = {
  loglikelihood: ['acc'], // lm-eval's loglikelihood acc: the continuation is the greedy one
  multiple_choice: ['acc', 'acc_norm', 'acc_bytes', 'exact_match'],
  generate_until: ['exact_match'],
};

export interface MetricConfig extends ExactMatchOptions {
  metric: MetricName;
  aggregation: 'mean';
  higher_is_better: boolean;
}

export type FilterStep = ({ function: 'regex' } & RegexFilterOptions) | { function: 'take_first' } | { function: 'lowercase' } | { function: 'uppercase' } | { function: 'remove_whitespace' };
export interface FilterConfig {
  name: string;
  filter: FilterStep[];
}

export interface FewshotConfig {
  sampler: 'default' | 'first_n';
  samples?: Doc[];
  split?: string;
}

export interface GenerationKwargs {
  until: string[];
  max_gen_toks: number; // lm-eval's default 256
  do_sample: false;
  temperature?: number;
}

/** A task's configuration after defaults (what results.json shows under `configs`). */
export interface TaskConfig {
  task: string;
  task_alias?: string;
  tag?: string | string[];
  dataset_path: string;
  dataset_name?: string | null;
  dataset_kwargs?: { data_files: string | Record<string, string> };
  training_split?: string | null;
  validation_split?: string | null;
  test_split?: string | null;
  fewshot_split?: string | null;
  doc_to_text: DocTo;
  doc_to_target: DocTo;
  doc_to_choice?: DocTo | null;
  description: string;
  target_delimiter: string;
  fewshot_delimiter: string;
  num_fewshot: number;
  fewshot_config?: FewshotConfig;
  output_type: OutputType;
  generation_kwargs?: GenerationKwargs;
  metric_list: MetricConfig[];
  filter_list: FilterConfig[];
  repeats: 1;
  should_decontaminate: false;
  metadata?: Record<string, unknown> & { version?: number | string };
}

/** One dataset row and where it came from ("file.jsonl:12", "file.parquet row 3"). */
export interface DocEntry {
  doc: Doc;
  where: string;
}

export interface Split {
  file: string;
  docs: DocEntry[];
  features: ReadonlySet<string>;
}

/** A task ready to run: its config, its documents, and for built-ins a few hooks. */
export interface Task {
  name: string;
  config: TaskConfig;
  /** the task file ("builtin:skills" for built-ins), for messages */
  source: string;
  evalDocs: Split;
  /** where few-shot examples come from (null: no few-shot source) */
  fewshotDocs: Split | null;
  /** contexts are the user turn of the model's chat template (built-in chat tasks; --apply-chat-template) */
  chat?: boolean;
  /** exact_match by a checker instead of string equality (the built-in skills use each skill's check) */
  check?: (prediction: string, target: string, doc: Doc) => boolean;
}

/** A problem in a task file or its data, naming the file (and line) and the field. */
export class TaskError extends Error {}

const SUPPORTED = new Set([
  'task', 'task_alias', 'tag', 'dataset_path', 'dataset_name', 'dataset_kwargs', 'training_split', 'validation_split', 'test_split',
  'fewshot_split', 'doc_to_text', 'doc_to_target', 'doc_to_choice', 'description', 'target_delimiter', 'fewshot_delimiter',
  'num_fewshot', 'fewshot_config', 'output_type', 'generation_kwargs', 'metric_list', 'filter_list', 'repeats',
  'should_decontaminate', 'metadata', 'unsafe_code', 'include',
]);

interface Located {
  file: string;
  line: (key: string) => number | null;
}

const where = (loc: Located, key: string): string => {
  const l = loc.line(key);
  return l === null ? loc.file : `${loc.file}:${l}`;
};

/** Reads a YAML/JSON task file into a plain object (`!function` tags kept as markers so they can be refused by name). */
function readTaskObject(path: string): { obj: Record<string, unknown>; loc: Located } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TaskError(`cannot read task file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const lc = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lc, customTags: [{ tag: '!function', resolve: (s: string) => ({ '!function': s }) }] });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new TaskError(`task file ${path}:${lc.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  }
  const obj: unknown = doc.toJS();
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new TaskError(`task file ${path}: expected a mapping of fields (task, dataset_path, doc_to_text, …)`);
  const lines = new Map<string, number>();
  const contents = doc.contents as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] } | null;
  for (const p of contents?.items ?? []) if (p.key?.range !== undefined) lines.set(String(p.key.value), lc.linePos(p.key.range[0]).line);
  return { obj: obj as Record<string, unknown>, loc: { file: path, line: (k) => lines.get(k) ?? null } };
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Parses and checks a task file's fields (data not read). `include:` files are read first and overlaid. */
export function parseTaskFile(path: string, depth = 0): { config: TaskConfig; dir: string; loc: Located } {
  const { obj, loc } = readTaskObject(path);
  const dir = dirname(resolve(path));
  let raw: Record<string, unknown> = obj;
  if (obj.include !== undefined) {
    if (typeof obj.include !== 'string') throw new TaskError(`task file ${where(loc, 'include')}: field \`include\` must be a file name`);
    if (depth > 8) throw new TaskError(`task file ${path}: \`include\` nests too deep`);
    const base = readTaskObject(resolve(dir, obj.include)).obj;
    raw = { ...base, ...obj };
    delete raw.include;
  }
  return { config: checkConfig(raw, loc), dir, loc };
}

/** Checks raw fields and fills lm-eval's defaults. */
export function checkConfig(raw: Record<string, unknown>, loc: Located): TaskConfig {
  const bad = (key: string, msg: string): never => {
    throw new TaskError(`task file ${where(loc, key)}: field \`${key}\` ${msg}`);
  };
  for (const [k, v] of Object.entries(raw)) {
    if (isRecord(v) && '!function' in v) bad(k, `is a Python function (!function ${String(v['!function'])}), which nomoat cannot run`);
    if (!SUPPORTED.has(k)) bad(k, 'is not supported by nomoat');
  }
  const str = (k: string, required: boolean): string | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return required ? bad(k, 'is required') : undefined;
    if (typeof v !== 'string') return bad(k, `must be text, got ${JSON.stringify(v)}`);
    return v;
  };
  const docTo = (k: string, required: boolean): DocTo | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return required ? bad(k, 'is required') : undefined;
    if (typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)) || Array.isArray(v) || (k === 'doc_to_choice' && isRecord(v))) return v as DocTo;
    return bad(k, 'must be a field name, a Jinja template, an index or (doc_to_choice) a list');
  };
  const task = str('task', true) as string;
  const output = str('output_type', false) ?? 'generate_until';
  if (!(OUTPUT_TYPES as readonly string[]).includes(output)) bad('output_type', `must be one of ${OUTPUT_TYPES.join(', ')} (got ${output})`);
  const outputType = output as OutputType;
  if (raw.repeats !== undefined && raw.repeats !== 1) bad('repeats', 'must be 1 (greedy decoding gives the same answer every time)');
  if (raw.should_decontaminate !== undefined && raw.should_decontaminate !== false) bad('should_decontaminate', 'is not supported by nomoat (set it to false)');
  if (raw.unsafe_code !== undefined && raw.unsafe_code !== false) bad('unsafe_code', 'is not supported by nomoat: it runs no generated code');

  const numFewshot = raw.num_fewshot ?? 0;
  if (typeof numFewshot !== 'number' || !Number.isInteger(numFewshot) || numFewshot < 0) bad('num_fewshot', 'must be a count ≥ 0');

  let datasetKwargs: TaskConfig['dataset_kwargs'];
  if (raw.dataset_kwargs !== undefined) {
    const dk = raw.dataset_kwargs;
    if (!isRecord(dk)) return bad('dataset_kwargs', 'must be a mapping');
    for (const k of Object.keys(dk)) if (k !== 'data_files') bad('dataset_kwargs', `: \`${k}\` is not supported by nomoat (only data_files)`);
    const df = dk.data_files;
    if (typeof df === 'string') datasetKwargs = { data_files: df };
    else if (isRecord(df) && Object.values(df).every((x) => typeof x === 'string')) datasetKwargs = { data_files: df as Record<string, string> };
    else bad('dataset_kwargs', ': data_files must be a file name or a mapping split → file name');
  }

  let fewshotConfig: FewshotConfig | undefined;
  if (raw.fewshot_config !== undefined && raw.fewshot_config !== null) {
    const fc = raw.fewshot_config;
    if (!isRecord(fc)) return bad('fewshot_config', 'must be a mapping');
    for (const k of Object.keys(fc)) if (!['sampler', 'samples', 'split'].includes(k)) bad('fewshot_config', `: \`${k}\` is not supported by nomoat (sampler, samples, split are)`);
    const sampler = fc.sampler ?? 'default';
    if (sampler !== 'default' && sampler !== 'first_n') bad('fewshot_config', `: sampler must be default or first_n (got ${JSON.stringify(sampler)})`);
    if (fc.samples !== undefined && !(Array.isArray(fc.samples) && fc.samples.every(isRecord))) bad('fewshot_config', ': samples must be a list of documents');
    if (fc.split !== undefined && typeof fc.split !== 'string') bad('fewshot_config', ': split must be a split name');
    fewshotConfig = { sampler: sampler as FewshotConfig['sampler'], ...(fc.samples !== undefined ? { samples: fc.samples as Doc[] } : {}), ...(fc.split !== undefined ? { split: fc.split as string } : {}) };
  }

  let generationKwargs: GenerationKwargs | undefined;
  if (outputType === 'generate_until') {
    const g = raw.generation_kwargs ?? {};
    if (!isRecord(g)) return bad('generation_kwargs', 'must be a mapping');
    for (const k of Object.keys(g)) if (!['until', 'max_gen_toks', 'do_sample', 'temperature'].includes(k)) bad('generation_kwargs', `: \`${k}\` is not supported by nomoat (until, max_gen_toks, do_sample: false)`);
    const until = g.until ?? [];
    const untilList = typeof until === 'string' ? [until] : until;
    if (!Array.isArray(untilList) || !untilList.every((u) => typeof u === 'string')) bad('generation_kwargs', ': until must be a list of strings');
    const maxGen = g.max_gen_toks ?? 256;
    if (typeof maxGen !== 'number' || !Number.isInteger(maxGen) || maxGen < 1) bad('generation_kwargs', ': max_gen_toks must be a positive count');
    if (g.do_sample !== undefined && g.do_sample !== false) bad('generation_kwargs', ': do_sample must be false (nomoat evaluates with greedy decoding)');
    if (g.temperature !== undefined && g.temperature !== 0) bad('generation_kwargs', ': temperature must be 0 (nomoat evaluates with greedy decoding)');
    generationKwargs = { until: untilList as string[], max_gen_toks: maxGen as number, do_sample: false, ...(g.temperature !== undefined ? { temperature: 0 } : {}) };
  } else if (raw.generation_kwargs !== undefined) {
    bad('generation_kwargs', `applies to generate_until tasks, not ${outputType}`);
  }

  const metricList = checkMetrics(raw.metric_list, outputType, (msg) => bad('metric_list', msg));
  const filterList = checkFilters(raw.filter_list, outputType, (msg) => bad('filter_list', msg));

  const metadata = raw.metadata;
  if (metadata !== undefined && !isRecord(metadata)) bad('metadata', 'must be a mapping');
  const tag = raw.tag;
  if (tag !== undefined && typeof tag !== 'string' && !(Array.isArray(tag) && tag.every((t) => typeof t === 'string'))) bad('tag', 'must be a name or a list of names');
  const docToChoice = docTo('doc_to_choice', outputType === 'multiple_choice');
  const splitField = (k: string): string | null | undefined => (raw[k] === null ? null : str(k, false));
  const datasetName = raw.dataset_name;
  if (datasetName !== undefined && datasetName !== null && typeof datasetName !== 'string') bad('dataset_name', 'must be text');

  return {
    task,
    ...(raw.task_alias !== undefined ? { task_alias: str('task_alias', false) } : {}),
    ...(tag !== undefined ? { tag: tag as string | string[] } : {}),
    dataset_path: str('dataset_path', true) as string,
    ...(datasetName !== undefined ? { dataset_name: datasetName as string | null } : {}),
    ...(datasetKwargs !== undefined ? { dataset_kwargs: datasetKwargs } : {}),
    training_split: splitField('training_split') ?? null,
    validation_split: splitField('validation_split') ?? null,
    test_split: splitField('test_split') ?? null,
    fewshot_split: splitField('fewshot_split') ?? null,
    doc_to_text: docTo('doc_to_text', true) as DocTo,
    doc_to_target: docTo('doc_to_target', true) as DocTo,
    ...(docToChoice !== undefined ? { doc_to_choice: docToChoice } : {}),
    description: str('description', false) ?? '',
    target_delimiter: raw.target_delimiter === undefined ? ' ' : (str('target_delimiter', false) ?? ''),
    fewshot_delimiter: raw.fewshot_delimiter === undefined ? '\n\n' : (str('fewshot_delimiter', false) ?? ''),
    num_fewshot: numFewshot as number,
    ...(fewshotConfig !== undefined ? { fewshot_config: fewshotConfig } : {}),
    output_type: outputType,
    ...(generationKwargs !== undefined ? { generation_kwargs: generationKwargs } : {}),
    metric_list: metricList,
    filter_list: filterList,
    repeats: 1,
    should_decontaminate: false,
    ...(metadata !== undefined ? { metadata: metadata as TaskConfig['metadata'] } : {}),
  };
}

function checkMetrics(raw: unknown, outputType: OutputType, bad: (msg: string) => never): MetricConfig[] {
  const defaults = (m: MetricName): MetricConfig => ({ metric: m, aggregation: 'mean', higher_is_better: true });
  if (raw === undefined || raw === null) return outputType === 'multiple_choice' ? [defaults('acc'), defaults('acc_norm')] : [defaults(METRICS_OF[outputType][0])];
  if (!Array.isArray(raw)) return bad('must be a list of {metric: …}');
  return raw.map((m): MetricConfig => {
    if (!isRecord(m) || typeof m.metric !== 'string') return bad('entries need `metric: NAME`');
    const name = m.metric;
    if (!(METRICS_OF[outputType] as readonly string[]).includes(name)) bad(`: metric \`${name}\` is not supported by nomoat for ${outputType} (${METRICS_OF[outputType].join(', ')} are)`);
    const allowed = name === 'exact_match' ? ['metric', 'aggregation', 'higher_is_better', 'ignore_case', 'ignore_punctuation', 'ignore_numbers', 'regexes_to_ignore'] : ['metric', 'aggregation', 'higher_is_better'];
    for (const k of Object.keys(m)) if (!allowed.includes(k)) bad(`: \`${k}\` of metric ${name} is not supported by nomoat`);
    if (m.aggregation !== undefined && m.aggregation !== 'mean') bad(`: aggregation ${JSON.stringify(m.aggregation)} of ${name} is not supported by nomoat (mean is)`);
    if (m.higher_is_better !== undefined && typeof m.higher_is_better !== 'boolean') bad(`: higher_is_better of ${name} must be true or false`);
    for (const b of ['ignore_case', 'ignore_punctuation', 'ignore_numbers']) if (m[b] !== undefined && typeof m[b] !== 'boolean') bad(`: ${b} of ${name} must be true or false`);
    const rti = m.regexes_to_ignore;
    if (rti !== undefined && !(Array.isArray(rti) && rti.every((r) => typeof r === 'string'))) bad(`: regexes_to_ignore of ${name} must be a list of regexes`);
    for (const r of (rti) ?? []) checkRegex(r, bad);
    return {
      metric: name as MetricName, aggregation: 'mean', higher_is_better: (m.higher_is_better) ?? true,
      ...(m.ignore_case !== undefined ? { ignore_case: m.ignore_case as boolean } : {}),
      ...(m.ignore_punctuation !== undefined ? { ignore_punctuation: m.ignore_punctuation as boolean } : {}),
      ...(m.ignore_numbers !== undefined ? { ignore_numbers: m.ignore_numbers as boolean } : {}),
      ...(rti !== undefined ? { regexes_to_ignore: rti } : {}),
    };
  });
}

/** A Python regex JavaScript cannot run is a task-file error, found when the file is read. */
function checkRegex(r: string, bad: (msg: string) => never): void {
  try {
    pyRegex(r);
  } catch (e) {
    bad(`: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function checkFilters(raw: unknown, outputType: OutputType, bad: (msg: string) => never): FilterConfig[] {
  const none: FilterConfig[] = [{ name: 'none', filter: [{ function: 'take_first' }] }];
  if (raw === undefined || raw === null) return none;
  if (outputType !== 'generate_until') bad(`applies to generate_until tasks, not ${outputType}`);
  if (!Array.isArray(raw)) return bad('must be a list of {name, filter: [...]}');
  return raw.map((f): FilterConfig => {
    if (!isRecord(f) || typeof f.name !== 'string' || !Array.isArray(f.filter)) return bad('entries need `name` and a `filter` list');
    for (const k of Object.keys(f)) if (k !== 'name' && k !== 'filter') bad(`: \`${k}\` of filter ${f.name} is not supported by nomoat`);
    const steps = f.filter.map((s): FilterStep => {
      if (!isRecord(s) || typeof s.function !== 'string') return bad(`: steps of filter ${String(f.name)} need \`function\``);
      const fn = s.function;
      if (fn === 'regex') {
        for (const k of Object.keys(s)) if (!['function', 'regex_pattern', 'group_select', 'fallback'].includes(k)) bad(`: \`${k}\` of the regex filter is not supported by nomoat`);
        if (s.regex_pattern !== undefined && typeof s.regex_pattern !== 'string') bad(': regex_pattern must be text');
        if (typeof s.regex_pattern === 'string') checkRegex(s.regex_pattern, bad);
        if (s.group_select !== undefined && !Number.isInteger(s.group_select)) bad(': group_select must be an integer');
        if (s.fallback !== undefined && typeof s.fallback !== 'string') bad(': fallback must be text');
        return { function: 'regex', ...(s as RegexFilterOptions) };
      }
      if (fn === 'take_first' || fn === 'lowercase' || fn === 'uppercase' || fn === 'remove_whitespace') {
        for (const k of Object.keys(s)) if (k !== 'function') bad(`: \`${k}\` of the ${fn} filter is not supported by nomoat`);
        return { function: fn };
      }
      return bad(`: filter function \`${fn}\` is not supported by nomoat (regex, take_first, lowercase, uppercase, remove_whitespace are)`);
    });
    return { name: f.name, filter: steps };
  });
}

// ---- data ----------------------------------------------------------------------------------------------------------

/** The file behind each split named in the config (dataset_path relative to `dir`). */
export function dataFiles(config: TaskConfig, dir: string): (split: string) => string {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  const df = config.dataset_kwargs?.data_files;
  if (config.dataset_path === 'json' || config.dataset_path === 'parquet' || config.dataset_path === 'csv') {
    if (config.dataset_path === 'csv') throw new TaskError(`task ${config.task}: dataset_path csv is not supported by nomoat (json and parquet are)`);
    if (df === undefined) throw new TaskError(`task ${config.task}: dataset_path ${config.dataset_path} needs dataset_kwargs.data_files`);
    if (typeof df === 'string') return () => abs(df);
    return (split) => {
      const f = df[split];
      if (f === undefined) throw new TaskError(`task ${config.task}: no data file for split \`${split}\` in dataset_kwargs.data_files (it has ${Object.keys(df).join(', ')})`);
      return abs(f);
    };
  }
  if (df !== undefined) throw new TaskError(`task ${config.task}: dataset_kwargs.data_files goes with dataset_path json or parquet, not a file name`);
  return () => abs(config.dataset_path);
}

const splits = new Map<string, Split>();

/** Reads a JSONL / JSON / Parquet file into documents (cached by path: few-shot and eval splits may share it). */
export async function readSplit(file: string): Promise<Split> {
  const hit = splits.get(file);
  if (hit !== undefined) return hit;
  const ext = extname(file).toLowerCase();
  let docs: DocEntry[];
  if (ext === '.parquet') docs = await readParquet(file);
  else if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') docs = readJson(file);
  else throw new TaskError(`${file}: data files must be .jsonl, .json or .parquet`);
  if (docs.length === 0) throw new TaskError(`${file}: no documents`);
  const features = new Set<string>();
  for (const d of docs) for (const k of Object.keys(d.doc)) features.add(k);
  const s = { file, docs, features };
  splits.set(file, s);
  return s;
}

function readJson(file: string): DocEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskError(`cannot read data file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (file.toLowerCase().endsWith('.json') && text.trimStart().startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new TaskError(`${file}: not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    return (arr as unknown[]).map((d, i) => {
      if (!isRecord(d)) throw new TaskError(`${file}: item ${i}: expected an object of fields`);
      return { doc: d, where: `${file} item ${i}` };
    });
  }
  const out: DocEntry[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let d: unknown;
    try {
      d = JSON.parse(line);
    } catch (e) {
      throw new TaskError(`${file}:${i + 1}: not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!isRecord(d)) throw new TaskError(`${file}:${i + 1}: expected an object of fields`);
    out.push({ doc: d, where: `${file}:${i + 1}` });
  });
  return out;
}

/** Parquet rows as plain JSON values (INT64 columns come back as BigInt). */
async function readParquet(file: string): Promise<DocEntry[]> {
  const { asyncBufferFromFile, parquetReadObjects } = await import('hyparquet');
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(file) });
  } catch (e) {
    throw new TaskError(`cannot read Parquet file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const plain = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : Array.isArray(v) ? v.map(plain) : v instanceof Date ? v.toISOString() : isRecord(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v);
  return rows.map((r, i) => ({ doc: plain(r) as Doc, where: `${file} row ${i}` }));
}

/** Loads a task file and its data. `dataDir` overrides where relative data paths are found (built-in tasks). */
export async function loadTask(path: string, opts: { dataDir?: string } = {}): Promise<Task> {
  const { config, dir } = parseTaskFile(path);
  const fileOf = dataFiles(config, opts.dataDir ?? dir);
  const evalSplit = config.test_split ?? config.validation_split ?? 'test';
  const evalDocs = await readSplit(fileOf(evalSplit));
  const fsSplit = config.fewshot_config?.split ?? config.fewshot_split ?? config.training_split ?? config.validation_split ?? null;
  const fewshotDocs = config.fewshot_config?.samples !== undefined
    ? { file: `${path} (fewshot_config.samples)`, docs: config.fewshot_config.samples.map((d, i) => ({ doc: d, where: `${path} fewshot_config.samples[${i}]` })), features: new Set(config.fewshot_config.samples.flatMap((d) => Object.keys(d))) }
    : await readSplit(fileOf(fsSplit ?? evalSplit)); // lm-eval falls back to the test docs (the doc itself left out)
  const task: Task = { name: config.task, config, source: path, evalDocs, fewshotDocs };
  checkFirstDoc(task);
  return task;
}

// ---- documents → text ----------------------------------------------------------------------------------------------

/** Runs a resolution for one document, turning a failure into an error that names the document's line and field. */
function atDoc<T>(e: DocEntry, what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof MissingFieldError) throw new TaskError(`${e.where}: ${what} needs field \`${err.field}\`, which this document lacks`);
    if (err instanceof TaskError) throw err;
    throw new TaskError(`${e.where}: ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const hasChoices = (t: Task): boolean => t.config.doc_to_choice !== undefined && t.config.doc_to_choice !== null;

export function docChoices(t: Task, e: DocEntry, split: Split): string[] {
  const spec = t.config.doc_to_choice;
  if (spec === undefined || spec === null) throw new TaskError(`${t.source}: task ${t.name} has no doc_to_choice`);
  const c = atDoc(e, 'doc_to_choice', () => resolveDocTo('choice', spec, e.doc, split.features, true));
  if (!Array.isArray(c) || c.length === 0) throw new TaskError(`${e.where}: doc_to_choice gave ${JSON.stringify(c)}, not a non-empty list`);
  return c.map((x) => (typeof x === 'string' ? x : String(x)));
}

export function docText(t: Task, e: DocEntry, split: Split): string {
  const v = atDoc(e, 'doc_to_text', () => resolveDocTo('text', t.config.doc_to_text, e.doc, split.features, hasChoices(t)));
  if (typeof v === 'number') throw new TaskError(`${e.where}: doc_to_text gave an index (${v}); multiple-input tasks (Winogrande-style) are not supported by nomoat`);
  if (typeof v !== 'string') throw new TaskError(`${e.where}: doc_to_text gave ${JSON.stringify(v)}, not text`);
  return v;
}

/** The target as lm-eval keeps it: text, an index into the choices, or a list (several acceptable targets). */
export function docTarget(t: Task, e: DocEntry, split: Split): Resolved {
  return atDoc(e, 'doc_to_target', () => resolveDocTo('target', t.config.doc_to_target, e.doc, split.features, hasChoices(t)));
}

/** The target as text (an index picks a choice, a list its first entry), as few-shot examples and generate_until use it. */
export function targetText(t: Task, e: DocEntry, split: Split): string {
  const v = docTarget(t, e, split);
  if (typeof v === 'number' && hasChoices(t)) {
    const c = docChoices(t, e, split);
    if (v < 0 || v >= c.length) throw new TaskError(`${e.where}: doc_to_target is index ${v}, but there are ${c.length} choices`);
    return c[v];
  }
  if (Array.isArray(v)) return String(v[0]);
  return String(v);
}

export function docDescription(t: Task, e: DocEntry, split: Split): string {
  const d = t.config.description;
  return d === '' ? '' : String(atDoc(e, 'description', () => resolveDocTo('description', d, e.doc, split.features, false)));
}

/** lm-eval tests one document when it builds a task; so do we, so a bad template fails before the model loads. */
export function checkFirstDoc(t: Task): void {
  const e = t.evalDocs.docs[0];
  docText(t, e, t.evalDocs);
  docTarget(t, e, t.evalDocs);
  if (hasChoices(t)) docChoices(t, e, t.evalDocs);
}
