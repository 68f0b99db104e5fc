// Picks the chat template out of a tokenizer_config.json (a string, or a list of named templates).
import type { TokenizerConfig } from './hf-json.js';

/** The default chat template of a tokenizer config (`name` picks another entry of a template list). */
export function chatTemplateFromConfig(config: TokenizerConfig, name = 'default'): string | null {
  const t = config.chat_template;
  if (t === undefined) return null;
  if (typeof t === 'string') return t;
  const hit = t.find((x) => x.name === name);
  if (hit === undefined && name !== 'default') {
    throw new Error(`tokenizer_config.json chat_template: no template named '${name}' (have: ${t.map((x) => x.name).join(', ')})`);
  }
  return hit?.template ?? null;
}
