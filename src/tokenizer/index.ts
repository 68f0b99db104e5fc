// Public API of the tokenizer folder: tokenizers (tokenizer.json, GGUF vocab), conversion, BPE training, chat.
export type { DecodeOptions, EncodeOptions, IncrementalDecoder, SpecialToken, Tokenizer } from './types.js';
export { STOP_TOKEN_TEXTS } from './types.js';
export { createByteDecoder, decodeBytes, type ByteSource } from './stream.js';
export { byteLevelDecode, byteLevelEncode, byteToChar, charToByte } from './bytelevel.js';
export { preTokenizer, supportedPreTokenizers, type PreTokenizer } from './pretokenize.js';
export { GGUF_TOKENIZER_KEY_TYPES, ggufVocabFromMetadata, TokenType, type GgufVocab, type GgufVocabModel } from './gguf-vocab.js';
export { GgufTokenizer } from './gguf-tokenizer.js';
export { HfTokenizer } from './hf.js';
export type { HfAddedToken, HfBpeModel, HfComponent, HfConfigToken, TokenizerConfig, TokenizerJson } from './hf-json.js';
export {
  detectPreTokenizer, ggufMetadataToTokenizerJson, mergesFromScores, tokenizerJsonToGgufMetadata, vocabKindOf,
  type ToGgufOptions, type VocabKind,
} from './convert.js';
export { trainBpe, type TrainBpeOptions } from './train-bpe.js';
export { chatTemplateFromConfig } from './chat-config.js';
export { chatPromptIds, renderChat, strftime, tokenizeChat, type ChatMessage, type ChatTokens, type RenderChatOptions, type TokenizeChatOptions } from './chat.js';
