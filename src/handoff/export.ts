// `nomoat export`: a model and its adapters written as what a serving or training engine loads unchanged, with a
// README.md holding the exact command. The whole folder appears at once (files.ts writeFolderAtomic).
//
//   vllm       base/ (HF folder) + adapters/NAME/ (PEFT)    vllm serve ./base --enable-lora --lora-modules NAME=… --max-lora-rank R
//   peft       base/ (HF folder) + adapters/NAME/ (PEFT)    PeftModel.from_pretrained(AutoModelForCausalLM…(base), adapter)
//              + expected-logits.json: nomoat's next-token logits on the exported files (scripts/gpu-handoff-check.py)
//   llama.cpp  model.gguf + NAME.gguf (GGUF LoRA)            llama-server -m model.gguf --lora NAME.gguf | --lora-scaled NAME.gguf S
//   ollama     model.gguf + adapter.gguf + Modelfile         ollama create NAME -f Modelfile
//
// A runtime scale other than 1 is folded into lora_alpha (alpha·s / r = s·alpha / r: exact) for the engines that have no
// per-adapter scale (vLLM, PEFT, Ollama); llama.cpp gets it as --lora-scaled. What each engine refuses: engine-rules.ts.

import { join, resolve } from 'node:path';
import { noGrad, tidy } from '../engine/index.js';
import { LoraAdapter } from '../lora/adapter.js';
import { saveGgufLora } from '../lora/gguf.js';
import { loadPeftAdapter, savePeftAdapter } from '../lora/peft.js';
import { saveGguf, saveHfFolder, type HfDType, type OutType } from '../models/convert.js';
import type { LlamaModel } from '../models/llama.js';
import { loadModel } from '../models/load.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { checkAdapterFor, checkStackFor, vllmMaxLoraRank, type ExportTarget } from './engine-rules.js';
import { rel, writeFolderAtomic, writeJson, writeText } from './files.js';
import { modelfileText } from './modelfile.js';

export interface ExportAdapter {
  /** the name engines know it by (vLLM --lora-modules NAME, file names); [A-Za-z0-9._-] */
  name: string;
  adapter: LoraAdapter;
  /** runtime scale, as nomoat applies it (--lora-scaled, recipe "scale") */
  scale: number;
}

export interface ExportOptions {
  target: ExportTarget;
  out: string;
  model: LlamaModel;
  tokenizer: Tokenizer | null;
  /** applied together, in order (a stack); empty: the base alone */
  adapters: readonly ExportAdapter[];
  /** HF safetensors dtype (vllm, peft); default F32 */
  hfDtype?: HfDType;
  /** GGUF weight type of the base (llama.cpp, ollama); default f16 as convert_hf_to_gguf.py */
  ggufType?: OutType;
  /** base_model_name_or_path written into the adapters (e.g. a hub id); default the exported base folder's path */
  baseName?: string;
  /** Ollama model name for `ollama create` (default: the folder's name) */
  modelName?: string;
  /** peft: prompts whose next-token logits go into expected-logits.json (default: three short texts) */
  probePrompts?: readonly string[];
  force?: boolean;
}

export interface ExportResult {
  out: string;
  /** the command(s) the README gives, one a line */
  command: string;
  /** files written, relative to out */
  files: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const DEFAULT_PROBES = ['The capital of France is', 'Once upon a time', '1, 2, 3,'];

/** The adapter with its scale folded into every alpha (exact: scaling alpha/r or alpha/√r is linear in alpha). */
export function foldScale(a: LoraAdapter, scale: number, name: string): LoraAdapter {
  if (scale === 1) return a;
  const mods = a.moduleData().map((m) => ({ ...m, alpha: m.alpha * scale }));
  return new LoraAdapter({ ...a.config, loraAlpha: a.config.loraAlpha * scale }, a.base, a.fingerprint, mods, { name });
}

/** Writes the export; throws ExportRefusal (naming the field) before writing anything the target would mis-load. */
export function exportFor(o: ExportOptions): ExportResult {
  for (const a of o.adapters) if (!NAME.test(a.name)) throw new Error(`export: adapter name ${JSON.stringify(a.name)} must be letters, digits, ".", "_" or "-"`);
  if (new Set(o.adapters.map((a) => a.name)).size !== o.adapters.length) throw new Error('export: two adapters have the same name');
  checkStackFor(o.target, o.adapters.length);
  const folded = o.target === 'llama.cpp' ? [...o.adapters] : o.adapters.map((a) => ({ ...a, adapter: foldScale(a.adapter, a.scale, a.name), scale: 1 }));
  for (const a of folded) checkAdapterFor(o.target, a.adapter, a.name);
  const out = o.out;
  return writeFolderAtomic(out, o.force === true, (tmp) => {
    const files: string[] = [];
    let command: string;
    switch (o.target) {
      case 'vllm':
      case 'peft':
        command = writeHfExport(o, folded, tmp, files);
        break;
      case 'llama.cpp':
        command = writeLlamaCpp(o, folded, tmp, files);
        break;
      case 'ollama':
        command = writeOllama(o, folded, tmp, files);
        break;
    }
    return { out, command, files };
  });
}

// ---- vLLM and PEFT: a Hugging Face folder and PEFT adapter folders ----------------------------------------------

function writeHfExport(o: ExportOptions, adapters: readonly ExportAdapter[], dir: string, files: string[]): string {
  const dtype = o.hfDtype ?? 'F32';
  saveHfFolder(o.model, o.tokenizer, join(dir, 'base'), { dtype });
  files.push('base/config.json', 'base/model.safetensors', 'base/generation_config.json');
  if (o.tokenizer !== null) files.push('base/tokenizer.json', 'base/tokenizer_config.json');
  const baseName = o.baseName ?? resolve(o.out, 'base');
  for (const a of adapters) {
    savePeftAdapter(a.adapter, join(dir, 'adapters', a.name), { baseModelNameOrPath: baseName, dtype });
    files.push(`adapters/${a.name}/adapter_config.json`, `adapters/${a.name}/adapter_model.safetensors`);
  }
  let command: string;
  if (o.target === 'vllm') {
    const r = Math.max(1, ...adapters.flatMap((a) => [...a.adapter.modules.values()].map((m) => m.r)));
    const lora = adapters.length === 0 ? '' : ` --enable-lora ${adapters.map((a) => `--lora-modules ${a.name}=${rel('adapters', a.name)}`).join(' ')} --max-lora-rank ${vllmMaxLoraRank(r)}`;
    command = `vllm serve ${rel('base')}${lora}`;
  } else {
    if (dtype === 'F32') {
      writeJson(join(dir, 'expected-logits.json'), expectedLogits(dir, adapters, o.probePrompts ?? DEFAULT_PROBES, o.tokenizer));
      files.push('expected-logits.json');
    }
    command = `python3 scripts/gpu-handoff-check.py logits ${o.out}`; // scripts/gpu-handoff-check.py in the nomoat repository
  }
  writeText(join(dir, 'README.md'), o.target === 'vllm' ? vllmReadme(command, adapters) : peftReadme(command, adapters, baseName));
  files.push('README.md');
  return command;
}

/**
 * nomoat's next-token logits (F32) on the files just written, read back as any user would load them: the base
 * alone and each adapter attached. The GPU check compares transformers + peft against these (max |Δ| ≤ 1e-3).
 */
function expectedLogits(dir: string, adapters: readonly ExportAdapter[], prompts: readonly string[], tok: Tokenizer | null): Record<string, unknown> {
  const { model, tokenizer } = loadModel(join(dir, 'base'));
  const t = tokenizer ?? tok;
  try {
    const probe = prompts.map((text, i) => {
      // ids recorded so that the check does not depend on the tokenizer agreeing (a tokenizer-less model gets fixed ids)
      const ids = t !== null ? t.encode(text) : [1 + i, 2 + i, 3 + i];
      const logits: Record<string, number[]> = {};
      return { text, ids, logits };
    });
    const record = (key: string): void => {
      for (const p of probe) p.logits[key] = Array.from(lastLogits(model, p.ids));
    };
    record('base');
    for (const a of adapters) {
      const loaded = loadPeftAdapter(join(dir, 'adapters', a.name), model, { onWarning: () => {} });
      loaded.attach(model, { scale: 1 });
      record(a.name);
      loaded.dispose();
    }
    return { format: 1, dtype: 'F32', tolerance: 1e-3, base: 'base', adapters: Object.fromEntries(adapters.map((a) => [a.name, `adapters/${a.name}`])), prompts: probe };
  } finally {
    model.dispose();
  }
}

function lastLogits(model: LlamaModel, ids: readonly number[]): Float32Array {
  return noGrad(() => tidy(() => model.forwardLast(Int32Array.from(ids), 1, ids.length).toArray()));
}

function vllmReadme(command: string, adapters: readonly ExportAdapter[]): string {
  const r = adapters.map((a) => `- \`${a.name}\`: r ${a.adapter.config.r}, lora_alpha ${a.adapter.config.loraAlpha}${a.adapter.config.useRslora ? ' (rsLoRA)' : ''}`).join('\n');
  return `# vLLM hand-off (written by nomoat export --for vllm)

Serve it (from this folder):

\`\`\`sh
${command}
\`\`\`

${adapters.length > 0 ? `Then ask for the adapter by name: \`"model": "${adapters[0].name}"\` in an OpenAI request.\n\n${r}\n` : ''}
- \`base/\`: a Hugging Face model folder (config.json, model.safetensors, tokenizer).
- \`adapters/NAME/\`: PEFT LoRA folders (adapter_config.json, adapter_model.safetensors), the factors in HF's q/k layout.

What vLLM takes and refuses (checked before writing): one rank and one lora_alpha per adapter (no rank_pattern /
alpha_pattern), r ≤ 512 (\`--max-lora-rank\` is one of 1, 8, 16, 32, 64, 128, 256, 320, 512), no modules_to_save, no DoRA,
no bias. vLLM applies one adapter per request, so a stack is refused: combine it first (recipe "merge": {"method": "cat"}).
A nomoat scale other than 1 is folded into lora_alpha.
`;
}

function peftReadme(command: string, adapters: readonly ExportAdapter[], baseName: string): string {
  const a = adapters[0];
  const load = a === undefined ? '' : `model = PeftModel.from_pretrained(model, "adapters/${a.name}")\n`;
  return `# Hugging Face Transformers + PEFT hand-off (written by nomoat export --for peft)

\`\`\`python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

model = AutoModelForCausalLM.from_pretrained("base", torch_dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("base")
${load}\`\`\`

- \`base/\`: config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json.
- \`adapters/NAME/\`: adapter_config.json with LoraConfig's fields as PEFT writes them (peft_type "LORA", task_type
  "CAUSAL_LM", r, lora_alpha, use_rslora, target_modules, base_model_name_or_path = ${JSON.stringify(baseName)}), and
  adapter_model.safetensors (base_model.model.<module>.lora_A.weight / lora_B.weight).
- \`expected-logits.json\` (F32 exports): nomoat's next-token logits for a few prompts, base and each adapter. On a
  machine with torch, transformers and peft: \`${command}\` compares them (max |Δ| ≤ 1e-3).
`;
}

// ---- llama.cpp: GGUF base + GGUF LoRA ---------------------------------------------------------------------------

function writeLlamaCpp(o: ExportOptions, adapters: readonly ExportAdapter[], dir: string, files: string[]): string {
  saveGguf(o.model, o.tokenizer, join(dir, 'model.gguf'), { dtype: o.ggufType ?? 'f16' });
  files.push('model.gguf');
  const flags: string[] = [];
  for (const a of adapters) {
    saveGgufLora(a.adapter, join(dir, `${a.name}.gguf`), { name: a.name });
    files.push(`${a.name}.gguf`);
    flags.push(a.scale === 1 ? `--lora ${a.name}.gguf` : `--lora-scaled ${a.name}.gguf ${a.scale}`);
  }
  const command = ['llama-server -m model.gguf', ...flags].join(' ');
  writeText(join(dir, 'README.md'), `# llama.cpp hand-off (written by nomoat export --for llama.cpp)

From this folder:

\`\`\`sh
${command}
\`\`\`

(\`llama-cli\` takes the same -m / --lora / --lora-scaled flags.) The adapters stack, each at its scale, as in nomoat.

- \`model.gguf\`: the base (${o.ggufType ?? 'f16'} weights, norms f32), llama.cpp's tensor names and RoPE layout, with the tokenizer and chat template.
- \`NAME.gguf\`: GGUF LoRA (general.type "adapter", adapter.type "lora", adapter.lora.alpha). llama.cpp applies
  scale · alpha / r with one alpha per file and no rsLoRA flag: rsLoRA and per-module scalings are folded into lora_b.
`);
  files.push('README.md');
  return command;
}

// ---- Ollama: GGUF base + one GGUF LoRA + Modelfile ---------------------------------------------------------------

function writeOllama(o: ExportOptions, adapters: readonly ExportAdapter[], dir: string, files: string[]): string {
  saveGguf(o.model, o.tokenizer, join(dir, 'model.gguf'), { dtype: o.ggufType ?? 'f16' });
  files.push('model.gguf');
  const a = adapters[0];
  if (a !== undefined) {
    saveGgufLora(a.adapter, join(dir, 'adapter.gguf'), { name: a.name });
    files.push('adapter.gguf');
  }
  const mf = modelfileText(o.tokenizer, a !== undefined);
  writeText(join(dir, 'Modelfile'), mf.text);
  files.push('Modelfile');
  const name = o.modelName ?? (o.out.split(/[\\/]/).filter((s) => s !== '').pop() ?? 'nomoat-model').toLowerCase();
  const command = `ollama create ${name} -f Modelfile`;
  writeText(join(dir, 'README.md'), `# Ollama hand-off (written by nomoat export --for ollama)

From this folder:

\`\`\`sh
${command}
ollama run ${name}
\`\`\`

- \`model.gguf\`: the base; \`adapter.gguf\`: the LoRA as GGUF (Ollama's ADAPTER takes one; a stack must be combined first).
- \`Modelfile\`: ${mf.note}
`);
  files.push('README.md');
  return command;
}
