// Conversion between Hugging Face tokenizer.json/tokenizer_config.json and GGUF `tokenizer.ggml.*` metadata,
// following llama.cpp's convert_hf_to_gguf.py (token types, "a b" merges, pre-tokenizer name, add_bos/add_eos,
// chat template) and, back, the layout transformers writes for Llama (SPM-as-BPE with byte fallback) and GPT-2
// style byte-level BPE tokenizers. One deliberate difference: for SPM vocabularies llama.cpp's LlamaHfVocab
// writes every score as -1000, which loses the merge order; we write score = -(rank of the first merge that
// produces the token), so llama.cpp's score-driven SPM merging reproduces the BPE merge order.
import { ggufVocabFromMetadata, TokenType, type GgufVocab } from './gguf-vocab.js';
import { chatTemplateFromConfig } from './chat-config.js';
import { configTokenText, flattenComponent, isBpeModel, mergePairs, type HfAddedToken, type HfBpeModel, type HfComponent, type TokenizerConfig, type TokenizerJson } from './hf-json.js';

/** The canonical pre-tokenizer regexes as they appear in tokenizer.json files. */
const HF_GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const HF_LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const HF_QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEEPSEEK_CODER_REGEXES = ['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[一-龥ࠀ-一가-퟿]+'];
const DEFAULT_REGEXES = ['[\\p{P}\\$\\+<=>\\^~\\|]+', HF_GPT2_REGEX.replace(/\|\\s\+$/, ''), '\\p{N}+', '[0-9][0-9][0-9]'];

export type VocabKind = 'llama' | 'gpt2';

/** Which GGUF vocab model a tokenizer.json corresponds to. */
export function vocabKindOf(json: TokenizerJson): VocabKind {
  if (!isBpeModel(json.model)) throw new Error(`tokenizer.json model.type '${json.model.type}': only BPE tokenizers convert to GGUF`);
  if (json.model.byte_fallback === true) return 'llama';
  const steps = [...flattenComponent(json.pre_tokenizer), ...flattenComponent(json.decoder)];
  if (steps.some((s) => s.type === 'ByteLevel')) return 'gpt2';
  throw new Error('tokenizer.json: BPE without byte_fallback and without a ByteLevel step is not a Llama-family tokenizer');
}

/** Guesses `tokenizer.ggml.pre` from the pre-tokenizer of a byte-level tokenizer.json (llama.cpp hashes a test
 *  tokenization instead; we recognise the patterns of the families we support). */
export function detectPreTokenizer(json: TokenizerJson): string {
  const steps = flattenComponent(json.pre_tokenizer);
  const regexes = steps.filter((s) => s.type === 'Split').map((s) => (s.pattern as { Regex?: string; String?: string }).Regex ?? '');
  const byteLevel = steps.find((s) => s.type === 'ByteLevel');
  // Individual digits: a Digits step, or (as we write it) a Split on \p{N}, which unlike the JavaScript library's
  // Digits also catches non-ASCII numerals such as '½', as llama.cpp and the Rust library do.
  const digits = steps.some((s) => s.type === 'Digits' && s.individual_digits === true) || regexes.at(-1) === '\\p{N}';
  if (regexes.at(-1) === '\\p{N}') regexes.pop();
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(regexes, [HF_LLAMA3_REGEX])) return 'llama-bpe';
  if (same(regexes, [HF_QWEN2_REGEX])) return 'qwen2';
  if (same(regexes, DEEPSEEK_CODER_REGEXES) && digits) return 'deepseek-coder';
  if (same(regexes, DEFAULT_REGEXES)) return 'default';
  if (regexes.length === 0 && byteLevel !== undefined && byteLevel.use_regex !== false) return digits ? 'smollm' : 'gpt-2';
  throw new Error(`tokenizer.json pre_tokenizer: unrecognised (${JSON.stringify(json.pre_tokenizer)}); pass options.pre`);
}

/** Whether a TemplateProcessing post-processor puts `token` first (where 'first') or last in single sequences. */
function postProcessorAdds(json: TokenizerJson, token: string | null, where: 'first' | 'last'): boolean {
  if (token === null) return false;
  const tp = flattenComponent(json.post_processor).find((c) => c.type === 'TemplateProcessing');
  const single = (tp?.single ?? []) as { SpecialToken?: { id: string } }[];
  const item = where === 'first' ? single[0] : single.at(-1);
  return item?.SpecialToken?.id === token;
}

/** Orders merges of an SPM vocab the way transformers' SentencePieceExtractor does: for every piece, each split
 *  into two vocab pieces is a merge; merges sorted by the merged piece's score (high first), then by ids. */
export function mergesFromScores(v: GgufVocab): [string, string][] {
  const ids = new Map<string, number>();
  v.tokens.forEach((t, i) => {
    if (v.tokenTypes[i] === TokenType.normal && !ids.has(t)) ids.set(t, i);
  });
  const found: { l: string; r: string; score: number; id: number; li: number; ri: number }[] = [];
  v.tokens.forEach((piece, id) => {
    if (v.tokenTypes[id] !== TokenType.normal) return;
    const cps = Array.from(piece);
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join(''), r = cps.slice(k).join('');
      const li = ids.get(l), ri = ids.get(r);
      if (li !== undefined && ri !== undefined) found.push({ l, r, score: v.scores[id], id, li, ri });
    }
  });
  found.sort((a, b) => b.score - a.score || a.id - b.id || a.li - b.li || a.ri - b.ri);
  return found.map((m) => [m.l, m.r]);
}

export interface ToGgufOptions {
  /** Override the detected `tokenizer.ggml.pre` (byte-level tokenizers only). */
  pre?: string;
}

/** tokenizer.json (+ tokenizer_config.json) → GGUF tokenizer metadata (value types: GGUF_TOKENIZER_KEY_TYPES). */
export function tokenizerJsonToGgufMetadata(json: TokenizerJson, config: TokenizerConfig = {}, options: ToGgufOptions = {}): Map<string, unknown> {
  const kind = vocabKindOf(json);
  const model = json.model as HfBpeModel;
  const tokens: (string | undefined)[] = [];
  for (const [t, i] of Object.entries(model.vocab)) tokens[i] = t;
  const added = new Map<number, HfAddedToken>(json.added_tokens.map((t) => [t.id, t]));
  for (const t of json.added_tokens) tokens[t.id] = t.content;
  const toId = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (t !== undefined && !toId.has(t)) toId.set(t, i);
  });
  for (const t of json.added_tokens) toId.set(t.content, t.id); // added tokens win, as in the library
  const unk = model.unk_token ?? null;
  const types = Array.from(tokens, (t, i): number => {
    if (t === undefined) return TokenType.unused;
    const a = added.get(i);
    if (kind === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) return TokenType.byte;
    if (kind === 'llama' && t === unk) return TokenType.unknown;
    if (a !== undefined) return a.special === true ? TokenType.control : TokenType.userDefined;
    return TokenType.normal;
  });
  const texts = Array.from(tokens, (t, i) => t ?? `[PAD${i}]`);
  const meta = new Map<string, unknown>();
  meta.set('tokenizer.ggml.model', kind);
  const pairs = mergePairs(model);
  if (kind === 'gpt2') {
    meta.set('tokenizer.ggml.pre', options.pre ?? detectPreTokenizer(json));
    meta.set('tokenizer.ggml.tokens', texts);
    meta.set('tokenizer.ggml.token_type', types);
    meta.set('tokenizer.ggml.merges', pairs.map(([a, b]) => `${a} ${b}`));
  } else {
    const firstRank = new Map<string, number>();
    pairs.forEach(([a, b], r) => {
      if (!firstRank.has(a + b)) firstRank.set(a + b, r);
    });
    const scores = texts.map((t, i) => {
      if (types[i] !== TokenType.normal) return 0;
      const r = firstRank.get(t);
      return r !== undefined ? -r : Array.from(t).length > 1 ? -1e9 : 0; // never-merged multi-char pieces last
    });
    meta.set('tokenizer.ggml.pre', 'default');
    meta.set('tokenizer.ggml.tokens', texts);
    meta.set('tokenizer.ggml.scores', scores);
    meta.set('tokenizer.ggml.token_type', types);
    const norm = flattenComponent(json.normalizer);
    const prepends = norm.some((s) => s.type === 'Prepend' && s.prepend === '▁') ||
      flattenComponent(json.pre_tokenizer).some((s) => s.type === 'Metaspace' && s.prepend_scheme !== 'never');
    meta.set('tokenizer.ggml.add_space_prefix', prepends);
  }
  const setId = (key: string, id: number | null | undefined): void => {
    if (id !== null && id !== undefined) meta.set(key, id);
  };
  const bos = configTokenText(config.bos_token), eos = configTokenText(config.eos_token);
  const idOf = (t: string | null): number | undefined => (t === null ? undefined : toId.get(t));
  setId('tokenizer.ggml.bos_token_id', idOf(bos));
  setId('tokenizer.ggml.eos_token_id', idOf(eos));
  setId('tokenizer.ggml.unknown_token_id', idOf(unk));
  setId('tokenizer.ggml.padding_token_id', idOf(configTokenText(config.pad_token)));
  // Same rule as HfTokenizer: the config flags when present, else what the post-processor adds.
  meta.set('tokenizer.ggml.add_bos_token', config.add_bos_token ?? (idOf(bos) !== undefined && postProcessorAdds(json, bos, 'first')));
  meta.set('tokenizer.ggml.add_eos_token', config.add_eos_token ?? (idOf(eos) !== undefined && postProcessorAdds(json, eos, 'last')));
  const chat = chatTemplateFromConfig(config);
  if (chat !== null) meta.set('tokenizer.chat_template', chat);
  return meta;
}

/** Pre-tokenizer pipeline of tokenizer.json for a llama.cpp pre-tokenizer name. */
function hfPreTokenizer(pre: string): HfComponent {
  const split = (r: string): HfComponent => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false });
  const byteLevel = (useRegex: boolean): HfComponent => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const digits: HfComponent = split('\\p{N}'); // see detectPreTokenizer
  const seq = (...p: HfComponent[]): HfComponent => ({ type: 'Sequence', pretokenizers: p });
  const family: Record<string, () => HfComponent> = {
    'gpt-2': () => byteLevel(true),
    'llama-bpe': () => seq(split(HF_LLAMA3_REGEX), byteLevel(false)),
    qwen2: () => seq(split(HF_QWEN2_REGEX), byteLevel(false)),
    smollm: () => seq(digits, byteLevel(true)),
    'deepseek-coder': () => seq(...DEEPSEEK_CODER_REGEXES.map(split), digits, byteLevel(false)),
    default: () => seq(...DEFAULT_REGEXES.map(split), byteLevel(false)),
  };
  const alias: Record<string, string> = { llama3: 'llama-bpe', 'llama-v3': 'llama-bpe', 'phi-2': 'gpt-2', starcoder: 'smollm' };
  const f = family[alias[pre] ?? pre];
  if (f === undefined) throw new Error(`tokenizer.ggml.pre '${pre}': no tokenizer.json pre-tokenizer known (have: ${Object.keys(family).join(', ')})`);
  return f();
}

/** GGUF tokenizer metadata → tokenizer.json + tokenizer_config.json. */
export function ggufMetadataToTokenizerJson(meta: Map<string, unknown>): { tokenizerJson: TokenizerJson; tokenizerConfig: TokenizerConfig } {
  const v = ggufVocabFromMetadata(meta);
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const addedTypes = new Set<number>([TokenType.control, TokenType.userDefined, TokenType.unknown]);
  const added_tokens: HfAddedToken[] = v.tokens.flatMap((content, id) =>
    addedTypes.has(v.tokenTypes[id])
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: v.tokenTypes[id] !== TokenType.userDefined }]
      : []);
  const text = (id: number | null): string | null => (id === null ? null : v.tokens[id]);
  const spm = v.model === 'llama';
  const addBos = v.addBos ?? spm;
  const addEos = v.addEos ?? false;
  const spacePrefix = spm && (v.addSpacePrefix ?? true);
  const model: HfBpeModel = {
    type: 'BPE',
    dropout: null,
    unk_token: text(v.unkId),
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: spm,
    byte_fallback: spm,
    ignore_merges: !spm && ['llama-bpe', 'llama3', 'llama-v3'].includes(v.pre),
    vocab,
    merges: spm ? mergesFromScores(v) : v.merges.map((m) => {
      const sp = m.indexOf(' ', 1);
      return [m.slice(0, sp), m.slice(sp + 1)] as [string, string];
    }),
  };
  const replaceSpace: HfComponent = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const tokenizerJson: TokenizerJson = {
    version: '1.0',
    added_tokens,
    normalizer: spm ? (spacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpace] } : replaceSpace) : null,
    pre_tokenizer: spm ? null : hfPreTokenizer(v.pre),
    post_processor: null,
    decoder: spm
      ? { type: 'Sequence', decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
        ...(spacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : [])] }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model,
  };
  const tokenizerConfig: TokenizerConfig = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: text(v.bosId),
    eos_token: text(v.eosId),
    unk_token: text(v.unkId),
    pad_token: text(v.padId),
    clean_up_tokenization_spaces: false,
    ...(v.chatTemplate !== null ? { chat_template: v.chatTemplate } : {}),
  };
  return { tokenizerJson, tokenizerConfig };
}
