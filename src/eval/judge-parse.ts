// Reading a judge's verdict as FastChat's llm_judge/common.py does: "[[rating]]" scores (with the one-bracket
// fallback), "[[A]]" / "[[B]]" / "[[C]]" pairwise verdicts, and the two-game rule (both orders, a verdict stands
// only when the swapped game agrees).

/** FastChat's one_score_pattern and one_score_pattern_backup. */
export const ONE_SCORE = /\[\[(\d+\.?\d*)\]\]/;
export const ONE_SCORE_BACKUP = /\[(\d+\.?\d*)\]/;

/** The score in a single-grading judgment, or -1 (FastChat's "no rating") when there is none. */
export function parseRating(judgment: string): number {
  const m = ONE_SCORE.exec(judgment) ?? ONE_SCORE_BACKUP.exec(judgment);
  if (m === null) return -1;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : -1;
}

/** One game's verdict: A or B better, a tie, or "error" (no verdict found). */
export type GameVerdict = 'A' | 'B' | 'tie' | 'error';

/** The verdict in a pairwise judgment, checked in FastChat's order: [[A]], then [[B]], then [[C]]. */
export function parsePairVerdict(judgment: string): GameVerdict {
  if (judgment.includes('[[A]]')) return 'A';
  if (judgment.includes('[[B]]')) return 'B';
  if (judgment.includes('[[C]]')) return 'tie';
  return 'error';
}

/** A game's verdict named by model: game 1 shows model_1 as A, game 2 (swapped) shows model_2 as A. */
export type PairWinner = 'model_1' | 'model_2' | 'tie' | 'error';

/** g1_winner / g2_winner as play_a_match_pair maps them. */
export function gameWinner(v: GameVerdict, game: 1 | 2): PairWinner {
  if (v === 'A') return game === 1 ? 'model_1' : 'model_2';
  if (v === 'B') return game === 1 ? 'model_2' : 'model_1';
  return v;
}

/** The outcome of both games: a decisive win, a tie both ways, games that disagree, or a game without a verdict. */
export type PairOutcome = 'model_1' | 'model_2' | 'tie' | 'inconsistent' | 'error';

/**
 * Combines the two games (show_result.py): an "error" in either drops the match; the same winner in both stands;
 * a tie in both is a tie; anything else (a win and a tie, or opposite wins) is inconsistent, which FastChat's
 * tables and the battle log count as a tie.
 */
export function combineGames(g1: PairWinner, g2: PairWinner): PairOutcome {
  if (g1 === 'error' || g2 === 'error') return 'error';
  if (g1 === g2) return g1;
  return 'inconsistent';
}
