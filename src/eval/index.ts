// Evaluation's public surface: perplexity, harness-style tasks, LLM-as-judge and arena ratings.
// (tasks and perplexity)
export { loglikelihoods, scoreRows, type LoglikelihoodRequest, type LoglikelihoodResult, type LoglikelihoodOptions, type RowScore } from './score.js';
export { perplexity, hfWindows, llamaCppWindows, type PerplexityOptions, type PerplexityResult, type Window } from './perplexity.js';
export { loadTask, parseTaskFile, checkConfig, readSplit, TaskError, OUTPUT_TYPES, type Task, type TaskConfig, type DocEntry, type Split, type OutputType, type MetricName, type MetricConfig, type FilterConfig } from './task.js';
export { renderTemplate, resolveDocTo, literalEval, MissingFieldError, type Doc } from './task-template.js';
export { buildContext, contextText, sampleFewshot, type Context } from './fewshot.js';
export { exactMatch, exactMatchNormalize, regexFilter, chooseAnswer, bootstrapStderr, pyRegex, findall, type ExactMatchOptions, type RegexFilterOptions } from './metrics.js';
export { evaluateTasks, encodePair, applyFilter, limitCount, type EvaluateOptions, type EvalResults, type SampleRecord } from './run.js';
export { perplexityTask, addPerplexity, type PerplexityTaskOptions, type PerplexityTaskResult } from './run-perplexity.js';
export { builtinTask, resolveTask, isBuiltinTask, sharedDataDir, BUILTIN_TASKS, type BuiltinTaskName } from './builtin.js';
export { makeTable, writeResults, sanitizeTaskName } from './results.js';
export {};

// (judge and arena)
export { onlineElo, bradleyTerry, bootstrap, records, modelsOf, WINNERS, type Battle, type Winner, type Anchor, type BtResult, type Interval } from './ratings.js';
export { parseBattles, readBattles, leaderboard, leaderboardMarkdown, preferencePairs, type LoggedBattle, type BattleLog, type LeaderboardRow, type ArenaResult, type PreferencePair } from './arena.js';
export { ratingsSvg, type ChartRow } from './chart.js';
export { readQuestions, readJudgePrompts, readAnswers, formatTemplate, NEED_REF_CATS, type Question, type JudgePrompt, type ModelAnswer } from './judge-data.js';
export { parseRating, parsePairVerdict, gameWinner, combineGames, type PairWinner, type PairOutcome } from './judge-parse.js';
export { LocalChat, EndpointChat, MatchError, type ChatBackend, type EndpointOptions } from './judge-chat.js';
export {
  judgeSingle, judgePairwise, comparisonPairs, generateAnswers, singleResults, pairResults, singleTable, pairTable, judgeBattles,
  type SingleJudgment, type PairJudgment, type AnswerSets, type JudgeOptions, type JudgeStats, type JudgeBattle,
} from './judge.js';

// (data synth: Self-Instruct and best-of-n)
export * from './synth/index.js';
