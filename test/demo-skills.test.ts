// The synthetic skills (src/data/skills.ts): seeded and pure, test prompts never in train, answers correct by
// construction and checked exactly; and the bundled demo data is what scripts/make-demo-data.ts produces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { loadConversations } from '../src/data/index.js';
import { BENCH_SKILLS, DEMO_SKILLS, SKILL_NAMES, SKILLS, isSkillName, skillConversation, skillSplit } from '../src/data/skills.js';
import { optionalShared, sharedPath } from './shared-data.js';

test('every skill is deterministic per seed, and its answers pass its own checker', () => {
  assert.deepEqual([...SKILL_NAMES].sort(), [...DEMO_SKILLS, ...BENCH_SKILLS].sort());
  for (const name of SKILL_NAMES) {
    const a = SKILLS[name].generate(new Rng(5), 50);
    assert.deepEqual(SKILLS[name].generate(new Rng(5), 50), a, name);
    assert.notDeepEqual(SKILLS[name].generate(new Rng(6), 50), a, name);
    for (const e of a) {
      assert.equal(e.skill, name);
      assert.ok(e.prompt.length > 0 && e.answer.length > 0);
      assert.ok(SKILLS[name].check(e.answer, e.answer), `${name}: ${e.answer}`);
      assert.ok(SKILLS[name].check(`  ${e.answer}\n`, e.answer), 'surrounding whitespace is ignored');
      assert.ok(!SKILLS[name].check(`${e.answer}x`, e.answer), 'anything else is wrong');
      assert.ok(!SKILLS[name].check('', e.answer));
    }
  }
  assert.ok(isSkillName('date-shift') && !isSkillName('toString') && !isSkillName('nope'));
});

test('skillSplit: distinct test prompts, none of them in train; too many test items for a tiny domain is an error', () => {
  for (const name of SKILL_NAMES) {
    const s = skillSplit(name, { train: 200, test: 20, seed: 9 });
    assert.equal(s.train.length, 200);
    assert.equal(s.test.length, 20);
    const held = new Set(s.test.map((e) => e.prompt));
    assert.equal(held.size, 20, `${name}: test prompts distinct`);
    assert.ok(s.train.every((e) => !held.has(e.prompt)), `${name}: a test prompt leaked into train`);
    assert.deepEqual(skillSplit(name, { train: 200, test: 20, seed: 9 }), s);
  }
  // the benchmark skills have large domains: held-out prompts are new items, not new phrasings of seen ones
  for (const name of BENCH_SKILLS) {
    const prompts = SKILLS[name].generate(new Rng(2), 2000).map((e) => e.prompt);
    assert.ok(new Set(prompts).size > 1900, `${name}: only ${new Set(prompts).size} distinct prompts in 2000 draws`);
  }
  assert.throws(() => skillSplit('add-digit', { train: 10, test: 10_000, seed: 0 }), /distinct prompts/);
});

test('the answers are right: arithmetic, reversal, calendar, JSON', () => {
  for (const e of SKILLS.addition.generate(new Rng(1), 100)) {
    const m = /^What is (\d+) \+ (\d+)\?$/.exec(e.prompt);
    assert.ok(m !== null, e.prompt);
    assert.equal(Number(e.answer), Number(m[1]) + Number(m[2]));
    assert.ok(m[1].length >= 2 && m[1].length <= 4);
  }
  for (const e of SKILLS['add-digit'].generate(new Rng(1), 100)) {
    const [a, b] = (e.prompt.match(/\d/g) ?? []).map(Number);
    assert.equal(e.answer, String(a + b));
  }
  for (const e of SKILLS.reversal.generate(new Rng(1), 50)) assert.equal([...e.answer].reverse().join(''), e.prompt.split(': ')[1]);
  for (const e of SKILLS.counting.generate(new Rng(1), 50)) assert.equal(e.answer, String(e.prompt.split(/[?:] /)[1].split(' ').length));
  for (const e of SKILLS['date-shift'].generate(new Rng(1), 200)) {
    const m = /^What date is (\d{4}-\d\d-\d\d) (plus|minus) (\d+) days?\?$/.exec(e.prompt);
    assert.ok(m !== null, e.prompt);
    const d = new Date(`${m[1]}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + (m[2] === 'plus' ? 1 : -1) * Number(m[3]));
    assert.equal(e.answer, d.toISOString().slice(0, 10));
  }
  const check = SKILLS['date-shift'].check;
  assert.ok(check('2024-03-01', '2024-03-01') && !check('2024-3-1', '2024-03-01'));
  for (const e of SKILLS['kv-json'].generate(new Rng(1), 50)) {
    const obj = JSON.parse(e.answer) as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) assert.ok(e.prompt.includes(`${k} is ${String(v)}`) || e.prompt.includes(`${k}: ${String(v)}`), e.prompt);
  }
  const kv = SKILLS['kv-json'].check;
  const ans = '{"name":"Tom","age":7}';
  assert.ok(kv('{ "age": 7, "name": "Tom" }', ans), 'key order and spacing do not matter');
  assert.ok(!kv('{"name":"Tom","age":"7"}', ans), 'types do');
  assert.ok(!kv('{"name":"Tom"}', ans) && !kv('{"name":"Tom","age":7,"city":"Rome"}', ans), 'missing or extra keys are wrong');
  assert.ok(!kv('{"name":"Tom","age":7', ans) && !kv('[1]', ans) && !kv('null', ans));
});

test('skillConversation is a user turn and an assistant turn (a system turn when asked)', () => {
  const e = { skill: 'opposites' as const, prompt: 'Opposite of hot?', answer: 'cold' };
  assert.deepEqual(skillConversation(e).messages.map((m) => m.role), ['user', 'assistant']);
  assert.deepEqual(skillConversation(e, 'Be brief.').messages.map((m) => m.role), ['system', 'user', 'assistant']);
});

const bundled = join(process.cwd(), 'assets', 'data', 'demo.jsonl');
test('the bundled demo data loads and is exactly what scripts/make-demo-data.js writes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-demo-data-'));
  try {
    // the general chats quote the stories in ../shared/data/corpus (beside the clone, required in CI); without them
    // (outside CI) that one file is not compared
    const corpus = optionalShared(sharedPath('corpus', 'tinystories-subset-4MB.txt'));
    const r = spawnSync(process.execPath, ['dist/scripts/make-demo-data.js', '--out', dir, ...(corpus ? [] : ['--generic', '0'])], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['demo.jsonl', 'demo-test.jsonl', ...(corpus ? ['generic-chats.jsonl'] : [])]) assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join('assets', 'data', f))), `assets/data/${f} is stale: rerun the script`);
    const train = await loadConversations(bundled);
    const test = await loadConversations(join('assets', 'data', 'demo-test.jsonl'));
    assert.equal(train.format, 'openai');
    const seen = new Set(train.conversations.map((c) => c.messages[0].content));
    assert.ok(test.conversations.every((c) => !seen.has(c.messages[0].content)), 'a held-out prompt is in the training data');
    const generic = await loadConversations(join('assets', 'data', 'generic-chats.jsonl'));
    assert.equal(generic.conversations.length, 1500);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
