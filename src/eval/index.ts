// Evaluation's public surface: perplexity, harness-style tasks, LLM-as-judge and arena ratings.
// (tasks and perplexity)
export { loglikelihoods, scoreRows, type LoglikelihoodRequest, type LoglikelihoodResult, type LoglikelihoodOptions, type RowScore } from './score.js';
export { perplexity, hfWindows, llamaCppWindows, type PerplexityOptions, type PerplexityResult, type Window } from './perplexity.js';
export {};

// (judge and arena)
