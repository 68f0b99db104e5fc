// hf:// spec parsing and the file choice (quant tags as llama.cpp's -hf matches them, split and ambiguous GGUFs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHubSpec, parseHubSpec } from './spec.js';
import { chooseTarget, folderFiles, matchQuant } from './select.js';
import { formatBytes, formatEta, progressLine } from './progress.js';

test('parseHubSpec: repo, @revision, :quant and :file; bad forms say the expected one', () => {
  assert.deepEqual(parseHubSpec('hf://org/model'), { repo: 'org/model', revision: 'main' });
  assert.deepEqual(parseHubSpec('hf://org/model-GGUF:Q4_K_M'), { repo: 'org/model-GGUF', revision: 'main', tag: 'Q4_K_M' });
  assert.deepEqual(parseHubSpec('hf://org/m@v1.0:sub/m-q8_0.gguf'), { repo: 'org/m', revision: 'v1.0', tag: 'sub/m-q8_0.gguf' });
  assert.equal(formatHubSpec(parseHubSpec('hf://org/m@dev:Q8_0')), 'hf://org/m@dev:Q8_0');
  for (const bad of ['hf://model', 'hf://a/b/c', 'hf://org/m:', 'hf://org/m@:x', 'hf://org/../x', 'hf://org/m:../../etc/passwd', 'org/m', 'hf://o--x/m']) {
    assert.throws(() => parseHubSpec(bad), /expected hf:\/\/OWNER\/REPO/, bad);
  }
});

const GGUFS = ['README.md', 'm-Q4_K_M.gguf', 'm-Q4_K_S.gguf', 'm-Q8_0.gguf', 'm-q4_k_m_l.gguf', 'mmproj-m-f16.gguf', 'big/m-Q6_K-00001-of-00002.gguf', 'big/m-Q6_K-00002-of-00002.gguf'];

test('quant tags match case-insensitively, whole words first, never the mmproj projector', () => {
  assert.deepEqual(matchQuant(GGUFS, 'q4_k_m'), ['m-Q4_K_M.gguf']); // not m-q4_k_m_l
  assert.deepEqual(matchQuant(GGUFS, 'Q8_0'), ['m-Q8_0.gguf']);
  assert.deepEqual(matchQuant(GGUFS, 'f16'), []);
  const spec = (tag?: string) => parseHubSpec(`hf://o/m${tag === undefined ? '' : `:${tag}`}`);
  assert.deepEqual(chooseTarget(GGUFS, spec('q8_0'), 'r'), { kind: 'gguf', file: 'm-Q8_0.gguf' });
  assert.deepEqual(chooseTarget(GGUFS, spec(), 'r'), { kind: 'gguf', file: 'm-Q4_K_M.gguf' }); // llama.cpp's default
  assert.deepEqual(chooseTarget(GGUFS, spec('m-Q4_K_S.gguf'), 'r'), { kind: 'gguf', file: 'm-Q4_K_S.gguf' });
  assert.throws(() => chooseTarget(GGUFS, spec('Q4_K'), 'r'), /"Q4_K" matches 3 GGUF files[\s\S]*m-Q4_K_M.gguf[\s\S]*m-Q4_K_S.gguf/);
  assert.throws(() => chooseTarget(GGUFS, spec('Q6_K'), 'r'), /split GGUF/);
  assert.throws(() => chooseTarget(GGUFS, spec('IQ2_XS'), 'r'), /no GGUF file matching "IQ2_XS"[\s\S]*m-Q8_0.gguf/);
  assert.throws(() => chooseTarget(['a-Q8_0.gguf', 'a-F16.gguf'], spec(), 'r'), /2 GGUF files and no single Q4_K_M/);
  assert.throws(() => chooseTarget(['README.md'], spec(), 'r'), /neither config.json/);
});

test('a Hugging Face folder takes only what loading needs', () => {
  const files = ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json',
    'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'chat_template.jinja', 'pytorch_model.bin', 'README.md',
    'onnx/model.onnx', 'onnx/tokenizer.json', 'm-Q4_K_M.gguf', '.gitattributes'];
  const t = chooseTarget(files, parseHubSpec('hf://o/m'), 'r');
  assert.deepEqual(t, { kind: 'folder', files: folderFiles(files) });
  assert.deepEqual(folderFiles(files), ['chat_template.jinja', 'config.json', 'generation_config.json', 'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json']);
});

test('progress line: bytes, rate and ETA', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1_234_567), '1.23 MB');
  assert.equal(formatEta(65), '1:05');
  assert.equal(formatEta(3725), '1:02:05');
  assert.equal(progressLine('m.gguf', 500_000, 1_000_000, 250_000, 10), 'm.gguf  [#####-----]  50%  500 kB/1.00 MB  250 kB/s  ETA 0:02');
});
