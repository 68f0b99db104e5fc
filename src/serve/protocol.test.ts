// Request validation: each bad field named as OpenAI's `param` in a sentence; unknown fields dropped; the four
// prompt forms; nulls as "unset".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, ChatRequest, CompletionRequest, fieldPath, parseBody } from './protocol.js';

function fails(schema: Parameters<typeof parseBody>[0], body: unknown): ApiError {
  try {
    parseBody(schema, body);
  } catch (e) {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 400);
    return e;
  }
  assert.fail('expected a 400');
}

test('fieldPath names fields as OpenAI does', () => {
  assert.equal(fieldPath(['messages', 0, 'content']), 'messages[0].content');
  assert.equal(fieldPath(['prompt', 2]), 'prompt[2]');
  assert.equal(fieldPath([]), '');
});

test('parseBody: the first bad field, in a sentence', () => {
  const m = [{ role: 'user', content: 'hi' }];
  assert.deepEqual([fails(ChatRequest, { messages: [{ role: 'user', content: 3 }] })].map((e) => [e.param, e.message]), [['messages[0].content', 'messages[0].content: must be a string or a list of {"type": "text", "text"} parts']]);
  assert.equal(fails(ChatRequest, { messages: m, max_tokens: 1.5 }).message, 'max_tokens: must be an integer, got 1.5');
  assert.equal(fails(ChatRequest, { messages: m, max_tokens: 0 }).message, 'max_tokens: must be ≥ 1, got 0');
  assert.equal(fails(ChatRequest, { messages: m, top_p: 0 }).message, 'top_p: must be > 0, got 0');
  assert.equal(fails(ChatRequest, { messages: m, temperature: 'hot' }).message, 'temperature: must be a number, got "hot"');
  assert.equal(fails(ChatRequest, { messages: [] }).message, 'messages: must have at least 1 item');
  assert.equal(fails(ChatRequest, {}).message, 'messages: is required');
  assert.equal(fails(ChatRequest, { messages: m, stop: [''] }).message, 'stop[0]: must not be empty');
  assert.equal(fails(ChatRequest, [1]).message, 'the request body must be a JSON object');
  assert.equal(fails(CompletionRequest, { prompt: [1, -2] }).param, 'prompt[1]');
});

test('parseBody: unknown fields dropped, nulls accepted, prompt forms', () => {
  const r = parseBody(ChatRequest, { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }] }], max_tokens: null, seed: null, whatever: { x: 1 } });
  assert.equal('whatever' in r, false);
  assert.equal(r.max_tokens, null);
  for (const prompt of ['a', ['a', 'b'], [1, 2], [[1], [2, 3]]]) assert.deepEqual(parseBody(CompletionRequest, { prompt }).prompt, prompt);
  assert.deepEqual(parseBody(CompletionRequest, { prompt: 'x', adapters: [{ name: 'a' }] }).adapters, [{ name: 'a', scale: 1 }]);
});
