// `nomoat data …` run for real on small files: each command's output, bad input named as file:line: field: what,
// --skip-bad-lines counting, Parquet round trips (and a truncated Parquet file), and atomic outputs (nothing left
// behind when a command fails).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'nomoat.js');
let dir = '';
const p = (name: string): string => join(dir, name);
const jsonl = (...records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const chat = (u: string, a: string): unknown => ({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });
const lines = (file: string): unknown[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);

function nomoat(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'data', ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nomoat-data-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('bad input: not an object, missing field, mixed formats, invalid UTF-8, invalid JSON — file:line: field: what', () => {
  const good = JSON.stringify({ instruction: 'Add 2 and 2.', output: '4' });
  const body = Buffer.concat([
    Buffer.from([good, '[1, 2]', JSON.stringify({ instruction: 'No output here.' }), JSON.stringify(chat('hi', 'hello')), ''].join('\n')),
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a]), // {"\xff\xfe"} — invalid UTF-8 on line 5
    Buffer.from('{"instruction": "x", "output": \n' + good + '\n'),
  ]);
  writeFileSync(p('bad.jsonl'), body);
  const v = nomoat('validate', 'bad.jsonl');
  assert.equal(v.status, 1);
  assert.deepEqual(v.stdout.trim().split('\n'), [
    'bad.jsonl:2: (record): expected a JSON object, got an array',
    'bad.jsonl:3: output: missing',
    'bad.jsonl:4: (record): looks like openai but the file is alpaca (decided by bad.jsonl:1): one format per file',
    'bad.jsonl:5: (line): invalid UTF-8',
    'bad.jsonl:6: (line): invalid JSON (Unexpected end of JSON input)',
  ]);
  assert.match(v.stderr, /2 valid, 5 bad records/);
  // any other command stops at the first, names it, and writes nothing
  const c = nomoat('convert', 'bad.jsonl', '-o', 'out.jsonl', '--to', 'messages');
  assert.equal(c.status, 1);
  assert.match(c.stderr, /bad\.jsonl:2: \(record\): expected a JSON object[\s\S]*--skip-bad-lines/);
  assert.equal(existsSync(p('out.jsonl')), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
  // --skip-bad-lines counts what it skipped and writes the rest
  const s = nomoat('convert', 'bad.jsonl', '-o', 'out.jsonl', '--to', 'messages', '--skip-bad-lines');
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stderr, /wrote 2 records to out\.jsonl; skipped 5 bad records/);
  assert.deepEqual(lines(p('out.jsonl')), [chat('Add 2 and 2.', '4'), chat('Add 2 and 2.', '4')]);
});

test('convert to Parquet and back; a truncated Parquet file is named, not a crash', () => {
  writeFileSync(p('sg.jsonl'), jsonl(
    { conversations: [{ from: 'system', value: 'Be brief.' }, { from: 'human', value: 'Q1' }, { from: 'gpt', value: 'A1' }, { from: 'human', value: 'Q2' }, { from: 'gpt', value: 'A2' }] },
    { conversations: [{ from: 'human', value: 'ü€🙂' }, { from: 'gpt', value: 'ok' }] },
  ));
  assert.equal(nomoat('convert', 'sg.jsonl', '-o', 'sg.parquet', '--to', 'parquet').status, 0);
  const back = nomoat('convert', 'sg.parquet', '-o', 'back.jsonl', '--to', 'sharegpt');
  assert.equal(back.status, 0, back.stderr);
  assert.deepEqual(lines(p('back.jsonl')), lines(p('sg.jsonl')));
  const st = nomoat('stats', 'sg.parquet', '--json');
  assert.equal(st.status, 0, st.stderr);
  const stats = JSON.parse(st.stdout) as { records: number; formats: Record<string, number>; turns: { total: number } };
  assert.equal(stats.records, 2);
  assert.deepEqual(stats.formats, { sharegpt: 2 });
  assert.equal(stats.turns.total, 3);
  // alpaca cannot hold two turns: named, and nothing written
  const a = nomoat('convert', 'sg.parquet', '-o', 'a.jsonl', '--to', 'alpaca');
  assert.equal(a.status, 1);
  assert.match(a.stderr, /sg\.parquet:1: \(record\): alpaca holds one instruction and one output/);
  assert.equal(existsSync(p('a.jsonl')), false);
  const bytes = readFileSync(p('sg.parquet'));
  writeFileSync(p('cut.parquet'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  const t = nomoat('stats', 'cut.parquet');
  assert.equal(t.status, 1);
  assert.match(t.stderr, /cut\.parquet: not a readable Parquet file \(truncated or not Parquet/);
  assert.doesNotMatch(t.stderr, /\n\s+at /); // no stack trace
});

test('stats: counts, exact duplicates, text histogram and an SVG picture', () => {
  writeFileSync(p('s.jsonl'), jsonl({ text: 'Hello world' }, { text: 'hello   WORLD' }, { text: 'x'.repeat(100) }));
  const r = nomoat('stats', 's.jsonl', '--svg', 'h.svg');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /records\s+3 \(text 3\)/);
  assert.match(r.stdout, /exact duplicates\s+1 \(33\.3 %\)/);
  assert.match(r.stdout, /8–15 █+ 2\n/);
  assert.match(readFileSync(p('h.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<rect [^>]*><title>8–15: 2<\/title><\/rect>[\s\S]*<\/svg>\n$/);
});

test('split and mix are seeded and complete', () => {
  writeFileSync(p('n.jsonl'), jsonl(...Array.from({ length: 50 }, (_, i) => chat(`q${i}`, `a${i}`))));
  const run = (seed: string): [unknown[], unknown[]] => {
    assert.equal(nomoat('split', 'n.jsonl', '--train', 'tr.jsonl', '--eval', 'ev.jsonl', '--eval-size', '7', '--seed', seed).status, 0);
    return [lines(p('tr.jsonl')), lines(p('ev.jsonl'))];
  };
  const [tr, ev] = run('3');
  assert.equal(ev.length, 7);
  assert.equal(tr.length, 43);
  assert.deepEqual(run('3'), [tr, ev]);
  assert.notDeepEqual(run('4')[1], ev);
  writeFileSync(p('m2.jsonl'), jsonl({ instruction: 'I', output: 'O' }));
  const m = nomoat('mix', 'n.jsonl:3', 'm2.jsonl:1', '-o', 'mix.jsonl', '--size', '20', '--seed', '1');
  assert.equal(m.status, 0, m.stderr);
  const mixed = lines(p('mix.jsonl'));
  assert.equal(mixed.length, 20);
  assert.equal(mixed.filter((x) => JSON.stringify(x) === JSON.stringify(chat('I', 'O'))).length, 5); // converted to messages, repeated
  assert.equal(new Set(mixed.slice(0, 15).map((x) => JSON.stringify(x))).size, 15); // no repeats from the big file
});

test('dedup: exact and near duplicates removed, report names clusters; same seed, same output', () => {
  const base = 'the committee met on tuesday to discuss the budget for the new library and agreed to fund the children section first';
  writeFileSync(p('d.jsonl'), jsonl(
    chat('Summarize.', base),
    chat('Summarize.', base.replace('tuesday', 'wednesday')), // near (one word)
    chat('SUMMARIZE.', base.toUpperCase()), // exact after normalization
    chat('Other.', 'a completely unrelated answer about rivers and mountains and the sea'),
  ));
  const r = nomoat('dedup', 'd.jsonl', '-o', 'dd.jsonl', '--report', 'rep.jsonl', '--threshold', '0.5');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(lines(p('dd.jsonl')).length, 2);
  const rep = lines(p('rep.jsonl')) as { kind: string; kept: string; removed: { id: string; jaccard: number }[] }[];
  assert.equal(rep.length, 1);
  assert.equal(rep[0].kind, 'near');
  assert.equal(rep[0].kept, 'd.jsonl:1');
  assert.deepEqual(rep[0].removed.map((x) => x.id), ['d.jsonl:2', 'd.jsonl:3']);
  assert.ok(rep[0].removed[0].jaccard >= 0.5 && rep[0].removed[0].jaccard < 1);
  assert.equal(rep[0].removed[1].jaccard, 1);
  const first = readFileSync(p('dd.jsonl'), 'utf8');
  assert.equal(nomoat('dedup', 'd.jsonl', '-o', 'dd.jsonl', '--threshold', '0.5', '--workers', '0').status, 0);
  assert.equal(readFileSync(p('dd.jsonl'), 'utf8'), first);
});

test('filter: --explain names the rule; flags move thresholds', () => {
  const prose = 'The river runs through the valley and the farmers have fields with wheat that grows tall in summer. ';
  writeFileSync(p('f.jsonl'), jsonl(
    chat('Tell me about the valley.', prose.repeat(1) + 'It is a quiet place to live and to work.'),
    chat('Loop?', 'once upon a time '.repeat(30)),
    chat('Short?', 'Yes.'),
  ));
  const r = nomoat('filter', 'f.jsonl', '-o', 'kept.jsonl', '--explain', 'why.jsonl', '--min-words', '2', '--no-fineweb');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(lines(p('kept.jsonl')).length, 1);
  const why = lines(p('why.jsonl')) as { where: string; rule: string }[];
  assert.deepEqual(why.map((w) => [w.where, w.rule]), [['f.jsonl:2', 'gopher_enough_stop_words'], ['f.jsonl:3', 'gopher_short_doc']]);
  const rep = nomoat('filter', 'f.jsonl', '-o', 'kept.jsonl', '--explain', 'why.jsonl', '--no-gopher-quality', '--no-fineweb');
  assert.equal(rep.status, 0, rep.stderr);
  const why2 = lines(p('why.jsonl')) as { where: string; rule: string; value: number; threshold: number; record: unknown }[];
  assert.deepEqual(why2.map((w) => [w.where, w.rule, w.threshold]), [['f.jsonl:2', 'top_2_gram', 0.2]]);
  assert.ok(why2[0].value > 0.2);
  assert.deepEqual(why2[0].record, chat('Loop?', 'once upon a time '.repeat(30)));
  const loose = nomoat('filter', 'f.jsonl', '-o', 'kept.jsonl', '--no-gopher-quality', '--no-gopher-repetition', '--no-fineweb', '--max-chars', '30');
  assert.equal(loose.status, 0);
  assert.match(loose.stderr, /kept 1 of 3 records → kept\.jsonl; removed by max_chars 2/);
});

test('filter --consensus: records sharing a prompt vote; the outvoted go to --explain; rules run before the vote', () => {
  const rules = ['--no-gopher-quality', '--no-gopher-repetition', '--no-fineweb'];
  writeFileSync(p('v.jsonl'), jsonl(
    chat('2+2?', '4'), chat('2 + 2?', '5'), chat('2+2?', '4'), chat('  2+2? ', '4'), chat('2+2?', '5'),
    chat('Cat says?', 'meow'), chat('cat says?', 'woof'), // two records: too few to vote
    { text: 'plain text has no prompt to vote on' },
  ));
  const r = nomoat('filter', 'v.jsonl', '-o', 'agreed.jsonl', '--explain', 'outvoted.jsonl', '--consensus', ...rules, '--skip-bad-lines', '--format', 'openai');
  // the text record is not a chat: with --format openai it is a bad line, skipped and counted
  assert.equal(r.status, 0, r.stderr);
  assert.equal(lines(p('agreed.jsonl')).length, 6);
  const why = lines(p('outvoted.jsonl')) as { where: string; rule: string; value: number; threshold: number; votes: number }[];
  assert.deepEqual(why.map((w) => [w.where, w.rule, w.value, w.threshold, w.votes]), [['v.jsonl:5', 'consensus', 1, 3, 4]]);
  assert.match(r.stderr, /kept 6 of 7 records → agreed\.jsonl; removed by consensus 1; 3 distinct prompts voted, 1 records outvoted; skipped 1 bad record/);
  // --consensus-min-votes 2 --consensus-ties drop: the cat's two replies tie and both go; "2 + 2?" is its own prompt
  const strict = nomoat('filter', 'v.jsonl', '-o', 'agreed.jsonl', '--consensus', '--consensus-min-votes', '2', '--consensus-ties', 'drop', ...rules, '--skip-bad-lines', '--format', 'openai', '-q');
  assert.equal(strict.status, 0, strict.stderr);
  assert.deepEqual(lines(p('agreed.jsonl')), [chat('2+2?', '4'), chat('2 + 2?', '5'), chat('2+2?', '4'), chat('  2+2? ', '4')]);
  // a rule removes a reply before the vote: junk does not vote
  const ruled = nomoat('filter', 'v.jsonl', '-o', 'agreed.jsonl', '--consensus', '--no-gopher-quality', '--no-gopher-repetition', '--no-fineweb', '--max-chars', '7', '--skip-bad-lines', '--format', 'openai', '-q');
  assert.equal(ruled.status, 0, ruled.stderr);
  assert.equal(lines(p('agreed.jsonl')).length, 2, 'max_chars removes the cat records and the spaced prompts; of the three sums left, the outvoted "5" goes');
  const bad = nomoat('filter', 'v.jsonl', '-o', 'agreed.jsonl', '--consensus-ties', 'drop');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--consensus-min-votes\/--consensus-ties set how records vote: add --consensus/);
  const bad2 = nomoat('filter', 'v.jsonl', '-o', 'agreed.jsonl', '--consensus', '--consensus-ties', 'maybe');
  assert.match(bad2.stderr, /--consensus-ties must be keep\|drop, got "maybe"/);
  assert.ok(!existsSync(p('agreed.jsonl.tmp')));
});

test('decontaminate: 13-gram overlap with an eval file and the demo skills, reported', () => {
  const q = 'Janet has seventeen red apples and gives four of them to her brother every single morning before school starts';
  writeFileSync(p('eval.jsonl'), jsonl({ question: q, answer: '13' }));
  writeFileSync(p('t.jsonl'), jsonl(
    chat(`Please solve: ${q.toLowerCase()}!`, '13'),
    chat('5 + 4 =', '9'), // a demo skill held-out prompt (assets/data/demo-test.jsonl)
    chat('What is 5 + 4 = in words?', 'nine'),
  ));
  const r = nomoat('decontaminate', 't.jsonl', '-o', 'c.jsonl', '--against', 'eval.jsonl', '--against', 'skills', '--report', 'hits.jsonl');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(p('c.jsonl')), [chat('What is 5 + 4 = in words?', 'nine')]);
  const hits = lines(p('hits.jsonl')) as { where: string; eval: string; field: string; kind: string; ngram: string }[];
  assert.equal(hits[0].where, 't.jsonl:1');
  assert.equal(hits[0].eval, 'eval.jsonl:1');
  assert.equal(hits[0].field, 'question');
  assert.equal(hits[0].ngram.split(' ').length, 13);
  assert.equal(hits[1].kind, 'whole');
  assert.match(hits[1].eval, /demo-test\.jsonl:\d+$/);
});

test('nomoat data lists its subcommands', () => {
  const r = spawnSync(process.execPath, [BIN, 'data', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const sub of ['stats', 'validate', 'convert', 'split', 'mix', 'dedup', 'filter', 'decontaminate']) assert.match(r.stdout, new RegExp(`\\n  data ${sub} `));
});

test('stats --tokenizer counts tokens with a model\'s tokenizer', () => {
  writeFileSync(p('tok.jsonl'), jsonl(chat('Once upon a time', 'there was a cat.')));
  const r = nomoat('stats', 'tok.jsonl', '--tokenizer', join(process.cwd(), 'assets', 'default-model'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { lengthUnit: string; tokens: { total: number }; characters: { total: number } };
  assert.equal(s.lengthUnit, 'tokens');
  assert.ok(s.tokens.total > 3 && s.tokens.total < s.characters.total, JSON.stringify(s.tokens));
});

