// Battle logs in FastChat's shape (model_a, model_b, winner, judge, conversation_a/_b, turn, tstamp), as the web
// arena's votes file and `eval judge --battles` write them: reading with counted skips (file:line), the leaderboard
// (Bradley–Terry with bootstrap intervals, online Elo beside it) and preference pairs for DPO in TRL's format.

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../formats/writer.js';
import { WINNERS, bootstrap, bradleyTerry, modelsOf, onlineElo, records, type Anchor, type Battle, type Interval, type Winner } from './ratings.js';

/** A chat message as conversation_a/_b hold them (OpenAI's shape). */
export interface ArenaMessage {
  role: string;
  content: string;
}

/** One battle as read: the rated fields, where it came from, and its conversations when the line has them. */
export interface LoggedBattle extends Battle {
  source: string; // file:line
  question_id?: string | number;
  judge?: string;
  turn?: number;
  conversation_a?: ArenaMessage[];
  conversation_b?: ArenaMessage[];
}

export interface Skip {
  where: string; // file:line
  reason: string;
}

export interface BattleLog {
  battles: LoggedBattle[];
  skips: Skip[];
}

function conversation(v: unknown): ArenaMessage[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const ok = v.every((m) => typeof m === 'object' && m !== null && typeof (m as ArenaMessage).role === 'string' && typeof (m as ArenaMessage).content === 'string');
  return ok ? (v as ArenaMessage[]).map((m) => ({ role: m.role, content: m.content })) : undefined;
}

/** One battle object checked: the battle, or the reason it is skipped (naming the field). */
function checkBattle(v: unknown, where: string): LoggedBattle | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  for (const k of ['model_a', 'model_b'] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') return `${k}: missing or not a non-empty string`;
  }
  if (!WINNERS.includes(o.winner as Winner)) return `winner: ${JSON.stringify(o.winner)} is not one of ${WINNERS.map((w) => JSON.stringify(w)).join(', ')}`;
  if (o.model_a === o.model_b) return `model_a and model_b are the same model (${String(o.model_a)})`;
  const b: LoggedBattle = { model_a: o.model_a as string, model_b: o.model_b as string, winner: o.winner as Winner, source: where };
  if (typeof o.question_id === 'string' || typeof o.question_id === 'number') b.question_id = o.question_id;
  if (typeof o.judge === 'string') b.judge = o.judge;
  if (typeof o.turn === 'number') b.turn = o.turn;
  const ca = conversation(o.conversation_a);
  const cb = conversation(o.conversation_b);
  if (ca !== undefined) b.conversation_a = ca;
  if (cb !== undefined) b.conversation_b = cb;
  return b;
}

/**
 * Parses a battle log: JSON lines (the votes file; blank lines ignored), or one JSON array as FastChat's
 * clean_battle_*.json holds it (places named file[index]). A malformed entry is a skip naming where and the field.
 */
export function parseBattles(text: string, file: string): BattleLog {
  const battles: LoggedBattle[] = [];
  const skips: Skip[] = [];
  const take = (v: unknown, where: string): void => {
    const b = checkBattle(v, where);
    if (typeof b === 'string') skips.push({ where, reason: b });
    else battles.push(b);
  };
  if (text.trimStart().startsWith('[')) {
    let all: unknown;
    try {
      all = JSON.parse(text);
    } catch (e) {
      throw new Error(`${file}: starts with "[" but is not a JSON array (${e instanceof Error ? e.message : String(e)})`);
    }
    (all as unknown[]).forEach((v, i) => take(v, `${file}[${i}]`));
    return { battles, skips };
  }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      skips.push({ where, reason: `not JSON (${e instanceof Error ? e.message : String(e)})` });
      return;
    }
    take(v, where);
  });
  return { battles, skips };
}

/** Reads and concatenates battle logs in the order given (online Elo follows that order). */
export function readBattles(files: readonly string[]): BattleLog {
  const out: BattleLog = { battles: [], skips: [] };
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the battle log ${f}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const log = parseBattles(text, f);
    out.battles.push(...log.battles);
    out.skips.push(...log.skips);
  }
  return out;
}

export interface LeaderboardRow {
  rank: number;
  model: string;
  /** Bradley–Terry rating (Elo scale) */
  rating: number;
  ci: Interval;
  /** online Elo in log order */
  elo: number;
  battles: number;
  wins: number;
  ties: number;
  losses: number;
  /** (wins + ½ ties) / battles */
  winRate: number;
}

export interface ArenaOptions {
  eloK?: number; // default 4 (FastChat)
  rounds?: number; // bootstrap rounds, default 1000
  seed?: number; // default 0
  anchor?: Anchor; // default: mean 1000
}

export interface ArenaResult {
  rows: LeaderboardRow[];
  regularized: boolean;
  anchor: Anchor;
  rounds: number;
  /** bootstrap rounds whose sample could not be rated (models apart, or the anchor model not drawn); they add
   *  nothing to the intervals */
  failedRounds: number;
}

/**
 * The leaderboard: Bradley–Terry ratings with bootstrap intervals, sorted by rating. Rank follows FastChat's
 * leaderboard: 1 + the number of models whose interval lies wholly above this one's (lower bound > upper bound),
 * so models whose intervals overlap share a rank.
 */
export function leaderboard(battles: readonly Battle[], opts: ArenaOptions = {}): ArenaResult {
  const anchor = opts.anchor ?? { kind: 'mean' };
  const rounds = opts.rounds ?? 1000;
  const models = modelsOf(battles);
  if (models.length === 0) return { rows: [], regularized: false, anchor, rounds, failedRounds: 0 };
  const bt = bradleyTerry(battles, anchor, models);
  const elo = onlineElo(battles, opts.eloK ?? 4);
  let failedRounds = 0;
  const ci = bootstrap(battles, (sample) => {
    const present = modelsOf(sample);
    try {
      // a sample without the anchor model has no point on this scale: it counts as a failed round
      if (anchor.kind === 'model' && !present.includes(anchor.model)) throw new Error('anchor not drawn');
      return bradleyTerry(sample, anchor, present).ratings;
    } catch {
      failedRounds++;
      return new Map<string, number>();
    }
  }, rounds, opts.seed ?? 0);
  const rec = records(battles);
  const rows = models.map((m): LeaderboardRow => {
    const r = rec.get(m) ?? { battles: 0, wins: 0, ties: 0, losses: 0 };
    const rating = bt.ratings.get(m) ?? NaN;
    return {
      rank: 0, model: m, rating, ci: ci.get(m) ?? { lo: rating, hi: rating }, elo: elo.get(m) ?? NaN,
      ...r, winRate: r.battles > 0 ? (r.wins + r.ties / 2) / r.battles : 0,
    };
  });
  rows.sort((a, b) => b.rating - a.rating || a.model.localeCompare(b.model));
  for (const r of rows) r.rank = 1 + rows.filter((o) => o.ci.lo > r.ci.hi).length;
  return { rows, regularized: bt.regularized, anchor, rounds, failedRounds };
}

/** The leaderboard as a Markdown table. */
export function leaderboardMarkdown(rows: readonly LeaderboardRow[]): string {
  const r0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');
  const lines = [
    '| rank | model | rating | 95% CI | Elo (online) | battles | win rate |',
    '|---:|:---|---:|:---:|---:|---:|---:|',
    ...rows.map((r) => {
      const ci = `+${r0(r.ci.hi - r.rating)} / -${r0(r.rating - r.ci.lo)}`;
      return `| ${r.rank} | ${r.model.replace(/\|/g, '\\|')} | ${r0(r.rating)} | ${ci} | ${r0(r.elo)} | ${r.battles} | ${(100 * r.winRate).toFixed(1)}% |`;
    }),
  ];
  return lines.join('\n') + '\n';
}

/** One preference pair in TRL's conversational format. */
export interface PreferencePair {
  prompt: ArenaMessage[];
  chosen: ArenaMessage[];
  rejected: ArenaMessage[];
}

export interface PairsResult {
  pairs: PreferencePair[];
  /** counted by reason: ties, no conversations, histories that differ */
  skipped: Record<string, number>;
}

const sameMessages = (a: readonly ArenaMessage[], b: readonly ArenaMessage[]): boolean =>
  a.length === b.length && a.every((m, i) => m.role === b[i].role && m.content === b[i].content);

/**
 * Preference pairs from decisive battles: prompt = the messages before the final replies (which both sides must
 * share: a second turn after two different first replies has no common prompt), chosen/rejected = the winner's and
 * the loser's final assistant message.
 */
export function preferencePairs(battles: readonly LoggedBattle[]): PairsResult {
  const pairs: PreferencePair[] = [];
  const skipped: Record<string, number> = {};
  const skip = (why: string): void => void (skipped[why] = (skipped[why] ?? 0) + 1);
  for (const b of battles) {
    if (b.winner !== 'model_a' && b.winner !== 'model_b') {
      skip('tie');
      continue;
    }
    const [ca, cb] = [b.conversation_a, b.conversation_b];
    if (ca === undefined || cb === undefined || ca.length < 2 || cb.length < 2) {
      skip('no conversations');
      continue;
    }
    const [la, lb] = [ca[ca.length - 1], cb[cb.length - 1]];
    if (la.role !== 'assistant' || lb.role !== 'assistant') {
      skip('conversation does not end in an assistant reply');
      continue;
    }
    const prompt = ca.slice(0, -1);
    if (!sameMessages(prompt, cb.slice(0, -1))) {
      skip('the two conversations differ before the final replies');
      continue;
    }
    const [win, lose] = b.winner === 'model_a' ? [la, lb] : [lb, la];
    pairs.push({ prompt, chosen: [{ role: 'assistant', content: win.content }], rejected: [{ role: 'assistant', content: lose.content }] });
  }
  return { pairs, skipped };
}

/** Writes text to path atomically (temporary file, fsync, rename). */
export function writeTextAtomic(path: string, text: string): void {
  const bytes = new TextEncoder().encode(text);
  writeFileAtomic(path, (sink) => sink(bytes));
}

/** Objects as JSON lines. */
export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}
