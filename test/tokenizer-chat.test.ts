// Real chat templates rendered to exact strings (derived by reading each template), and assistant-token masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../src/formats/gguf.js';
import { chatTemplateFromConfig, GgufTokenizer, ggufVocabFromMetadata, renderChat, strftime, tokenizeChat, type ChatMessage } from '../src/tokenizer/index.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');
const template = (name: string): string => readFileSync(join(DIR, `${name}.jinja`), 'utf8');
const chat: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '2+2 equals 4.' },
];
const now = new Date(2025, 2, 7, 9, 5); // local time: 07 Mar 2025 09:05

const expected: Record<string, { full: string; prompt: string }> = {
  'meta-llama-Llama-3.2-3B-Instruct': {
    full: '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 07 Mar 2025\n\n' +
      'You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n2+2 equals 4.<|eot_id|>',
    prompt: '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 07 Mar 2025\n\n' +
      'You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  },
  'Qwen-Qwen2.5-7B-Instruct': {
    full: '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n2+2 equals 4.<|im_end|>\n',
    prompt: '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  },
  'HuggingFaceTB-SmolLM3-3B': {
    full: '<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /think\n\n## Custom Instructions\n\n' +
      'You are a helpful assistant.\n\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n2+2 equals 4.<|im_end|>\n',
    prompt: '<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /think\n\n## Custom Instructions\n\n' +
      'You are a helpful assistant.\n\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  },
  'microsoft-Phi-3.5-mini-instruct': {
    full: '<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n2+2 equals 4.<|end|>\n<|endoftext|>',
    prompt: '<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n',
  },
};

for (const [name, want] of Object.entries(expected)) {
  test(`chat template ${name}: exact rendering`, () => {
    const opts = { bosToken: '<|begin_of_text|>', eosToken: '<|endoftext|>', now };
    assert.equal(renderChat(template(name), chat, opts), want.full);
    assert.equal(renderChat(template(name), chat.slice(0, 2), { ...opts, addGenerationPrompt: true }), want.prompt);
  });
}

test('SmolLM3 /no_think and Qwen tools (tojson as transformers writes it)', () => {
  const noThink = renderChat(template('HuggingFaceTB-SmolLM3-3B'), [{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true, variables: { enable_thinking: false } });
  assert.ok(noThink.includes('Reasoning Mode: /no_think\n'));
  assert.ok(noThink.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n'));
  const tools = [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } }];
  const q = renderChat(template('Qwen-Qwen2.5-7B-Instruct'), [{ role: 'user', content: 'Time?' }], { tools, addGenerationPrompt: true });
  assert.ok(q.includes('<tools>\n{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}\n</tools>'), q);
});

test('raise_exception surfaces as an error', () => {
  const tools = [{ name: 'f' }];
  assert.throws(() => renderChat(template('meta-llama-Llama-3.2-3B-Instruct'), [{ role: 'system', content: 's' }], { tools, now }),
    /Cannot put tools in the first user message/);
});

test('strftime and chatTemplateFromConfig', () => {
  assert.equal(strftime(now, '%d %b %Y|%B %A %a|%H:%M %I%p|%j %y %m %%'), '07 Mar 2025|March Friday Fri|09:05 09AM|066 25 03 %');
  assert.equal(chatTemplateFromConfig({ chat_template: 'T' }), 'T');
  assert.equal(chatTemplateFromConfig({ chat_template: [{ name: 'tool_use', template: 'U' }, { name: 'default', template: 'D' }] }), 'D');
  assert.equal(chatTemplateFromConfig({ chat_template: [{ name: 'tool_use', template: 'U' }] }, 'tool_use'), 'U');
  assert.equal(chatTemplateFromConfig({}), null);
});

test('tokenizeChat masks exactly the assistant replies (phi-3 GGUF vocab and its embedded template)', () => {
  const tok = new GgufTokenizer(ggufVocabFromMetadata(readGguf(join(DIR, 'ggml-vocab-phi-3.gguf')).metadata));
  const msgs: ChatMessage[] = [...chat, { role: 'user', content: 'And 3+3?' }, { role: 'assistant', content: 'Six.' }];
  const r = tokenizeChat(tok, msgs);
  assert.equal(r.text, '<s><|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n2+2 equals 4.<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\nSix.<|end|>\n');
  assert.deepEqual(r.ids, tok.encode(r.text, { addBos: false, parseSpecial: true }));
  // Group the masked tokens into runs and decode each run.
  const runs: number[][] = [];
  r.ids.forEach((id, i) => {
    if (r.assistantMask[i] === 1) {
      if (i === 0 || r.assistantMask[i - 1] === 0) runs.push([]);
      runs[runs.length - 1].push(id);
    }
  });
  // Phi-3's special tokens swallow the following newline (llama.cpp rstrip rule), so replies end at <|end|>.
  assert.deepEqual(runs.map((ids) => tok.decode(ids)), ['2+2 equals 4.<|end|>', 'Six.<|end|>']);
  const user = r.ids.indexOf(tok.tokenToId('<|user|>') ?? -1);
  assert.equal(r.assistantMask[user], 0);
});
