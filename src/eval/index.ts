// Evaluation's public surface: perplexity, harness-style tasks, LLM-as-judge and arena ratings.
// (tasks and perplexity)
export {};

// (judge and arena)
