// Prompt files for signing and calibrating: JSONL (or one JSON array) of records holding a user prompt, in any of
// the instruction formats (OpenAI messages, ShareGPT conversations, Alpaca instruction + input) or {"prompt"} /
// {"text"}: each record's first user turn; or plain text, one prompt a line. Replies are not needed (a prompt
// file may hold prompts only). An empty file, or one with no user text, is an error naming the file.

import { readFileSync } from 'node:fs';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first user prompt of a record, or null when it has none. */
export function recordPrompt(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (!isObj(v)) return null;
  for (const k of ['prompt', 'text']) if (typeof v[k] === 'string') return v[k];
  if (typeof v.instruction === 'string') return typeof v.input === 'string' && v.input !== '' ? `${v.instruction}\n\n${v.input}` : v.instruction;
  const turns = Array.isArray(v.messages) ? v.messages : Array.isArray(v.conversations) ? v.conversations : null;
  for (const t of turns ?? []) {
    if (!isObj(t)) continue;
    const role = t.role ?? t.from;
    const text = t.content ?? t.value;
    if ((role === 'user' || role === 'human') && typeof text === 'string') return text;
  }
  return null;
}

/** The user prompts of a file; throws naming the file (and line) when it cannot be read or holds none. */
export function readPromptFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the prompt file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error(`${path}: no prompts (the file is empty); give JSONL records with a user turn, or one prompt a line`);
  const parse = (s: string, where: string): unknown => {
    try {
      return JSON.parse(s);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${e instanceof Error ? e.message : String(e)}); a prompt file is JSONL, a JSON array, or plain text starting with something other than { or [`);
    }
  };
  const first = lines[0].trim();
  let records: unknown[];
  if (first.startsWith('[')) {
    const all = parse(text, path);
    records = Array.isArray(all) ? all : [all];
  } else if (first.startsWith('{')) {
    records = text.split(/\r?\n/).flatMap((l, i) => (l.trim() === '' ? [] : [parse(l, `${path}:${i + 1}`)]));
  } else {
    return lines;
  }
  const prompts = records.map(recordPrompt).filter((p): p is string => p !== null && p.trim() !== '');
  if (prompts.length === 0) throw new Error(`${path}: no user prompts in it (records need "prompt", "text", an Alpaca "instruction", or a user turn in "messages"/"conversations")`);
  return prompts;
}
