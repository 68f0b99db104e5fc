// The Arena: one prompt to two configurations drawn at random among the base, its adapters and recipes, and the
// stacks saved in the Stack builder, shown only as A and B and streamed side by side; after the vote (A, B, tie,
// both bad), POSTed to /v1/arena/votes with both replies, the page reveals which was which.
// @ts-check

import { ApiError, getJson, postJson } from './api.js';
import { savedStacks, STACKS_CHANGED, stackText } from './stack.js';
import { byId, clearError, enterSends, kindOf, sampling, showError, stopsWith, streamReply } from './ui.js';

/** @typedef {import('./api.js').AdapterRef} AdapterRef */
/** A contestant: what the request sends, and a name for people. @typedef {{ model: string, adapters: AdapterRef[], label: string }} Config */

const JUDGE_ITEM = 'nomoat.judge';

/** @returns {string} this browser's anonymous voter id (FastChat's judge) */
function judge() {
  let id = localStorage.getItem(JUDGE_ITEM);
  if (id === null) {
    id = `arena_user_${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(JUDGE_ITEM, id);
  }
  return id;
}

/**
 * Two different entries of a list, at random, in random order.
 * @template T
 * @param {T[]} list at least two
 * @returns {[T, T]}
 */
function randomPair(list) {
  const i = Math.floor(Math.random() * list.length);
  let j = Math.floor(Math.random() * (list.length - 1));
  if (j >= i) j++;
  return [list[i], list[j]];
}

export function initArena() {
  const form = byId('arena-form', HTMLFormElement);
  const prompt = byId('arena-prompt', HTMLTextAreaElement);
  const send = byId('arena-send', HTMLButtonElement);
  const stop = byId('arena-stop', HTMLButtonElement);
  const info = byId('arena-info', HTMLElement);
  const candidatesText = byId('arena-candidates', HTMLElement);
  const titles = { a: byId('arena-a-title', HTMLElement), b: byId('arena-b-title', HTMLElement) };
  const boxes = { a: byId('arena-a-reply', HTMLElement), b: byId('arena-b-reply', HTMLElement) };
  const voteButtons = [...byId('arena-votes', HTMLElement).querySelectorAll('button')];
  const result = byId('arena-result', HTMLElement);
  /** @type {import('./api.js').ModelCard[]} */
  let models = [];
  /** @type {AbortController | null} */
  let running = null;
  /** the round waiting for its vote @type {{ prompt: string, a: Config, b: Config, replyA: string, replyB: string, sampling: { temperature: number, max_tokens: number } } | null} */
  let round = null;

  /** @returns {Config[]} */
  const candidates = () => {
    const base = models.find((m) => kindOf(m) === 'base')?.id;
    /** @type {Config[]} */
    const list = models.map((m) => ({ model: m.id, adapters: [], label: `${m.id} (${kindOf(m)})` }));
    const adapters = new Set(models.filter((m) => kindOf(m) === 'adapter').map((m) => m.id));
    if (base !== undefined) {
      for (const s of savedStacks()) {
        if (s.adapters.every((a) => adapters.has(a.name))) list.push({ model: base, adapters: s.adapters, label: `stack “${s.label}” (${base} + ${stackText(s.adapters)})` });
      }
    }
    return list;
  };

  const showCandidates = () => {
    const n = candidates().length;
    candidatesText.textContent = n < 2
      ? 'The arena needs two configurations: serve an adapter (--lora NAME=PATH) or save a stack in the Stack builder.'
      : `Each round draws two of ${n} configurations: the base, its adapters and recipes, and your saved stacks.`;
  };
  document.addEventListener(STACKS_CHANGED, showCandidates);

  const showCount = () => {
    getJson('/v1/arena/votes/count').then((r) => {
      const { count } = /** @type {{ count: number }} */ (r);
      info.textContent = `Votes are recorded on the server: ${count} so far.`;
      info.dataset.count = String(count);
    }, (/** @type {unknown} */ e) => {
      info.textContent = e instanceof ApiError ? e.message : String(e);
      delete info.dataset.count;
    });
  };

  /** @param {boolean} on */
  const votingOn = (on) => {
    for (const b of voteButtons) b.disabled = !on;
  };

  enterSends(prompt);
  stopsWith(form, stop, () => running);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running !== null) return;
    clearError();
    const text = prompt.value.trim();
    const all = candidates();
    if (text === '') return showError('Write a prompt first.');
    if (all.length < 2) return showError('The arena needs two configurations: serve an adapter (--lora NAME=PATH) or save a stack in the Stack builder.');
    const [a, b] = randomPair(all);
    titles.a.textContent = 'A';
    titles.b.textContent = 'B';
    result.textContent = '';
    round = null;
    votingOn(false);
    const ctl = new AbortController();
    running = ctl;
    send.disabled = true;
    stop.disabled = false;
    const settings = sampling('arena');
    const messages = [/** @type {import('./api.js').Message} */ ({ role: 'user', content: text })];
    /** @param {HTMLElement} box @param {Config} c */
    const run = (box, c) => streamReply(box, messages, { model: c.model, adapters: c.adapters, ...settings }, ctl);
    Promise.all([run(boxes.a, a), run(boxes.b, b)])
      .then(([ra, rb]) => {
        if (ra.finish === 'stopped' || rb.finish === 'stopped') {
          result.textContent = 'Round stopped: start another to vote.';
          return;
        }
        round = { prompt: text, a, b, replyA: ra.text, replyB: rb.text, sampling: settings };
        votingOn(true);
        result.textContent = 'Which reply is better?';
        voteButtons[0].focus();
      })
      .catch((/** @type {unknown} */ e) => {
        showError(e);
        result.textContent = 'Round failed: start another to vote.';
      })
      .finally(() => {
        running = null;
        send.disabled = false;
        stop.disabled = true;
      });
  });

  for (const button of voteButtons) {
    button.addEventListener('click', () => {
      const r = round;
      const vote = button.dataset.vote;
      if (r === null || vote === undefined) return;
      clearError();
      votingOn(false);
      const config = (/** @type {Config} */ c) => ({ model: c.model, adapters: c.adapters });
      postJson('/v1/arena/votes', {
        prompt: r.prompt, config_a: config(r.a), config_b: config(r.b), reply_a: r.replyA, reply_b: r.replyB, vote, judge: judge(), sampling: r.sampling,
      }).then(() => {
        round = null;
        titles.a.textContent = `A: ${r.a.label}`;
        titles.b.textContent = `B: ${r.b.label}`;
        result.textContent = `Vote recorded (${button.textContent ?? vote}). A was ${r.a.label}; B was ${r.b.label}.`;
        showCount();
        prompt.focus();
      }, (/** @type {unknown} */ e) => {
        votingOn(true); // nothing recorded: the vote can be tried again
        showError(e);
      });
    });
  }

  return {
    /** @param {import('./api.js').ModelCard[]} list */
    setModels(list) {
      models = list;
      showCandidates();
      showCount();
    },
  };
}
