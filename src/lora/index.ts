// Public surface of LoRA: adapters (create, attach, train), base fingerprints, PEFT and GGUF files, merging into the
// base, combining adapters, and recipes. The pure combination math lives in ./merge (re-exported as a namespace).

export { LORA_DEFAULTS, checkLoraConfig, loraScaling, loraTargets, parseTargetName, resolveTargets, type LoraConfig, type LoraTarget } from './config.js';
export { LoraLinear, kaimingUniformA, type LoraRuntime } from './layer.js';
export { LoraAdapter, baseInfo, peftTensorName, type AdapterOptions, type BaseInfo, type LoraModuleData } from './adapter.js';
export { baseFingerprint, checkBase, parseFingerprint, BaseMismatchError, type BaseFingerprint, type BaseShapes, type HashCoverage } from './fingerprint.js';
export { permuteLoraB } from './layout.js';
export { savePeftAdapter, loadPeftAdapter, peftConfigJson, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, type PeftSaveOptions, type AdapterLoadOptions } from './peft.js';
export { saveGgufLora, loadGgufLora, type GgufLoraSaveOptions } from './gguf.js';
export { mergeAdapter, unmergeAdapter, unmergeAll, mergedAdapters, type MergeOptions } from './merge-weights.js';
export { combineAdapters, type CombineAdaptersOptions } from './combine.js';
export { lowRankFrobenius, relativeUpdateNorms } from './stats.js';
export { parseRecipe, loadRecipe, applyRecipe, loadAdapter, loadRecipeStack, type Recipe, type RecipeAdapter, type RecipeMerge, type RecipeRoute } from './recipe.js';
export * as mergeMath from './merge/index.js';
export { COMBINATION_TYPES, type CombinationType, type MajoritySignMethod } from './merge/index.js';
export { signPrompts, signTrainedAdapter, saveSignature, loadSignature, parseSignature, signaturePath, promptFeatures, signatureDistance, defaultSignatureLayer, SIGNATURE_FILE, type AdapterSignature } from './signature.js';
export { PromptRouter, routePrompt, routeFeatures, describeDecision, ROUTE_DEFAULTS, type RouteDecision, type RouteChoice, type SignedEntry } from './route.js';
export { ArrowRouter, ArrowLinear, arrowPrototype, arrowWeights, ARROW_DEFAULTS, type ArrowOptions } from './arrow.js';
export { listLibrary, loadLibrary, fingerprintDifferences, type LibraryEntry, type LoadedLibraryEntry } from './library.js';
export { readPromptFile } from './prompts.js';
