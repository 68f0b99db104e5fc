// Placeholder while this session builds the bench (replaced by its owner).
export function runDpoBench(): void {
  throw new Error('dpo bench: not built yet');
}
