// The Chat view: a conversation with one model (base, adapter or recipe), kept in the page and sent whole each
// turn; the reply streams in token by token; Stop (or Escape) aborts it, keeping what came.
// @ts-check

import { streamChat } from './api.js';
import { Reply, byId, clearError, el, enterSends, fillModelPicker, sampling, showError, stopsWith } from './ui.js';

/** @typedef {import('./api.js').Message} Message */

export function initChat() {
  const form = byId('chat-form', HTMLFormElement);
  const input = byId('chat-input', HTMLTextAreaElement);
  const log = byId('chat-log', HTMLOListElement);
  const model = byId('chat-model', HTMLSelectElement);
  const send = byId('chat-send', HTMLButtonElement);
  const stop = byId('chat-stop', HTMLButtonElement);
  const clear = byId('chat-clear', HTMLButtonElement);
  /** @type {Message[]} */
  let history = [];
  /** @type {AbortController | null} */
  let running = null;

  /**
   * @param {'user' | 'assistant'} role
   * @returns {HTMLElement} the box its text goes in
   */
  const addMessage = (role) => {
    const item = el('li', `message ${role}`);
    item.append(el('span', 'who', role === 'user' ? 'You' : model.value));
    const box = el('div', 'message-text');
    item.append(box);
    log.append(item);
    return box;
  };

  enterSends(input);
  stopsWith(form, stop, () => running);
  clear.addEventListener('click', () => {
    running?.abort();
    history = [];
    log.replaceChildren();
    input.focus();
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const content = input.value.trim();
    if (content === '' || running !== null) return;
    clearError();
    const userBox = addMessage('user');
    userBox.textContent = content;
    const turn = [...history, /** @type {Message} */ ({ role: 'user', content })];
    const reply = new Reply(addMessage('assistant'));
    input.value = '';
    const ctl = new AbortController();
    running = ctl;
    send.disabled = true;
    stop.disabled = false;
    log.lastElementChild?.scrollIntoView({ block: 'end' });
    streamChat(turn, { model: model.value, ...sampling('chat') }, (piece) => reply.append(piece), ctl.signal)
      .then((r) => {
        reply.end(r);
        history = [...turn, { role: 'assistant', content: r.text }];
      }, (/** @type {unknown} */ e) => {
        // the turn did not happen: out of the history (and of the log, unless some reply came), its text back in
        // the box to edit and resend
        reply.end(null);
        if (reply.text === '') {
          userBox.parentElement?.remove();
          reply.box.parentElement?.remove();
        } else {
          userBox.parentElement?.classList.add('failed');
        }
        if (input.value === '') input.value = content;
        showError(e);
      })
      .finally(() => {
        running = null;
        send.disabled = false;
        stop.disabled = true;
        input.focus();
      });
  });

  return {
    /** @param {import('./api.js').ModelCard[]} models */
    setModels(models) {
      fillModelPicker(model, models);
    },
  };
}
