// The tokenizer part of a GGUF file's metadata (`tokenizer.ggml.*` keys) as a plain, validated object.

/** llama.cpp's LLAMA_TOKEN_TYPE values stored in `tokenizer.ggml.token_type`. */
export const TokenType = {
  undefined: 0,
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** The vocab models we implement: `llama` = SentencePiece (BPE by score, byte fallback), `gpt2` = byte-level BPE. */
export type GgufVocabModel = 'llama' | 'gpt2';

export interface GgufVocab {
  model: GgufVocabModel;
  /** `tokenizer.ggml.pre`: pre-tokenizer name for gpt2 vocabs ('default' when absent). */
  pre: string;
  tokens: string[];
  /** Per-token scores (SPM merge priority: higher merges first). Length = tokens.length; zeros when absent. */
  scores: number[];
  /** Per-token TokenType values. Length = tokens.length; all normal when absent. */
  tokenTypes: number[];
  /** gpt2 only: merges as "left right", highest priority first. */
  merges: string[];
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  eotId: number | null;
  /** Undefined = the model's default (llama.cpp: SPM true; gpt2 true only for the Llama-3 pre-tokenizer family). */
  addBos?: boolean;
  addEos?: boolean;
  /** SPM: prepend a space to text (default true). */
  addSpacePrefix?: boolean;
  chatTemplate: string | null;
  /** `general.name`; llama.cpp keys one per-model quirk on it (Phi-3 strips spaces after special tokens). */
  name: string | null;
}

/** The GGUF value type each tokenizer key is written with (what llama.cpp's loader requires). */
export const GGUF_TOKENIZER_KEY_TYPES: Record<string, 'string' | 'uint32' | 'bool' | 'string[]' | 'float32[]' | 'int32[]'> = {
  'tokenizer.ggml.model': 'string',
  'tokenizer.ggml.pre': 'string',
  'tokenizer.ggml.tokens': 'string[]',
  'tokenizer.ggml.scores': 'float32[]',
  'tokenizer.ggml.token_type': 'int32[]',
  'tokenizer.ggml.merges': 'string[]',
  'tokenizer.ggml.bos_token_id': 'uint32',
  'tokenizer.ggml.eos_token_id': 'uint32',
  'tokenizer.ggml.unknown_token_id': 'uint32',
  'tokenizer.ggml.padding_token_id': 'uint32',
  'tokenizer.ggml.eot_token_id': 'uint32',
  'tokenizer.ggml.add_bos_token': 'bool',
  'tokenizer.ggml.add_eos_token': 'bool',
  'tokenizer.ggml.add_space_prefix': 'bool',
  'tokenizer.chat_template': 'string',
};

function arr(meta: Map<string, unknown>, key: string): unknown[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v as unknown[];
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  throw new Error(`GGUF metadata ${key}: expected an array, got ${typeof v}`);
}
function strArr(meta: Map<string, unknown>, key: string): string[] | undefined {
  const a = arr(meta, key);
  if (a === undefined) return undefined;
  a.forEach((x, i) => {
    if (typeof x !== 'string') throw new Error(`GGUF metadata ${key}[${i}]: expected a string`);
  });
  return a as string[];
}
function numArr(meta: Map<string, unknown>, key: string, n: number): number[] | undefined {
  const a = arr(meta, key);
  if (a === undefined) return undefined;
  if (a.length < n) throw new Error(`GGUF metadata ${key}: ${a.length} entries for ${n} tokens`);
  return a.slice(0, n).map((x, i) => {
    if (typeof x === 'number') return x;
    if (typeof x === 'bigint') return Number(x);
    throw new Error(`GGUF metadata ${key}[${i}]: expected a number`);
  });
}
function id(meta: Map<string, unknown>, key: string, n: number): number | null | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  const x = typeof v === 'bigint' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isInteger(x)) throw new Error(`GGUF metadata ${key}: expected an integer`);
  return x >= 0 && x < n ? x : null; // llama.cpp ignores out-of-range ids
}
function bool(meta: Map<string, unknown>, key: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new Error(`GGUF metadata ${key}: expected a bool`);
  return v;
}
function str(meta: Map<string, unknown>, key: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`GGUF metadata ${key}: expected a string`);
  return v;
}

/** Reads and validates the tokenizer keys of GGUF metadata (values as a GGUF reader returns them). */
export function ggufVocabFromMetadata(meta: Map<string, unknown>): GgufVocab {
  const model = str(meta, 'tokenizer.ggml.model');
  if (model !== 'llama' && model !== 'gpt2') {
    throw new Error(`GGUF metadata tokenizer.ggml.model: unsupported '${model ?? '(missing)'}' (supported: llama, gpt2)`);
  }
  const tokens = strArr(meta, 'tokenizer.ggml.tokens');
  if (tokens === undefined) throw new Error('GGUF metadata tokenizer.ggml.tokens: missing');
  const n = tokens.length;
  const merges = strArr(meta, 'tokenizer.ggml.merges') ?? [];
  if (model === 'gpt2' && merges.length === 0) throw new Error('GGUF metadata tokenizer.ggml.merges: missing for a gpt2 vocab');
  // llama.cpp's defaults when the id keys are absent: SPM bos=1 eos=2 unk=0; gpt2 bos=eos=11.
  const dflt = (v: number | null | undefined, d: number | null): number | null => (v === undefined ? (d !== null && d < n ? d : null) : v);
  return {
    model,
    pre: str(meta, 'tokenizer.ggml.pre') ?? 'default',
    tokens,
    scores: numArr(meta, 'tokenizer.ggml.scores', n) ?? new Array<number>(n).fill(0),
    tokenTypes: numArr(meta, 'tokenizer.ggml.token_type', n) ?? new Array<number>(n).fill(TokenType.normal),
    merges,
    bosId: dflt(id(meta, 'tokenizer.ggml.bos_token_id', n), model === 'llama' ? 1 : 11),
    eosId: dflt(id(meta, 'tokenizer.ggml.eos_token_id', n), model === 'llama' ? 2 : 11),
    unkId: dflt(id(meta, 'tokenizer.ggml.unknown_token_id', n), model === 'llama' ? 0 : null),
    padId: dflt(id(meta, 'tokenizer.ggml.padding_token_id', n), null),
    eotId: dflt(id(meta, 'tokenizer.ggml.eot_token_id', n), null),
    addBos: bool(meta, 'tokenizer.ggml.add_bos_token'),
    addEos: bool(meta, 'tokenizer.ggml.add_eos_token'),
    addSpacePrefix: bool(meta, 'tokenizer.ggml.add_space_prefix'),
    chatTemplate: str(meta, 'tokenizer.chat_template') ?? null,
    name: str(meta, 'general.name') ?? null,
  };
}
