// responseScores on the bundled base (assets/default-model): against an oracle that shares none of its shortcuts (one
// plain forward of the record alone, every position through the LM head, a float64 log-softmax of each learned row),
// the same at every batch size, and it ranks replies the base knows above corrupted ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noGrad, tidy } from '../engine/index.js';
import type { Conversation } from '../data/types.js';
import type { LlamaModel } from '../models/llama.js';
import { loadModel } from '../models/load.js';
import { tokenizeChat, type Tokenizer } from '../tokenizer/index.js';
import { responseScores, type ScoreItem } from './response-score.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'assets', 'default-model');
const HAVE = existsSync(join(BUNDLED, 'config.json'));
const SKIP = HAVE ? {} : { skip: 'assets/default-model absent' };

let cached: { model: LlamaModel; tok: Tokenizer } | null = null;
function bundled(): { model: LlamaModel; tok: Tokenizer } {
  if (cached === null) {
    const m = loadModel(BUNDLED, { dtype: 'f32' });
    assert.ok(m.tokenizer !== null);
    cached = { model: m.model, tok: m.tokenizer };
  }
  return cached;
}

const chat = (u: string, a: string): Conversation => ({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });

/** Mean NLL (or margin: max logit − the token's) of the learned tokens of ids (mask[t] = 1, t ≥ 1) from one forward
 *  of ids[:-1] alone. */
function oracleLoss(model: LlamaModel, ids: readonly number[], mask: ArrayLike<number>, what: 'nll' | 'margin' = 'nll'): number {
  const input = Int32Array.from(ids.slice(0, -1));
  const logits = noGrad(() => tidy(() => model.forward(input, 1, input.length).toArray())); // [T, V]
  const V = model.config.vocabSize;
  let nll = 0, n = 0;
  for (let t = 1; t < ids.length; t++) {
    if (mask[t] !== 1) continue;
    const row = Float64Array.from(logits.subarray((t - 1) * V, t * V));
    const max = Math.max(...row);
    nll += what === 'margin' ? max - row[ids[t]] : -(row[ids[t]] - max - Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0)));
    n++;
  }
  return nll / n;
}

const ITEMS: ScoreItem[] = [
  { conversation: chat('what color is the sky?', 'blue') },
  { conversation: { messages: [{ role: 'system', content: 'answer the question.' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello! how can i help you?' }, { role: 'user', content: 'thank you' }, { role: 'assistant', content: 'you are welcome!' }] } },
  { text: 'once upon a time, there was a little girl named lily. she liked to play in the park with her dog.' },
  { conversation: chat('repeat after me: the cat sat on the mat.', 'the cat sat on the mat.') },
  { text: 'the sun was warm.' },
];

test('mean NLL of the learned tokens equals a plain forward of each record alone, at every batch size', SKIP, () => {
  const { model, tok } = bundled();
  const want = ITEMS.map((x) => {
    if ('text' in x) {
      const ids = tok.encode(x.text, { addBos: tok.bosId !== null });
      return oracleLoss(model, ids, new Uint8Array(ids.length).fill(1));
    }
    const t = tokenizeChat(tok, x.conversation.messages.map((m) => ({ role: m.role, content: m.content })));
    return oracleLoss(model, t.ids, t.assistantMask);
  });
  for (const batchSize of [1, 2, 16]) {
    const got = responseScores(model, tok, ITEMS, { batchSize });
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1e-4 * (1 + want[i]), `batch ${batchSize}, item ${i}: ${g} vs ${want[i]}`));
  }
});

test('margin: the mean of log p(top token) − log p(the reply\'s token) equals the oracle\'s, is 0 for a greedy reply', SKIP, () => {
  const { model, tok } = bundled();
  const want = ITEMS.map((x) => {
    if ('text' in x) {
      const ids = tok.encode(x.text, { addBos: tok.bosId !== null });
      return oracleLoss(model, ids, new Uint8Array(ids.length).fill(1), 'margin');
    }
    const t = tokenizeChat(tok, x.conversation.messages.map((m) => ({ role: m.role, content: m.content })));
    return oracleLoss(model, t.ids, t.assistantMask, 'margin');
  });
  for (const batchSize of [1, 16]) {
    const got = responseScores(model, tok, ITEMS, { batchSize, by: 'margin' });
    got.forEach((g, i) => assert.ok(g >= 0 && Math.abs(g - want[i]) <= 1e-4 * (1 + want[i]), `batch ${batchSize}, item ${i}: ${g} vs ${want[i]}`));
  }
  // a text continued greedily: every token after the prompt is the argmax, so the continuation alone scores 0
  const ids = tok.encode('once upon a time', { addBos: tok.bosId !== null });
  for (let k = 0; k < 6; k++) {
    const input = Int32Array.from(ids);
    const logits = noGrad(() => tidy(() => model.forward(input, 1, input.length).toArray()));
    const V = model.config.vocabSize;
    const last = logits.subarray((ids.length - 1) * V, ids.length * V);
    ids.push(last.indexOf(Math.max(...last)));
  }
  const mask = new Uint8Array(ids.length);
  mask.fill(1, ids.length - 6);
  assert.equal(oracleLoss(model, ids, mask, 'margin'), 0);
});

test('a record longer than maxLength keeps its last maxLength + 1 tokens', SKIP, () => {
  const { model, tok } = bundled();
  const text = 'once upon a time, there was a little girl named lily. she liked to play in the park with her dog.';
  const ids = tok.encode(text, { addBos: tok.bosId !== null });
  const keep = ids.slice(-9);
  const [got] = responseScores(model, tok, [{ text }], { maxLength: 8 });
  const want = oracleLoss(model, keep, new Uint8Array(keep.length).fill(1));
  assert.ok(Math.abs(got - want) <= 1e-4 * (1 + want), `${got} vs ${want}`);
});

test('the base ranks the replies it knows above corrupted ones (loss), and IFD is their ratio to the reply alone', SKIP, () => {
  const { model, tok } = bundled();
  const pairs: [string, string, string][] = [
    ['what color is the sky?', 'blue', 'kq zzv'],
    ['repeat after me: the dog ran to the park.', 'the dog ran to the park.', 'park the to ran dog the.'],
    ['what is the first word? the cat was happy.', 'the', 'xylophone'],
    ['thank you', 'you are welcome!', 'welcome are you!'],
  ];
  const items = pairs.flatMap(([u, good, bad]) => [{ conversation: chat(u, good) }, { conversation: chat(u, bad) }]);
  const loss = responseScores(model, tok, items);
  for (let k = 0; k < pairs.length; k++) assert.ok(loss[2 * k] < loss[2 * k + 1], `${pairs[k][0]}: ${pairs[k][1]} ${loss[2 * k]} vs ${pairs[k][2]} ${loss[2 * k + 1]}`);
  const ifd = responseScores(model, tok, items, { by: 'ifd' });
  const alone = responseScores(model, tok, items.map((x) => ({ conversation: { messages: x.conversation.messages.filter((m) => m.role === 'assistant') } })));
  ifd.forEach((v, i) => assert.ok(Math.abs(v - loss[i] / alone[i]) <= 1e-9, `item ${i}`));
  // a prompt that asks for exactly the reply helps predict it: IFD below 1
  assert.ok(ifd[2] < 1, `repeat-after-me IFD ${ifd[2]}`);
});

test('bad input: text under IFD, bad batch size', SKIP, () => {
  const { model, tok } = bundled();
  assert.throws(() => responseScores(model, tok, [{ text: 'the sun.' }], { by: 'ifd' }), /item 0 is plain text; IFD needs a chat/);
  assert.throws(() => responseScores(model, tok, ITEMS, { batchSize: 0 }), /batchSize must be a positive integer/);
});
