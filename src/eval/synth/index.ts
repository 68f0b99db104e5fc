// The public surface of `data synth`'s library: Self-Instruct generation, best-of-n answering, verifiers, ROUGE-L.
export { rougeL, rougeLTokens, rougeTokens, lcsLength, SimilarityPool, type RougeScore } from './rouge.js';
export {
  readSeedTasks, sampleSeeds, encodePrompt, parseReply, instructionRule, screen, BLACKLIST, FILTER_DEFAULTS, DEFAULT_HEADER,
  type Task as SelfInstructTask, type FilterOptions, type ParseOptions, type ParsedReply, type Verdict,
} from './self-instruct.js';
export { answerVerifier, answerMatches, finalAnswer, regexVerifier, jsVerifier, nllVerifier, judgeVerifier, type SynthItem, type Verifier } from './verify.js';
export { bestOfN, taskPrompt, LocalSource, EndpointSource, type Sample, type SampleSource, type SourceInfo, type Provenance, type BestOfNOptions, type BestOfNResult, type Kept } from './best-of-n.js';
export {
  readPromptItems, answerItems, selfInstruct, newAnswerStats, newSelfInstructStats,
  type SynthRecord, type AnswerOptions as SynthAnswerOptions, type AnswerStats, type SelfInstructOptions, type SelfInstructStats, type GeneratedTask,
} from './synth.js';
