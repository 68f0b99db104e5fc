// Generic chat tasks: valid conversations, deterministic, and disjoint from the skills a fine-tune must still teach.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/rng.js';
import { CHAT_TASK_NOUNS, chatTask, chatTaskCorpus } from './chat-tasks.js';
import { SKILL_NAMES, SKILLS } from './skills.js';
import { validateConversation } from './validate.js';

const DOCS = [
  'one day, lily went to the park with her dog. she saw a big tree. the sun was warm and the bird sang.',
  'tim had a red ball. he threw the ball to his friend sam in the garden. they played until the rain came.',
  'the king lived in a big house by the sea. every morning he took his boat out. he loved the water and the fish.',
  'mia found a toy in a box. it was a little car. she gave the car to her mom, who smiled at the flower on the table.',
];

test('chatTask gives valid, seeded conversations that end with an assistant answer', () => {
  const corpus = chatTaskCorpus(DOCS);
  const draw = (seed: number): string => {
    const rng = new Rng(seed);
    return JSON.stringify(Array.from({ length: 50 }, () => chatTask(rng, corpus)));
  };
  assert.equal(draw(5), draw(5));
  assert.notEqual(draw(5), draw(6));
  const rng = new Rng(1);
  for (let i = 0; i < 500; i++) {
    const c = chatTask(rng, corpus);
    assert.deepEqual(validateConversation(c), [], JSON.stringify(c));
    const last = c.messages[c.messages.length - 1];
    assert.equal(last.role, 'assistant');
    assert.ok(last.content.length > 0, JSON.stringify(c));
  }
});

test('chatTask answers what it asks (first/last word, spelling, yes/no on the sentence shown)', () => {
  const corpus = chatTaskCorpus(DOCS);
  const rng = new Rng(2);
  let checked = 0;
  for (let i = 0; i < 2000; i++) {
    const c = chatTask(rng, corpus);
    const [user, answer] = c.messages.slice(-2).map((m) => m.content);
    const first = /^what is the first word\? (.*)$/.exec(user);
    const spell = /^spell the word (\w+)\.$/.exec(user);
    const has = /^is the word (\w+) in this sentence\? (.*)$/.exec(user);
    if (first) assert.equal(answer, first[1].split(/\s+/)[0].replace(/[.,!?]/g, ''));
    else if (spell) assert.equal(answer.replace(/ /g, ''), spell[1]);
    else if (has) assert.equal(answer, has[2].replace(/[.,!?]/g, '').split(/\s+/).includes(has[1]) ? 'yes' : 'no');
    else continue;
    checked++;
  }
  assert.ok(checked > 300, `only ${checked} checkable conversations`);
});

test('chatTask prompts never use the skills\u2019 trigger words (a skill fine-tune must still teach the skill)', () => {
  const corpus = chatTaskCorpus(DOCS);
  const triggers = /\b(plus|add|opposite|how many|count|sound|says?|reverse|date|days|json|extract)\b|\+|=/;
  const rng = new Rng(3);
  for (let i = 0; i < 3000; i++) {
    const c = chatTask(rng, corpus);
    const user = c.messages[c.messages.length - 2].content;
    // the instruction part only: the quoted corpus sentence after it may contain any word
    const instruction = user.replace(/(:|\?) .*$/, '$1');
    assert.doesNotMatch(instruction, triggers, user);
  }
  // and the skills' own prompts are not generic tasks (the regex does catch every skill)
  for (const name of SKILL_NAMES) for (const e of SKILLS[name].generate(new Rng(4), 20)) assert.match(e.prompt.toLowerCase(), triggers, `${name}: ${e.prompt}`);
  assert.ok(CHAT_TASK_NOUNS.length >= 10);
});

test('chatTaskCorpus refuses nothing but chatTask needs material', () => {
  assert.throws(() => chatTask(new Rng(1), chatTaskCorpus([])), /needs at least one sentence/);
});
