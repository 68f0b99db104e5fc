// `nomoat eval arena`: ratings from battle logs (the web arena's votes, `eval judge --battles`, FastChat's
// clean_battle JSON lines): a Bradley–Terry leaderboard with bootstrap intervals and online Elo, an SVG, a JSON
// report and DPO preference pairs.

import { UsageError, type FlagSpecs } from './args.js';
import { defineCommand } from './command.js';
import { CliError } from './common.js';
import { leaderboard, leaderboardMarkdown, preferencePairs, readBattles, toJsonl, writeTextAtomic, type ArenaResult, type Skip } from '../eval/arena.js';
import { ratingsSvg } from '../eval/chart.js';
import type { Anchor } from '../eval/ratings.js';

const FLAGS = {
  'elo-k': { kind: 'number', metavar: 'K', help: 'K factor of the online Elo column', default: 4 },
  rounds: { kind: 'int', metavar: 'N', help: 'bootstrap rounds for the 95% intervals', default: 1000 },
  seed: { kind: 'int', short: 's', metavar: 'N', help: 'bootstrap seed', default: 0 },
  anchor: { kind: 'string', metavar: 'MODEL', help: 'pin MODEL at 1000 (default: the mean of all models at 1000)' },
  svg: { kind: 'string', metavar: 'FILE', help: 'write the ratings with their intervals as an SVG picture' },
  json: { kind: 'string', metavar: 'FILE', help: 'write the leaderboard and the skipped lines as JSON' },
  pairs: { kind: 'string', metavar: 'FILE', help: "write DPO preference pairs (TRL's {prompt, chosen, rejected}) from decisive battles" },
  strict: { kind: 'boolean', help: 'a malformed battle line is an error instead of a counted skip' },
} as const satisfies FlagSpecs;

const SHOWN_SKIPS = 5;

function skipLines(skips: readonly Skip[]): string {
  const more = skips.length > SHOWN_SKIPS ? `\n  … and ${skips.length - SHOWN_SKIPS} more` : '';
  return skips.slice(0, SHOWN_SKIPS).map((s) => `  ${s.where}: ${s.reason}`).join('\n') + more;
}

function anchorText(a: Anchor): string {
  return a.kind === 'mean' ? 'the mean rating is 1000' : `${a.model} is pinned at ${a.rating ?? 1000}`;
}

function reportJson(res: ArenaResult, skips: readonly Skip[], f: { eloK: number; seed: number }): unknown {
  return {
    models: res.rows.map((r) => ({
      rank: r.rank, model: r.model, rating: r.rating, ci_lo: r.ci.lo, ci_hi: r.ci.hi, elo: r.elo,
      battles: r.battles, wins: r.wins, ties: r.ties, losses: r.losses, win_rate: r.winRate,
    })),
    method: 'bradley-terry (maximum likelihood, ties as half wins), bootstrap percentiles 2.5/97.5',
    anchor: res.anchor.kind === 'mean' ? { mean: 1000 } : { model: res.anchor.model, rating: res.anchor.rating ?? 1000 },
    regularized: res.regularized,
    rounds: res.rounds,
    failed_rounds: res.failedRounds,
    seed: f.seed,
    elo_k: f.eloK,
    skipped: skips.map((s) => ({ where: s.where, reason: s.reason })),
  };
}

export const command = defineCommand({
  name: 'eval arena',
  summary: 'arena ratings (Elo, Bradley–Terry with bootstrap intervals) from a battle log',
  usage: 'FILE... [options]',
  description:
    "Reads battle logs in FastChat's shape, one JSON object a line: model_a, model_b, winner (model_a, model_b, tie or\n" +
    "\"tie (bothbad)\"), optionally conversation_a/_b. The web arena's votes file and `eval judge --battles` write it.\n" +
    'Prints a Markdown leaderboard: Bradley–Terry ratings (maximum likelihood, ties as half a win each way, Elo scale\n' +
    '400·log10, the mean at 1000 unless --anchor) with bootstrap 95% intervals (battles resampled with replacement),\n' +
    'and FastChat-style online Elo in file order beside it. A rank is 1 + the models whose interval lies wholly above.\n' +
    'Malformed lines are skipped and counted (file:line on stderr); --strict makes them an error.',
  flags: FLAGS,
  positionals: [{ name: 'file...', help: 'battle logs (JSONL), read in the order given', variadic: true }],
  examples: [
    'nomoat eval arena arena-votes.jsonl',
    'nomoat eval arena votes.jsonl judge-battles.jsonl --svg ratings.svg --json ratings.json',
    'nomoat eval arena arena-votes.jsonl --pairs prefs.jsonl',
    'nomoat eval arena battles.jsonl --rounds 200 --seed 7 --anchor tiny --strict',
  ],
  run({ flags: f, positionals }) {
    const eloK = f['elo-k'] ?? 4;
    const rounds = f.rounds ?? 1000;
    const seed = f.seed ?? 0;
    if (!(eloK > 0)) throw new UsageError(`--elo-k must be > 0, got ${eloK}`);
    if (rounds < 0) throw new UsageError(`--rounds must be ≥ 0, got ${rounds}`);
    let log;
    try {
      log = readBattles(positionals);
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
    if (log.skips.length > 0) {
      if (f.strict) throw new CliError(`${log.skips.length} malformed battle line(s):\n${skipLines(log.skips)}`);
      process.stderr.write(`nomoat eval arena: skipped ${log.skips.length} malformed line(s):\n${skipLines(log.skips)}\n`);
    }
    if (log.battles.length === 0) throw new CliError(`no battles in ${positionals.join(', ')}`);
    const anchor: Anchor = f.anchor !== undefined ? { kind: 'model', model: f.anchor } : { kind: 'mean' };
    let res: ArenaResult;
    try {
      res = leaderboard(log.battles, { eloK, rounds, seed, anchor });
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
    process.stdout.write(leaderboardMarkdown(res.rows));
    const notes = [`${log.battles.length} battles, ${res.rows.length} models; ${anchorText(res.anchor)}; ${rounds} bootstrap rounds (seed ${seed}); Elo K=${eloK}`];
    if (res.regularized) notes.push('a model (or group) never won or never lost against the rest: one virtual tie per pair that met was added to keep the ratings finite');
    if (res.failedRounds > 0) notes.push(`${res.failedRounds} bootstrap round(s) drew battles that left models apart (or lacked the anchor model) and were not rated`);
    if (log.skips.length > 0) notes.push(`${log.skips.length} malformed line(s) skipped`);
    process.stdout.write('\n' + notes.map((n) => `note: ${n}`).join('\n') + '\n');
    if (f.svg !== undefined) writeTextAtomic(f.svg, ratingsSvg(res.rows));
    if (f.json !== undefined) writeTextAtomic(f.json, JSON.stringify(reportJson(res, log.skips, { eloK, seed }), null, 2) + '\n');
    if (f.pairs !== undefined) {
      const { pairs, skipped } = preferencePairs(log.battles);
      writeTextAtomic(f.pairs, toJsonl(pairs));
      const why = Object.entries(skipped).map(([k, n]) => `${n} ${k}`).join(', ');
      process.stderr.write(`nomoat eval arena: ${pairs.length} preference pair(s) → ${f.pairs}${why !== '' ? ` (skipped: ${why})` : ''}\n`);
    }
  },
});
