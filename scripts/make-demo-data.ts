// Writes the bundled demo data (assets/data/demo.jsonl for training, assets/data/demo-test.jsonl held out) from the
// seeded synthetic skills in src/data/skills.ts, as OpenAI-messages JSONL with an extra "skill" field per line; and
// assets/data/generic-chats.jsonl, general chats like those the bundled base was pretrained on (src/data/chat-tasks.ts,
// fresh draws from the same stories), for `finetune --replay`.
//
//   npx tsc -p tsconfig.json && node dist/scripts/make-demo-data.js [--train 300] [--test 12] [--generic 1500] [--seed 2024] [--out assets/data] [--corpus ../shared/data/corpus]
//
// The same arguments always give byte-identical files.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { chatTask, chatTaskCorpus } from '../src/data/chat-tasks.js';
import { DEMO_SKILLS, skillConversation, skillSplit, type SkillExample } from '../src/data/skills.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
const perSkillTrain = Number(args.get('train') ?? 300);
const perSkillTest = Number(args.get('test') ?? 12);
const seed = Number(args.get('seed') ?? 2024);
const out = args.get('out') ?? 'assets/data';
const generic = Number(args.get('generic') ?? 1500);
const corpusDir = args.get('corpus') ?? '../shared/data/corpus';

const train: SkillExample[] = [];
const test: SkillExample[] = [];
DEMO_SKILLS.forEach((name, i) => {
  const s = skillSplit(name, { train: perSkillTrain, test: perSkillTest, seed: seed + i });
  train.push(...s.train);
  test.push(...s.test);
});

// interleave the skills (seeded Fisher–Yates), so any prefix of the file holds all of them
const rng = new Rng(seed);
for (let i = train.length - 1; i > 0; i--) {
  const j = rng.int(i + 1);
  [train[i], train[j]] = [train[j], train[i]];
}

const line = (e: SkillExample): string => JSON.stringify({ skill: e.skill, ...skillConversation(e) });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'demo.jsonl'), train.map(line).join('\n') + '\n');
writeFileSync(join(out, 'demo-test.jsonl'), test.map(line).join('\n') + '\n');
console.error(`wrote ${join(out, 'demo.jsonl')} (${train.length} lines) and ${join(out, 'demo-test.jsonl')} (${test.length} lines): ${DEMO_SKILLS.join(', ')}`);

// general chats: the same documents make-default-model reads, a seed of their own (not the pretraining stream's)
if (generic === 0) process.exit(0);
if (!(Number.isInteger(generic) && generic > 0)) {
  console.error(`make-demo-data: --generic must be a count of chats (0 to skip them), got ${args.get('generic')}`);
  process.exit(1);
}
const stories = readFileSync(join(corpusDir, 'tinystories-subset-4MB.txt'), 'utf8') + '\n' + readFileSync(join(corpusDir, 'tinystories-sample-200KB.txt'), 'utf8');
const corpus = chatTaskCorpus(stories.split(/\n\s*\n/).map((d) => d.trim()).filter((d) => d.length > 20));
const chatRng = new Rng(seed + 100);
const chats = Array.from({ length: generic }, () => JSON.stringify(chatTask(chatRng, corpus)));
writeFileSync(join(out, 'generic-chats.jsonl'), chats.join('\n') + '\n');
console.error(`wrote ${join(out, 'generic-chats.jsonl')} (${chats.length} lines)`);
