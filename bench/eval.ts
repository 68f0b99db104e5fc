// Placeholder while this session builds the bench (replaced by its owner).
export function runEvalBench(): void {
  throw new Error('eval bench: not built yet');
}
