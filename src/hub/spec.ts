// `hf://OWNER/REPO[@REV][:TAG]`: a model on the Hugging Face Hub, named the way llama.cpp's `-hf OWNER/REPO[:QUANT]` and
// Ollama's `hf.co/OWNER/REPO:QUANT` name one. TAG is a quant (`Q4_K_M`, matched in the GGUF file names) or a file
// (`model-q8_0.gguf`); no TAG means the repository's Hugging Face folder (config.json + safetensors + tokenizer).

export const HUB_SCHEME = 'hf://';

export interface HubSpec {
  /** "OWNER/REPO" */
  repo: string;
  /** branch, tag or 40-hex commit; "main" when not given */
  revision: string;
  /** a quant tag or a .gguf file path inside the repository; undefined = the HF folder */
  tag?: string;
}

/** Hub repository names: letters, digits, '-', '_', '.', no '--' or '..', at most 96 characters (huggingface_hub's validate_repo_id). */
const NAME = /^(?!.*(--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

export function isHubSpec(s: string): boolean {
  return s.startsWith(HUB_SCHEME);
}

/** Parses a spec; throws an Error that shows the expected form. */
export function parseHubSpec(spec: string): HubSpec {
  const form = 'expected hf://OWNER/REPO, hf://OWNER/REPO:QUANT (e.g. :Q4_K_M), hf://OWNER/REPO:FILE.gguf, optionally @REVISION after REPO';
  if (!isHubSpec(spec)) throw new Error(`${spec}: not a Hub model (${form})`);
  let rest = spec.slice(HUB_SCHEME.length);
  let tag: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') throw new Error(`${spec}: empty tag after ':' (${form})`);
    if (tag.split('/').some((p) => p === '..' || p === '' || p === '.')) throw new Error(`${spec}: bad file path in tag (${form})`);
  }
  let revision = 'main';
  const at = rest.indexOf('@');
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (revision === '' || /[\s:]|\.\./.test(revision)) throw new Error(`${spec}: bad revision "${revision}" (${form})`);
  }
  const parts = rest.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p))) throw new Error(`${spec}: bad repository "${rest}" (${form})`);
  return tag === undefined ? { repo: rest, revision } : { repo: rest, revision, tag };
}

/** The spec back as text (for messages and the `nomoat pull` line). */
export function formatHubSpec(s: HubSpec): string {
  return `${HUB_SCHEME}${s.repo}${s.revision !== 'main' ? `@${s.revision}` : ''}${s.tag !== undefined ? `:${s.tag}` : ''}`;
}
