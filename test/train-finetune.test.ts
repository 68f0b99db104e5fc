// The finetune entry end to end on a tiny model: a character tokenizer with a ChatML-style template, a LoRA adapter
// over a frozen base, loss only on assistant tokens, a PEFT adapter written, and exact resume with LoRA dropout on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/engine/index.js';
import type { Conversation } from '../src/data/index.js';
import { LoraAdapter } from '../src/lora/index.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import type { IncrementalDecoder, SpecialToken, Tokenizer } from '../src/tokenizer/index.js';
import { conversationExample, finetune, readCheckpointState, type MetricsRecord } from '../src/train/index.js';

const TEMPLATE =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/** One id per character (a–z, space, newline, digits, '?') plus two control tokens: enough for tinyConfig's 64 ids. */
class CharTokenizer implements Tokenizer {
  readonly chars = 'abcdefghijklmnopqrstuvwxyz \n0123456789?';
  readonly specials = ['<pad>', '<|im_start|>', '<|im_end|>'];
  readonly vocabSize = this.specials.length + this.chars.length;
  readonly bosId = null;
  readonly eosId = 2;
  readonly padId = 0;
  readonly stopIds = [2];
  readonly specialTokens: SpecialToken[] = this.specials.map((text, id) => ({ id, text, kind: 'control' }));
  readonly chatTemplate = TEMPLATE;
  readonly addBosByDefault = false;
  encode(text: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < text.length; ) {
      const s = this.specials.findIndex((sp) => text.startsWith(sp, i));
      if (s >= 0) {
        out.push(s);
        i += this.specials[s].length;
        continue;
      }
      const c = this.chars.indexOf(text[i]);
      if (c < 0) throw new Error(`CharTokenizer: no id for ${JSON.stringify(text[i])}`);
      out.push(this.specials.length + c);
      i++;
    }
    return out;
  }
  idToToken(id: number): string | undefined {
    return id < this.specials.length ? this.specials[id] : this.chars[id - this.specials.length];
  }
  decode(ids: readonly number[]): string {
    return ids.map((i) => this.idToToken(i) ?? '').join('');
  }
  tokenToId(token: string): number | undefined {
    const s = this.specials.indexOf(token);
    if (s >= 0) return s;
    const c = this.chars.indexOf(token);
    return token.length === 1 && c >= 0 ? this.specials.length + c : undefined;
  }
  isControl(id: number): boolean {
    return id < this.specials.length;
  }
  tokenBytes(id: number): Uint8Array {
    return Buffer.from(this.idToToken(id) ?? '', 'utf8');
  }
  createDecoder(): IncrementalDecoder {
    return { push: (id) => this.idToToken(id) ?? '', flush: () => '' };
  }
}

const tok = new CharTokenizer();

const conversations: Conversation[] = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight'].map((w, i) => ({
  messages: [
    { role: 'user', content: `what is ${w}?` },
    { role: 'assistant', content: String(i + 1) },
  ],
}));

function setup(): { model: LlamaModel; adapter: LoraAdapter; base: Map<string, Float32Array> } {
  const cfg = tinyConfig();
  const w = initWeights(cfg, 5, 0.1);
  const model = new LlamaModel(cfg, (n) => w.get(n));
  const adapter = LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear', loraDropout: 0.1 }, { seed: 1 });
  const base = new Map(model.namedTensors().map(([n, t]) => [n, Float32Array.from(t.data)]));
  return { model, adapter, base };
}

test('conversation examples mask everything but the assistant reply', () => {
  const e = conversationExample(tok, conversations[2]);
  const text = tok.decode(Array.from(e.ids));
  assert.equal(text, '<|im_start|>user\nwhat is three?<|im_end|>\n<|im_start|>assistant\n3<|im_end|>\n');
  const trained = Array.from(e.ids).filter((_, i) => e.mask?.[i] === 1);
  assert.equal(tok.decode(trained), '3<|im_end|>\n');
});

test('finetune trains only the adapter, lowers the assistant-token loss, and writes a PEFT adapter', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-finetune-'));
  try {
    const { model, adapter, base } = setup();
    const records: MetricsRecord[] = [];
    const r = await finetune({
      model, adapter, tokenizer: tok, conversations: conversations.slice(0, 6), evalConversations: conversations.slice(6), mode: 'padded',
      seqLen: 48, batchSize: 3, train: { steps: 40, lr: 1e-2, schedule: 'constant', outDir: dir, progress: 'none', evalEvery: 10 },
      onStep: (m) => records.push(m),
    });
    assert.equal(r.trainRows, 6);
    assert.equal(r.evalRows, 2);
    const first = records[0].loss;
    const last = records.slice(-5).reduce((a, m) => a + m.loss, 0) / 5; // dropout makes single steps noisy
    assert.ok(first > 3.5 && last < 0.6 * first, `assistant loss ${first} → ${last}`);
    for (const [n, t] of model.namedTensors()) assert.deepEqual(Float32Array.from(t.data), base.get(n), `base weight ${n} changed`);
    assert.ok(adapter.parameters().some((t) => t.name.endsWith('lora_B.weight') && t.toArray().some((v) => v !== 0)), 'B left at zero');
    assert.equal(adapter.training, false);
    assert.ok(existsSync(join(dir, 'adapter_model.safetensors')));
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as { r: number };
    assert.equal(cfg.r, 4);
    adapter.dispose();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interrupted LoRA run with dropout resumes exactly (packed rows, gradient accumulation)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'nomoat-finetune-resume-'));
  const run = async (dir: string, stopAt: number | null, resume: boolean): Promise<Float32Array[]> => {
    const { model, adapter } = setup();
    const r = await finetune({
      model, adapter, tokenizer: tok, conversations, evalFraction: 0.25, seqLen: 16, batchSize: 2,
      train: { steps: 6, lr: 1e-2, gradAccum: 2, warmupSteps: 1, saveEvery: 2, evalEvery: 3, outDir: dir, progress: 'none', resume },
      onStep: (m) => {
        if (m.step === stopAt) process.emit('SIGINT'); // as Ctrl-C: finish this update, checkpoint, return
      },
    });
    assert.equal(r.result.interrupted, stopAt !== null);
    const out = adapter.parameters().map((t) => t.toArray());
    adapter.dispose();
    model.dispose();
    return out;
  };
  try {
    const straight = await run(join(root, 'a'), null, false);
    await run(join(root, 'b'), 3, false);
    assert.ok(existsSync(join(root, 'b', 'checkpoints', 'step-000003')));
    assert.equal(existsSync(join(root, 'b', 'adapter_model.safetensors')), false);
    const resumed = await run(join(root, 'b'), null, true);
    straight.forEach((t, i) => assert.ok(Buffer.from(t.buffer).equals(Buffer.from(resumed[i].buffer)), `adapter tensor ${i} differs after resume`));
    // the dropout stream's position was part of the checkpoint: 14 modules × the micro-batches with targets (≤ 3 × 2)
    const state = readCheckpointState(join(root, 'b', 'checkpoints', 'step-000003'));
    const draws = state.extra.lora_dropout_seeds;
    assert.ok(typeof draws === 'number' && draws > 0 && draws % 14 === 0 && draws <= 3 * 2 * 14, `dropout seeds drawn: ${String(draws)}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
