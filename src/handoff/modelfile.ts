// The Ollama Modelfile of an export (docs/modelfile.md): FROM the GGUF base, ADAPTER the GGUF LoRA (one), TEMPLATE
// when the chat template is a family proved to translate (ollama-template.ts), PARAMETER stop for its stop strings
// or, without a TEMPLATE, for the tokenizer's end-of-turn token texts.

import type { Tokenizer } from '../tokenizer/types.js';
import { translateTemplate } from './ollama-template.js';

/** A Modelfile string argument: Ollama reads "…" with \" and \\ escapes; """…""" holds the multi-line template. */
const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function modelfileText(tok: Tokenizer | null, withAdapter: boolean): { text: string; note: string } {
  const lines = ['# Written by nomoat export --for ollama', 'FROM ./model.gguf'];
  if (withAdapter) lines.push('ADAPTER ./adapter.gguf');
  const text = (id: number | null): string => (id === null || tok === null ? '' : (tok.idToToken(id) ?? ''));
  const jinja = tok?.chatTemplate ?? null;
  let note: string;
  let stops: string[];
  const t = jinja === null ? null : translateTemplate(jinja, text(tok!.bosId), text(tok!.eosId));
  if (t?.ok === true) {
    if (t.value.template.includes('"""')) throw new Error('export --for ollama: the translated TEMPLATE contains """, which a Modelfile cannot quote');
    lines.push(`TEMPLATE """${t.value.template}"""`);
    stops = t.value.stops;
    note = `TEMPLATE translated from the model's ${t.value.family} Jinja chat template (checked on probe conversations), its stop strings as PARAMETER stop.`;
  } else {
    lines.push(`# no TEMPLATE: ${t === null ? 'the model has no chat template' : t.why}; Ollama uses the GGUF's own (tokenizer.chat_template)`);
    stops = [...new Set([text(tok?.eosId ?? null)].filter((s) => s !== ''))];
    note = `no TEMPLATE (${t === null ? 'no chat template' : t.why}): Ollama reads the template from the GGUF; PARAMETER stop is the end-of-sequence token.`;
  }
  for (const s of stops) lines.push(`PARAMETER stop ${quote(s)}`);
  return { text: lines.join('\n') + '\n', note };
}
