// Verdict parsing as FastChat's common.py: [[rating]] with the one-bracket fallback, [[A]]/[[B]]/[[C]] in that
// order, the game-2 mapping, and the two-game rule.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineGames, gameWinner, parsePairVerdict, parseRating } from './judge-parse.js';

test('parseRating: [[n]] first, then [n], else -1', () => {
  assert.equal(parseRating('The answer is fine. Rating: [[7]]'), 7);
  assert.equal(parseRating('Rating: [[8.5]] (was [3] before)'), 8.5);
  assert.equal(parseRating('see [2] and later [[9]]'), 9); // the double-bracket pattern wins wherever it is
  assert.equal(parseRating('Rating: [6]'), 6); // one_score_pattern_backup
  assert.equal(parseRating('Rating: 6/10'), -1);
  assert.equal(parseRating('[[ten]]'), -1);
  assert.equal(parseRating(''), -1);
  assert.equal(parseRating('[[10.]]'), 10);
});

test('parsePairVerdict: [[A]] before [[B]] before [[C]]; none is an error', () => {
  assert.equal(parsePairVerdict('Final verdict: [[A]]'), 'A');
  assert.equal(parsePairVerdict('[[B]]'), 'B');
  assert.equal(parsePairVerdict('It is a tie: [[C]]'), 'tie');
  assert.equal(parsePairVerdict('not [[B]] but [[A]]'), 'A'); // FastChat checks "[[A]]" in judgment first
  assert.equal(parsePairVerdict('Assistant A is better.'), 'error');
  assert.equal(parsePairVerdict('[A]'), 'error');
});

test('two games: game 2 swaps the names; a verdict stands only when the swapped game agrees', () => {
  assert.equal(gameWinner('A', 1), 'model_1');
  assert.equal(gameWinner('B', 1), 'model_2');
  assert.equal(gameWinner('A', 2), 'model_2');
  assert.equal(gameWinner('B', 2), 'model_1');
  assert.equal(gameWinner('tie', 2), 'tie');
  // model_1 shown as A wins game 1, and shown as B wins game 2: agreed
  assert.equal(combineGames(gameWinner('A', 1), gameWinner('B', 2)), 'model_1');
  assert.equal(combineGames(gameWinner('B', 1), gameWinner('A', 2)), 'model_2');
  // position bias: "A" both times names different models → inconsistent
  assert.equal(combineGames(gameWinner('A', 1), gameWinner('A', 2)), 'inconsistent');
  assert.equal(combineGames('model_1', 'tie'), 'inconsistent');
  assert.equal(combineGames('tie', 'tie'), 'tie');
  assert.equal(combineGames('error', 'model_1'), 'error');
  assert.equal(combineGames('model_2', 'error'), 'error');
});
