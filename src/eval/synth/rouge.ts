// ROUGE-L on word tokens, as Google's rouge_score computes it for Self-Instruct's and Alpaca's similarity filter
// (RougeScorer(["rougeL"], use_stemmer=False)): lower-case, every run of characters outside [a-z0-9] is a space,
// split on spaces; LCS of the two token lists; precision = lcs/|candidate|, recall = lcs/|reference|,
// F = 2PR/(P+R), 0 when either side has no tokens.

/** rouge_score's default tokenizer without stemming: lower-cased [a-z0-9]+ runs (non-ASCII letters are dropped). */
export function rougeTokens(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(' ').filter((t) => t !== '');
}

/** Length of the longest common subsequence of a and b: O(|a|·|b|) time, O(|b|) memory. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Int32Array(b.length + 1); // row[j] = LCS(a[:i], b[:j]) for the current i
  for (let i = 1; i <= a.length; i++) {
    let diag = 0; // LCS(a[:i-1], b[:j-1])
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
}

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** ROUGE-L of a candidate against a reference, both already tokenized (rouge_score's _score_lcs). */
export function rougeLTokens(reference: readonly string[], candidate: readonly string[]): RougeScore {
  if (reference.length === 0 || candidate.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(reference, candidate);
  const precision = lcs / candidate.length;
  const recall = lcs / reference.length;
  const fmeasure = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, fmeasure };
}

/** ROUGE-L F-measure of two texts. */
export function rougeL(reference: string, candidate: string): number {
  return rougeLTokens(rougeTokens(reference), rougeTokens(candidate)).fmeasure;
}

/**
 * The instructions kept so far, tokenized once, and the nearest of them to a new one (Self-Instruct compares every
 * new instruction with every seed and every instruction kept before it).
 */
export class SimilarityPool {
  private readonly texts: string[] = [];
  private readonly tokens: string[][] = [];

  constructor(initial: readonly string[] = []) {
    for (const t of initial) this.add(t);
  }

  get size(): number {
    return this.texts.length;
  }

  add(text: string): void {
    this.texts.push(text);
    this.tokens.push(rougeTokens(text));
  }

  /** The highest ROUGE-L F of text against the pool, and which entry it was (null for an empty pool). */
  nearest(text: string): { score: number; text: string | null } {
    const t = rougeTokens(text);
    let best = 0, at = -1;
    for (let i = 0; i < this.tokens.length; i++) {
      const f = rougeLTokens(this.tokens[i], t).fmeasure;
      if (f > best || at < 0) [best, at] = [f, i];
    }
    return { score: best, text: at >= 0 ? this.texts[at] : null };
  }
}
