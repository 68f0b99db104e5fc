// The training toolkit's public surface: schedules, batching, the Trainer, checkpoints, and the two entry points.
export { lrAt, lrFactor, parseScheduleKind, SCHEDULE_KINDS, type ScheduleConfig, type ScheduleKind } from './schedule.js';
export { IGNORE_INDEX, packExamples, padRows, exampleRow, collate, rowTargets, dropUntrained, epochOrder, Loader, batchesOf, type Example, type Row, type Batch, type PackOptions, type LoaderState } from './batching.js';
export { Trainer, TRAIN_DEFAULTS, CROSS_ENTROPY, evaluate, evaluateWithMetrics, type TrainConfig, type TrainData, type TrainResult, type TrainerHooks, type Stateful } from './trainer.js';
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, listCheckpoints, readCheckpointState, checkpointDirName, CHECKPOINT_VERSION, type CheckpointState, type HistoryPoint } from './checkpoint.js';
export { MetricsWriter, readMetrics, Progress, formatDuration, type MetricsRecord, type ProgressMode, type ProgressInfo } from './metrics.js';
export { lossCurveSvg, ticks, thin, type LossCurveOptions } from './svg.js';
export { pretrain, type PretrainOptions, type PretrainResult } from './pretrain.js';
export { finetune, finetuneRows, conversationExample, type FinetuneOptions, type FinetuneResult, type BatchMode } from './finetune.js';
export type { ForwardModel, NamedParam, Objective } from './types.js';
export { sequenceLogProbs, preferenceLoss, DPO_LOSS_TYPES, type DpoLossType, type PreferenceLossConfig } from './dpo-loss.js';
export { dpoFinetune, dpoObjective, pairRows, pairRow, referenceLogProbs, DPO_DEFAULTS, type DpoOptions, type DpoResult, type PairExtra, type PairRow } from './dpo.js';
export { distill, distillObjective, scoreRows, lastReplyStart, DISTILL_DEFAULTS, type DistillOptions, type DistillResult, type DistillLossOptions } from './distill.js';
export { distillLoss, bucketDivergence, sparseTopK, DIVERGENCES, DIVERGENCE_DEFAULTS, type Divergence, type DivergenceConfig, type SparseTeacher } from './distill-loss.js';
export { TeacherCache, writeTeacherCache, readCacheHeader, tokenizerFingerprint, filesFingerprint, rowsFingerprint, type CacheHeader } from './distill-cache.js';
export { parseStudentShape, checkStudentConfig, spacedLayers, weightsFromTeacher, randomStudentWeights, saveStudentFolder } from './distill-student.js';
export { distillMerge, checkDistillMerge, greedyReplies, DISTILL_MERGE_DEFAULTS, type DistillMergeOptions, type DistillMergeResult } from './distill-merge.js';
