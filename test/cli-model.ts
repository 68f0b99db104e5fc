// Small models for the CLI, convert and parity tests: an SPM vocabulary llama.cpp accepts (byte tokens included),
// a random-weight model, and a model trained for a few seconds on a repetitive text so its greedy predictions are
// confident (random weights give near-uniform logits, where tiny numerical differences flip the argmax).
//
// Dims are multiples of 32 so every 2-D weight quantizes to q8_0/q4_0.

import { AdamW, backward, crossEntropy, tidy } from '../src/engine/index.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import type { LlamaConfig } from '../src/models/config.js';
import { GgufTokenizer, TokenType } from '../src/tokenizer/index.js';

/** The text the trained model memorizes (ASCII, so every character is one vocab piece). */
export const TRAIN_TEXT = 'the cat sat on the mat. the dog ran to the log. a bird sang in the tree. ';

const CHAT_TEMPLATE =
  "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '</s>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/** An SPM ('llama') vocab: <unk> <s> </s>, 256 byte tokens (llama.cpp requires <0x0A>), characters and a few
 *  merged pieces with scores (higher merges first). 320 tokens. */
export function tinyTokenizer(): GgufTokenizer {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const chars = ['▁', ...'abcdefghijklmnopqrstuvwxyz.,'];
  const merged = ['▁t', 'th', '▁th', 'he', '▁the', 'at', 'in', 'an', '▁a', 'on', 'is', '▁s', 'er', 're', 'ed', 'nd', '▁w', '▁b'];
  const pieces = [...chars, ...merged];
  const tokens = ['<unk>', '<s>', '</s>', ...bytes, ...pieces];
  while (tokens.length < 320) tokens.push(`<extra_${tokens.length}>`);
  const types = tokens.map((t, i) =>
    i === 0 ? TokenType.unknown : i < 3 ? TokenType.control : i < 259 ? TokenType.byte : t.startsWith('<extra_') ? TokenType.userDefined : TokenType.normal);
  const scores = tokens.map((t, i) => {
    const m = merged.indexOf(t);
    return m >= 0 ? -m : i >= 259 && i < 259 + chars.length ? -100 : 0;
  });
  return new GgufTokenizer({
    model: 'llama', pre: 'default', tokens, scores, tokenTypes: types, merges: [], bosId: 1, eosId: 2, unkId: 0, padId: null,
    eotId: null, addBos: true, addSpacePrefix: true, chatTemplate: CHAT_TEMPLATE, name: 'nomoat-tiny',
  });
}

/** The test configuration: C 64, 4 heads of 16, 2 kv heads, MLP 128, 2 layers, vocab 320. */
export function testConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return tinyConfig({ vocabSize: 320, hiddenSize: 64, intermediateSize: 128, numHeads: 4, numKvHeads: 2, headDim: 16, maxPositionEmbeddings: 256, ...over });
}

/** A model with seeded random weights (HF 'halves' RoPE layout unless config says otherwise). */
export function randomModel(cfg: LlamaConfig = testConfig(), seed = 1, std = 0.2): LlamaModel {
  const w = initWeights(cfg, seed, std);
  return new LlamaModel(cfg, (n) => w.get(n));
}

/** A model trained on TRAIN_TEXT with AdamW until it has memorized it (a few seconds on one core). */
export function trainedModel(steps = 80, cfg: LlamaConfig = testConfig(), lr = 1e-2, B = 4, T = 64): { model: LlamaModel; loss: number } {
  const tok = tinyTokenizer();
  const w = initWeights(cfg, 7, 0.05);
  for (const t of w.values()) t.requiresGrad = true;
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const ids = tok.encode(TRAIN_TEXT.repeat(6), { addBos: false });
  const opt = new AdamW([...w.values()], { lr });
  let loss = NaN;
  for (let step = 0; step < steps; step++) {
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      // windows open with BOS as prompts do, then text from a varying offset
      const start = (step * 37 + b * 101) % (ids.length - T);
      const seq = [tok.bosId ?? 1, ...ids.slice(start, start + T)];
      for (let t = 0; t < T; t++) {
        x[b * T + t] = seq[t];
        y[b * T + t] = seq[t + 1];
      }
    }
    tidy(() => {
      const l = crossEntropy(model.forward(x, B, T), y);
      loss = l.item();
      backward(l);
    });
    opt.update(step < steps * 0.7 ? lr : lr / 5);
    for (const t of w.values()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }
  opt.dispose();
  for (const t of w.values()) t.requiresGrad = false;
  return { model, loss };
}
