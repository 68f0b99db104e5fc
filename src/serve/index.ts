// `nomoat/serve`: the OpenAI-compatible server (Fastify + zod) and its engine. The package entry exports the engine
// and a createServer that loads this stack only when it starts listening; import from here for the server itself.

export { createServer, isLoopback, DEFAULT_BODY_LIMIT, type NomoatServer, type ServerOptions } from './http.js';
export { ServeEngine, EngineError, type AdapterRef, type CompletionRequest, type CompletionResult, type EngineOptions, type EngineStats, type TokenEvent } from './engine.js';
export { battleRecord, configName, VoteLog, type BattleRecord } from './arena.js';
