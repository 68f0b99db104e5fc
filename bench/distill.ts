// Placeholder while this session builds the bench (replaced by its owner).
export function runDistillBench(): void {
  throw new Error('distill bench: not built yet');
}
