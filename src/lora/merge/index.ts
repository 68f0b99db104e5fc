// Public surface of the adapter-combination math (PEFT add_weighted_adapter semantics), pure functions only.
export {
  combineAdapters,
  resolveCombination,
  loraDelta64,
  clampQuantile,
  quantile,
  COMBINATION_TYPES,
  type CombinationType,
  type CombineOptions,
  type CombinedLora,
  type WeightedLora,
} from './combine.js';
export {
  prune,
  magnitudeBasedPruning,
  randomPruning,
  calculateMajoritySignMask,
  disjointMerge,
  taskArithmetic,
  magnitudePrune,
  ties,
  dareLinear,
  dareTies,
  type PruneMethod,
  type MajoritySignMethod,
} from './merge_utils.js';
