// GGUF-vocab tokenizers against llama.cpp's own test vectors (tests/test-tokenizer-0), and GGUF ↔ tokenizer.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../src/formats/gguf.js';
import {
  GgufTokenizer, HfTokenizer, ggufMetadataToTokenizerJson, ggufVocabFromMetadata, tokenizerJsonToGgufMetadata,
} from '../src/tokenizer/index.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');
const VOCABS = ['llama-spm', 'phi-3', 'gpt-2', 'deepseek-coder'];

/** llama.cpp's format: inputs separated by "\n__ggml_vocab_test__\n" (also after the last), one line of ids each. */
function vectors(name: string): { text: string; ids: number[] }[] {
  const sep = '\n__ggml_vocab_test__\n';
  const raw = readFileSync(join(DIR, `ggml-vocab-${name}.gguf.inp`), 'utf8');
  const inputs = raw.split(sep);
  if (raw.endsWith(sep)) inputs.pop();
  const outs = readFileSync(join(DIR, `ggml-vocab-${name}.gguf.out`), 'utf8').split('\n').slice(0, inputs.length);
  assert.equal(outs.length, inputs.length, `${name}: .inp/.out test counts differ`);
  return inputs.map((text, i) => ({ text, ids: outs[i].trim() === '' ? [] : outs[i].trim().split(' ').map(Number) }));
}
const metaCache = new Map<string, Map<string, unknown>>();
function metadata(name: string): Map<string, unknown> {
  let m = metaCache.get(name);
  if (m === undefined) metaCache.set(name, (m = readGguf(join(DIR, `ggml-vocab-${name}.gguf`)).metadata));
  return m;
}

for (const name of VOCABS) {
  test(`GGUF ${name}: llama.cpp test vectors, exact decode, streaming decode`, () => {
    const tok = new GgufTokenizer(ggufVocabFromMetadata(metadata(name)));
    const cases = vectors(name);
    assert.equal(cases.length, 46);
    for (const { text, ids } of cases) {
      const got = tok.encode(text, { addBos: false }); // test-tokenizer-0: add_special=false, parse_special=false
      assert.deepEqual(got, ids, `${name}: ${JSON.stringify(text)}`);
      assert.equal(tok.decode(got), text, `${name}: decode ${JSON.stringify(text)}`);
      const dec = tok.createDecoder();
      const streamed = got.map((id) => dec.push(id)).join('') + dec.flush();
      assert.equal(streamed, text);
    }
  });

  test(`GGUF ${name} → tokenizer.json → GGUF keeps the tokenization`, () => {
    const { tokenizerJson, tokenizerConfig } = ggufMetadataToTokenizerJson(metadata(name));
    const hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    const back = new GgufTokenizer(ggufVocabFromMetadata(tokenizerJsonToGgufMetadata(tokenizerJson, tokenizerConfig)));
    for (const { text, ids } of vectors(name)) {
      assert.deepEqual(hf.encode(text, { addBos: false }), ids, `tokenizer.json: ${JSON.stringify(text)}`);
      assert.deepEqual(back.encode(text, { addBos: false }), ids, `back to GGUF: ${JSON.stringify(text)}`);
    }
    assert.equal(hf.addBosByDefault, new GgufTokenizer(ggufVocabFromMetadata(metadata(name))).addBosByDefault);
  });
}

test('byte-fallback pieces stream as whole characters', () => {
  const tok = new GgufTokenizer(ggufVocabFromMetadata(metadata('llama-spm')));
  const ids = tok.encode('a🦙b', { addBos: false });
  const pieces = ids.map((id) => tok.idToToken(id));
  assert.ok(pieces.includes('<0xF0>') && pieces.includes('<0x99>'), `expected byte tokens, got ${pieces.join(' ')}`);
  const dec = tok.createDecoder();
  const out = ids.map((id) => dec.push(id));
  assert.deepEqual(out.filter((s) => s !== ''), ['a', '🦙', 'b']);
  assert.equal(dec.flush(), '');
});

test('BOS/EOS defaults and special-token parsing (phi-3)', () => {
  const tok = new GgufTokenizer(ggufVocabFromMetadata(metadata('phi-3')));
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 32000);
  assert.equal(tok.addBosByDefault, true);
  assert.deepEqual(tok.encode('Hi', {}).slice(0, 1), [1]);
  const user = tok.tokenToId('<|user|>');
  assert.equal(user, 32010);
  assert.ok(!tok.encode('<|user|>x', { addBos: false }).includes(32010), 'control token text stays text by default');
  assert.deepEqual(tok.encode('<|user|>x', { addBos: false, parseSpecial: true }).slice(0, 1), [32010]);
  assert.ok(tok.stopIds.includes(32000) && tok.stopIds.includes(tok.tokenToId('<|end|>') ?? -1));
  assert.equal(tok.decode([1, 32010, 1724], { skipSpecial: true }), tok.decode([1724]));
  assert.ok(tok.specialTokens.some((s) => s.text === '<|end|>' && s.kind === 'control'));
});

test('ggufVocabFromMetadata names the bad key', () => {
  const meta = new Map<string, unknown>([['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', ['a', 2]]]);
  assert.throws(() => ggufVocabFromMetadata(meta), /tokenizer\.ggml\.tokens\[1\]/);
  assert.throws(() => ggufVocabFromMetadata(new Map([['tokenizer.ggml.model', 'bert']])), /unsupported 'bert'/);
  const bpe = new Map<string, unknown>([['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.tokens', ['a']], ['tokenizer.ggml.merges', ['a b']], ['tokenizer.ggml.pre', 'nope']]);
  assert.throws(() => new GgufTokenizer(ggufVocabFromMetadata(bpe)), /unsupported pre-tokenizer 'nope'/);
});
