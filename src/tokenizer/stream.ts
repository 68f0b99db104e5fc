// Byte-exact detokenization shared by all tokenizers: concatenate token bytes, decode UTF-8, and a streaming variant
// that emits only complete characters (so byte-fallback pieces such as <0xE2><0x82><0xAC> come out as one "€").
import type { DecodeOptions, IncrementalDecoder } from './types.js';

/** What a tokenizer must provide for byte-level decoding. */
export interface ByteSource {
  tokenBytes(id: number): Uint8Array;
  isControl(id: number): boolean;
  /** SPM vocabularies prepend a space when encoding; decoding removes one leading space of the whole text. */
  readonly stripsLeadingSpace: boolean;
}

/** Decodes a whole id sequence to text (invalid UTF-8 becomes U+FFFD). */
export function decodeBytes(src: ByteSource, ids: readonly number[], options: DecodeOptions = {}): string {
  const dec = createByteDecoder(src, options);
  let out = '';
  for (const id of ids) out += dec.push(id);
  return out + dec.flush();
}

/** Streaming decoder: TextDecoder in stream mode holds back an incomplete UTF-8 tail until its bytes arrive. */
export function createByteDecoder(src: ByteSource, options: DecodeOptions = {}): IncrementalDecoder {
  const skip = options.skipSpecial ?? false;
  let utf8 = new TextDecoder('utf-8');
  let started = false; // whether any text has been emitted yet (for the one leading-space strip)
  const emit = (text: string): string => {
    if (!started && text.length > 0) {
      started = true;
      if (src.stripsLeadingSpace && text.startsWith(' ')) return text.slice(1);
    }
    return text;
  };
  return {
    push(id: number): string {
      if (skip && src.isControl(id)) return '';
      return emit(utf8.decode(src.tokenBytes(id), { stream: true }));
    },
    flush(): string {
      const rest = emit(utf8.decode());
      utf8 = new TextDecoder('utf-8');
      started = false;
      return rest;
    },
  };
}

const encoder = new TextEncoder();
/** UTF-8 bytes of a string. */
export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}
