// Tokenizer over a GGUF vocab, following llama.cpp (llama-vocab.cpp) step for step so that ids match
// llama.cpp's test vectors: special-token partition, then SPM (`llama`) or byte-level BPE (`gpt2`) per fragment.
import { byteLevelDecode, byteLevelEncode } from './bytelevel.js';
import { TokenType, type GgufVocab } from './gguf-vocab.js';
import { Heap } from './heap.js';
import { preTokenizer, type PreTokenizer } from './pretokenize.js';
import { createByteDecoder, decodeBytes, utf8Bytes } from './stream.js';
import { STOP_TOKEN_TEXTS, type DecodeOptions, type EncodeOptions, type IncrementalDecoder, type SpecialToken, type Tokenizer } from './types.js';

/** A piece of input after special-token partition: raw text, or an already-resolved token id. */
type Fragment = { text: string } | { id: number };

const isCSpace = (c: string): boolean => c === ' ' || (c >= '\t' && c <= '\r'); // C isspace()

export class GgufTokenizer implements Tokenizer {
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
  private readonly toId = new Map<string, number>();
  private readonly pre: PreTokenizer | null;
  private readonly ranks = new Map<string, number>(); // "left right" → merge rank (gpt2)
  private readonly partitionOrder: number[]; // special/user-defined ids, longest text first
  private readonly rstrip = new Set<number>();
  private readonly bytesCache: (Uint8Array | undefined)[];
  private readonly wordCache = new Map<string, number[]>();

  constructor(readonly vocab: GgufVocab) {
    const { tokens, tokenTypes: types } = vocab;
    this.vocabSize = tokens.length;
    tokens.forEach((t, i) => {
      if (this.toId.has(t)) throw new Error(`GGUF vocab: duplicate token '${t}' at ids ${this.toId.get(t)} and ${i}`);
      this.toId.set(t, i);
    });
    this.bytesCache = new Array<Uint8Array | undefined>(tokens.length);
    if (vocab.model === 'gpt2') {
      this.pre = preTokenizer(vocab.pre);
      vocab.merges.forEach((m, rank) => {
        const sp = m.indexOf(' ', 1); // llama.cpp splits at the first space after the first character
        const key = sp < 0 ? '' : `${m.slice(0, sp)} ${m.slice(sp + 1)}`;
        if (sp >= 0 && !this.ranks.has(key)) this.ranks.set(key, rank);
      });
    } else {
      this.pre = null;
    }
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.padId = vocab.padId;
    this.chatTemplate = vocab.chatTemplate;
    this.addBosByDefault = vocab.addBos ?? (vocab.model === 'llama' ? true : (this.pre?.addBos ?? false));
    this.addEosByDefault = vocab.addEos ?? false;
    this.stripsLeadingSpace = vocab.model === 'llama' && (vocab.addSpacePrefix ?? true);

    const specialTypes = new Set<number>([TokenType.control, TokenType.userDefined, TokenType.unknown]);
    const specials = tokens.map((_, i) => i).filter((i) => specialTypes.has(types[i]));
    this.partitionOrder = [...specials].sort((a, b) => tokens[b].length - tokens[a].length || a - b);
    this.specialTokens = specials
      .filter((i) => types[i] !== TokenType.unknown)
      .map((i) => ({ id: i, text: tokens[i], kind: types[i] === TokenType.control ? 'control' : 'userDefined' }));
    // llama.cpp quirk keyed on general.name: Phi-3 special tokens swallow following whitespace.
    const name = (vocab.name ?? '').toLowerCase();
    if (name.includes('phi-3') || name.includes('phi3')) {
      for (const i of specials) this.rstrip.add(i);
      const s = this.toId.get('</s>');
      if (s !== undefined) this.rstrip.add(s);
      for (const t of ['<unk>', '<s>', '<|endoftext|>']) {
        const i = this.toId.get(t);
        if (i !== undefined) this.rstrip.delete(i);
      }
    }
    const stops = new Set<number>();
    if (vocab.eosId !== null) stops.add(vocab.eosId);
    if (vocab.eotId !== null) stops.add(vocab.eotId);
    for (const t of STOP_TOKEN_TEXTS) {
      const i = this.toId.get(t);
      if (i !== undefined && types[i] === TokenType.control) stops.add(i);
    }
    this.stopIds = [...stops];
  }

  idToToken(id: number): string | undefined {
    return this.vocab.tokens[id];
  }
  tokenToId(token: string): number | undefined {
    return this.toId.get(token);
  }
  isControl(id: number): boolean {
    const t = this.vocab.tokenTypes[id];
    return t === TokenType.control || t === TokenType.unknown;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addBos = options.addBos ?? this.addBosByDefault;
    const addEos = options.addEos ?? this.addEosByDefault;
    const out: number[] = [];
    if (addBos) {
      if (this.bosId === null) throw new Error('encode: addBos requested but the vocab has no BOS token');
      out.push(this.bosId);
    }
    const frags = text.length > 0 ? this.partition(text, options.parseSpecial ?? false) : [];
    let prevSpecial = true; // SPM: the first text fragment and any after a special token get the space prefix
    for (const f of frags) {
      if ('id' in f) {
        out.push(f.id);
        prevSpecial = true;
      } else if (this.vocab.model === 'llama') {
        const t = (this.stripsLeadingSpace && prevSpecial ? ' ' : '') + f.text;
        this.spm(t.replaceAll(' ', '▁'), out);
        prevSpecial = false;
      } else {
        this.bpe(f.text, out);
      }
    }
    if (addEos) {
      if (this.eosId === null) throw new Error('encode: addEos requested but the vocab has no EOS token');
      out.push(this.eosId);
    }
    return out;
  }

  /** llama.cpp tokenizer_st_partition: cut out special tokens, longest first. User-defined tokens are always cut
   *  out; control and unknown ones only when parsing special tokens. */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let frags: Fragment[] = [{ text }];
    const types = this.vocab.tokenTypes;
    for (const id of this.partitionOrder) {
      if (!parseSpecial && types[id] !== TokenType.userDefined) continue;
      const tok = this.vocab.tokens[id];
      const next: Fragment[] = [];
      for (const f of frags) {
        if ('id' in f) {
          next.push(f);
          continue;
        }
        let rest = f.text;
        for (;;) {
          const at = rest.indexOf(tok);
          if (at < 0) break;
          if (at > 0) next.push({ text: rest.slice(0, at) });
          next.push({ id });
          let after = at + tok.length;
          if (this.rstrip.has(id)) while (after < rest.length && isCSpace(rest[after])) after++;
          rest = rest.slice(after);
        }
        if (rest.length > 0) next.push({ text: rest });
      }
      frags = next;
    }
    return frags;
  }

  /** SentencePiece BPE (llm_tokenizer_spm): repeatedly merge the adjacent pair whose concatenation is the
   *  highest-scoring vocab entry (ties: leftmost). Input has spaces already escaped to ▁. */
  private spm(text: string, out: number[]): void {
    const sym = Array.from(text); // one symbol per code point; merged symbols grow, consumed ones become ''
    const n = sym.length;
    if (n === 0) return;
    const prev = sym.map((_, i) => i - 1);
    const next = sym.map((_, i) => (i + 1 < n ? i + 1 : -1));
    type Bigram = { left: number; right: number; score: number; size: number };
    const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const joined = sym[left] + sym[right];
      const id = this.toId.get(joined);
      if (id === undefined) return;
      queue.push({ left, right, score: this.vocab.scores[id], size: joined.length });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
      const l = sym[b.left], r = sym[b.right];
      if (l === '' || r === '' || l.length + r.length !== b.size) continue; // stale: a side changed since queued
      sym[b.left] = l + r;
      sym[b.right] = '';
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    // Every merged symbol is a vocab entry (it was queued because it is); unmerged code points that are not in the
    // vocab fall back to byte tokens <0xXX> (llama.cpp resegment).
    for (let i = 0; i !== -1; i = next[i]) {
      const id = this.toId.get(sym[i]);
      if (id !== undefined) out.push(id);
      else for (const b of utf8Bytes(sym[i])) out.push(this.byteToken(b));
    }
  }

  private byteToken(b: number): number {
    const hex = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    const id = this.toId.get(hex) ?? this.toId.get(String.fromCharCode(b));
    if (id !== undefined) return id;
    if (this.vocab.unkId !== null) return this.vocab.unkId;
    throw new Error(`encode: no byte token ${hex} and no <unk> in the vocab`);
  }

  /** Byte-level BPE (llm_tokenizer_bpe_session): pre-tokenize, then merge by rank inside each word. */
  private bpe(text: string, out: number[]): void {
    const pre = this.pre as PreTokenizer;
    for (const piece of pre.split(text)) {
      const word = byteLevelEncode(piece);
      let ids = this.wordCache.get(word);
      if (ids === undefined) {
        ids = this.bpeWord(word, pre.ignoreMerges);
        if (this.wordCache.size > 100_000) this.wordCache.clear();
        this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private bpeWord(word: string, ignoreMerges: boolean): number[] {
    if (ignoreMerges) {
      const whole = this.toId.get(word);
      if (whole !== undefined) return [whole];
    }
    const sym = Array.from(word);
    const n = sym.length;
    const prev = sym.map((_, i) => i - 1);
    const next = sym.map((_, i) => (i + 1 < n ? i + 1 : -1));
    type Bigram = { left: number; right: number; text: string; rank: number };
    const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const rank = this.ranks.get(`${sym[left]} ${sym[right]}`);
      if (rank !== undefined) queue.push({ left, right, text: sym[left] + sym[right], rank });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
      const l = sym[b.left], r = sym[b.right];
      if (l === '' || r === '' || l + r !== b.text) continue;
      sym[b.left] = b.text;
      sym[b.right] = '';
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]) {
      const id = this.toId.get(sym[i]);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // llama.cpp looks each byte up as a one-byte string; only ASCII can match a vocab entry that way.
      for (const ch of sym[i]) {
        const one = ch.charCodeAt(0) < 0x80 ? this.toId.get(ch) : undefined;
        if (one !== undefined) ids.push(one);
      }
    }
    return ids;
  }

  /** llama.cpp token_to_piece: normal pieces unescaped, byte tokens as their byte, special tokens as their text. */
  tokenBytes(id: number): Uint8Array {
    const cached = this.bytesCache[id];
    if (cached !== undefined) return cached;
    const text = this.vocab.tokens[id];
    if (text === undefined) throw new Error(`decode: token id ${id} out of range (vocab size ${this.vocabSize})`);
    const type = this.vocab.tokenTypes[id];
    let bytes: Uint8Array;
    if (type === TokenType.byte && /^<0x[0-9A-Fa-f]{2}>$/.test(text)) bytes = Uint8Array.of(parseInt(text.slice(3, 5), 16));
    else if (type === TokenType.normal) bytes = this.vocab.model === 'llama' ? utf8Bytes(text.replaceAll('▁', ' ')) : byteLevelDecode(text);
    else if (type === TokenType.control || type === TokenType.userDefined || type === TokenType.unknown) bytes = utf8Bytes(text);
    else bytes = new Uint8Array(0); // unused/undefined tokens print nothing, as in llama.cpp
    this.bytesCache[id] = bytes;
    return bytes;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return decodeBytes(this, ids, options);
  }

  createDecoder(options: DecodeOptions = {}): IncrementalDecoder {
    return createByteDecoder(this, options);
  }
}

