// The page's server-sent event reader (web/api.js sseData), run in Node on byte streams cut at awkward places: in
// the middle of a CRLF, of a UTF-8 character, of "data:"; several events in one piece; comments and other fields
// ignored; multi-line data joined. The page itself is plain browser JavaScript, loaded here as it is served.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const API = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'web', 'api.js')).href;

type SseData = (body: ReadableStream<Uint8Array>) => AsyncGenerator<string>;

/** A stream of these pieces of bytes, one read each. */
function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const p of pieces) c.enqueue(p);
      c.close();
    },
  });
}

/** The bytes of `text` cut at every offset in `cuts`. */
function cut(text: string, cuts: number[]): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const at = [0, ...cuts, bytes.length];
  return at.slice(1).map((end, i) => bytes.slice(at[i], end));
}

test('sseData: events from pieces cut anywhere, CRLF or LF, UTF-8 split, comments and other fields ignored', async () => {
  const { sseData } = (await import(API)) as { sseData: SseData };
  const text = ': ping\r\n\r\ndata: {"a":"é€"}\r\n\r\nevent: x\ndata:no space\n\ndata: one\ndata: two\n\nid: 3\n\ndata: [DONE]\n\n';
  const want = ['{"a":"é€"}', 'no space', 'one\ntwo', '[DONE]'];
  const bytes = new TextEncoder().encode(text).length;
  const read = async (pieces: Uint8Array[]): Promise<string[]> => {
    const out: string[] = [];
    for await (const d of sseData(streamOf(pieces))) out.push(d);
    return out;
  };
  assert.deepEqual(await read(cut(text, [])), want, 'all in one piece');
  for (let i = 1; i < bytes; i++) assert.deepEqual(await read(cut(text, [i])), want, `cut at byte ${i}`);
  assert.deepEqual(await read(cut(text, Array.from({ length: bytes - 1 }, (_, i) => i + 1))), want, 'one byte a piece');
});
