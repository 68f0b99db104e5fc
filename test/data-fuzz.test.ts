// Fuzz-ish robustness: random garbage, truncated JSON and random byte splits never crash the reader; every bad
// line comes back as a "file:line: …" problem and every good line still loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.js';
import { LineSplitter, parseConversations, splitLines } from '../src/data/index.js';

const good = [
  { messages: [{ role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: 'Four. ü€🙂' }] },
  { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
].map((r) => JSON.stringify(r));

function garbage(rng: Rng): string {
  const kind = rng.int(5);
  const g = good[rng.int(good.length)];
  if (kind === 0) return g.slice(0, 1 + rng.int(g.length - 2)); // truncated JSON
  if (kind === 1) return Array.from({ length: 1 + rng.int(40) }, () => String.fromCharCode(33 + rng.int(90))).join('');
  if (kind === 2) return JSON.stringify(rng.next() < 0.5 ? rng.next() : [rng.int(9)]); // valid JSON, wrong shape
  if (kind === 3) return g.replace('"user"', '"usr"'); // bad role
  return g.replace(/"content":"[^"]*"/u, '"content":""'); // empty content
}

test('random garbage and truncated JSON: no crash, exact file:line accounting', () => {
  for (let round = 0; round < 40; round++) {
    const rng = new Rng(1000 + round);
    const lines: string[] = [good[0]]; // first line fixes the format
    const badLines: number[] = [];
    for (let i = 0; i < 30; i++) {
      if (rng.next() < 0.5) lines.push(good[rng.int(good.length)]);
      else {
        lines.push(garbage(rng));
        badLines.push(lines.length);
      }
    }
    const text = lines.join(rng.next() < 0.5 ? '\n' : '\r\n');
    const r = parseConversations(text, 'fuzz.jsonl', { skip: true });
    assert.deepEqual(r.skipped.map((p) => p.where), badLines.map((l) => `fuzz.jsonl:${l}`), `round ${round}`);
    assert.equal(r.conversations.length, lines.length - badLines.length);
    for (const p of r.skipped) assert.ok(p.message.length > 0);
    if (badLines.length > 0) {
      assert.throws(() => parseConversations(text, 'fuzz.jsonl'), (e: Error) => e.message.includes(`fuzz.jsonl:${badLines[0]}: `));
    }
  }
});

test('random bytes in random chunk sizes: the splitter never throws and numbers lines consistently', () => {
  for (let round = 0; round < 30; round++) {
    const rng = new Rng(2000 + round);
    const bytes = new Uint8Array(3000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.next() < 0.05 ? 0x0a : rng.int(256);
    const whole = splitLines(bytes, { maxLineBytes: 64 });
    const s = new LineSplitter({ maxLineBytes: 64 });
    const pieces = [];
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + rng.int(50);
      pieces.push(...s.push(bytes.subarray(at, at + n)));
      at += n;
    }
    pieces.push(...s.end());
    assert.deepEqual(pieces, whole, `round ${round}`);
    for (let i = 1; i < whole.length; i++) assert.ok(whole[i].line > whole[i - 1].line);
    // and loading them reports only file:line problems
    const r = (() => {
      try {
        return parseConversations(Buffer.from(bytes), 'bin.jsonl', { skip: true, maxLineBytes: 64 });
      } catch (e) {
        return e as Error;
      }
    })();
    if (r instanceof Error) assert.match(r.message, /^bin\.jsonl: (no valid records \(\d+ skipped, first: bin\.jsonl:\d+: |no records)/);
    else for (const p of r.skipped) assert.match(p.where, /^bin\.jsonl:\d+$/);
  }
});
