// `nomoat distill`: a student learns a teacher's next-token distributions on instruction data. The teacher is a
// model with its adapter stack (--teacher, --teacher-lora, --teacher-recipe); the student is a LoRA adapter on a base
// (-m, default the teacher's model) or a smaller model trained whole (--student-shape / --student-config), with the
// teacher's tokenizer.
//
// Output folder (-o OUT):
//   LoRA student:  OUT/adapter_config.json, OUT/adapter_model.safetensors (PEFT), OUT/adapter.gguf
//   whole student: OUT/config.json, OUT/model.safetensors, the teacher's tokenizer files (a Hugging Face folder)
//   both:          OUT/metrics.jsonl, OUT/loss.svg, OUT/checkpoints/, OUT/teacher-topk.bin (the teacher's cache)

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { trainEvalSplit } from '../data/index.js';
import type { LoraAdapter } from '../lora/index.js';
import { configFromHf, paramCount, type LlamaConfig } from '../models/config.js';
import { LlamaModel } from '../models/llama.js';
import {
  checkStudentConfig, DISTILL_DEFAULTS, DIVERGENCES, distill, filesFingerprint, parseScheduleKind, parseStudentShape, randomStudentWeights,
  saveStudentFolder, spacedLayers, tokenizerFingerprint, weightsFromTeacher, type Divergence,
} from '../train/index.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError, loadForCli, requireTokenizer, setThreads, THREAD_FLAG } from './common.js';
import { defaultModelOr, LORA_TRAIN_FLAGS, loraFrom, OPTIMIZER_FLAGS, tryUsage, parseProgress, readData } from './finetune.js';
import { readRecipeFlag } from './recipe.js';

const FLAGS = {
  teacher: { kind: 'string', metavar: 'MODEL', help: 'teacher model: HF folder or GGUF (default: the recipe\'s base, else the bundled model)' },
  'teacher-lora': { kind: 'list', metavar: 'PATH', help: 'an adapter of the teacher (PEFT folder or .gguf) at scale 1' },
  'teacher-recipe': { kind: 'string', metavar: 'FILE', help: 'the teacher\'s adapter stack as a recipe JSON {base, adapters, merge?}' },
  model: { kind: 'string', short: 'm', metavar: 'BASE', help: 'LoRA student: its frozen base (default: the teacher\'s model)' },
  'student-shape': { kind: 'string', metavar: 'SPEC', help: 'whole student: the teacher\'s config with layers=N,hidden=N,intermediate=N,heads=N,kv-heads=N,head-dim=N' },
  'student-config': { kind: 'string', metavar: 'FILE', help: 'whole student: a Hugging Face config.json (vocabulary = the teacher\'s)' },
  'student-init': { kind: 'string', metavar: 'HOW', help: 'whole student: teacher (its layers, adapters merged) or random', default: 'teacher' },
  'student-layers': { kind: 'string', metavar: 'LIST', help: 'teacher layers the student starts from, e.g. 0,5', default: 'evenly spaced, first and last' },
  output: { kind: 'string', short: 'o', metavar: 'DIR', help: 'output folder' },
  'eval-data': { kind: 'string', metavar: 'FILE', help: 'held-out data (default: --eval-split of DATA)' },
  format: { kind: 'string', metavar: 'F', help: 'data format: auto|alpaca|sharegpt|openai', default: 'auto' },
  'skip-bad-lines': { kind: 'boolean', help: 'drop malformed records (and say how many) instead of refusing to start' },
  loss: { kind: 'string', metavar: 'D', help: `divergence: ${DIVERGENCES.join('|')}`, default: 'forward-kl' },
  temperature: { kind: 'number', short: 'T', metavar: 'T', help: 'distillation temperature (both sides; the loss is scaled by T²)', default: 1 },
  beta: { kind: 'number', metavar: 'B', help: 'jsd: β of JSD(β) = β·KL(p‖m) + (1−β)·KL(q‖m), m = βp + (1−β)q (0 forward, 1 reverse KL)', default: 0.5 },
  'ce-weight': { kind: 'number', metavar: 'A', help: 'α: loss = α·CE(labels) + (1−α)·divergence', default: 0 },
  'top-k': { kind: 'int', metavar: 'K', help: 'teacher tokens kept per position (the rest is one bucket)', default: DISTILL_DEFAULTS.topK },
  lambda: { kind: 'number', metavar: 'L', help: 'on-policy share: probability a batch\'s replies are sampled by the student', default: 0 },
  'gen-temp': { kind: 'number', metavar: 'T', help: 'on-policy sampling temperature', default: 1 },
  'gen-max': { kind: 'int', metavar: 'N', help: 'on-policy reply length cap (tokens)', default: DISTILL_DEFAULTS.genMaxTokens },
  'teacher-cache': { kind: 'string', metavar: 'FILE', help: 'the teacher\'s top-k cache (built when absent, refused when stale)', default: 'OUT/teacher-topk.bin' },
  ...LORA_TRAIN_FLAGS,
  ...OPTIMIZER_FLAGS,
  batch: { kind: 'int', short: 'b', metavar: 'N', help: 'conversations per micro-batch', default: 4 },
  'seq-len': { kind: 'int', short: 'c', metavar: 'N', help: 'tokens per conversation (longer ones are cut)', default: 'min(512, model context)' },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'seed of the student init, split, data order, on-policy draws and sampling', default: 0 },
  'chat-template': { kind: 'string', metavar: 'FILE', help: 'a Jinja chat template (default: the tokenizer\'s)' },
  progress: { kind: 'string', metavar: 'MODE', help: 'auto|bar|lines|none', default: 'auto' },
  ...THREAD_FLAG,
} as const satisfies FlagSpecs;

/** The files that define a model or adapter path (for the teacher's fingerprint). */
function definingFiles(path: string): string[] {
  if (!existsSync(path) || !statSync(path).isDirectory()) return [path];
  return ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json'].map((f) => join(path, f)).filter((f) => existsSync(f));
}

export const command = defineCommand({
  name: 'distill',
  summary: 'distil a teacher (model + adapters) into a LoRA student or a smaller model',
  usage: 'DATA -o DIR [--teacher MODEL] [--teacher-lora PATH | --teacher-recipe FILE] [-m BASE | --student-shape SPEC] [options]',
  description:
    'The student learns the teacher\'s next-token distributions on the replies of DATA (JSONL of Alpaca, ShareGPT or\n' +
    'OpenAI records, as finetune reads them). The teacher runs once: its top-K tokens and log-probs per reply token are\n' +
    'cached in OUT/teacher-topk.bin (the mass outside them is kept as one "rest" bucket), and the cache is refused if\n' +
    'the teacher, tokenizer, data, K or T changed. With --lambda L each batch is, with probability L, replaced by\n' +
    'replies the student samples (--gen-temp) and the teacher scores on the spot (GKD\'s on-policy distillation).\n' +
    'Loss: α·CE + (1−α)·D with D = forward KL(teacher‖student) (Hinton, ×T²), reverse KL, or JSD(β).\n' +
    'Student: a LoRA adapter on -m BASE (default: the teacher\'s own base; --target-modules, -r, --alpha as finetune),\n' +
    'or a whole smaller model with the teacher\'s tokenizer: --student-shape layers=2 (the teacher\'s config with those\n' +
    'fields changed) or --student-config FILE, started from the teacher\'s layers (--student-init teacher: evenly\n' +
    'spaced layers, the teacher\'s adapters merged in) or random. Ctrl-C saves a checkpoint; --resume continues exactly.',
  flags: FLAGS,
  positionals: [{ name: 'data', help: 'training data (.jsonl or .json)' }],
  examples: [
    'nomoat distill assets/data/demo.jsonl --teacher-lora nomoat-demo/adapter -o student-lora',
    'nomoat distill chats.jsonl --teacher big/ --teacher-lora big-adapter/ -m small/ --loss jsd --beta 0.5 --lambda 0.5 -o out',
    'nomoat distill assets/data/demo.jsonl --teacher-lora nomoat-demo/adapter --student-shape layers=2 --steps 300 --lr 1e-3 -o small',
    'nomoat distill data.jsonl --teacher-recipe stack.json -T 2 --ce-weight 0.5 --top-k 64 -o out',
    'nomoat distill data.jsonl --teacher-lora a/ -o out --resume',
    'nomoat chat -m small   # a whole student is a model folder',
  ],
  async run({ flags: f, positionals }) {
    const out = f.output;
    if (out === undefined) throw new UsageError('missing -o DIR (where the student is written)');
    if (f.steps !== undefined && f.epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
    const whole = f['student-shape'] !== undefined || f['student-config'] !== undefined;
    if (f['student-shape'] !== undefined && f['student-config'] !== undefined) throw new UsageError('give --student-shape or --student-config, not both');
    if (whole && f.model !== undefined) throw new UsageError('-m BASE is for a LoRA student; a whole student (--student-shape/--student-config) has no base');
    if (f['teacher-lora'].length > 0 && f['teacher-recipe'] !== undefined) throw new UsageError('give --teacher-lora or --teacher-recipe, not both');
    const divergence = f.loss ?? 'forward-kl';
    if (!(DIVERGENCES as readonly string[]).includes(divergence)) throw new UsageError(`--loss must be ${DIVERGENCES.join('|')}, got ${divergence}`);
    const temperature = f.temperature ?? 1;
    if (!(temperature > 0)) throw new UsageError(`-T must be > 0, got ${temperature}`);
    const beta = f.beta ?? 0.5;
    if (!(beta >= 0 && beta <= 1)) throw new UsageError(`--beta must be in [0, 1], got ${beta}`);
    const alpha = f['ce-weight'] ?? 0;
    if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--ce-weight must be in [0, 1], got ${alpha}`);
    const lambda = f.lambda ?? 0;
    if (!(lambda >= 0 && lambda <= 1)) throw new UsageError(`--lambda must be in [0, 1], got ${lambda}`);
    const genTemp = f['gen-temp'] ?? 1;
    if (!(genTemp >= 0)) throw new UsageError(`--gen-temp must be ≥ 0, got ${genTemp}`);
    const genMax = f['gen-max'] ?? DISTILL_DEFAULTS.genMaxTokens;
    if (genMax < 1) throw new UsageError(`--gen-max must be positive, got ${genMax}`);
    const init = f['student-init'] ?? 'teacher';
    if (init !== 'teacher' && init !== 'random') throw new UsageError(`--student-init must be teacher or random, got ${init}`);
    const schedule = tryUsage(() => parseScheduleKind(f.schedule ?? 'cosine'));
    const progress = parseProgress(f.progress);
    const evalSplit = f['eval-split'] ?? 0.05;
    if (!(evalSplit >= 0 && evalSplit < 1)) throw new UsageError(`--eval-split must be in [0, 1), got ${evalSplit}`);
    const seed = f.seed ?? 0;
    const lora = whole ? null : loraFrom(f, { targets: 'q_proj,v_proj', r: 8, alpha: 16 });
    const batch = f.batch ?? 4;
    const accum = f['grad-accum'] ?? 1;
    if (batch < 1 || accum < 1) throw new UsageError('--batch and --grad-accum must be positive');

    // data first: a bad record must stop us before any model loads
    const skip = f['skip-bad-lines'];
    const data = await readData(positionals[0], f.format ?? 'auto', skip);
    const evalData = f['eval-data'] !== undefined ? await readData(f['eval-data'], f.format ?? 'auto', skip) : null;
    for (const d of [data, evalData]) if (d !== null && d.skipped.length > 0) process.stderr.write(`nomoat: skipped ${d.skipped.length} bad record(s) of ${d.file} (first: ${d.skipped[0].where}: ${d.skipped[0].message})\n`);
    const split = evalData !== null ? { train: data.conversations, eval: evalData.conversations } : trainEvalSplit(data.conversations, { evalFraction: evalSplit, seed });
    if (split.train.length === 0) throw new CliError(`${data.file}: nothing left to train on after the eval split`);

    const threads = setThreads(f.threads);
    const recipe = await readRecipeFlag(f['teacher-recipe']);
    const teacherPath = f.teacher ?? recipe?.base ?? defaultModelOr(undefined);
    const adapterPaths = recipe !== null ? recipe.adapters.map((a) => ({ path: a.path, scale: a.scale })) : f['teacher-lora'].map((p) => ({ path: p, scale: 1 }));
    for (const a of adapterPaths) if (!existsSync(a.path)) throw new CliError(`teacher adapter not found: ${a.path} (a PEFT folder with adapter_config.json, or a .gguf LoRA)`);
    const teacherName = [teacherPath, ...adapterPaths.map((a) => `${a.path}@${a.scale}`)].join(' + ');
    const teacherId = filesFingerprint({ model: teacherPath, adapters: adapterPaths, merge: recipe?.merge ?? null }, [teacherPath, ...adapterPaths.map((a) => a.path)].flatMap(definingFiles));

    /** The teacher with its stack attached (and the stack, for merging into a student). */
    const loadTeacher = async (): Promise<{ model: LlamaModel; stack: { adapter: LoraAdapter; scale: number }[]; tokenizer: ReturnType<typeof requireTokenizer> }> => {
      const t = loadForCli(teacherPath);
      const lo = await import('../lora/index.js');
      let stack: { adapter: LoraAdapter; scale: number }[];
      try {
        stack = recipe !== null ? lo.loadRecipeStack(t.model, recipe) : adapterPaths.map((a) => ({ adapter: lo.loadAdapter(a.path, t.model), scale: a.scale }));
      } catch (e) {
        throw new CliError(`teacher adapters: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const s of stack) s.adapter.attach(t.model, { scale: s.scale, checkBase: false });
      return { model: t.model, stack, tokenizer: requireTokenizer(t) };
    };

    // The student, and the tokenizer both sides share.
    let teacherNow: Awaited<ReturnType<typeof loadTeacher>> | null = null;
    let student: LlamaModel;
    let adapter: LoraAdapter | undefined;
    let tokenizer: ReturnType<typeof requireTokenizer>;
    let describe: string;
    if (whole) {
      teacherNow = await loadTeacher();
      const tc = teacherNow.model.config;
      let sc: LlamaConfig;
      if (f['student-config'] !== undefined) {
        const p = f['student-config'];
        if (!existsSync(p)) throw new CliError(`student config not found: ${p}`);
        try {
          sc = configFromHf(JSON.parse(readFileSync(p, 'utf8')) as Parameters<typeof configFromHf>[0]);
          checkStudentConfig(sc, tc);
        } catch (e) {
          throw new CliError(`${p}: ${e instanceof Error ? e.message : String(e)}`);
        }
      } else {
        sc = tryUsage(() => parseStudentShape(f['student-shape'] ?? '', tc));
      }
      let weights;
      if (init === 'teacher') {
        const pick = f['student-layers'] !== undefined ? f['student-layers'].split(',').map((x) => Number(x.trim())) : tryUsage(() => spacedLayers(sc.numLayers, tc.numLayers));
        if (pick.some((x) => !Number.isInteger(x))) throw new UsageError(`--student-layers takes comma-separated layer indices, got ${f['student-layers']}`);
        weights = tryUsage(() => weightsFromTeacher(teacherNow!.model, sc, pick, teacherNow!.stack));
        describe = `a ${sc.numLayers}-layer student (C ${sc.hiddenSize}, MLP ${sc.intermediateSize}; ${(paramCount(sc) / 1e6).toFixed(2)}M parameters) from teacher layers ${pick.join(',')}`;
      } else {
        weights = randomStudentWeights(sc, seed);
        describe = `a ${sc.numLayers}-layer student (C ${sc.hiddenSize}; ${(paramCount(sc) / 1e6).toFixed(2)}M parameters) from random weights`;
      }
      student = new LlamaModel(sc, (n) => weights.get(n));
      tokenizer = teacherNow.tokenizer;
    } else {
      const base = loadForCli(f.model ?? teacherPath);
      student = base.model;
      tokenizer = requireTokenizer(base);
      const lo = await import('../lora/index.js');
      adapter = lo.LoraAdapter.create(student, lora!, { seed, name: 'distill' });
      describe = `a LoRA student (r ${lora!.r}, alpha ${lora!.loraAlpha} on ${String(lora!.targetModules)}) on ${base.path}`;
    }
    const template = f['chat-template'] !== undefined ? readFileSync(f['chat-template'], 'utf8') : undefined;
    if (template === undefined && tokenizer.chatTemplate === null) throw new CliError('the tokenizer has no chat template; pass --chat-template FILE');
    const cfg = student.config;
    const seqLen = f['seq-len'] ?? Math.min(512, cfg.maxPositionEmbeddings);
    if (seqLen < 2 || seqLen > cfg.maxPositionEmbeddings) throw new UsageError(`-c must be in [2, ${cfg.maxPositionEmbeddings}] (the model's context), got ${seqLen}`);
    let steps = f.steps;
    if (steps === undefined) {
      const epochs = f.epochs ?? 1;
      if (!(epochs > 0)) throw new UsageError(`--epochs must be > 0, got ${epochs}`);
      steps = Math.max(1, Math.ceil((epochs * split.train.length) / (batch * accum)));
    }
    if (steps < 1) throw new UsageError(`--steps must be positive, got ${steps}`);
    const cachePath = f['teacher-cache'] ?? join(out, 'teacher-topk.bin');
    mkdirSync(out, { recursive: true });
    process.stderr.write(
      `nomoat: distilling ${teacherName} into ${describe} on ${threads} thread(s); ${split.train.length} training and ${split.eval.length} eval conversations; ` +
        `${divergence}${divergence === 'jsd' ? ` β ${beta}` : ''} T ${temperature}${alpha > 0 ? ` α ${alpha}` : ''}, top-${f['top-k'] ?? DISTILL_DEFAULTS.topK}, λ ${lambda}; ${steps} steps of ${batch}×${accum}\n`,
    );

    // The teacher runs only to build the cache or for on-policy batches: otherwise it is never loaded.
    if (teacherNow === null && (lambda > 0 || !existsSync(cachePath))) teacherNow = await loadTeacher();
    if (teacherNow !== null) {
      if (teacherNow.model.config.vocabSize !== cfg.vocabSize || tokenizerFingerprint(teacherNow.tokenizer) !== tokenizerFingerprint(tokenizer)) {
        throw new CliError(`the teacher (${teacherPath}, vocabulary ${teacherNow.model.config.vocabSize}) and the student (vocabulary ${cfg.vocabSize}) do not share a tokenizer; distillation compares their distributions token by token`);
      }
    }
    const held = teacherNow;
    let r;
    try {
      r = await distill({
        student, adapter, tokenizer, conversations: split.train, evalConversations: split.eval, template, seqLen, batchSize: batch, dataSeed: seed,
        teacher: () => {
          if (held === null) throw new Error('distill: the teacher was not loaded');
          return held.model;
        },
        teacherName, teacherId,
        loss: { divergence: divergence as Divergence, temperature, beta, alpha }, topK: f['top-k'] ?? DISTILL_DEFAULTS.topK, lambda,
        genTemperature: genTemp, genMaxTokens: genMax, cachePath,
        note: (m) => void process.stderr.write(`nomoat: ${m}\n`),
        train: {
          steps, lr: f.lr ?? 5e-4, schedule, warmupSteps: f.warmup ?? 0, weightDecay: f['weight-decay'] ?? 0, gradAccum: accum,
          evalEvery: f['eval-every'] ?? 0, saveEvery: f['save-every'] ?? 0, outDir: out, resume: f.resume, progress,
        },
      });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/stale teacher cache|not a nomoat teacher cache|truncated or corrupt|teacher cache version|top-k must be/.test(msg)) throw new CliError(msg);
      throw e;
    }
    const res = r.result;
    if (res.interrupted) {
      process.stderr.write(`nomoat: stopped at step ${res.step}/${steps}; checkpoint ${res.checkpoint ?? '(none)'}\n  continue with the same command and --resume\n`);
      return 130;
    }
    const ev = res.evalLoss !== null ? `, eval loss ${res.evalLoss.toFixed(4)}` : '';
    process.stderr.write(`nomoat: done: ${res.step} steps, loss ${res.loss.toFixed(4)}${ev}${r.cacheReused ? ' (teacher cache reused)' : ''}\n`);
    if (adapter !== undefined) {
      const lo = await import('../lora/index.js');
      lo.savePeftAdapter(adapter, out, { baseModelNameOrPath: f.model ?? teacherPath });
      lo.saveGgufLora(adapter, join(out, 'adapter.gguf'), { name: 'nomoat distill' });
      process.stdout.write(`wrote ${join(out, 'adapter_model.safetensors')} (PEFT), ${join(out, 'adapter.gguf')} (GGUF), ${join(out, 'metrics.jsonl')}, ${join(out, 'loss.svg')}\n`);
      process.stdout.write(`try it: nomoat chat -m ${f.model ?? teacherPath} --lora ${out}\n`);
    } else {
      const copied = saveStudentFolder(student, out, existsSync(join(teacherPath, 'config.json')) ? teacherPath : null);
      if (!copied.includes('tokenizer.json')) process.stderr.write(`nomoat: the teacher (${teacherPath}) has no tokenizer.json to copy; add the tokenizer files to ${out} to load it\n`);
      process.stdout.write(`wrote ${join(out, 'model.safetensors')} + config.json${copied.length > 0 ? ` + ${copied.join(', ')}` : ''}, ${join(out, 'metrics.jsonl')}, ${join(out, 'loss.svg')}\n`);
      process.stdout.write(`try it: nomoat chat -m ${out}\n`);
    }
  },
});
