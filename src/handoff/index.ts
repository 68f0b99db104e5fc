// Hand-offs to the engines people scale with, and the result brought back: `nomoat export` (vLLM, llama.cpp, Ollama,
// PEFT), `nomoat finetune --handoff` (transformers + peft + accelerate) and `nomoat import`.

export { EXPORT_TARGETS, ExportRefusal, VLLM_MAX_LORA_RANKS, VLLM_LLAMA_LORA_MODULES, checkVllmAdapterConfig, checkStackFor, vllmMaxLoraRank, type ExportTarget } from './engine-rules.js';
export { exportFor, foldScale, DEFAULT_PROBES, type ExportAdapter, type ExportOptions, type ExportResult } from './export.js';
export { translateTemplate, familyTemplate, type TemplateFamily, type OllamaTemplate, type TemplateTranslation } from './ollama-template.js';
export { modelfileText } from './modelfile.js';
export { writeTrainHandoff, handoffSettings, type TrainHandoffOptions, type TrainHandoffResult } from './train-handoff.js';
export { TRAIN_PY } from './train-py.js';
export { ACCELERATE_CONFIGS, accelerateConfigs } from './accelerate.js';
export { importFolder, importKind, libraryDir, nomoatHome, type ImportKind, type ImportOptions, type ImportResult } from './import.js';
