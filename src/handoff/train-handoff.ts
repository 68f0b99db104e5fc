// `nomoat finetune --handoff DIR`: the run that nomoat would do, written for a GPU machine instead of run here. The
// same conversations (after nomoat's eval split and replay mix), chat template, LoRA settings and hyperparameters
// go into DIR, with train.py (transformers Trainer + peft; train-py.ts says what is identical) and Accelerate
// configurations for one GPU, several GPUs, DeepSpeed ZeRO-2/3 and FSDP.
//
//   DIR/data/train.jsonl, data/eval.jsonl   OpenAI messages JSONL (what src/data's loader and `nomoat data validate` read)
//   DIR/chat_template.jinja                 the template nomoat rendered with
//   DIR/handoff.json                        every setting train.py reads (one place), the base fingerprint, row counts
//   DIR/token-check.json                    nomoat's ids + assistant masks of the first conversations (train.py checks)
//   DIR/train.py, requirements.txt, accelerate/*.yaml, README.md
//   DIR/base/                               the base as a Hugging Face folder, when it was a GGUF file
//   DIR/init_adapter/                       --init-adapter, as a PEFT folder

import { existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Conversation } from '../data/types.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { resolveTargets, type LoraConfig } from '../lora/config.js';
import { baseFingerprint } from '../lora/fingerprint.js';
import { savePeftAdapter } from '../lora/peft.js';
import { saveHfFolder } from '../models/convert.js';
import type { LoadedModel } from '../models/load.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { tokenizeChat } from '../tokenizer/chat.js';
import { conversationExample, finetuneRows, type BatchMode } from '../train/finetune.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../train/trainer.js';
import { accelerateConfigs } from './accelerate.js';
import { writeFolderAtomic, writeJson, writeText } from './files.js';
import { TRAIN_PY } from './train-py.js';

export interface TrainHandoffOptions {
  dir: string;
  loaded: LoadedModel;
  tokenizer: Tokenizer;
  /** the chat template nomoat would render with (default: the tokenizer's) */
  template?: string;
  train: readonly Conversation[];
  eval: readonly Conversation[];
  /** a fresh adapter's settings (ignored with init) */
  lora: Partial<LoraConfig>;
  /** --init-adapter, loaded: continued on the GPU from its PEFT copy */
  init?: LoraAdapter;
  seed: number;
  mode: BatchMode;
  seqLen: number;
  batchSize: number;
  config: Partial<TrainConfig> & { steps: number };
}

export interface TrainHandoffResult {
  dir: string;
  command: string;
  files: string[];
}

const TOKEN_CHECK_COUNT = 8;

const jsonl = (cs: readonly Conversation[]): string => cs.map((c) => JSON.stringify({ messages: c.messages.map((m) => ({ role: m.role, content: m.content })) })).join('\n') + (cs.length > 0 ? '\n' : '');

/** The settings train.py reads (handoff.json). */
export function handoffSettings(o: TrainHandoffOptions, rows: { train: number; eval: number }, hfBase: string): Record<string, unknown> {
  const t = { ...TRAIN_DEFAULTS, ...o.config };
  const lora = o.init?.config ?? { r: 8, loraAlpha: 16, loraDropout: 0, useRslora: false, targetModules: ['q_proj', 'v_proj'] as const, ...o.lora };
  return {
    format: 1,
    written_by: 'nomoat finetune --handoff',
    base_model: hfBase,
    base_model_local: resolve(o.loaded.path),
    base_fingerprint: baseFingerprint(o.loaded.model),
    chat_template_file: 'chat_template.jinja',
    train_file: 'data/train.jsonl',
    eval_file: o.eval.length > 0 ? 'data/eval.jsonl' : null,
    output_dir: 'output',
    init_adapter: o.init !== undefined ? 'init_adapter' : null,
    pad_id: o.tokenizer.padId ?? o.tokenizer.eosId ?? 0,
    nomoat_rows: rows,
    lora: {
      r: lora.r, lora_alpha: lora.loraAlpha, lora_dropout: lora.loraDropout, use_rslora: lora.useRslora,
      target_modules: resolveTargets(lora.targetModules), layers_to_transform: lora.layers !== undefined ? [...lora.layers] : null,
    },
    training: {
      steps: t.steps, lr: t.lr, schedule: t.schedule, warmup_steps: t.warmupSteps, batch_size: o.batchSize, grad_accum: t.gradAccum,
      weight_decay: t.weightDecay, max_grad_norm: t.maxGradNorm, adam_beta1: t.beta1, adam_beta2: t.beta2, adam_epsilon: t.eps,
      seq_len: o.seqLen, packing: o.mode, seed: o.seed, eval_every: t.evalEvery, save_every: t.saveEvery, log_every: t.logEvery,
      loss: 'assistant tokens only',
    },
  };
}

/** Writes the hand-off folder (refusing an existing one); returns the accelerate line. */
export function writeTrainHandoff(o: TrainHandoffOptions): TrainHandoffResult {
  const template = o.template ?? o.tokenizer.chatTemplate;
  if (template === null) throw new Error(`${o.loaded.path}: the tokenizer has no chat template; pass --chat-template FILE`);
  if (existsSync(o.dir)) throw new Error(`${o.dir} exists; give --handoff a new folder (a hand-off is never written over another)`);
  const padId = o.tokenizer.padId ?? o.tokenizer.eosId ?? 0;
  const rowsOf = (cs: readonly Conversation[]): number => finetuneRows(cs.map((c) => conversationExample(o.tokenizer, c, template)), o.mode, o.seqLen, padId).rows.length;
  const rows = { train: rowsOf(o.train), eval: rowsOf(o.eval) };
  const ownBase = o.loaded.format !== 'hf';
  const files: string[] = [];
  const command = 'accelerate launch --config_file accelerate/single_gpu.yaml train.py';
  writeFolderAtomic(o.dir, false, (dir) => {
    const put = (name: string, text: string): void => {
      writeText(join(dir, name), text);
      files.push(name);
    };
    put('data/train.jsonl', jsonl(o.train));
    if (o.eval.length > 0) put('data/eval.jsonl', jsonl(o.eval));
    put('chat_template.jinja', template);
    if (ownBase) {
      saveHfFolder(o.loaded.model, o.tokenizer, join(dir, 'base'), { dtype: 'F32' });
      files.push('base/');
    }
    if (o.init !== undefined) {
      savePeftAdapter(o.init, join(dir, 'init_adapter'), { baseModelNameOrPath: ownBase ? 'base' : resolve(o.loaded.path) });
      files.push('init_adapter/');
    }
    writeJson(join(dir, 'handoff.json'), handoffSettings(o, rows, ownBase ? 'base' : resolve(o.loaded.path)));
    files.push('handoff.json');
    const examples = o.train.slice(0, TOKEN_CHECK_COUNT).map((c) => {
      const messages = c.messages.map((m) => ({ role: m.role, content: m.content }));
      const t = tokenizeChat(o.tokenizer, messages, { template });
      return { messages, ids: t.ids, mask: Array.from(t.assistantMask) };
    });
    writeJson(join(dir, 'token-check.json'), { examples });
    files.push('token-check.json');
    put('train.py', TRAIN_PY);
    put('requirements.txt', 'torch\ntransformers>=4.46\npeft>=0.13\naccelerate>=1.0\nsafetensors\n# optional: trl>=0.20 (train.py --trainer trl), deepspeed (accelerate/deepspeed_*.yaml)\n');
    for (const [name, text] of Object.entries(accelerateConfigs(o.loaded.model.config.arch))) put(`accelerate/${name}`, text);
    put('README.md', readme(o, rows, ownBase, command));
  });
  return { dir: o.dir, command, files };
}

function readme(o: TrainHandoffOptions, rows: { train: number; eval: number }, ownBase: boolean, command: string): string {
  const t = { ...TRAIN_DEFAULTS, ...o.config };
  return `# Fine-tuning hand-off (written by nomoat finetune --handoff)

The run nomoat would have done here, for transformers + peft + accelerate on GPUs. On the GPU machine:

\`\`\`sh
pip install -r requirements.txt
${command}                                         # one GPU
accelerate launch --config_file accelerate/multi_gpu.yaml --num_processes 8 train.py         # several GPUs (DDP)
accelerate launch --config_file accelerate/deepspeed_zero2.yaml --num_processes 8 train.py   # DeepSpeed ZeRO-2
accelerate launch --config_file accelerate/deepspeed_zero3.yaml --num_processes 8 train.py   # DeepSpeed ZeRO-3
accelerate launch --config_file accelerate/fsdp.yaml --num_processes 8 train.py              # FSDP
\`\`\`

Then bring the adapter back: \`nomoat import output/adapter -m ${resolve(o.loaded.path)}\`.

- base: ${ownBase ? '`base/` (the GGUF base written as a Hugging Face folder, F32)' : `\`${resolve(o.loaded.path)}\` (pass \`--base HUB_ID_OR_PATH\` where it lives elsewhere)`}
- data: ${o.train.length} training and ${o.eval.length} eval conversations (nomoat's split${o.eval.length > 0 ? '' : ': none held out'}), OpenAI messages JSONL;
  nomoat made ${rows.train} training rows of ≤${o.seqLen} tokens (${o.mode}).
- loss on assistant tokens only, masked as nomoat masks them (token-check.json: the first conversations' ids and
  masks, checked by train.py before training); labels pre-shifted, averaged over the whole update's trained tokens.
- ${t.steps} steps, lr ${t.lr} (${t.schedule}, ${t.warmupSteps} warmup), batch ${o.batchSize} × grad accumulation ${t.gradAccum},
  weight decay ${t.weightDecay}, max grad norm ${t.maxGradNorm}, AdamW (${t.beta1}, ${t.beta2}, ${t.eps}), seed ${o.seed}.
  With N processes train.py divides grad accumulation by N when it can (--no-keep-global-batch keeps it).
- every setting is in handoff.json; \`python3 train.py --help\` lists the overrides (--max-steps, --dtype, --mask, --trainer trl).

Differs from the local run: the data order (torch's RNG), dropout masks, and precision (--dtype auto is bfloat16 on GPUs
that have it; --dtype float32 is nomoat's). \`--trainer trl\` runs TRL's SFTTrainer (assistant_only_loss, TRL's packing)
instead: close, not the same rows.
`;
}
