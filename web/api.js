// The page's one way to the server: JSON requests with the API key, chat completions streamed as server-sent
// events (fetch + a ReadableStream reader, each text piece handed on as it arrives), and errors in plain words.
// @ts-check

/** @typedef {{ id: string, parent: string | null, kind?: 'base' | 'adapter' | 'recipe', root?: string }} ModelCard */
/** @typedef {{ name: string, scale: number }} AdapterRef */
/** @typedef {{ role: 'system' | 'user' | 'assistant', content: string }} Message */
/**
 * What a chat request may carry besides its messages.
 * @typedef {{ model: string, adapters?: AdapterRef[], temperature: number, max_tokens: number }} ChatOptions
 */
/**
 * How a streamed reply ended: the server's finish_reason, or 'stopped' when the page aborted it.
 * @typedef {{ text: string, finish: 'stop' | 'length' | 'stopped', completionTokens: number | null }} StreamResult
 */

const KEY_ITEM = 'nomoat.apiKey';

/** An error to show as it is: the server's message, or what went wrong on the way. */
export class ApiError extends Error {
  /**
   * @param {string} message plain words for the user
   * @param {number} status HTTP status (0: the server could not be reached)
   * @param {string | null} code the API's error code (invalid_api_key, votes_disabled, …)
   */
  constructor(message, status, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @returns {string | null} the API key this tab was given */
export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

/** @param {string | null} key kept for this tab only (sessionStorage), or forgotten */
export function setApiKey(key) {
  if (key === null || key === '') sessionStorage.removeItem(KEY_ITEM);
  else sessionStorage.setItem(KEY_ITEM, key);
}

/**
 * Called when the server says 401, so the page can ask for the key.
 * @type {(e: ApiError) => void}
 */
let onUnauthorized = () => {};

/** @param {(e: ApiError) => void} f */
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

/** @param {boolean} json @returns {Record<string, string>} */
function headers(json) {
  /** @type {Record<string, string>} */
  const h = {};
  const key = apiKey();
  if (key !== null) h.Authorization = `Bearer ${key}`;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

/**
 * A response's JSON, as unknown until checked.
 * @param {Response} res
 * @returns {Promise<unknown>}
 */
function json(res) {
  return res.json();
}

/**
 * The ApiError for a failed response: the message of OpenAI's error body, or the status in words.
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
async function errorOf(res) {
  let message = `The server answered ${res.status} ${res.statusText}.`;
  let code = null;
  try {
    const body = /** @type {{ error?: { message?: unknown, code?: unknown } }} */ (await json(res));
    if (typeof body.error?.message === 'string' && body.error.message !== '') message = body.error.message;
    if (typeof body.error?.code === 'string') code = body.error.code;
  } catch {
    // not JSON: the status says it
  }
  const e = new ApiError(message, res.status, code);
  if (res.status === 401) onUnauthorized(e);
  return e;
}

/**
 * fetch, with a network failure in words (an abort stays an AbortError).
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<Response>}
 */
async function request(path, init) {
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (init.signal?.aborted) throw e;
    throw new ApiError('Cannot reach the server: is nomoat serve still running?', 0);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/**
 * @param {string} path
 * @returns {Promise<unknown>}
 */
export async function getJson(path) {
  return json(await request(path, { headers: headers(false) }));
}

/**
 * @param {string} path
 * @param {unknown} body
 * @returns {Promise<unknown>}
 */
export async function postJson(path, body) {
  return json(await request(path, { method: 'POST', headers: headers(true), body: JSON.stringify(body) }));
}

/** @returns {Promise<ModelCard[]>} the base, its adapters and recipes, as GET /v1/models lists them */
export async function listModels() {
  const r = /** @type {{ data: ModelCard[] }} */ (await getJson('/v1/models'));
  return r.data;
}

/** @param {string} text @returns {unknown} */
function parseJson(text) {
  return JSON.parse(text);
}

/**
 * The events of a server-sent event stream: each event's data lines joined, as they arrive (exported for its test).
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<string>}
 */
export async function* sseData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // CRLF and CR end lines too; a CR at the very end may be half of a CRLF: it waits for the next piece
      buffer += decoder.decode(value, { stream: true });
      const held = buffer.endsWith('\r') ? '\r' : '';
      buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
        if (data.length > 0) yield data.join('\n');
      }
      buffer += held;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * One streamed chat completion. Each piece of text goes to onText as soon as it arrives; aborting `signal` stops
 * the request (the server frees its row) and resolves with what came so far, finish 'stopped'.
 * @param {Message[]} messages
 * @param {ChatOptions} options
 * @param {(piece: string) => void} onText
 * @param {AbortSignal} signal
 * @returns {Promise<StreamResult>}
 */
export async function streamChat(messages, options, onText, signal) {
  let text = '';
  /** @type {StreamResult['finish']} */
  let finish = 'stop';
  /** @type {number | null} */
  let completionTokens = null;
  try {
    const body = { ...options, messages, stream: true, stream_options: { include_usage: true } };
    const res = await request('/v1/chat/completions', { method: 'POST', headers: headers(true), body: JSON.stringify(body), signal });
    if (res.body === null) throw new ApiError('The server sent an empty answer.', res.status);
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') break;
      const chunk = /** @type {{ error?: { message?: string, code?: string }, choices?: { delta?: { content?: string }, finish_reason?: string | null }[], usage?: { completion_tokens: number } | null }} */ (parseJson(data));
      if (chunk.error !== undefined) throw new ApiError(chunk.error.message ?? 'The server failed while answering.', 200, chunk.error.code ?? null);
      const choice = chunk.choices?.[0];
      const piece = choice?.delta?.content;
      if (typeof piece === 'string' && piece !== '') {
        text += piece;
        onText(piece);
      }
      if (choice?.finish_reason === 'length') finish = 'length';
      if (chunk.usage != null) completionTokens = chunk.usage.completion_tokens;
    }
  } catch (e) {
    if (signal.aborted) return { text, finish: 'stopped', completionTokens };
    if (e instanceof ApiError) throw e;
    throw new ApiError(`The answer was cut off: ${e instanceof Error ? e.message : String(e)}`, 0);
  }
  return { text, finish, completionTokens };
}
