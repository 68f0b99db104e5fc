// Simple quality filters for training conversations: length bounds, repetition, and mostly-non-text content.

import type { Conversation } from './types.js';

export interface QualityOptions {
  /** minimum total characters over all message contents (default 1) */
  minChars?: number;
  /** maximum total characters over all message contents (default 100 000) */
  maxChars?: number;
  /** maximum repetition ratio of the assistant text (see repetitionRatio; default 0.5) */
  maxRepetition?: number;
  /** minimum fraction of text-like characters over all contents (see textRatio; default 0.6) */
  minTextRatio?: number;
}

/** 1 − distinct/total over word n-grams (default trigrams) of lower-cased text: 0 for no repeated n-gram, close
 *  to 1 for degenerate loops ("the cat the cat the cat …"). Texts with fewer than n words have ratio 0. */
export function repetitionRatio(text: string, n = 3): number {
  const words = text.toLowerCase().split(/\s+/u).filter((w) => w !== '');
  const total = words.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  for (let i = 0; i < total; i++) seen.add(words.slice(i, i + n).join(' '));
  return 1 - seen.size / total;
}

/** Fraction of code points that are letters, digits, whitespace or punctuation (Unicode classes L, N, Z/space, P);
 *  binary junk, control characters and symbol soup score low. Empty text → 1. */
export function textRatio(text: string): number {
  let total = 0, good = 0;
  for (const ch of text) {
    total++;
    if (/[\p{L}\p{N}\p{P}\s]/u.test(ch)) good++;
  }
  return total === 0 ? 1 : good / total;
}

/** Reasons a conversation fails the filters (empty: it passes). */
export function qualityIssues(c: Conversation, opts: QualityOptions = {}): string[] {
  const minChars = opts.minChars ?? 1, maxChars = opts.maxChars ?? 100_000;
  const maxRep = opts.maxRepetition ?? 0.5, minText = opts.minTextRatio ?? 0.6;
  const all = c.messages.map((m) => m.content).join('\n');
  const assistant = c.messages.filter((m) => m.role === 'assistant').map((m) => m.content).join('\n');
  const issues: string[] = [];
  const len = [...all].length;
  if (len < minChars) issues.push(`too short: ${len} characters < minChars ${minChars}`);
  if (len > maxChars) issues.push(`too long: ${len} characters > maxChars ${maxChars}`);
  const rep = repetitionRatio(assistant);
  if (rep > maxRep) issues.push(`repetitive: repetition ratio ${rep.toFixed(3)} > ${maxRep}`);
  const tr = textRatio(all);
  if (tr < minText) issues.push(`mostly non-text: text ratio ${tr.toFixed(3)} < ${minText}`);
  return issues;
}

export interface FilterResult {
  kept: Conversation[];
  removed: { index: number; reasons: string[] }[];
}

/** Keeps the conversations that pass qualityIssues, reporting the others with their reasons. */
export function filterConversations(convs: readonly Conversation[], opts: QualityOptions = {}): FilterResult {
  const kept: Conversation[] = [];
  const removed: { index: number; reasons: string[] }[] = [];
  convs.forEach((c, index) => {
    const reasons = qualityIssues(c, opts);
    if (reasons.length > 0) removed.push({ index, reasons });
    else kept.push(c);
  });
  return { kept, removed };
}
