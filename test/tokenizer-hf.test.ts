// Hugging Face tokenizer.json tokenizers (optional data: real Llama-2 and Phi-3 tokenizer.json files) against
// llama.cpp's Llama SPM test vectors, and tokenizer.json → GGUF metadata → GGUF tokenizer on real text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GgufTokenizer, ggufVocabFromMetadata, HfTokenizer, tokenizerJsonToGgufMetadata, type TokenizerConfig, type TokenizerJson } from '../src/tokenizer/index.js';
import { needsShared, optionalShared, requireShared, sharedPath } from './shared-data.js';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');
const sep = '\n__ggml_vocab_test__\n';
const inputs = readFileSync(join(FIX, 'ggml-vocab-llama-spm.gguf.inp'), 'utf8').split(sep).slice(0, -1);
const outputs = readFileSync(join(FIX, 'ggml-vocab-llama-spm.gguf.out'), 'utf8').split('\n');

for (const name of ['llama2-hf', 'phi-3-mini']) {
  const dir = sharedPath('tokenizers', name);
  const files = [join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json')];
  test(`tokenizer.json ${name}: llama.cpp Llama vectors, decode, streaming, GGUF conversion`, needsShared(...files), () => {
    requireShared(...files);
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
    const tok = new HfTokenizer(json, config);
    assert.equal(tok.bosId, 1);
    inputs.forEach((text, i) => {
      const want = outputs[i].trim() === '' ? [] : outputs[i].trim().split(' ').map(Number);
      const ids = tok.encode(text, { addBos: false });
      assert.deepEqual(ids, want, JSON.stringify(text));
      const dec = tok.createDecoder();
      assert.equal(ids.map((id) => dec.push(id)).join('') + dec.flush(), tok.decode(ids));
    });
    const gguf = new GgufTokenizer(ggufVocabFromMetadata(tokenizerJsonToGgufMetadata(json, config)));
    const book = sharedPath('corpus', 'gutenberg', 'pg11.txt');
    const text = (optionalShared(book) ? readFileSync(book, 'utf8').slice(0, 8000) : '') + ' 日本語 🦙 ÄÖÜ <s> x';
    assert.deepEqual(gguf.encode(text), tok.encode(text));
    assert.equal(gguf.addBosByDefault, tok.addBosByDefault);
  });
}
