// Models from the Hugging Face Hub: `hf://OWNER/REPO[@REV][:QUANT|:FILE.gguf]` specs, the huggingface_hub cache layout,
// downloads into it, and the one resolver every model-taking command goes through.

export { HUB_SCHEME, formatHubSpec, isHubSpec, parseHubSpec, type HubSpec } from './spec.js';
export { hubCacheDir, hubEndpoint, hubOffline, hubToken, repoFolder } from './cache.js';
export { DEFAULT_QUANT, chooseTarget, folderFiles, matchQuant, type HubTarget } from './select.js';
export { pullModel, type PullOptions, type PullResult } from './download.js';
export { HubError, findInCache, resolveModelPath } from './resolve.js';
