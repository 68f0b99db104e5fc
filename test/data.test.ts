// Public-API tests for instruction-data loading: the three formats, detection, precise file:line errors, the
// skip policy, line-reader edge cases (CRLF, BOM, no final newline, blank and huge lines) and real fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConversations, parseConversations, splitLines, LineSplitter } from '../src/data/index.js';
import { needsShared, requireShared, sharedPath } from './shared-data.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'data');
const jsonl = (...records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

test('alpaca: instruction + input joined by a blank line, optional system, empty input ignored', () => {
  const r = parseConversations(
    jsonl(
      { instruction: 'Add.', input: '2 + 2', output: '4' },
      { instruction: 'Greet.', input: '', output: 'Hello!', system: 'Be kind.' },
    ),
    'a.jsonl',
  );
  assert.equal(r.format, 'alpaca');
  assert.deepEqual(r.conversations[0], { messages: [{ role: 'user', content: 'Add.\n\n2 + 2' }, { role: 'assistant', content: '4' }] });
  assert.deepEqual(r.conversations[1].messages.map((m) => m.role), ['system', 'user', 'assistant']);
  assert.deepEqual(r.sources, ['a.jsonl:1', 'a.jsonl:2']);
});

test('sharegpt: human/gpt and user/assistant aliases map to user/assistant; system kept first', () => {
  const r = parseConversations(
    jsonl({
      conversations: [
        { from: 'system', value: 'S' },
        { from: 'human', value: 'Q1' },
        { from: 'gpt', value: 'A1' },
        { from: 'user', value: 'Q2' },
        { from: 'assistant', value: 'A2' },
      ],
    }),
    's.jsonl',
  );
  assert.equal(r.format, 'sharegpt');
  assert.deepEqual(r.conversations[0].messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
});

test('openai messages load as is', () => {
  const msgs = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }];
  const r = parseConversations(jsonl({ messages: msgs }), 'o.jsonl', { format: 'openai' });
  assert.deepEqual(r.conversations, [{ messages: msgs }]);
});

test('precise errors: invalid JSON, bad role, empty content, alternation, last turn, mixed formats', () => {
  const lines = [
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }), // 1 ok
    '{"messages": [}', // 2
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'bot', content: 'c' }] }), // 3
    JSON.stringify({ messages: [{ role: 'user', content: '  ' }, { role: 'assistant', content: 'b' }] }), // 4
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] }), // 5
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }] }), // 6
    JSON.stringify({ conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }] }), // 7
    JSON.stringify({ messages: [{ role: 'assistant', content: 'a' }] }), // 8
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'system', content: 's' }, { role: 'assistant', content: 'c' }] }), // 9
    JSON.stringify({ messages: [{ role: 'user', content: ['parts'] }, { role: 'assistant', content: 'b' }] }), // 10
    JSON.stringify([1, 2]), // 11
  ];
  const r = parseConversations(lines.join('\n'), 'data.jsonl', { skip: true });
  assert.equal(r.conversations.length, 1);
  const byLine = new Map(r.skipped.map((p) => [p.where, p.message]));
  assert.match(byLine.get('data.jsonl:2')!, /^invalid JSON \(/);
  assert.equal(byLine.get('data.jsonl:3'), 'field "messages[2].role" must be one of system|user|assistant, got "bot"');
  assert.equal(byLine.get('data.jsonl:4'), 'field "messages[0].content" is empty');
  assert.equal(byLine.get('data.jsonl:5'), 'field "messages[1].role": expected "assistant" after "user" (turns must alternate), got "user"');
  assert.match(byLine.get('data.jsonl:6')!, /must end with an assistant turn.*"user"/);
  assert.equal(byLine.get('data.jsonl:7'), 'record looks like sharegpt but the file is openai (decided by data.jsonl:1)');
  assert.match(byLine.get('data.jsonl:8')!, /must start with a user turn.*got "assistant"/);
  assert.match(byLine.get('data.jsonl:9')!, /"messages\[1\]\.role": a system message is only allowed first/);
  assert.equal(byLine.get('data.jsonl:10'), 'field "messages[0].content" must be a string, got an array');
  assert.equal(byLine.get('data.jsonl:11'), 'expected a JSON object, got an array');
  assert.equal(r.skipped.length, 10);
});

test('sharegpt and alpaca errors use their own field names', () => {
  const r = parseConversations(
    jsonl(
      { conversations: [{ from: 'bot', value: 'x' }] },
      { conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: '' }] },
      { conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] },
    ),
    'sg.jsonl',
    { format: 'sharegpt', skip: true },
  );
  assert.equal(r.skipped[0].message, 'field "conversations[0].from" must be one of system|human|user|gpt|assistant, got "bot"');
  assert.equal(r.skipped[1].message, 'field "conversations[1].value" is empty');
  assert.throws(
    () => parseConversations(jsonl({ instruction: 'x', output: 3 }), 'al.jsonl'),
    /al\.jsonl:1: field "output" must be a string, got number 3/,
  );
});

test('default policy: one Error listing the first problems with file:line and the count', () => {
  const good = JSON.stringify({ instruction: 'i', output: 'o' });
  const text = [good, 'oops', good, '{', '[', 'x', 'y', 'z', good].join('\n');
  assert.throws(
    () => parseConversations(text, 'data.jsonl'),
    (e: Error) =>
      e.message.startsWith('data.jsonl: 6 bad record(s) out of 9') &&
      e.message.includes('data.jsonl:2: invalid JSON') &&
      e.message.includes('data.jsonl:4: invalid JSON') &&
      e.message.includes('… and 1 more') &&
      !e.message.includes('data.jsonl:8:'),
  );
  assert.throws(() => parseConversations('\n\n', 'empty.jsonl'), /empty\.jsonl: no records/);
  assert.throws(() => parseConversations('{"a": 1}\n', 'u.jsonl'), /u\.jsonl:1: cannot tell the format/);
});

test('line reader: CRLF, BOM, blank lines, missing final newline, numbering', () => {
  const text = '\uFEFF{"a":1}\r\n\r\n   \n{"b":2}\r\n{"c":3}';
  assert.deepEqual(splitLines(text), [
    { line: 1, text: '{"a":1}' },
    { line: 4, text: '{"b":2}' },
    { line: 5, text: '{"c":3}' },
  ]);
  // a BOM after the first line is data, not stripped
  assert.deepEqual(splitLines('x\n\uFEFFy\n')[1], { line: 2, text: '\uFEFFy' });
});

test('line reader: huge lines are rejected with their number, the stream continues; bytes split anywhere', () => {
  const big = 'x'.repeat(5000);
  const recs = splitLines(`{"a":1}\n${big}\n{"b":2}\n${big}`, { maxLineBytes: 1000 });
  assert.deepEqual(recs, [
    { line: 1, text: '{"a":1}' },
    { line: 2, error: 'line longer than 1000 bytes (maxLineBytes)' },
    { line: 3, text: '{"b":2}' },
    { line: 4, error: 'line longer than 1000 bytes (maxLineBytes)' },
  ]);
  // feeding one byte at a time (splitting UTF-8 sequences and CRLF pairs) gives the same records
  const bytes = Buffer.from('é€\r\n\r\nü🙂x\r\n', 'utf8');
  const s = new LineSplitter();
  const got = [...bytes].flatMap((b) => s.push(Uint8Array.of(b))).concat(s.end());
  assert.deepEqual(got, [{ line: 1, text: 'é€' }, { line: 3, text: 'ü🙂x' }]);
  assert.deepEqual(splitLines(Uint8Array.of(0x7b, 0xff, 0x7d, 0x0a)), [{ line: 1, error: 'invalid UTF-8' }]);
});

test('loadConversations streams a JSONL file and reads a .json array with file[index] locations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-data-'));
  const p = join(dir, 'chat.jsonl');
  const rec = { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] };
  writeFileSync(p, `${JSON.stringify(rec)}\r\n${'y'.repeat(3000)}\r\n${JSON.stringify(rec)}`);
  const r = await loadConversations(p, { skip: true, maxLineBytes: 2048 });
  assert.equal(r.conversations.length, 2);
  assert.deepEqual(r.skipped, [{ where: `${p}:2`, message: 'line longer than 2048 bytes (maxLineBytes)' }]);
  await assert.rejects(loadConversations(p, { maxLineBytes: 2048 }), /chat\.jsonl:2: line longer than 2048 bytes/);
  const j = join(dir, 'arr.json');
  writeFileSync(j, JSON.stringify([rec, { messages: [] }]));
  await assert.rejects(loadConversations(j), /arr\.json\[1\]: field "messages" is empty/);
  writeFileSync(j, '{"messages": []}');
  await assert.rejects(loadConversations(j), /must hold an array/);
});

test('fixture: FastChat dummy conversations (ShareGPT as a JSON array)', async () => {
  const r = await loadConversations(join(FIXTURES, 'fastchat-dummy_conversation.first12.json'));
  assert.equal(r.format, 'sharegpt');
  assert.equal(r.conversations.length, 12);
  assert.deepEqual(r.conversations[0].messages[0], { role: 'user', content: 'Who are you?' });
  assert.ok(r.conversations.every((c) => c.messages.at(-1)!.role === 'assistant'));
});

test('fixture: self-instruct seed tasks converted in code to Alpaca records (one per instance)', () => {
  const raw = splitLines(readFixture('self-instruct-seed_tasks.first20.jsonl'));
  type Seed = { instruction: string; instances: { input: string; output: string }[] };
  const alpaca = raw.flatMap((r) => ('text' in r ? (JSON.parse(r.text) as Seed).instances.map((x) => ({ instruction: (JSON.parse(r.text) as Seed).instruction, ...x })) : []));
  assert.ok(alpaca.length >= 20);
  const r = parseConversations(jsonl(...alpaca), 'seed.jsonl');
  assert.equal(r.format, 'alpaca');
  assert.equal(r.conversations.length, alpaca.length);
  assert.match(r.conversations[1].messages[0].content, /^What is the relation between the given pairs\?\n\nNight : Day/);
});

const shared = sharedPath('instruct', 'fastchat-dummy_conversation.json');
test('all 500 FastChat dummy conversations load (shared data)', needsShared(shared), async () => {
  requireShared(shared);
  const r = await loadConversations(shared);
  assert.equal(r.conversations.length, 500);
});

function readFixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}
