// The tokenizer contract shared by every implementation (Hugging Face tokenizer.json, GGUF vocab, trained BPE).

/** Options for `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Prepend the BOS token. Default: the tokenizer's own setting (`add_bos_token` / `tokenizer.ggml.add_bos_token`). */
  addBos?: boolean;
  /** Also append EOS. Default: the tokenizer's own setting (almost always false). */
  addEos?: boolean;
  /** Turn the text of control/special tokens (e.g. `<|eot_id|>`) into their ids. Default false: text is text,
   *  so user input cannot inject control tokens. Chat-template output is encoded with `parseSpecial: true`. */
  parseSpecial?: boolean;
}

/** Options for `Tokenizer.decode` and incremental decoders. */
export interface DecodeOptions {
  /** Drop control/special tokens (BOS, EOS, `<|im_end|>`…) from the text. Default false. */
  skipSpecial?: boolean;
}

/** One special (control or user-defined) token. */
export interface SpecialToken {
  id: number;
  text: string;
  /** control: BOS/EOS/chat markers, skipped by `skipSpecial`; userDefined: added text tokens, always rendered. */
  kind: 'control' | 'userDefined';
}

/** Streaming detokenizer: feed ids as they are generated, get back only complete UTF-8 text. */
export interface IncrementalDecoder {
  /** Adds one token and returns the text that became complete (possibly ''). */
  push(id: number): string;
  /** Returns what is still buffered (incomplete UTF-8 becomes U+FFFD) and resets. */
  flush(): string;
}

export interface Tokenizer {
  /** Number of ids (highest id + 1), added tokens included. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Ids that end generation: EOS plus end-of-turn markers found in the vocab (`<|eot_id|>`, `<|im_end|>`, `<|end|>`…). */
  readonly stopIds: readonly number[];
  readonly specialTokens: readonly SpecialToken[];
  /** Jinja chat template shipped with the tokenizer, if any. */
  readonly chatTemplate: string | null;
  /** Whether `encode` adds BOS when `addBos` is not given. */
  readonly addBosByDefault: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** True for control tokens (the ones `skipSpecial` drops). */
  isControl(id: number): boolean;
  /** The bytes token `id` contributes to decoded text (before the one leading-space strip of SPM vocabularies). */
  tokenBytes(id: number): Uint8Array;
  createDecoder(options?: DecodeOptions): IncrementalDecoder;
}

/** Token texts that llama.cpp treats as end-of-generation besides EOS (llama-vocab.cpp's EOG list, Llama subset). */
export const STOP_TOKEN_TEXTS: readonly string[] = [
  '<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>',
];
