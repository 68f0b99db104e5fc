// Shapes of Hugging Face `tokenizer.json` and `tokenizer_config.json`, limited to the fields this folder reads
// or writes (the files hold more; unknown fields pass through untouched).

export interface HfAddedToken {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

export interface HfBpeModel {
  type: 'BPE';
  vocab: Record<string, number>;
  /** "a b" strings (older files) or [a, b] pairs (newer files). */
  merges: (string | [string, string])[];
  dropout?: number | null;
  unk_token?: string | null;
  continuing_subword_prefix?: string | null;
  end_of_word_suffix?: string | null;
  fuse_unk?: boolean;
  byte_fallback?: boolean;
  ignore_merges?: boolean;
}

/** A pipeline component (normalizer, pre-tokenizer, decoder, post-processor): a `type` and its fields. */
export interface HfComponent {
  type: string;
  [field: string]: unknown;
}

export interface TokenizerJson {
  version?: string;
  added_tokens: HfAddedToken[];
  normalizer: HfComponent | null;
  pre_tokenizer: HfComponent | null;
  post_processor: HfComponent | null;
  decoder: HfComponent | null;
  model: HfBpeModel | HfComponent;
  [field: string]: unknown;
}

/** A token in tokenizer_config.json: a plain string or an AddedToken-like object. */
export type HfConfigToken = string | { content: string; [field: string]: unknown } | null;

export interface TokenizerConfig {
  bos_token?: HfConfigToken;
  eos_token?: HfConfigToken;
  unk_token?: HfConfigToken;
  pad_token?: HfConfigToken;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: string | { name: string; template: string }[];
  [field: string]: unknown;
}

/** The text of a config token, or null. */
export function configTokenText(t: HfConfigToken | undefined): string | null {
  if (t === undefined || t === null) return null;
  return typeof t === 'string' ? t : t.content;
}

export function isBpeModel(m: TokenizerJson['model']): m is HfBpeModel {
  return m.type === 'BPE';
}

/** Merges as [left, right] pairs whatever the file's format. */
export function mergePairs(model: HfBpeModel): [string, string][] {
  return model.merges.map((m, i) => {
    if (Array.isArray(m)) return m;
    const sp = m.indexOf(' ', 1);
    if (sp < 0) throw new Error(`tokenizer.json model.merges[${i}]: '${m}' has no space`);
    return [m.slice(0, sp), m.slice(sp + 1)];
  });
}

/** Flattens a component and its Sequence children into one list (for looking up e.g. a ByteLevel step). */
export function flattenComponent(c: HfComponent | null | undefined): HfComponent[] {
  if (c === null || c === undefined) return [];
  if (c.type !== 'Sequence') return [c];
  const kids = (c.decoders ?? c.normalizers ?? c.pretokenizers ?? c.processors ?? []) as HfComponent[];
  return kids.flatMap((k) => flattenComponent(k));
}
