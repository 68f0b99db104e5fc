// The command table: adding a command is one line here plus its file. Modules load only when their command runs
// (or for `nomoat --help`), so `nomoat generate` does not pay for the others.

import type { Command } from './command.js';

export interface CommandEntry {
  /** words after `nomoat`; two words for grouped commands (e.g. 'tokenizer train') */
  name: string;
  summary: string;
  load: () => Promise<{ command: Command }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'generate', summary: 'generate text from a prompt (streams, or --json)', load: () => import('./generate.js') },
  { name: 'chat', summary: 'chat with a model in the terminal (stdin may be a pipe)', load: () => import('./chat.js') },
  { name: 'pull', summary: 'download a model from the Hugging Face Hub (hf://OWNER/REPO[:QUANT]) into the Hugging Face cache', load: () => import('./pull.js') },
  { name: 'convert', summary: 'convert between Hugging Face folders, GGUF and llama2.c', load: () => import('./convert.js') },
  { name: 'quantize', summary: 'requantize a GGUF file to a llama-quantize mix (Q4_K_M, Q5_K_M, Q6_K, Q8_0, …)', load: () => import('./quantize.js') },
  { name: 'stack', summary: 'stack LoRA adapters (a recipe or --lora flags) into one adapter file, PEFT or GGUF', load: () => import('./stack.js') },
  { name: 'merge', summary: 'merge LoRA adapters into the base model (HF or GGUF), or combine them into one adapter', load: () => import('./merge.js') },
  { name: 'serve', summary: 'serve a model and its adapters over an OpenAI-compatible HTTP API (streaming, per-request stacks)', load: () => import('./serve.js') },
  { name: 'adapter sign', summary: 'store a signature of an adapter\'s prompts beside it, for routing among a library of adapters', load: () => import('./adapter-sign.js') },
  { name: 'inspect', summary: 'show a model\'s metadata, tensors and parameter count', load: () => import('./inspect.js') },
  { name: 'finetune', summary: 'fine-tune a LoRA adapter on instruction data (PEFT + GGUF output)', load: () => import('./finetune.js') },
  { name: 'pretrain', summary: 'pretrain a small Llama from scratch on text files', load: () => import('./pretrain.js') },
  { name: 'tokenizer train', summary: 'train a byte-level BPE tokenizer (tokenizer.json) on text files', load: () => import('./tokenizer-train.js') },
  { name: 'eval', summary: 'evaluate a model and its adapters: perplexity and lm-evaluation-harness-style tasks', load: () => import('./eval.js') },
  { name: 'eval judge', summary: 'LLM-as-judge: MT-bench single-answer grading and pairwise comparison', load: () => import('./eval-judge.js') },
  { name: 'eval arena', summary: 'arena ratings (Elo, Bradley–Terry with bootstrap intervals) from a battle log', load: () => import('./eval-arena.js') },
  { name: 'distill', summary: 'distil a teacher (model + adapters) into a LoRA student or a smaller model', load: () => import('./distill.js') },
  { name: 'data', summary: 'inspect, validate, convert, split, mix, deduplicate, filter and decontaminate instruction data', load: () => import('./data.js') },
  { name: 'data stats', summary: 'count records, turns, characters and tokens; exact duplicates; a length histogram', load: () => import('./data-stats.js') },
  { name: 'data validate', summary: 'check every record; each problem as file:line: field: what (exit 1 if any)', load: () => import('./data-validate.js') },
  { name: 'data convert', summary: 'convert between Alpaca, ShareGPT, OpenAI messages, text, JSONL and Parquet', load: () => import('./data-convert.js') },
  { name: 'data split', summary: 'split a dataset into train and eval files (seeded)', load: () => import('./data-split.js') },
  { name: 'data mix', summary: 'mix datasets in given shares (seeded)', load: () => import('./data-mix.js') },
  { name: 'data dedup', summary: 'remove exact and near-duplicate records (MinHash-LSH + exact Jaccard), cluster report', load: () => import('./data-dedup.js') },
  { name: 'data filter', summary: 'drop low-quality records (Gopher, FineWeb, length and turn bounds), --explain why', load: () => import('./data-filter.js') },
  { name: 'export', summary: 'write a model, adapter or recipe for vLLM, llama.cpp, Ollama or Transformers + PEFT, with the command to run it', load: () => import('./export.js') },
  { name: 'import', summary: 'check an adapter or model trained elsewhere against its base and register it in a library folder', load: () => import('./import.js') },
  { name: 'data synth', summary: 'synthesize instruction data: Self-Instruct from seed tasks, or best-of-n answers to prompts, with provenance', load: () => import('./data-synth.js') },
  { name: 'data decontaminate', summary: 'drop training records sharing a 13-gram with eval sets, with a report', load: () => import('./data-decontaminate.js') },
  { name: 'demo', summary: 'fine-tune the bundled model on four small skills in minutes, offline; before/after', load: () => import('./demo.js') },
];
