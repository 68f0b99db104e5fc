// The conformance case table: one case generator per Backend method. The Record type makes a method added to
// the contract without cases here a compile error: a new kernel comes with its test cases.

import type { CaseGenerator, KernelName } from './case.js';
import * as ew from './cases_elementwise.js';
import * as loss from './cases_losses.js';
import { matmulCases } from './cases_matmul.js';
import * as mem from './cases_memory.js';
import * as model from './cases_model.js';
import { gatherQuantCases, lowRankRowsCases, matmulQuantCases, matmulQuantTCases } from './cases_quant.js';

export const CASES: Readonly<Record<KernelName, CaseGenerator>> = {
  alloc: mem.allocCases,
  allocUninit: mem.allocUninitCases,
  free: mem.freeCases,
  liveBytes: mem.liveBytesCases,
  setThreads: mem.setThreadsCases,
  getThreads: mem.getThreadsCases,
  copyStrided: ew.copyStridedCases,
  fill: ew.fillCases,
  binary: ew.binaryCases,
  unary: ew.unaryForwardCases,
  unaryBackward: ew.unaryBackwardCases,
  affine: ew.affineCases,
  axpy: ew.axpyCases,
  sumTo: ew.sumToCases,
  matmul: matmulCases,
  matmulQuant: matmulQuantCases,
  matmulQuantT: matmulQuantTCases,
  gatherQuant: gatherQuantCases,
  lowRankRows: lowRankRowsCases,
  embeddingForward: model.embeddingForwardCases,
  embeddingBackward: model.embeddingBackwardCases,
  rmsnormForward: model.rmsnormForwardCases,
  rmsnormBackward: model.rmsnormBackwardCases,
  rope: model.ropeCases,
  attentionForward: model.attentionForwardCases,
  attentionBackward: model.attentionBackwardCases,
  swigluForward: ew.swigluForwardCases,
  swigluBackward: ew.swigluBackwardCases,
  softmaxForward: model.softmaxForwardCases,
  softmaxBackward: model.softmaxBackwardCases,
  crossEntropyForward: loss.crossEntropyForwardCases,
  crossEntropyBackward: loss.crossEntropyBackwardCases,
  klDivForward: loss.klDivForwardCases,
  klDivBackward: loss.klDivBackwardCases,
  dropoutForward: ew.dropoutCases,
  adamw: loss.adamwCases,
  sumSquares: loss.sumSquaresCases,
};
