// Benchmark dispatcher: `npm run bench -- gemm|ops|all` (node dist/bench/run.js NAME). Each bench prints one
// JSON object per line (see bench/common.ts).
import { runGemmBench } from './gemm.js';
import { runMemoryBench } from './memory.js';
import { runOpsBench } from './ops.js';

const BENCHES: Readonly<Record<string, () => void>> = { gemm: runGemmBench, ops: runOpsBench, memory: () => runMemoryBench() };

const names = process.argv.slice(2);
if (names.length === 0 || names.some((n) => n !== 'all' && !(n in BENCHES))) {
  console.error(`usage: node dist/bench/run.js ${Object.keys(BENCHES).join('|')}|all [...]`);
  process.exit(2);
}
for (const name of names.includes('all') ? Object.keys(BENCHES) : names) BENCHES[name]?.();
