// Public surface of instruction-data loading: formats, validation, streaming lines, dedup, filters, split.
export { type Conversation, type Message, type Role, type DataFormat, DATA_FORMATS } from './types.js';
export { LineSplitter, splitLines, readLines, DEFAULT_MAX_LINE_BYTES, type LineRecord, type LineOptions } from './lines.js';
export { detectFormat, normalizeRecord, type NormalizeResult, type FieldPaths } from './formats.js';
export { validateConversation } from './validate.js';
export { loadConversations, parseConversations, type LoadOptions, type LoadResult, type LoadProblem } from './load.js';
export {
  normalizeText,
  conversationText,
  dedupExact,
  dedupNear,
  shingles,
  minhashSignature,
  estimateJaccard,
  jaccard,
  type DedupResult,
  type NearDedupOptions,
} from './dedup.js';
export { repetitionRatio, textRatio, qualityIssues, filterConversations, type QualityOptions, type FilterResult } from './filters.js';
export { trainEvalSplit, type SplitOptions, type Split } from './split.js';
export { mixReplay, MAX_REPLAY_SHARE, type MixResult } from './mix.js';
export { loadPreferencePairs, parsePreferencePairs, normalizePair, parseHhTranscript, type PreferencePair, type PairFormat, type PairLoadOptions, type PairLoadResult } from './preference.js';
