// The ported llama.cpp GPT-2 scanner agrees with the GPT-2 regex itself (with llama.cpp's whitespace set).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preTokenizer } from './pretokenize.js';

const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GPT2 = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu');

test('gpt-2 scanner equals the GPT-2 regex on random text', () => {
  const pre = preTokenizer('gpt-2');
  const alphabet = Array.from("ab Z9'st re\n\t\u00a0½é日🦙.,!-  \r\n'll'D");
  let s = 7;
  for (let k = 0; k < 500; k++) {
    let text = '';
    for (let i = 0; i < 30; i++) text += alphabet[(s = (s * 1103515245 + 12345) >>> 0) % alphabet.length];
    assert.deepEqual(pre.split(text), Array.from(text.matchAll(GPT2), (m) => m[0]), JSON.stringify(text));
  }
});

test('llama3 scanner: case-insensitive contractions, 3-digit groups, newline runs', () => {
  const pre = preTokenizer('llama-bpe');
  assert.deepEqual(pre.split("I'M here 12345\n\n  x"), ['I', "'M", ' here', ' ', '123', '45', '\n\n', ' ', ' x']);
  assert.equal(pre.ignoreMerges, true);
  assert.throws(() => preTokenizer('bogus'), /unsupported pre-tokenizer 'bogus'/);
});
