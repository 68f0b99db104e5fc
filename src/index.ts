// nomoat's public API: one import for the engine, models, formats, tokenizers, LoRA, training, data and serving.
export * from './engine/index.js';
export * as formats from './formats/index.js';
export * as tokenizer from './tokenizer/index.js';
export * as lora from './lora/index.js';
export * as train from './train/index.js';
export * as data from './data/index.js';
export * as evaluation from './eval/index.js';
export { loadModel, loadHfFolder, loadGgufModel, loadLlama2c, type LoadedModel } from './models/load.js';
export { LlamaModel, LINEAR_MODULES, type LinearModule } from './models/llama.js';
export { configFromHf, configToHf, paramCount, ARCHITECTURES, type LlamaConfig } from './models/config.js';
export { GenerationSession, generate, generateTokens, type Generation, type GenerateOptions } from './models/generate.js';
export { KVCache } from './models/kvcache.js';
export { initWeights, tinyConfig } from './models/init.js';
export { ServeEngine, EngineError, type AdapterRef, type CompletionRequest, type CompletionResult, type EngineOptions, type EngineStats, type TokenEvent } from './serve/engine.js';
// the server stack (Fastify, zod) loads when createServer's server starts listening; `nomoat/serve` has it all at once
export { createServer } from './serve/deferred.js';
export { isLoopback, type ServerOptions } from './serve/options.js';
export type { NomoatServer } from './serve/http.js';
export { battleRecord, configName, VoteLog, type BattleRecord } from './serve/arena.js';
