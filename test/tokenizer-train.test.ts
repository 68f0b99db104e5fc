// Byte-level BPE trainer: loads in @huggingface/tokenizers, round-trips any UTF-8, merges in frequency order,
// and converts to GGUF and back with the same tokenization.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  byteLevelEncode, GgufTokenizer, ggufMetadataToTokenizerJson, ggufVocabFromMetadata, HfTokenizer, tokenizerJsonToGgufMetadata, trainBpe,
} from '../src/tokenizer/index.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tokenizer');
// A small real corpus: the chat templates and llama.cpp's tokenizer test inputs.
const corpus = ['meta-llama-Llama-3.2-3B-Instruct.jinja', 'Qwen-Qwen2.5-7B-Instruct.jinja', 'HuggingFaceTB-SmolLM3-3B.jinja', 'ggml-vocab-gpt-2.gguf.inp']
  .map((f) => readFileSync(join(DIR, f), 'utf8'));
const json = trainBpe(corpus, { vocabSize: 700, specialTokens: ['<|endoftext|>', '<|im_start|>'] });
const tok = new HfTokenizer(json, { eos_token: '<|endoftext|>' });

/** Deterministic random strings over ASCII, Latin, CJK, emoji, controls and odd whitespace. */
function randomTexts(n: number): string[] {
  let s = 12345;
  const rnd = (k: number): number => ((s = (s * 1103515245 + 12345) >>> 0) % k);
  const ranges: [number, number][] = [[0x20, 0x7e], [0x00, 0x1f], [0xa0, 0x24f], [0x4e00, 0x4fff], [0x1f300, 0x1f6ff], [0x2000, 0x206f], [0x3040, 0x30ff]];
  return Array.from({ length: n }, () => {
    let t = '';
    for (let i = rnd(40); i >= 0; i--) {
      const [lo, hi] = ranges[rnd(ranges.length)];
      t += String.fromCodePoint(lo + rnd(hi - lo + 1));
    }
    return t;
  });
}

test('trained tokenizer: vocab layout and merge order', () => {
  assert.equal(Object.keys(json.model.vocab).length, 700);
  assert.equal(tok.vocabSize, 700);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [[0, '<|endoftext|>', true], [1, '<|im_start|>', true]]);
  // The first merge is the most frequent adjacent pair of byte symbols over the pre-tokenized corpus.
  const pairs = new Map<string, number>();
  for (const text of corpus) {
    for (const m of text.matchAll(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu)) {
      const w = Array.from(byteLevelEncode(m[0]));
      for (let i = 0; i + 1 < w.length; i++) pairs.set(`${w[i]} ${w[i + 1]}`, (pairs.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    }
  }
  const best = Math.max(...pairs.values());
  const first = json.model.merges[0] as [string, string];
  assert.equal(pairs.get(first.join(' ')), best);
});

test('trained tokenizer round-trips arbitrary UTF-8 and compresses its corpus', () => {
  for (const text of [...randomTexts(200), ...corpus]) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text);
    const dec = tok.createDecoder();
    assert.equal(ids.map((id) => dec.push(id)).join('') + dec.flush(), text);
  }
  const bytes = corpus.reduce((n, t) => n + Buffer.byteLength(t), 0);
  const ids = corpus.reduce((n, t) => n + tok.encode(t).length, 0);
  assert.ok(bytes / ids > 2, `compression ${bytes / ids} bytes/token`);
  assert.deepEqual(tok.encode('a<|endoftext|>', { parseSpecial: true }).slice(-1), [0]);
  assert.ok(!tok.encode('a<|endoftext|>').includes(0));
});

test('trained tokenizer → GGUF metadata (gpt-2 pre) → same ids; and back to tokenizer.json', () => {
  const meta = tokenizerJsonToGgufMetadata(json, { eos_token: '<|endoftext|>' });
  assert.equal(meta.get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(meta.get('tokenizer.ggml.pre'), 'gpt-2');
  assert.equal((meta.get('tokenizer.ggml.merges') as string[])[0], (json.model.merges[0] as string[]).join(' '));
  assert.deepEqual((meta.get('tokenizer.ggml.token_type') as number[]).slice(0, 3), [3, 3, 1]);
  const gguf = new GgufTokenizer(ggufVocabFromMetadata(meta));
  const { tokenizerJson, tokenizerConfig } = ggufMetadataToTokenizerJson(meta);
  const again = new HfTokenizer(tokenizerJson, tokenizerConfig);
  for (const text of [...randomTexts(100), ...corpus]) {
    const ids = tok.encode(text);
    assert.deepEqual(gguf.encode(text), ids, JSON.stringify(text));
    assert.deepEqual(again.encode(text), ids, JSON.stringify(text));
  }
});

test('trainBpe rejects a vocab smaller than specials + 256 bytes', () => {
  assert.throws(() => trainBpe(['x'], { vocabSize: 200 }), /vocabSize 200 must be an integer >= 256/);
});
