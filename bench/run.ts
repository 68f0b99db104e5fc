// Benchmark dispatcher: `npm run bench -- gemm|ops|memory|infer|train|skills|serve|eval|distill|dpo|curation|all` (node dist/bench/run.js NAME). Each bench prints one
// JSON object per line (see bench/common.ts).
// Each bench's module is loaded only when it runs, so a bench's process holds no other bench's dependencies
// (node-llama-cpp, the server, ...): the memory bench measures its own RSS, which grew 10 % over 1,000 steps with
// every bench imported and stays flat alone.
const BENCHES: Readonly<Record<string, () => Promise<void>>> = {
  gemm: async () => (await import('./gemm.js')).runGemmBench(),
  ops: async () => (await import('./ops.js')).runOpsBench(),
  memory: async () => (await import('./memory.js')).runMemoryBench(),
  infer: async () => (await import('./infer.js')).runInferBench(),
  train: async () => (await import('./train.js')).runTrainBench(),
  skills: async () => (await import('./skills.js')).runSkillsBench(),
  serve: async () => (await import('./serve.js')).runServeBench(),
  eval: async () => (await import('./eval.js')).runEvalBench(),
  distill: async () => (await import('./distill.js')).runDistillBench(),
  dpo: async () => (await import('./dpo.js')).runDpoBench(),
  curation: async () => (await import('./curation.js')).runCurationBench(),
};

const names = process.argv.slice(2);
if (names.length === 0 || names.some((n) => n !== 'all' && !(n in BENCHES))) {
  console.error(`usage: node dist/bench/run.js ${Object.keys(BENCHES).join('|')}|all [...]`);
  process.exit(2);
}
for (const name of names.includes('all') ? Object.keys(BENCHES) : names) await BENCHES[name]?.(); // one at a time (skills is async)
