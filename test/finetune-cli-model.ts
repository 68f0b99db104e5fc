// A tiny Hugging Face model folder for the finetune/demo CLI tests: a byte-level BPE tokenizer trained in
// milliseconds on skill prompts (ChatML specials, ChatML template) and seeded random weights, so the commands run
// on a real folder in seconds.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { writeSafetensors } from '../src/formats/safetensors.js';
import { SKILLS, DEMO_SKILLS, skillConversation, type SkillExample } from '../src/data/skills.js';
import { configToHf } from '../src/models/config.js';
import { initWeights, tinyConfig } from '../src/models/init.js';
import { DEFAULT_SPECIALS, trainTokenizer, writeTokenizerFiles } from '../src/cli/tokenizer-train.js';

/** Demo-skill examples (seeded), every skill in turn. */
export function skillExamples(n: number, seed = 3): SkillExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => SKILLS[DEMO_SKILLS[i % DEMO_SKILLS.length]].generate(rng, 1)[0]);
}

/** JSONL of demo-skill chats in OpenAI messages format, with the "skill" tag the demo reads. */
export function skillJsonl(examples: readonly SkillExample[]): string {
  return examples.map((e) => JSON.stringify({ skill: e.skill, ...skillConversation(e) })).join('\n') + '\n';
}

/** Writes dir/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json}: C 32, 2 layers, ~400 tokens. */
export function writeTinyHfModel(dir: string, seed = 1): void {
  const texts = skillExamples(400).flatMap((e) => [e.prompt, e.answer]);
  const tok = trainTokenizer(texts, 400, [...DEFAULT_SPECIALS], 2, 128);
  writeTokenizerFiles(dir, tok);
  const t = tok.tokenizer;
  const cfg = tinyConfig({
    vocabSize: t.vocabSize, maxPositionEmbeddings: 128, tieWordEmbeddings: true, bosTokenId: null,
    eosTokenId: [t.tokenToId('<|im_end|>') ?? 2, t.tokenToId('<|endoftext|>') ?? 0],
  });
  const w = initWeights(cfg, seed, 0.1);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHf(cfg), null, 2) + '\n');
  writeSafetensors(join(dir, 'model.safetensors'), [...w].map(([name, x]) => ({ name, dtype: 'F32', shape: [...x.shape], data: Float32Array.from(x.data) })), { format: 'pt' });
  for (const x of w.values()) x.dispose();
}
