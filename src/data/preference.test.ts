// Preference pairs from every accepted form (standard, conversational, implicit, HH transcripts), and bad records
// refused as "file:line: field …" (or dropped and counted with skip).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadPreferencePairs, normalizePair, parseHhTranscript, parsePreferencePairs } from './preference.js';

const u = (content: string) => ({ role: 'user' as const, content });
const a = (content: string) => ({ role: 'assistant' as const, content });
const lines = (...xs: unknown[]): string => xs.map((x) => JSON.stringify(x)).join('\n') + '\n';

test('standard explicit: strings become a user prompt and assistant replies', () => {
  const r = normalizePair({ prompt: 'what is 2 plus 2?', chosen: '4', rejected: '5' });
  assert.ok(r.ok);
  assert.equal(r.format, 'standard');
  assert.deepEqual(r.pair, { prompt: [u('what is 2 plus 2?')], chosen: [a('4')], rejected: [a('5')] });
});

test('conversational explicit (what eval arena --pairs writes), system prompt kept', () => {
  const rec = { prompt: [{ role: 'system', content: 'be brief' }, u('hi')], chosen: [a('hello')], rejected: [a('go away')] };
  const r = normalizePair(rec);
  assert.ok(r.ok);
  assert.equal(r.format, 'conversational');
  assert.deepEqual(r.pair.prompt, rec.prompt);
  assert.deepEqual(r.pair.rejected, [a('go away')]);
});

test('implicit prompt: the shared prefix of two whole conversations is the prompt', () => {
  const base = [u('hi'), a('hello'), u('opposite of hot?')];
  const r = normalizePair({ chosen: [...base, a('cold')], rejected: [...base, a('warm')] });
  assert.ok(r.ok);
  assert.equal(r.format, 'implicit');
  assert.deepEqual(r.pair, { prompt: base, chosen: [a('cold')], rejected: [a('warm')] });
  // continuations that differ at an earlier assistant turn start after the last shared user turn
  const r2 = normalizePair({ chosen: [u('q'), a('x'), u('q2'), a('y')], rejected: [u('q'), a('z')] });
  assert.ok(r2.ok);
  assert.deepEqual(r2.pair.prompt, [u('q')]);
  assert.deepEqual(r2.pair.chosen, [a('x'), u('q2'), a('y')]);
});

test('HH transcripts parse into turns; the last assistant turns differ', () => {
  assert.deepEqual(parseHhTranscript('\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: ok'), [u('hi there'), a('hello'), u('bye'), a('ok')]);
  assert.equal(parseHhTranscript('no markers here'), null);
  const r = normalizePair({ chosen: '\n\nHuman: q?\n\nAssistant: good', rejected: '\n\nHuman: q?\n\nAssistant: bad' });
  assert.ok(r.ok);
  assert.equal(r.format, 'hh');
  assert.deepEqual(r.pair, { prompt: [u('q?')], chosen: [a('good')], rejected: [a('bad')] });
});

test('bad records name file:line and the field', () => {
  const text = lines(
    { prompt: 'p', chosen: 'x', rejected: 'y' }, // 1 ok
    { prompt: 'p', chosen: 'x' }, // 2 missing rejected
    { prompt: 'p', chosen: '', rejected: 'y' }, // 3 empty reply
    { prompt: [u('hi')], chosen: [a('x')], rejected: [{ role: 'robot', content: 'y' }] }, // 4 bad role
    { chosen: '\n\nHuman: q\n\nAssistant:', rejected: '\n\nHuman: q\n\nAssistant: b' }, // 5 empty HH reply
    { chosen: 'just text', rejected: 'other text' }, // 6 strings without a prompt
    { prompt: 'p', chosen: 'same', rejected: 'same' }, // 7 nothing to prefer
    { prompt: [u('hi')], chosen: [u('x')], rejected: [a('y')] }, // 8 chosen is not an assistant turn
  ) + '{not json\n'; // 9
  assert.throws(() => parsePreferencePairs(text, 'p.jsonl', { maxErrorsShown: 10 }), (e: Error) => {
    const m = e.message;
    assert.match(m, /p\.jsonl: 8 bad preference pair\(s\) out of 9/);
    assert.match(m, /p\.jsonl:2: missing field "rejected"/);
    assert.match(m, /p\.jsonl:3: field "chosen" is empty/);
    assert.match(m, /p\.jsonl:4: field "rejected\[0\]\.role" must be one of system\|user\|assistant/);
    assert.match(m, /p\.jsonl:5: field "chosen": Assistant turn 1 is empty/);
    assert.match(m, /p\.jsonl:6: field "chosen": without a "prompt" field/);
    assert.match(m, /p\.jsonl:7: .*identical/);
    assert.match(m, /p\.jsonl:8: chosen: field "chosen\[0\]\.role"/);
    assert.match(m, /p\.jsonl:9: invalid JSON/);
    assert.doesNotMatch(m, /p\.jsonl:1:/);
    return true;
  });
  const skipped = parsePreferencePairs(text, 'p.jsonl', { skip: true });
  assert.equal(skipped.pairs.length, 1);
  assert.equal(skipped.skipped.length, 8);
  assert.deepEqual(skipped.sources, ['p.jsonl:1']);
});

test('files: .jsonl, .jsonl.gz and .json arrays load alike; limit reads the first records', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-pairs-'));
  try {
    const recs = [{ prompt: 'a', chosen: 'b', rejected: 'c' }, { prompt: 'd', chosen: 'e', rejected: 'f' }];
    writeFileSync(join(dir, 'p.jsonl'), lines(...recs));
    writeFileSync(join(dir, 'p.jsonl.gz'), gzipSync(lines(...recs)));
    writeFileSync(join(dir, 'p.json'), JSON.stringify(recs));
    const [x, y, z] = await Promise.all(['p.jsonl', 'p.jsonl.gz', 'p.json'].map((f) => loadPreferencePairs(join(dir, f))));
    assert.deepEqual(x.pairs, y.pairs);
    assert.deepEqual(x.pairs, z.pairs);
    assert.equal(x.pairs.length, 2);
    assert.equal(z.sources[1], `${join(dir, 'p.json')}[1]`);
    assert.equal((await loadPreferencePairs(join(dir, 'p.jsonl.gz'), { limit: 1 })).pairs.length, 1);
    writeFileSync(join(dir, 'empty.jsonl'), '\n');
    await assert.rejects(loadPreferencePairs(join(dir, 'empty.jsonl')), /no preference pairs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
