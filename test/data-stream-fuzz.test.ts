// Fuzzing the streaming readers of `nomoat data`: random garbage lines among good records of every format (exact
// file:line accounting, never a crash), and Parquet files cut or corrupted at random bytes (an Error naming the
// file, never a crash or a hang).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { openSink } from '../src/data/sink.js';
import { readRecords, type ReadItem } from '../src/data/stream.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-fuzz-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const GOOD: Record<string, string[]> = {
  openai: [JSON.stringify({ messages: [{ role: 'user', content: 'Hi ü€🙂' }, { role: 'assistant', content: 'Hello' }] })],
  sharegpt: [JSON.stringify({ conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] })],
  alpaca: [JSON.stringify({ instruction: 'Do it.', input: '', output: 'Done.' })],
  text: [JSON.stringify({ text: 'A plain document.', id: 3 })],
};

function garbage(rng: Rng, good: string): string {
  switch (rng.int(6)) {
    case 0: return good.slice(0, 1 + rng.int(good.length - 2)); // truncated JSON
    case 1: return Array.from({ length: 1 + rng.int(30) }, () => String.fromCharCode(33 + rng.int(90))).join('');
    case 2: return JSON.stringify([rng.int(9)]); // valid JSON, not an object
    case 3: return JSON.stringify({ unrelated: true }); // an object of no format
    case 4: return good.replace(/"(content|value|output|text)":"[^"]*"/u, '"$1":""'); // empty field
    default: return JSON.stringify({ messages: 'nope', conversations: 1 }); // wrong types
  }
}

async function collect(file: string): Promise<ReadItem[]> {
  const out: ReadItem[] = [];
  for await (const it of readRecords(file)) out.push(it);
  return out;
}

test('garbage among good records of each format: every bad line named once, every good one read', async () => {
  for (const [format, [good]] of Object.entries(GOOD)) {
    for (let round = 0; round < 15; round++) {
      const rng = new Rng(3000 + round);
      const lines = [good];
      const bad: number[] = [];
      for (let i = 0; i < 25; i++) {
        if (rng.next() < 0.5) lines.push(good);
        else {
          lines.push(garbage(rng, good));
          bad.push(lines.length);
        }
      }
      const file = join(dir, `f-${format}-${round}.jsonl`);
      writeFileSync(file, lines.join(rng.next() < 0.5 ? '\n' : '\r\n'));
      const items = await collect(file);
      const badSeen = items.filter((i) => !i.ok).map((i) => (i.ok ? '' : i.problems[0].where));
      assert.deepEqual(badSeen, bad.map((l) => `${file}:${l}`), `${format} round ${round}`);
      for (const it of items) {
        if (it.ok) assert.equal(it.record.format, format);
        else for (const p of it.problems) assert.ok(p.field.length > 0 && p.message.length > 0);
      }
      assert.equal(items.filter((i) => i.ok).length, lines.length - bad.length);
    }
  }
});

test('Parquet cut or corrupted at random bytes: an Error naming the file, or rows; never a crash', async () => {
  const src = join(dir, 'ok.parquet');
  const sink = openSink(src, 'messages');
  const rng = new Rng(77);
  const rec = { where: 'x:1', format: 'openai' as const, raw: {}, text: '', conversation: { messages: [{ role: 'user' as const, content: 'q' }, { role: 'assistant' as const, content: 'a' }] } };
  for (let i = 0; i < 300; i++) sink.write({ ...rec, conversation: { messages: [{ role: 'user', content: `question ${i} ${'z'.repeat(rng.int(50))}` }, { role: 'assistant', content: `answer ${i}` }] } });
  await sink.commit();
  const bytes = readFileSync(src);
  assert.equal((await collect(src)).filter((i) => i.ok).length, 300);
  for (let round = 0; round < 40; round++) {
    const r = new Rng(5000 + round);
    let b: Buffer;
    if (round % 2 === 0) b = bytes.subarray(0, r.int(bytes.length));
    else {
      b = Buffer.from(bytes);
      for (let k = 0; k < 1 + r.int(8); k++) b[r.int(b.length)] = r.int(256);
    }
    const file = join(dir, `bad-${round}.parquet`);
    writeFileSync(file, b);
    try {
      const items = await collect(file);
      for (const it of items) if (!it.ok) assert.match(it.problems[0].where, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/gu, '\\$&')}:\\d+$`));
    } catch (e) {
      assert.ok(e instanceof Error, `round ${round}: threw ${String(e)}`);
      assert.ok(e.message.startsWith(file), `round ${round}: ${e.message}`);
    }
  }
});
