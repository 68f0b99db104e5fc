// Public surface of the small dense linear algebra helpers (float64 working precision).
export * from './matrix.js';
export { thinQr, type QrResult } from './qr.js';
export {
  jacobiSvd,
  lowRankSvd,
  truncatedSvd,
  truncate,
  completeColumns,
  singularValues,
  numericalRank,
  type SvdResult,
  type TruncatedSvdOptions,
  type LowRankTerm,
  type NumericalRankOptions,
} from './svd.js';
