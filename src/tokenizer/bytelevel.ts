// GPT-2 byte-level alphabet: every byte 0..255 maps to one printable code point, so BPE runs on strings without
// ever splitting a UTF-8 sequence. Printable Latin-1 bytes map to themselves; the rest to U+0100.. in byte order.

/** byteToChar[b] is the character standing for byte b (e.g. 0x20 → 'Ġ', 0x0A → 'Ċ'). */
export const byteToChar: readonly string[] = (() => {
  const keep = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return out;
})();

/** Inverse of byteToChar. */
export const charToByte: ReadonlyMap<string, number> = new Map(byteToChar.map((c, b) => [c, b]));

const enc = new TextEncoder();
/** Byte-level encoding of a string: its UTF-8 bytes, each written as its stand-in character. */
export function byteLevelEncode(s: string): string {
  let out = '';
  for (const b of enc.encode(s)) out += byteToChar[b];
  return out;
}

/** Bytes of a byte-level token; characters outside the alphabet (added tokens) contribute their own UTF-8. */
export function byteLevelDecode(token: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of token) {
    const b = charToByte.get(ch);
    if (b !== undefined) bytes.push(b);
    else for (const x of enc.encode(ch)) bytes.push(x);
  }
  return Uint8Array.from(bytes);
}
