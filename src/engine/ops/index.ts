// All tensor ops, re-exported as one namespace-friendly list.
export { contiguous, reshape, transpose, slice } from './movement.js';
export { add, sub, mul, div, affine, scale, unary, exp, log, neg, sqrt, silu, relu, gelu, sumTo, sum, mean, broadcastShapes } from './elementwise.js';
export { matmul, linear } from './matmul.js';
export { addLowRank } from './lowrank.js';
export { embedding, rmsnorm, rope, attention, swiglu, softmax, crossEntropy, klDiv, dropout, type AttentionOptions } from './nn.js';
