// Decontamination: finds training records that overlap evaluation items, as GPT-3 (Brown et al. 2020, appendix C)
// and lm-evaluation-harness's decontamination do: text lower-cased, punctuation removed, split into words, and any
// shared word 13-gram marks the training record as contaminated. Eval items shorter than 13 words cannot share a
// 13-gram; they are matched whole instead: a training turn whose normalized words equal the item's (for example a
// demo skill prompt such as "5 + 4 =" copied into the training data).

/** Lower case, punctuation and symbols removed (not replaced: "don't" → "dont", as Python's str.translate does),
 *  split on whitespace. */
export function decontamWords(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().replace(/[\p{P}\p{S}]/gu, '').split(/\s+/u).filter((w) => w !== '');
}

/** Where an eval item came from: "file:line" and the field, or a named source such as "skills add-digit #3". */
export interface EvalRef {
  where: string;
  field: string;
}

export interface Contamination {
  /** the eval item it overlaps */
  ref: EvalRef;
  /** the shared n-gram, or the whole short item */
  ngram: string;
  kind: 'ngram' | 'whole';
}

export class ContaminationIndex {
  private readonly grams = new Map<string, EvalRef>();
  private readonly whole = new Map<string, EvalRef>();
  /** eval items indexed (by n-grams or whole) */
  items = 0;

  /** n: words per n-gram (13); minWords: shorter items are ignored (a one-word item would match too much) */
  constructor(readonly n = 13, readonly minWords = 2) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`n-gram size must be a positive integer, got ${n}`);
  }

  /** Indexes one eval text: its word n-grams, or the whole text when it is shorter than n words. */
  add(text: string, ref: EvalRef): void {
    const w = decontamWords(text);
    if (w.length < this.minWords) return;
    this.items++;
    if (w.length < this.n) {
      const k = w.join(' ');
      if (!this.whole.has(k)) this.whole.set(k, ref);
      return;
    }
    for (let i = 0; i + this.n <= w.length; i++) {
      const k = w.slice(i, i + this.n).join(' ');
      if (!this.grams.has(k)) this.grams.set(k, ref);
    }
  }

  /** The first overlap of a training record, given its turns (or its one text), or null. */
  check(turns: readonly string[]): Contamination | null {
    for (const t of turns) {
      const w = decontamWords(t);
      const whole = this.whole.get(w.join(' '));
      if (whole !== undefined) return { ref: whole, ngram: w.join(' '), kind: 'whole' };
      for (let i = 0; i + this.n <= w.length; i++) {
        const k = w.slice(i, i + this.n).join(' ');
        const ref = this.grams.get(k);
        if (ref !== undefined) return { ref, ngram: k, kind: 'ngram' };
      }
    }
    return null;
  }
}

/** Every string in a parsed JSON value with its path ("turns[1]", "question"): what an eval item's text is. */
export function stringLeaves(v: unknown, path = ''): { field: string; text: string }[] {
  if (typeof v === 'string') return [{ field: path === '' ? '(value)' : path, text: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringLeaves(x, `${path}[${i}]`));
  if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => stringLeaves(x, path === '' ? k : `${path}.${k}`));
  return [];
}
