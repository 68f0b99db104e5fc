// Ollama's TEMPLATE (a Go text/template over .Messages) for a model whose Jinja chat template is one of the common
// families, and the family's stop strings (PARAMETER stop).
//
// A family is guessed from the Jinja text (its marker tokens), then PROVED: a few probe conversations are rendered
// with the Jinja template (as transformers / nomoat do) and with a TypeScript copy of what the Go template below
// produces, and the two must be equal character for character. A template that only looks like a family (Qwen's
// default system prompt, Llama 3.1's date header, a Zephyr variant without newlines…) fails the proof, and the
// Modelfile then carries no TEMPLATE: Ollama uses the one in the GGUF (tokenizer.chat_template), which is what it
// would do anyway, so nothing is silently mistranslated.
//
// Ollama's template variables (docs/template.md): .Messages is the list of {Role, Content}, system messages included;
// `slice $.Messages $i` / `len` is how its own library templates tell the last message (llama3, qwen2 Modelfiles).
// Ollama adds BOS itself when the GGUF says add_bos_token, so the leading BOS a Jinja template writes is not part of
// the comparison.

import { renderChat, type ChatMessage } from '../tokenizer/chat.js';

export type TemplateFamily = 'chatml' | 'llama3' | 'llama2' | 'zephyr';

interface Family {
  /** does the Jinja text look like this family */
  looks(jinja: string): boolean;
  /** the Go template Ollama runs */
  go(eos: string, bos: string): string;
  /** what that Go template renders for messages followed by a generation prompt (last message not assistant) */
  render(messages: readonly ChatMessage[], eos: string, bos: string): string;
  stops(eos: string): string[];
}

const LAST = '{{- $last := eq (len (slice $.Messages $i)) 1 }}';

const FAMILIES: Record<TemplateFamily, Family> = {
  chatml: {
    looks: (j) => j.includes('<|im_start|>') && j.includes('<|im_end|>'),
    go: () =>
      `{{- range $i, $_ := .Messages }}\n${LAST}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n` +
      `{{ if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}\n{{- end }}`,
    render: (ms) => ms.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n',
    stops: () => ['<|im_end|>', '<|im_start|>'],
  },
  llama3: {
    looks: (j) => j.includes('<|start_header_id|>') && j.includes('<|eot_id|>'),
    go: () =>
      `{{- range $i, $_ := .Messages }}\n${LAST}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>` +
      `{{ if and $last (ne .Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}\n{{- end }}`,
    render: (ms) => ms.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content}<|eot_id|>`).join('') + '<|start_header_id|>assistant<|end_header_id|>\n\n',
    stops: () => ['<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'],
  },
  llama2: {
    looks: (j) => j.includes('[INST]') && j.includes('[/INST]'),
    // The system prompt goes inside the first [INST] block; every user turn after the first opens with <s> again.
    go: (eos, bos) =>
      '{{- $system := "" }}{{- $first := true }}\n{{- range .Messages }}\n' +
      '{{- if eq .Role "system" }}{{ $system = .Content }}\n' +
      `{{- else if eq .Role "user" }}{{ if not $first }}${bos}{{ end }}[INST] {{ if $system }}<<SYS>>\n{{ $system }}\n<</SYS>>\n\n{{ end }}{{ .Content }} [/INST]{{ $system = "" }}{{ $first = false }}\n` +
      `{{- else if eq .Role "assistant" }} {{ .Content }} ${eos}\n{{- end }}\n{{- end }}`,
    render: (ms, eos, bos) => {
      let out = '', system = '', first = true;
      for (const m of ms) {
        if (m.role === 'system') system = m.content;
        else if (m.role === 'user') {
          out += `${first ? '' : bos}[INST] ${system !== '' ? `<<SYS>>\n${system}\n<</SYS>>\n\n` : ''}${m.content} [/INST]`;
          system = '';
          first = false;
        } else if (m.role === 'assistant') out += ` ${m.content} ${eos}`;
      }
      return out;
    },
    stops: () => ['[INST]', '[/INST]'],
  },
  zephyr: {
    looks: (j) => j.includes('<|user|>') && j.includes('<|assistant|>'),
    go: (eos) =>
      `{{- range $i, $_ := .Messages }}\n${LAST}<|{{ .Role }}|>\n{{ .Content }}${eos}\n` +
      '{{ if and $last (ne .Role "assistant") }}<|assistant|>\n{{ end }}\n{{- end }}',
    render: (ms, eos) => ms.map((m) => `<|${m.role}|>\n${m.content}${eos}\n`).join('') + '<|assistant|>\n',
    stops: (eos) => [eos, '<|user|>', '<|system|>'],
  },
};

/** Conversations each translation must reproduce exactly (system or not, one turn or several). */
const PROBES: ChatMessage[][] = [
  [{ role: 'user', content: 'Hello there.' }],
  [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name a colour.' }],
  [
    { role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Hi!' }, { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Count to 3.' },
  ],
  [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }],
];

export interface OllamaTemplate {
  family: TemplateFamily;
  /** the Go template for TEMPLATE """…""" */
  template: string;
  stops: string[];
}

/** Why no family matched (for the Modelfile comment and the README), or the translation. */
export type TemplateTranslation = { ok: true; value: OllamaTemplate } | { ok: false; why: string };

/** The family of a Jinja chat template, proved on the probe conversations; bos/eos are the tokenizer's token texts. */
export function translateTemplate(jinja: string, bos: string, eos: string): TemplateTranslation {
  const guesses = (Object.keys(FAMILIES) as TemplateFamily[]).filter((k) => FAMILIES[k].looks(jinja));
  if (guesses.length === 0) return { ok: false, why: 'the chat template is none of ChatML, Llama-3, Llama-2, Zephyr' };
  const misses: string[] = [];
  for (const family of guesses) {
    const f = FAMILIES[family];
    const bad = PROBES.find((p) => {
      let want: string;
      try {
        want = renderChat(jinja, p, { addGenerationPrompt: true, bosToken: bos, eosToken: eos, now: new Date(0) });
      } catch {
        return true; // e.g. a template that refuses a system message
      }
      if (bos !== '' && want.startsWith(bos)) want = want.slice(bos.length);
      return want !== f.render(p, eos, bos);
    });
    if (bad === undefined) return { ok: true, value: { family, template: f.go(eos, bos), stops: f.stops(eos) } };
    misses.push(family);
  }
  return { ok: false, why: `the chat template looks like ${misses.join('/')} but renders differently from Ollama's template for it` };
}

/** The Go template of a family (for tests and documentation). */
export function familyTemplate(family: TemplateFamily, eos: string, bos = ''): string {
  return FAMILIES[family].go(eos, bos);
}
