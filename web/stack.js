// The Stack builder: pick adapters and a scale for each (slider and number, kept in step), send one prompt to the
// base alone and to the base with that stack (the `adapters` field) side by side, and save stacks for the arena
// (kept in this browser's localStorage).
// @ts-check

import { byId, clearError, el, enterSends, kindOf, sampling, showError, stopsWith, streamReply } from './ui.js';

/** @typedef {import('./api.js').AdapterRef} AdapterRef */
/** A stack the user saved: its adapters on the base. @typedef {{ label: string, adapters: AdapterRef[] }} SavedStack */

const STACKS_ITEM = 'nomoat.stacks';
/** Fired on document when the saved stacks change. */
export const STACKS_CHANGED = 'nomoat:stacks-changed';

/** @returns {SavedStack[]} */
export function savedStacks() {
  try {
    const v = /** @type {unknown} */ (JSON.parse(localStorage.getItem(STACKS_ITEM) ?? '[]'));
    return Array.isArray(v) ? /** @type {SavedStack[]} */ (v) : [];
  } catch {
    return [];
  }
}

/** @param {SavedStack[]} stacks */
function storeStacks(stacks) {
  localStorage.setItem(STACKS_ITEM, JSON.stringify(stacks));
  document.dispatchEvent(new Event(STACKS_CHANGED));
}

/**
 * A stack in words: `a0 ×1 + a1 ×-0.5`.
 * @param {AdapterRef[]} adapters
 */
export function stackText(adapters) {
  return adapters.map((a) => `${a.name} ×${a.scale}`).join(' + ');
}

export function initStack() {
  const form = byId('stack-form', HTMLFormElement);
  const list = byId('stack-adapters', HTMLElement);
  const summary = byId('stack-summary', HTMLElement);
  const prompt = byId('stack-prompt', HTMLTextAreaElement);
  const send = byId('stack-send', HTMLButtonElement);
  const stop = byId('stack-stop', HTMLButtonElement);
  const baseTitle = byId('stack-base-title', HTMLElement);
  const stackTitle = byId('stack-with-title', HTMLElement);
  const baseReply = byId('stack-base-reply', HTMLElement);
  const stackReply = byId('stack-with-reply', HTMLElement);
  const saveName = byId('stack-save-name', HTMLInputElement);
  const save = byId('stack-save', HTMLButtonElement);
  const saved = byId('stack-saved', HTMLUListElement);
  let base = '';
  /** @type {{ name: string, use: HTMLInputElement, number: HTMLInputElement }[]} */
  let rows = [];
  /** @type {AbortController | null} */
  let running = null;

  /** @returns {AdapterRef[]} the stack as picked now */
  const picked = () => rows.filter((r) => r.use.checked && Number.isFinite(r.number.valueAsNumber)).map((r) => ({ name: r.name, scale: r.number.valueAsNumber }));

  const showSummary = () => {
    const s = picked();
    summary.textContent = s.length === 0 ? 'No adapter picked yet.' : `Stack: ${stackText(s)}`;
    save.disabled = s.length === 0;
  };

  const showSaved = () => {
    const stacks = savedStacks();
    saved.replaceChildren(...stacks.map((s, i) => {
      const item = el('li', '', `${s.label}: ${stackText(s.adapters)} `);
      const remove = el('button', 'small', 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove saved stack ${s.label}`);
      remove.addEventListener('click', () => storeStacks(savedStacks().filter((_, j) => j !== i)));
      item.append(remove);
      return item;
    }));
    byId('stack-saved-empty', HTMLElement).hidden = stacks.length > 0;
  };
  document.addEventListener(STACKS_CHANGED, showSaved);
  showSaved();

  /** @param {string[]} names the adapters to offer; rows already there keep their state */
  const showAdapters = (names) => {
    const before = new Map(rows.map((r) => [r.name, r]));
    rows = [];
    list.replaceChildren();
    if (names.length === 0) {
      list.append(el('p', 'hint', 'This server has no adapters: start it with --lora NAME=PATH (or load one through POST /v1/load_lora_adapter), then reload the models.'));
    }
    names.forEach((name, i) => {
      const old = before.get(name);
      const row = el('div', 'adapter-row');
      const use = el('input');
      use.type = 'checkbox';
      use.id = `stack-use-${i}`;
      use.checked = old?.use.checked ?? false;
      const label = el('label', 'adapter-name', name);
      label.htmlFor = use.id;
      const range = el('input');
      range.type = 'range';
      range.min = '-2';
      range.max = '2';
      range.step = '0.05';
      range.setAttribute('aria-label', `${name} scale`);
      const number = el('input');
      number.type = 'number';
      number.step = 'any';
      number.required = true;
      number.setAttribute('aria-label', `${name} scale, as a number`);
      number.value = old?.number.value ?? '1';
      range.value = number.value;
      range.addEventListener('input', () => {
        number.value = range.value;
        use.checked = true;
        showSummary();
      });
      number.addEventListener('input', () => {
        if (Number.isFinite(number.valueAsNumber)) range.value = String(number.valueAsNumber);
        use.checked = true;
        showSummary();
      });
      use.addEventListener('change', showSummary);
      row.append(use, label, range, number);
      list.append(row);
      rows.push({ name, use, number });
    });
    showSummary();
  };

  enterSends(prompt);
  stopsWith(form, stop, () => running);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running !== null) return;
    clearError();
    const stack = picked();
    const text = prompt.value.trim();
    if (stack.length === 0) return showError('Pick at least one adapter to compare with the base.');
    if (text === '') return showError('Write a prompt first.');
    baseTitle.textContent = `Base alone: ${base}`;
    stackTitle.textContent = `Base + ${stackText(stack)}`;
    const ctl = new AbortController();
    running = ctl;
    send.disabled = true;
    stop.disabled = false;
    const settings = sampling('stack');
    const messages = [/** @type {import('./api.js').Message} */ ({ role: 'user', content: text })];
    /** @param {HTMLElement} box @param {AdapterRef[]} adapters */
    const run = (box, adapters) => streamReply(box, messages, { model: base, adapters, ...settings }, ctl);
    Promise.all([run(baseReply, []), run(stackReply, stack)])
      .catch(showError)
      .finally(() => {
        running = null;
        send.disabled = false;
        stop.disabled = true;
      });
  });

  save.addEventListener('click', () => {
    const adapters = picked();
    if (adapters.length === 0) return;
    const label = saveName.value.trim() || stackText(adapters);
    storeStacks([...savedStacks().filter((s) => s.label !== label), { label, adapters }]);
    saveName.value = '';
    byId('stack-save-status', HTMLElement).textContent = `Saved “${label}” for the arena.`;
  });

  return {
    /** @param {import('./api.js').ModelCard[]} models */
    setModels(models) {
      base = models.find((m) => kindOf(m) === 'base')?.id ?? '';
      showAdapters(models.filter((m) => kindOf(m) === 'adapter').map((m) => m.id));
    },
  };
}
