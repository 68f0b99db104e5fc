// The page's entry: tabs (Chat, Stack builder, Arena; arrow keys move between them, the URL's #hash names one),
// the API key asked once when the server wants one, and the models every view picks from.
// @ts-check

import { ApiError, apiKey, listModels, setApiKey, setUnauthorizedHandler } from './api.js';
import { initArena } from './arena.js';
import { initChat } from './chat.js';
import { initStack } from './stack.js';
import { byId, clearError, kindOf, showError } from './ui.js';

const views = [initChat(), initStack(), initArena()];
const tabs = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('[role="tab"]')]);
const status = byId('server-status', HTMLElement);
const auth = byId('auth', HTMLFormElement);
const keyInput = byId('auth-key', HTMLInputElement);
const authMessage = byId('auth-message', HTMLElement);

// ---- tabs ---------------------------------------------------------------------------------------------------------

/** @param {HTMLButtonElement} tab @param {boolean} focus */
function select(tab, focus) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    byId(t.getAttribute('aria-controls') ?? '', HTMLElement).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, '', `#${tab.dataset.view ?? ''}`);
}

for (const [i, tab] of tabs.entries()) {
  tab.addEventListener('click', () => select(tab, false));
  tab.addEventListener('keydown', (ev) => {
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    select(tabs[(to + tabs.length) % tabs.length], true);
  });
}
select(tabs.find((t) => `#${t.dataset.view ?? ''}` === location.hash) ?? tabs[0], false);

byId('error-dismiss', HTMLButtonElement).addEventListener('click', clearError);

// ---- the API key ------------------------------------------------------------------------------------------------

/** Asks for the key (the server answered 401), saying why. @param {ApiError} e */
function askKey(e) {
  authMessage.textContent = apiKey() === null ? 'This server needs its API key (the one nomoat serve was given with --api-key).' : `The server refused this key: ${e.message}`;
  setApiKey(null);
  auth.hidden = false;
  keyInput.focus();
}
setUnauthorizedHandler(askKey);

auth.addEventListener('submit', (ev) => {
  ev.preventDefault();
  setApiKey(keyInput.value.trim());
  keyInput.value = '';
  auth.hidden = true;
  void loadModels();
});

// ---- models ---------------------------------------------------------------------------------------------------------

async function loadModels() {
  status.textContent = 'Loading models…';
  try {
    const models = await listModels();
    for (const v of views) v.setModels(models);
    const count = (/** @type {string} */ kind, /** @type {string} */ word) => {
      const n = models.filter((m) => kindOf(m) === kind).length;
      return `${n} ${word}${n === 1 ? '' : 's'}`;
    };
    status.textContent = `Base ${models.find((m) => kindOf(m) === 'base')?.id ?? '?'} · ${count('adapter', 'adapter')} · ${count('recipe', 'recipe')}`;
    status.dataset.ready = 'true';
  } catch (e) {
    status.textContent = 'No models loaded.';
    if (!(e instanceof ApiError && e.status === 401)) showError(e);
  }
}

byId('reload-models', HTMLButtonElement).addEventListener('click', () => void loadModels());
void loadModels();
