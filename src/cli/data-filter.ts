// `nomoat data filter`: Gopher quality and repetition rules, FineWeb's additions, and length and turn bounds; every
// rule and threshold a flag; --explain writes each removed record with the rule that removed it. With --keep-best,
// --max-score or --scores, the records the rules keep are also scored by a reference model (data-filter-score.ts),
// in a first pass; the second pass writes.

import { ConsensusVote } from '../data/consensus.js';
import { contentText, learnedText, type DataRecord } from '../data/records.js';
import { FINEWEB, finewebQuality, GOPHER_QUALITY, GOPHER_REPETITION, gopherQuality, gopherRepetition, type RuleFailure } from '../data/quality.js';
import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { DATA_INPUT_FLAGS, requireOutput, scanRecords, skippedNote, summary, withSinks, writeRecord } from './data-common.js';
import { decide, openScorer, SCORE_FLAGS, scorePlan, type ScoreDecision } from './data-filter-score.js';

const G = GOPHER_QUALITY, R = GOPHER_REPETITION, F = FINEWEB;
const FLAGS = {
  output: { kind: 'string', short: 'o', metavar: 'OUT', help: 'kept records (.jsonl or .parquet), unchanged' },
  explain: { kind: 'string', metavar: 'FILE', help: 'JSONL of removed records: where, rule, value, threshold, record' },
  field: { kind: 'string', metavar: 'WHICH', help: 'what the text rules judge in a chat: assistant (the replies a trainer learns) or all (every turn)', default: 'assistant' },
  'no-gopher-quality': { kind: 'boolean', help: 'skip the Gopher quality rules' },
  'no-gopher-repetition': { kind: 'boolean', help: 'skip the Gopher repetition rules' },
  'no-fineweb': { kind: 'boolean', help: 'skip the FineWeb rules' },
  'min-words': { kind: 'int', metavar: 'N', help: 'Gopher: fewest words (use 1–5 for chat replies)', default: G.minWords },
  'max-words': { kind: 'int', metavar: 'N', help: 'Gopher: most words', default: G.maxWords },
  'min-mean-word-length': { kind: 'number', metavar: 'X', help: 'Gopher: shortest mean word length', default: G.minMeanWordLength },
  'max-mean-word-length': { kind: 'number', metavar: 'X', help: 'Gopher: longest mean word length', default: G.maxMeanWordLength },
  'max-symbol-ratio': { kind: 'number', metavar: 'X', help: 'Gopher: "#" and "..." per word, each', default: G.maxSymbolRatio },
  'max-bullet-lines': { kind: 'number', metavar: 'X', help: 'Gopher: share of lines starting with a bullet', default: G.maxBulletLines },
  'max-ellipsis-lines': { kind: 'number', metavar: 'X', help: 'Gopher: share of lines ending with an ellipsis', default: G.maxEllipsisLines },
  'min-alpha-words': { kind: 'number', metavar: 'X', help: 'Gopher: share of words with a letter', default: G.minAlphaWords },
  'min-stop-words': { kind: 'int', metavar: 'N', help: 'Gopher: fewest of the, be, to, of, and, that, have, with', default: G.minStopWords },
  'max-dup-line-frac': { kind: 'number', metavar: 'X', help: 'Gopher: share of duplicate lines', default: R.maxDupLineFrac },
  'max-dup-para-frac': { kind: 'number', metavar: 'X', help: 'Gopher: share of duplicate paragraphs', default: R.maxDupParaFrac },
  'max-dup-line-chars': { kind: 'number', metavar: 'X', help: 'Gopher: character share of duplicate lines', default: R.maxDupLineCharFrac },
  'max-dup-para-chars': { kind: 'number', metavar: 'X', help: 'Gopher: character share of duplicate paragraphs', default: R.maxDupParaCharFrac },
  'top-ngram': { kind: 'list', metavar: 'N:X', help: 'Gopher: character share of the most frequent n-gram (replaces 2:0.2 3:0.18 4:0.16)' },
  'dup-ngram': { kind: 'list', metavar: 'N:X', help: 'Gopher: character share of duplicated n-grams (replaces 5:0.15 … 10:0.1)' },
  'min-line-punct': { kind: 'number', metavar: 'X', help: 'FineWeb: share of lines ending in . \' " ! ?', default: F.minLinePunct },
  'max-short-lines': { kind: 'number', metavar: 'X', help: 'FineWeb: share of short lines', default: F.maxShortLines },
  'short-line-length': { kind: 'int', metavar: 'N', help: 'FineWeb: a short line has at most N characters', default: F.shortLineLength },
  'max-dup-line-char-share': { kind: 'number', metavar: 'X', help: 'FineWeb: characters in duplicated lines over all', default: F.maxDupLineChars },
  'max-newline-ratio': { kind: 'number', metavar: 'X', help: 'FineWeb: newlines per word', default: F.maxNewlineRatio },
  'min-chars': { kind: 'int', metavar: 'N', help: 'fewest characters over every turn' },
  'max-chars': { kind: 'int', metavar: 'N', help: 'most characters over every turn' },
  'min-turns': { kind: 'int', metavar: 'N', help: 'fewest assistant turns (chats)' },
  'max-turns': { kind: 'int', metavar: 'N', help: 'most assistant turns (chats)' },
  consensus: { kind: 'boolean', help: 'records sharing a prompt vote: drop those whose last reply is not the one most of them give (chats; a first pass counts)' },
  'consensus-min-votes': { kind: 'int', metavar: 'N', help: 'consensus: fewest records sharing a prompt for a vote', default: 3 },
  'consensus-ties': { kind: 'string', metavar: 'WHAT', help: 'consensus: replies tied for the most votes are kept (keep) or dropped (drop)', default: 'keep' },
  ...SCORE_FLAGS,
  ...DATA_INPUT_FLAGS,
} as const satisfies FlagSpecs;

function ngramList(flag: string, values: readonly string[], dflt: readonly (readonly [number, number])[]): readonly (readonly [number, number])[] {
  if (values.length === 0) return dflt;
  return values.map((v) => {
    const m = /^(\d+):(\d*\.?\d+)$/u.exec(v);
    if (m === null) throw new UsageError(`${flag} expects N:X such as 2:0.2, got ${JSON.stringify(v)}`);
    return [Number(m[1]), Number(m[2])] as const;
  });
}

export const command = defineCommand({
  name: 'data filter',
  summary: 'drop low-quality records: Gopher quality/repetition and FineWeb rules, length and turn bounds, a model\'s score (--explain)',
  usage: 'FILE -o OUT [--explain removed.jsonl] [rule flags] [--keep-best FRACTION | --max-score X] [--score-lora ADAPTER]',
  description: [
    'Rules run in order (length/turn bounds, Gopher quality, Gopher repetition, FineWeb); the first failing one removes the',
    'record. Thresholds default to the papers\' (Rae et al. 2021, table A1; FineWeb 2024), made for web documents: for',
    'short chat replies lower --min-words, or switch a group off (--no-fineweb).',
    'Model score (--keep-best, --max-score, --scores): the records the rules keep are scored by a reference model',
    '(--score-model, default the bundled one) with adapters (--score-lora; the usual recipe is an adapter fine-tuned on a',
    'small trusted seed set): loss = mean negative log-likelihood of the reply\'s tokens (what a trainer learns; lower is',
    'better), or ifd = that loss over the reply\'s loss without its prompt (Li et al. 2024; the papers keep the highest',
    'IFD below 1: hard but on-prompt examples), or margin = the mean over the reply\'s tokens of log p(the model\'s top token)',
    '− log p(the reply\'s token) (confident learning\'s margin: ranks disagreement with the model, not difficulty; lower is',
    'better). A first pass scores, holding 8 bytes a record; the second writes. Removed',
    'records go to --explain with rule model_score, their score and the bound (--max-score or the worst score kept).',
    'Consensus (--consensus): where the same prompt (every turn before the last reply, normalized) appears in several',
    'records, they vote, and records whose reply is not the most common one go (rule consensus, value = their votes,',
    'threshold = the winner\'s): the majority vote of multi-annotator label cleaning. The opposite of dedup: on data where',
    'facts recur, the repeats of the right reply are the evidence, so run it before dedup. It runs after the rules and',
    'before the model score, which then ranks what the vote kept.',
  ].join('\n'),
  flags: FLAGS,
  positionals: [{ name: 'file', help: 'JSONL or Parquet dataset' }],
  examples: [
    'nomoat data filter web.jsonl -o clean.jsonl --explain removed.jsonl',
    'nomoat data filter chats.jsonl -o clean.jsonl --min-words 3 --no-fineweb --max-turns 8',
    'nomoat data filter chats.jsonl -o clean.jsonl --no-gopher-quality --top-ngram 2:0.3 --dup-ngram 5:0.2',
    'nomoat finetune seed.jsonl -o seed-adapter --steps 100 && nomoat data filter chats.jsonl -o best.jsonl --no-gopher-quality --no-gopher-repetition --no-fineweb --score-lora seed-adapter --keep-best 0.6 --explain removed.jsonl',
    'nomoat data filter chats.jsonl -o hard.jsonl --score-by ifd --keep-best 0.1 --scores ifd.jsonl',
    'nomoat data filter scraped.jsonl -o agreed.jsonl --no-gopher-quality --no-fineweb --consensus --explain outvoted.jsonl',
  ],
  async run({ flags, positionals }) {
    const out = requireOutput(flags.output);
    const field = flags.field ?? 'assistant';
    if (field !== 'assistant' && field !== 'all') throw new UsageError(`--field must be assistant|all, got ${JSON.stringify(field)}`);
    const q = { minWords: flags['min-words'] ?? G.minWords, maxWords: flags['max-words'] ?? G.maxWords, minMeanWordLength: flags['min-mean-word-length'] ?? G.minMeanWordLength, maxMeanWordLength: flags['max-mean-word-length'] ?? G.maxMeanWordLength, maxSymbolRatio: flags['max-symbol-ratio'] ?? G.maxSymbolRatio, maxBulletLines: flags['max-bullet-lines'] ?? G.maxBulletLines, maxEllipsisLines: flags['max-ellipsis-lines'] ?? G.maxEllipsisLines, minAlphaWords: flags['min-alpha-words'] ?? G.minAlphaWords, minStopWords: flags['min-stop-words'] ?? G.minStopWords };
    const r = { maxDupLineFrac: flags['max-dup-line-frac'] ?? R.maxDupLineFrac, maxDupParaFrac: flags['max-dup-para-frac'] ?? R.maxDupParaFrac, maxDupLineCharFrac: flags['max-dup-line-chars'] ?? R.maxDupLineCharFrac, maxDupParaCharFrac: flags['max-dup-para-chars'] ?? R.maxDupParaCharFrac, topNgrams: ngramList('--top-ngram', flags['top-ngram'], R.topNgrams), dupNgrams: ngramList('--dup-ngram', flags['dup-ngram'], R.dupNgrams) };
    const fw = { minLinePunct: flags['min-line-punct'] ?? F.minLinePunct, maxShortLines: flags['max-short-lines'] ?? F.maxShortLines, shortLineLength: flags['short-line-length'] ?? F.shortLineLength, maxDupLineChars: flags['max-dup-line-char-share'] ?? F.maxDupLineChars, maxNewlineRatio: flags['max-newline-ratio'] ?? F.maxNewlineRatio };
    const check = (rec: DataRecord): RuleFailure | null => {
      const all = contentText(rec);
      const chars = [...all].length;
      if (flags['min-chars'] !== undefined && chars < flags['min-chars']) return { rule: 'min_chars', value: chars, threshold: flags['min-chars'] };
      if (flags['max-chars'] !== undefined && chars > flags['max-chars']) return { rule: 'max_chars', value: chars, threshold: flags['max-chars'] };
      const turns = rec.conversation?.messages.filter((m) => m.role === 'assistant').length ?? 0;
      if (rec.conversation !== null && flags['min-turns'] !== undefined && turns < flags['min-turns']) return { rule: 'min_turns', value: turns, threshold: flags['min-turns'] };
      if (rec.conversation !== null && flags['max-turns'] !== undefined && turns > flags['max-turns']) return { rule: 'max_turns', value: turns, threshold: flags['max-turns'] };
      const text = field === 'all' ? all : learnedText(rec);
      return (!flags['no-gopher-quality'] ? gopherQuality(text, q) : null) ?? (!flags['no-gopher-repetition'] ? gopherRepetition(text, r) : null) ?? (!flags['no-fineweb'] ? finewebQuality(text, fw) : null);
    };
    // consensus: a first pass counts the votes of the records the rules keep
    const ties = flags['consensus-ties'] ?? 'keep';
    if (ties !== 'keep' && ties !== 'drop') throw new UsageError(`--consensus-ties must be keep|drop, got ${JSON.stringify(ties)}`);
    if (!flags.consensus && (flags['consensus-min-votes'] !== undefined || flags['consensus-ties'] !== undefined)) throw new UsageError('--consensus-min-votes/--consensus-ties set how records vote: add --consensus');
    const minVotes = flags['consensus-min-votes'] ?? 3;
    if (minVotes < 2) throw new UsageError(`--consensus-min-votes must be ≥ 2, got ${minVotes}`);
    const vote = flags.consensus ? new ConsensusVote({ minVotes, ties }) : null;
    const plan = scorePlan(flags);
    const passes = 1 + (vote !== null ? 1 : 0) + (plan !== null ? 1 : 0);
    let pass = 0;
    const label = (what: string): string => (passes === 1 ? 'filter' : `filter ${++pass}/${passes} ${what}`);
    if (vote !== null) {
      await scanRecords(positionals, flags, label('votes'), (rec) => {
        if (check(rec) === null) vote.add(rec);
      });
    }
    const judge = (rec: DataRecord): (RuleFailure & { votes?: number }) | null => {
      const f = check(rec);
      if (f !== null || vote === null) return f;
      const v = vote.verdict(rec);
      return v === null ? null : { rule: 'consensus', value: v.agree, threshold: v.top, votes: v.votes };
    };
    // model score: a pass scores what the rules and the vote keep; the decision needs every score
    let scored = 0;
    const decision: ScoreDecision | null = plan === null ? null : await withSinks(flags.scores !== undefined ? [{ path: flags.scores, format: 'same' as const }] : [], async ([scoresOut]) => {
      const scorer = await openScorer(flags, plan, scoresOut);
      await scanRecords(positionals, flags, label('score'), (rec, i) => {
        if (judge(rec) !== null) return;
        scorer.add(rec, i);
        scored++;
      });
      return decide(scorer.finish(), plan);
    });
    const byRule = new Map<string, number>();
    let kept = 0;
    const sinks = [{ path: out, format: 'same' as const }, ...(flags.explain !== undefined ? [{ path: flags.explain, format: 'same' as const }] : [])];
    const scan = await withSinks(sinks, ([sink, explain]) => scanRecords(positionals, flags, label('write'), (rec, i) => {
      const v = decision?.verdict(i) ?? null;
      const f: { rule: string; value: number | null; threshold: number; votes?: number } | null = judge(rec) ?? (v !== null ? { rule: 'model_score', ...v } : null);
      if (f === null) {
        kept++;
        return writeRecord(sink, rec);
      }
      byRule.set(f.rule, (byRule.get(f.rule) ?? 0) + 1);
      explain?.writeObject({ where: rec.where, rule: f.rule, value: f.value, threshold: f.threshold, ...(f.votes !== undefined ? { votes: f.votes } : {}), ...(f.rule === 'model_score' && plan !== null ? { score_by: plan.by } : {}), record: rec.raw });
    }));
    const rules = [...byRule].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    const bound = decision?.bound;
    const scoreNote = plan !== null ? `; ${scored} scored by ${plan.by}${bound !== undefined ? `, --keep-best kept ${plan.by === 'ifd' ? '≥' : '≤'} ${bound.toFixed(4)}` : ''}` : '';
    const voteNote = vote !== null ? `; ${vote.prompts} distinct prompts voted, ${byRule.get('consensus') ?? 0} records outvoted` : '';
    summary(flags, `kept ${kept} of ${scan.records} records → ${out}${rules !== '' ? `; removed by ${rules}` : ''}${voteNote}${scoreNote}${skippedNote(scan)}`);
  },
});
