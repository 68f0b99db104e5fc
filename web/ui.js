// Small DOM helpers shared by the views: typed element lookup, the error banner, a reply that grows as its
// text streams in, generation settings read from a view's inputs, and Enter-to-send.
// @ts-check

import { streamChat } from './api.js';

/**
 * The element with this id, checked to be of the expected kind.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, name: string }} type
 * @returns {T}
 */
export function byId(id, type) {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`the page lacks #${id} (a ${type.name})`);
  return e;
}

/**
 * A new element with a class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className !== undefined && className !== '') e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Shows an error in the banner at the top (role="alert": read out at once), in the server's words. */
export function showError(/** @type {unknown} */ e) {
  const text = e instanceof Error ? e.message : String(e);
  byId('error-text', HTMLElement).textContent = text;
  byId('error', HTMLElement).hidden = false;
}

export function clearError() {
  byId('error', HTMLElement).hidden = true;
  byId('error-text', HTMLElement).textContent = '';
}

/** A reply's text, growing piece by piece while it streams (aria-busy meanwhile), then a note on how it ended. */
export class Reply {
  /** @param {HTMLElement} box where the text goes (emptied) */
  constructor(box) {
    this.box = box;
    box.replaceChildren();
    this.textNode = document.createTextNode('');
    this.body = el('div', 'reply-text');
    this.body.append(this.textNode);
    box.append(this.body);
    box.setAttribute('aria-busy', 'true');
    box.classList.add('streaming');
  }

  /** @param {string} piece */
  append(piece) {
    this.textNode.appendData(piece);
  }

  /** @returns {string} the text so far */
  get text() {
    return this.textNode.data;
  }

  /**
   * The stream is over: how it ended, in a note after the text.
   * @param {import('./api.js').StreamResult | null} r null: it failed
   */
  end(r) {
    this.box.setAttribute('aria-busy', 'false');
    this.box.classList.remove('streaming');
    this.box.dataset.finish = r === null ? 'error' : r.finish;
    const notes = [];
    if (r === null) notes.push('failed');
    else if (r.finish === 'stopped') notes.push('stopped');
    else if (r.finish === 'length') notes.push('cut at max tokens');
    if (r !== null && r.completionTokens !== null) notes.push(`${r.completionTokens} token${r.completionTokens === 1 ? '' : 's'}`);
    if (r !== null && r.text === '' && r.finish !== 'stopped') notes.unshift('empty reply');
    if (notes.length > 0) this.box.append(el('p', 'reply-note', notes.join(' · ')));
  }
}

/**
 * Temperature and max tokens from a view's two inputs (their validity checked by the form).
 * @param {string} prefix ids `${prefix}-temperature` and `${prefix}-max-tokens`
 * @returns {{ temperature: number, max_tokens: number }}
 */
export function sampling(prefix) {
  return {
    temperature: byId(`${prefix}-temperature`, HTMLInputElement).valueAsNumber,
    max_tokens: byId(`${prefix}-max-tokens`, HTMLInputElement).valueAsNumber,
  };
}

/**
 * Enter sends the form a textarea is in; Shift+Enter makes a new line.
 * @param {HTMLTextAreaElement} area
 */
export function enterSends(area) {
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      area.form?.requestSubmit();
    }
  });
}

/**
 * Fills a model picker, keeping the selection when it is still there.
 * @param {HTMLSelectElement} select
 * @param {import('./api.js').ModelCard[]} models
 */
export function fillModelPicker(select, models) {
  const keep = select.value;
  select.replaceChildren(...models.map((m) => {
    const o = el('option', '', `${m.id} (${kindOf(m)})`);
    o.value = m.id;
    return o;
  }));
  if (models.some((m) => m.id === keep)) select.value = keep;
}

/**
 * What a model id names: the base, an adapter on it or a recipe (nomoat's `kind`; vLLM's `parent` otherwise).
 * @param {import('./api.js').ModelCard} m
 * @returns {'base' | 'adapter' | 'recipe'}
 */
export function kindOf(m) {
  return m.kind ?? (m.parent === null ? 'base' : 'adapter');
}

/**
 * Stop (the button, or Escape anywhere in the form) aborts the request running now.
 * @param {HTMLFormElement} form
 * @param {HTMLButtonElement} stop
 * @param {() => AbortController | null} running
 */
export function stopsWith(form, stop, running) {
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') running()?.abort();
  });
  stop.addEventListener('click', () => running()?.abort());
}

/**
 * One of two replies streamed side by side into box: a failure ends the other one too (the shared controller is
 * aborted) and is passed on.
 * @param {HTMLElement} box
 * @param {import('./api.js').Message[]} messages
 * @param {import('./api.js').ChatOptions} options
 * @param {AbortController} ctl
 * @returns {Promise<import('./api.js').StreamResult>}
 */
export function streamReply(box, messages, options, ctl) {
  const reply = new Reply(box);
  return streamChat(messages, options, (p) => reply.append(p), ctl.signal).then((r) => {
    reply.end(r);
    return r;
  }, (/** @type {unknown} */ e) => {
    reply.end(null);
    ctl.abort();
    throw e;
  });
}
