// Reproduces the bundled default model (assets/default-model): trains a byte-level BPE tokenizer and pretrains a
// small Llama from scratch on the public-domain / CDLA corpora in ../shared/data/corpus, then writes a Hugging Face
// folder (config.json, model.safetensors in F16, tokenizer.json, tokenizer_config.json with a ChatML template).
// A share of the token stream (--chat, default 0.3) is generic ChatML conversations about the corpus
// (src/data/chat-tasks.ts), so the base knows its own template and ends its turns: a fine-tune then spends its
// update on the skill, not on the format, and adapters trained apart stay small enough to stack.
//
//   npm run build && node dist/scripts/make-default-model.js --steps 2000 --batch 8 --out assets/default-model
//
// Deterministic for a given seed and thread count.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chatTask, chatTaskCorpus } from '../src/data/chat-tasks.js';
import { AdamW, backward, clipGradNorm, crossEntropy, Rng, tidy, zeroGrad } from '../src/engine/index.js';
import { writeSafetensors } from '../src/formats/safetensors.js';
import { configToHf, paramCount, type LlamaConfig } from '../src/models/config.js';
import { initWeights } from '../src/models/init.js';
import { LlamaModel } from '../src/models/llama.js';
import { HfTokenizer, renderChat, trainBpe } from '../src/tokenizer/index.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
const steps = Number(args.get('steps') ?? 2000);
const chatShare = Number(args.get('chat') ?? 0.3);
const fail = (msg: string): never => {
  console.error(`make-default-model: ${msg}`);
  process.exit(1);
};
if (!Number.isInteger(steps) || steps < 1) fail(`--steps must be a positive integer, got ${args.get('steps')}`);
// a share of 1 would ask for infinitely many chats: the stories are what the chats are made from
if (!(chatShare >= 0 && chatShare <= 0.9)) fail(`--chat must be the share of generic chat tokens in [0, 0.9], got ${args.get('chat')}`);
const out = args.get('out') ?? 'assets/default-model';
const corpusDir = args.get('corpus') ?? '../shared/data/corpus';
const seed = Number(args.get('seed') ?? 1);

const CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

// ---- corpus and tokenizer ----------------------------------------------------------------------------------------
const stories = readFileSync(join(corpusDir, 'tinystories-subset-4MB.txt'), 'utf8') + '\n' + readFileSync(join(corpusDir, 'tinystories-sample-200KB.txt'), 'utf8');
const docs = stories.split(/\n\s*\n/).map((s) => s.trim()).filter((s) => s.length > 20);
console.error(`corpus: ${docs.length} documents, ${stories.length} characters`);
const tokJson = trainBpe(docs, { vocabSize: 4096, specialTokens: SPECIALS });
const tokConfig = { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: CHATML, add_bos_token: false, model_max_length: 512 };
const tokenizer = new HfTokenizer(tokJson, tokConfig);
const eot = tokenizer.tokenToId('<|endoftext|>')!;
// stories and generic chats, shuffled together into one stream of documents separated by <|endoftext|>
const segments: number[][] = docs.map((d) => tokenizer.encode(d, { addBos: false }));
const storyTokens = segments.reduce((n, x) => n + x.length, 0);
const chatRng = new Rng(seed + 1);
const corpus = chatTaskCorpus(docs);
let chatTokens = 0;
while (chatTokens < (storyTokens * chatShare) / (1 - chatShare)) {
  const ids = tokenizer.encode(renderChat(CHATML, chatTask(chatRng, corpus).messages.map((m) => ({ ...m }))), { addBos: false, parseSpecial: true });
  segments.push(ids);
  chatTokens += ids.length;
}
for (let i = segments.length - 1; i > 0; i--) {
  const j = chatRng.int(i + 1);
  [segments[i], segments[j]] = [segments[j], segments[i]];
}
const stream: number[] = [];
for (const x of segments) stream.push(...x, eot);
console.error(`tokens: ${stream.length} (${storyTokens} of stories, ${chatTokens} of generic chats)`);

// ---- model -------------------------------------------------------------------------------------------------------
const config: LlamaConfig = {
  arch: 'llama', vocabSize: tokenizer.vocabSize, hiddenSize: 256, intermediateSize: 768, numLayers: 6, numHeads: 8, numKvHeads: 4,
  headDim: 32, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeMode: 'halves', maxPositionEmbeddings: 512,
  tieWordEmbeddings: true, attentionBias: false, bosTokenId: null, eosTokenId: [tokenizer.tokenToId('<|im_end|>')!, eot],
};
console.error(`model: ${(paramCount(config) / 1e6).toFixed(2)}M parameters`);
const weights = initWeights(config, seed);
for (const t of weights.values()) t.requiresGrad = true;
const model = new LlamaModel(config, (n) => weights.get(n));
const params = [...weights.values()];
const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.1, beta2: 0.95 });

const [B, T] = [Number(args.get('batch') ?? 8), 256];
const rng = new Rng(seed);
const warmup = Math.min(100, steps / 10);
const t0 = Date.now();
for (let step = 1; step <= steps; step++) {
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const at = rng.int(stream.length - T - 1);
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = stream[at + t]!;
      targets[b * T + t] = stream[at + t + 1]!;
    }
  }
  const loss = tidy(() => {
    const l = crossEntropy(model.forward(ids, B, T), targets);
    backward(l);
    return l.item();
  });
  clipGradNorm(params, 1);
  const lr = 3e-3 * (step < warmup ? step / warmup : 0.1 + 0.45 * (1 + Math.cos((Math.PI * (step - warmup)) / (steps - warmup))));
  opt.update(lr);
  zeroGrad(params);
  if (step % 10 === 0 || step === 1) {
    const s = (Date.now() - t0) / 1000;
    console.error(`step ${step}/${steps} loss ${loss.toFixed(3)} lr ${lr.toExponential(2)} ${((step * B * T) / s).toFixed(0)} tok/s eta ${(((steps - step) * s) / step / 60).toFixed(1)} min`);
  }
}

// ---- save (atomically: a temp folder renamed over the old one) ----------------------------------------------------
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...configToHf(config), torch_dtype: 'float16' }, null, 2) + '\n');
writeFileSync(join(tmp, 'generation_config.json'), JSON.stringify({ eos_token_id: config.eosTokenId, do_sample: true, temperature: 0.8 }, null, 2) + '\n');
writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(tokJson) + '\n');
writeFileSync(join(tmp, 'tokenizer_config.json'), JSON.stringify(tokConfig, null, 2) + '\n');
writeSafetensors(join(tmp, 'model.safetensors'), model.namedTensors().map(([name, t]) => ({ name, dtype: 'F16', shape: [...t.shape], data: Float32Array.from(t.data) })), { format: 'pt' });
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
console.error(`wrote ${out}`);
