// Benchmark dispatcher: `npm run bench -- gemm|ops|memory|infer|train|skills|serve|eval|distill|dpo|curation|all` (node dist/bench/run.js NAME). Each bench prints one
// JSON object per line (see bench/common.ts).
import { runCurationBench } from './curation.js';
import { runDistillBench } from './distill.js';
import { runDpoBench } from './dpo.js';
import { runEvalBench } from './eval.js';
import { runGemmBench } from './gemm.js';
import { runInferBench } from './infer.js';
import { runMemoryBench } from './memory.js';
import { runOpsBench } from './ops.js';
import { runServeBench } from './serve.js';
import { runSkillsBench } from './skills.js';
import { runTrainBench } from './train.js';

const BENCHES: Readonly<Record<string, () => void | Promise<void>>> = {
  gemm: runGemmBench, ops: runOpsBench, memory: () => runMemoryBench(), infer: runInferBench, train: runTrainBench, skills: runSkillsBench, serve: runServeBench,
  eval: runEvalBench, distill: runDistillBench, dpo: runDpoBench, curation: runCurationBench,
};

const names = process.argv.slice(2);
if (names.length === 0 || names.some((n) => n !== 'all' && !(n in BENCHES))) {
  console.error(`usage: node dist/bench/run.js ${Object.keys(BENCHES).join('|')}|all [...]`);
  process.exit(2);
}
for (const name of names.includes('all') ? Object.keys(BENCHES) : names) await BENCHES[name]?.(); // one at a time (skills is async)
