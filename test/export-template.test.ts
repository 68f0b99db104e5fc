// Ollama TEMPLATE translation: the chat templates of the common families (as their tokenizer_config.json files ship
// them: Llama-3-8B-Instruct, Llama-2-7b-chat, zephyr-7b-beta, and ChatML as nomoat's tokenizer trainer writes it) are
// recognized and proved on probe conversations; look-alikes (Qwen2.5's default system prompt, a Zephyr without
// newlines) are not translated, so the Modelfile leaves the GGUF's template to Ollama.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHATML_TEMPLATE } from '../src/cli/tokenizer-train.js';
import { modelfileText, translateTemplate } from '../src/handoff/index.js';
import { tinyTokenizer } from './cli-model.js';

const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const ZEPHYR =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

const QWEN25 =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

test('ChatML, Llama-3, Llama-2 and Zephyr templates translate to Ollama templates, with their stop strings', () => {
  const cases: [string, string, string, string, string[]][] = [
    ['chatml', CHATML_TEMPLATE, '', '<|im_end|>', ['<|im_end|>', '<|im_start|>']],
    ['llama3', LLAMA3, '<|begin_of_text|>', '<|eot_id|>', ['<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>']],
    ['llama2', LLAMA2, '<s>', '</s>', ['[INST]', '[/INST]']],
    ['zephyr', ZEPHYR, '<s>', '</s>', ['</s>', '<|user|>', '<|system|>']],
  ];
  for (const [family, jinja, bos, eos, stops] of cases) {
    const t = translateTemplate(jinja, bos, eos);
    assert.ok(t.ok, `${family}: ${t.ok ? '' : t.why}`);
    assert.equal(t.value.family, family);
    assert.deepEqual(t.value.stops, stops);
    assert.ok(t.value.template.includes('.Messages'), `${family}: Ollama's .Messages`);
    assert.ok(!t.value.template.includes('"""'));
  }
});

test('look-alike templates are not translated (Qwen2.5 default system prompt; a Zephyr without newlines; none at all)', () => {
  const q = translateTemplate(QWEN25, '', '<|im_end|>');
  assert.ok(!q.ok);
  assert.match(q.why, /looks like chatml but renders differently/);
  const z = translateTemplate(tinyTokenizer().chatTemplate!, '<s>', '</s>');
  assert.ok(!z.ok);
  assert.match(z.why, /none of ChatML/); // its role markers are built from message['role'], not literal <|user|>
  const n = translateTemplate('{{ messages[0].content }}', '', '');
  assert.ok(!n.ok);
  assert.match(n.why, /none of ChatML/);
});

test('the Modelfile quotes stop strings and carries the TEMPLATE in triple quotes', () => {
  const tok = tinyTokenizer();
  const withChatml = Object.create(tok, { chatTemplate: { value: CHATML_TEMPLATE }, eosId: { value: 2 } }) as typeof tok;
  const m = modelfileText(withChatml, true).text;
  assert.match(m, /^# Written by nomoat export --for ollama\nFROM \.\/model\.gguf\nADAPTER \.\/adapter\.gguf\nTEMPLATE """\{\{- range \$i, \$_ := \.Messages \}\}/);
  assert.match(m, /^PARAMETER stop "<\|im_end\|>"$/m);
  const noAdapter = modelfileText(withChatml, false).text;
  assert.doesNotMatch(noAdapter, /ADAPTER/);
});
