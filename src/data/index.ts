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
// `nomoat data`: streaming records (JSONL, Parquet), atomic sinks, statistics, near-dedup, quality rules, decontamination
export { RECORD_FORMATS, OUTPUT_FORMATS, toRecord, convertRecord, detectRecordFormat, learnedText, contentText, formatProblem, type DataRecord, type RecordFormat, type OutputFormat, type RecordProblem } from './records.js';
export { readRecords, readJsonl, readParquet, type ReadItem, type ReadOptions } from './stream.js';
export { openSink, type RecordSink } from './sink.js';
export { ByteProgress } from './progress.js';
export { StatsAccumulator, textHistogram, svgHistogram, type DatasetStats } from './stats.js';
export { wordShingles, jaccardSorted, minhash, optimalParams, falsePositiveProbability, falseNegativeProbability, UnionFind } from './lsh.js';
export { planDedup, DEFAULT_LSH_WEIGHTS, type DedupConfig, type DedupPlan, type DedupCluster, type TextSource } from './near-dedup.js';
export { gopherQuality, gopherRepetition, finewebQuality, GOPHER_QUALITY, GOPHER_REPETITION, FINEWEB, type RuleFailure, type GopherQualityOptions, type GopherRepetitionOptions, type FinewebOptions } from './quality.js';
export { ConsensusVote, promptAndReply, type ConsensusOptions, type ConsensusVerdict } from './consensus.js';
export { ContaminationIndex, decontamWords, type Contamination, type EvalRef } from './decontam.js';
