// Tokenizer over a Hugging Face tokenizer.json (+ tokenizer_config.json), encoding and decoding through the
// @huggingface/tokenizers package; BOS/EOS, special-token parsing and streaming decode handled here.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tokenizersLib from '@huggingface/tokenizers';
import { byteLevelDecode } from './bytelevel.js';
import { chatTemplateFromConfig } from './chat-config.js';
import { configTokenText, flattenComponent, type TokenizerConfig, type TokenizerJson } from './hf-json.js';
import { createByteDecoder, utf8Bytes } from './stream.js';
import { STOP_TOKEN_TEXTS, type DecodeOptions, type EncodeOptions, type IncrementalDecoder, type SpecialToken, type Tokenizer } from './types.js';

/** The part of the library's Tokenizer class we use. (Its published .d.ts files use extension-less relative
 *  imports that NodeNext resolution cannot follow, so the class is typed here.) */
interface HfLib {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}
const HfLib = (tokenizersLib as unknown as { Tokenizer: new (json: object, config: object) => HfLib }).Tokenizer;

/** How token strings map to bytes, read from the decoder pipeline. */
type PieceMode = 'byteLevel' | 'metaspace' | 'library';

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly stopIds: readonly number[];
  readonly specialTokens: readonly SpecialToken[];
  readonly chatTemplate: string | null;
  readonly addBosByDefault: boolean;
  readonly addEosByDefault: boolean;
  readonly stripsLeadingSpace: boolean;
  private readonly lib: HfLib;
  private plainLib: HfLib | null = null; // same tokenizer without special added tokens (parseSpecial: false)
  private readonly control = new Set<number>();
  private readonly addedText = new Map<number, string>();
  private readonly mode: PieceMode;
  private readonly bytesCache = new Map<number, Uint8Array>();

  constructor(readonly json: TokenizerJson, readonly config: TokenizerConfig = {}) {
    this.lib = new HfLib(json, config);
    let maxId = -1;
    for (const id of this.lib.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const specials: SpecialToken[] = [];
    for (const t of json.added_tokens) {
      this.addedText.set(t.id, t.content);
      if (t.special === true) this.control.add(t.id);
      specials.push({ id: t.id, text: t.content, kind: t.special === true ? 'control' : 'userDefined' });
    }
    this.specialTokens = specials;
    const idOf = (t: string | null): number | null => (t === null ? null : (this.lib.token_to_id(t) ?? null));
    this.bosId = idOf(configTokenText(config.bos_token));
    this.eosId = idOf(configTokenText(config.eos_token));
    this.padId = idOf(configTokenText(config.pad_token));
    // Default BOS/EOS: the config flags when present, else whatever the post-processor adds.
    const withSpecials = this.lib.encode('', { add_special_tokens: true }).ids;
    this.addBosByDefault = config.add_bos_token ?? (this.bosId !== null && withSpecials[0] === this.bosId);
    this.addEosByDefault = config.add_eos_token ?? (this.eosId !== null && withSpecials.at(-1) === this.eosId);
    this.chatTemplate = chatTemplateFromConfig(config);
    const stops = new Set<number>();
    if (this.eosId !== null) stops.add(this.eosId);
    for (const t of STOP_TOKEN_TEXTS) {
      const id = this.lib.token_to_id(t);
      if (id !== undefined && this.control.has(id)) stops.add(id);
    }
    this.stopIds = [...stops];

    const steps = flattenComponent(json.decoder);
    const has = (type: string): boolean => steps.some((s) => s.type === type);
    this.mode = has('ByteLevel') ? 'byteLevel' : has('ByteFallback') || has('Metaspace') || has('Replace') ? 'metaspace' : 'library';
    this.stripsLeadingSpace =
      steps.some((s) => s.type === 'Strip' && s.content === ' ' && typeof s.start === 'number' && s.start > 0) ||
      steps.some((s) => s.type === 'Metaspace' && s.prepend_scheme !== 'never' && s.add_prefix_space !== false);
  }

  /** Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`. */
  static fromDirectory(dir: string): HfTokenizer {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
    const cfgPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as TokenizerConfig) : {};
    return new HfTokenizer(json, config);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }
  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }
  isControl(id: number): boolean {
    return this.control.has(id);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    // Text that contains no special token's text tokenizes the same either way; skip building the second tokenizer.
    const plainNeeded = !(options.parseSpecial ?? false) && this.json.added_tokens.some((t) => t.special === true && text.includes(t.content));
    const lib = plainNeeded ? this.plain() : this.lib;
    const ids = text.length > 0 ? lib.encode(text, { add_special_tokens: false }).ids : [];
    if (options.addBos ?? this.addBosByDefault) {
      if (this.bosId === null) throw new Error('encode: addBos requested but tokenizer_config.json names no bos_token');
      ids.unshift(this.bosId);
    }
    if (options.addEos ?? this.addEosByDefault) {
      if (this.eosId === null) throw new Error('encode: addEos requested but tokenizer_config.json names no eos_token');
      ids.push(this.eosId);
    }
    return ids;
  }

  /** A second library tokenizer whose added-token list keeps only non-special tokens, so that the text of special
   *  tokens is tokenized as ordinary text (transformers' `split_special_tokens=True`). */
  private plain(): HfLib {
    if (this.plainLib === null) {
      const json = { ...this.json, added_tokens: this.json.added_tokens.filter((t) => t.special !== true) };
      this.plainLib = new HfLib(json, this.config);
    }
    return this.plainLib;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    // Exact text unless the config asks for transformers' clean-up (" ," → ","…); the library would default it on.
    const cleanup = this.config.clean_up_tokenization_spaces === true;
    return this.lib.decode([...ids], { skip_special_tokens: options.skipSpecial ?? false, clean_up_tokenization_spaces: cleanup });
  }

  tokenBytes(id: number): Uint8Array {
    let b = this.bytesCache.get(id);
    if (b !== undefined) return b;
    const added = this.addedText.get(id);
    const tok = this.lib.id_to_token(id);
    if (tok === undefined) throw new Error(`decode: token id ${id} out of range (vocab size ${this.vocabSize})`);
    if (added !== undefined) b = utf8Bytes(added);
    else if (this.mode === 'byteLevel') b = byteLevelDecode(tok);
    else if (this.mode === 'metaspace') {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok);
      b = m !== null ? Uint8Array.of(parseInt(m[1], 16)) : utf8Bytes(tok.replaceAll('▁', ' '));
    } else b = utf8Bytes(this.lib.decode([id]));
    this.bytesCache.set(id, b);
    return b;
  }

  createDecoder(options: DecodeOptions = {}): IncrementalDecoder {
    return createByteDecoder(this, options);
  }
}
