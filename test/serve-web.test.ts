// The web page in a real browser: Debian's chromium, driven by playwright-core (never a downloaded browser), against
// a live server on the bundled model with two random adapters and a recipe. The page asks for the API key once;
// chat replies stream in piece by piece (states seen mid-stream, the end = the API's greedy text), Stop aborts one,
// an API error shows in plain words; the stack builder's reply differs from the base's beside it and equals the
// API's for that stack; arena rounds are anonymous until the vote, and each vote is a line of the votes file with
// FastChat's fields; tabs work from the keyboard, focus is visible, a narrow window is one column. Screenshots stay
// in the test's temp folder (its path is printed); the rest of the folder is removed.
//
// Without chromium (/usr/bin/chromium, or $NOMOAT_CHROMIUM) the tests are skipped, saying so, unless
// $NOMOAT_REQUIRE_BROWSER is set (.ci/run sets it after installing chromium): then they fail.

import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { LoraAdapter, savePeftAdapter } from '../src/lora/index.js';
import type { LlamaModel } from '../src/models/llama.js';
import { loadModel } from '../src/models/load.js';
import { ServeEngine, type CompletionRequest, type CompletionResult, type SubmitHooks } from '../src/serve/engine.js';
import { createServer, type NomoatServer } from '../src/serve/http.js';
import { randomize } from './lora-helpers.js';

const BUNDLED = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'assets', 'default-model');
const CHROMIUM = process.env.NOMOAT_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = (process.env.NOMOAT_REQUIRE_BROWSER ?? '') !== '';
const SKIP = existsSync(CHROMIUM) || REQUIRED ? false : `no chromium at ${CHROMIUM} (apt-get install chromium, or set NOMOAT_CHROMIUM; CI installs it)`;
const KEY = 'web-test-key';
/** milliseconds between the tokens the page receives: a larger model's pace, so that streaming and Stop can be seen */
const PACE_MS = 30;
const STORY = 'tell me a story about a cat.';

/** The engine with each stream's tokens handed on PACE_MS apart (the rows themselves run at full speed). */
class PacedEngine extends ServeEngine {
  override submit(req: CompletionRequest, hooks: SubmitHooks = {}): Promise<CompletionResult> {
    const { onToken, signal } = hooks;
    if (onToken === undefined) return super.submit(req, hooks);
    let paced = Promise.resolve();
    const result = super.submit(req, {
      ...hooks,
      onToken: (ev) => {
        paced = paced.then(() => delay(PACE_MS)).then(() => {
          if (signal?.aborted !== true) onToken(ev);
        });
      },
    });
    return result.then(async (r) => {
      await paced;
      return r;
    });
  }
}

let dir = '';
let shots = '';
let votesFile = '';
let model: LlamaModel;
let server: NomoatServer;
let url = '';
let browser: BrowserContext;
let page: Page;
/** uncaught errors in the page and CSP violations: none expected */
const pageErrors: string[] = [];

before(async () => {
  if (SKIP !== false) return;
  if (!existsSync(CHROMIUM)) throw new Error(`NOMOAT_REQUIRE_BROWSER is set but there is no chromium at ${CHROMIUM}`);
  dir = mkdtempSync(join(tmpdir(), 'nomoat-web-'));
  shots = join(dir, 'screenshots');
  mkdirSync(shots);
  votesFile = join(dir, 'votes.jsonl');
  const loaded = loadModel(BUNDLED);
  model = loaded.model;
  const adapters = join(dir, 'adapters');
  for (const [i, name] of ['a0', 'a1'].entries()) {
    const a = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 10 + i, name }), 200 + i, 0.2);
    savePeftAdapter(a, join(adapters, name));
    a.dispose();
  }
  const recipe = join(dir, 'mix.json');
  writeFileSync(recipe, JSON.stringify({ base: BUNDLED, adapters: [{ path: join(adapters, 'a0'), scale: 0.5 }, { path: join(adapters, 'a1'), scale: 0.5 }] }));
  server = createServer({
    engine: new PacedEngine(model, loaded.tokenizer!, { parallel: 4, contextSize: 256 }), modelId: 'tiny', modelPath: BUNDLED, port: 0, apiKey: KEY, votesFile,
    loras: [{ name: 'a0', path: join(adapters, 'a0') }, { name: 'a1', path: join(adapters, 'a1') }], recipes: [{ name: 'mix', path: recipe }], log: () => {},
  });
  url = await server.listen();
  browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 800 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); // 401s and 400s are expected
  });
});

after(async () => {
  if (SKIP !== false || dir === '') return;
  await browser?.close();
  await server?.close();
  model?.dispose();
  // everything but the screenshots
  for (const name of readdirSync(dir)) if (name !== 'screenshots') rmSync(join(dir, name), { recursive: true, force: true });
  process.stdout.write(`# serve-web: screenshots kept in ${shots}\n`);
});

// ---- helpers ----------------------------------------------------------------------------------------------------------

async function shot(t: TestContext, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  t.diagnostic(`screenshot: ${path}`);
}

/** The API's own reply, not streamed, for comparison with what the page shows. */
async function apiReply(body: Record<string, unknown>): Promise<string> {
  const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
  assert.equal(r.status, 200);
  return ((await r.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
}

// The little of the DOM that the functions run inside the page use: this file is compiled with Node's types only.
// (Functions, not strings: the page's CSP forbids eval, and playwright evaluates strings with it.)
interface DomNode {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): DomNode | null;
}
interface ReplyState {
  length: number;
  busy: string | null;
}
declare const document: { querySelector(selector: string): DomNode | null; readonly body: DomNode; readonly documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number; states?: ReplyState[]; observer?: { disconnect(): void } };
declare const MutationObserver: new (callback: () => void) => { observe(target: DomNode, options: Record<string, boolean>): void; disconnect(): void };
declare function getComputedStyle(e: unknown): { outlineStyle: string };

/**
 * Starts recording, in the page, every state a reply box goes through: its text's length and aria-busy at each DOM
 * change (a MutationObserver, so none is missed between two polls). `selector` finds the box when a change happens.
 */
async function recordStates(selector: string): Promise<void> {
  await page.evaluate((sel) => {
    const states: ReplyState[] = [];
    window.states = states;
    window.observer?.disconnect();
    const observer = new MutationObserver(() => {
      const box = document.querySelector(sel);
      if (box !== null) states.push({ length: box.querySelector('.reply-text')?.textContent?.length ?? 0, busy: box.getAttribute('aria-busy') });
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    window.observer = observer;
  }, selector);
}

async function recordedStates(): Promise<ReplyState[]> {
  return page.evaluate(() => window.states ?? []);
}

/** Waits until the box's stream is over (aria-busy false) and gives its text. */
async function settled(selector: string): Promise<string> {
  await page.locator(`${selector}[aria-busy="false"]`).waitFor();
  return (await page.locator(`${selector} .reply-text`).textContent()) ?? '';
}

/** The request bodies the page sends to a path, from now on. */
function captureBodies(path: string): Record<string, unknown>[] {
  const bodies: Record<string, unknown>[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith(path) && r.method() === 'POST') bodies.push(r.postDataJSON() as Record<string, unknown>);
  });
  return bodies;
}

const LAST_ASSISTANT = '#chat-log .message.assistant:last-child .message-text';

// ---- the page ---------------------------------------------------------------------------------------------------------

test('the page asks for the API key once (a wrong one is refused), then lists the models', { skip: SKIP }, async (t) => {
  await page.goto(`${url}/`);
  const key = page.getByLabel('API key');
  await key.waitFor();
  assert.match((await page.locator('#auth-message').textContent()) ?? '', /needs its API key/);
  await key.fill('wrong');
  await key.press('Enter');
  await page.locator('#auth-message', { hasText: 'refused' }).waitFor();
  await shot(t, '1-api-key');
  await key.fill(KEY);
  await key.press('Enter');
  await page.locator('#server-status[data-ready="true"]').waitFor();
  assert.equal(await page.locator('#server-status').textContent(), 'Base tiny · 2 adapters · 1 recipe');
  assert.deepEqual(await page.getByLabel('Model').locator('option').allTextContents(), ['tiny (base)', 'a0 (adapter)', 'a1 (adapter)', 'mix (recipe)']);
  // once: a reload keeps the key for this tab
  await page.reload();
  await page.locator('#server-status[data-ready="true"]').waitFor();
  assert.equal(await page.locator('#auth').isHidden(), true);
});

test('chat: the reply streams in piece by piece, equals the API\'s, and the conversation is kept', { skip: SKIP }, async (t) => {
  const bodies = captureBodies('/v1/chat/completions');
  const chat = page.locator('#view-chat');
  await chat.getByLabel('Temperature').fill('0');
  await chat.getByLabel('Max tokens').fill('40');
  const input = chat.getByLabel('Message');
  await input.fill(STORY);
  await recordStates(LAST_ASSISTANT);
  await input.press('Enter');
  // mid-stream: some text, still busy; the Stop button usable meanwhile
  await page.locator(`${LAST_ASSISTANT}[aria-busy="true"] .reply-text`).filter({ hasText: /\S/ }).waitFor();
  assert.equal(await chat.getByRole('button', { name: 'Stop' }).isEnabled(), true);
  await shot(t, '2-chat-streaming');
  const text = await settled(LAST_ASSISTANT);
  const states = await recordedStates();
  const busyLengths = [...new Set(states.filter((s) => s.busy === 'true' && s.length > 0).map((s) => s.length))];
  assert.ok(busyLengths.length >= 3, `the text should grow in several steps while streaming: ${JSON.stringify(busyLengths)}`);
  assert.ok(busyLengths.every((n, i) => i === 0 || n > busyLengths[i - 1]) && busyLengths.at(-1)! <= text.length, 'and only grow');
  assert.equal(text, await apiReply({ model: 'tiny', messages: [{ role: 'user', content: STORY }], temperature: 0, max_tokens: 40 }));
  assert.deepEqual(bodies[0], { model: 'tiny', temperature: 0, max_tokens: 40, messages: [{ role: 'user', content: STORY }], stream: true, stream_options: { include_usage: true } });
  assert.equal(await page.locator('#chat-input:focus').count(), 1, 'focus back in the message box');

  // a second turn carries the first
  await input.fill('and then?');
  await input.press('Enter');
  await settled(LAST_ASSISTANT);
  assert.deepEqual(bodies[1].messages, [{ role: 'user', content: STORY }, { role: 'assistant', content: text }, { role: 'user', content: 'and then?' }]);
  assert.equal(await page.locator('#chat-log .message').count(), 4);
  await shot(t, '3-chat-two-turns');
});

test('chat: Stop aborts the stream; the partial reply stays, marked stopped', { skip: SKIP }, async (t) => {
  const chat = page.locator('#view-chat');
  await chat.getByRole('button', { name: 'New conversation' }).click();
  assert.equal(await page.locator('#chat-log .message').count(), 0);
  const full = await apiReply({ model: 'tiny', messages: [{ role: 'user', content: STORY }], temperature: 0, max_tokens: 40 });
  const input = chat.getByLabel('Message');
  await input.fill(STORY);
  await input.press('Enter');
  await page.locator(`${LAST_ASSISTANT}[aria-busy="true"] .reply-text`).filter({ hasText: /\S/ }).waitFor();
  await chat.getByRole('button', { name: 'Stop' }).click();
  await page.locator(`${LAST_ASSISTANT}[data-finish="stopped"]`).waitFor();
  const partial = (await page.locator(`${LAST_ASSISTANT} .reply-text`).textContent()) ?? '';
  assert.ok(partial.length > 0 && partial.length < full.length && full.startsWith(partial), `a prefix of the reply: ${JSON.stringify(partial)} of ${JSON.stringify(full)}`);
  assert.match((await page.locator(`${LAST_ASSISTANT} .reply-note`).textContent()) ?? '', /stopped/);
  assert.equal(await chat.getByRole('button', { name: 'Send' }).isEnabled(), true);
  await shot(t, '4-chat-stopped');
});

test('chat: an API error is shown in plain words, and the message is back in the box', { skip: SKIP }, async (t) => {
  const long = Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ');
  const input = page.locator('#view-chat').getByLabel('Message');
  const messages = await page.locator('#chat-log .message').count();
  await input.fill(long);
  await input.press('Enter');
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match((await alert.textContent()) ?? '', /maximum context length is 256 tokens/);
  assert.equal(await input.inputValue(), long);
  assert.equal(await page.locator('#chat-log .message').count(), messages, 'the failed turn is not in the conversation');
  await shot(t, '5-chat-error');
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await alert.waitFor({ state: 'hidden' });
  await input.fill('');
});

test('stack builder: a0 at 0.5 (slider) changes the reply; the base\'s beside it; both = the API\'s; saved for the arena', { skip: SKIP }, async (t) => {
  const bodies = captureBodies('/v1/chat/completions');
  await page.getByRole('tab', { name: 'Stack builder' }).click();
  assert.match(page.url(), /#stack$/);
  const view = page.locator('#view-stack');
  await view.getByLabel('Max tokens').fill('32');
  await view.getByLabel('a0', { exact: true }).check();
  await view.getByLabel('a0 scale', { exact: true }).fill('0.5'); // the slider…
  assert.equal(await view.getByLabel('a0 scale, as a number').inputValue(), '0.5'); // …moves the number
  assert.equal(await page.locator('#stack-summary').textContent(), 'Stack: a0 ×0.5');
  const prompt = view.getByLabel('Prompt');
  await prompt.fill(STORY);
  await recordStates('#stack-with-reply');
  await prompt.press('Enter');
  const [base, withStack] = await Promise.all([settled('#stack-base-reply'), settled('#stack-with-reply')]);
  assert.ok((await recordedStates()).some((s) => s.busy === 'true' && s.length > 0), 'the stack\'s reply streamed');
  await shot(t, '6-stack-builder');
  assert.notEqual(withStack, base, 'the stack should change the reply');
  const sent = bodies.map((b) => b.adapters).sort((x, y) => JSON.stringify(x).length - JSON.stringify(y).length);
  assert.deepEqual(sent, [[], [{ name: 'a0', scale: 0.5 }]]);
  assert.equal(base, await apiReply({ model: 'tiny', messages: [{ role: 'user', content: STORY }], temperature: 0, max_tokens: 32 }));
  assert.equal(withStack, await apiReply({ model: 'tiny', adapters: [{ name: 'a0', scale: 0.5 }], messages: [{ role: 'user', content: STORY }], temperature: 0, max_tokens: 32 }));
  assert.equal(await page.locator('#stack-with-title').textContent(), 'Base + a0 ×0.5');

  await view.getByLabel('Name').fill('half a0');
  await view.getByRole('button', { name: 'Save this stack for the arena' }).click();
  assert.match((await page.locator('#stack-saved').textContent()) ?? '', /half a0: a0 ×0\.5/);
});

test('arena: two anonymous configurations side by side, a vote, the reveal, and the vote\'s line in the votes file', { skip: SKIP }, async (t) => {
  await page.getByRole('tab', { name: 'Arena' }).click();
  await page.locator('#arena-info', { hasText: '0 so far' }).waitFor();
  assert.match((await page.locator('#arena-candidates').textContent()) ?? '', /of 5 configurations/); // tiny, a0, a1, mix, half a0
  const view = page.locator('#view-arena');
  await view.getByLabel('Max tokens').fill('32');
  const prompt = view.getByLabel('Prompt');
  const votes: Record<string, unknown>[] = [];
  for (const [round, vote, button] of [[1, 'b', 'B is better'], [2, 'both_bad', 'Both are bad']] as const) {
    await prompt.fill(`${STORY} (${round})`);
    await prompt.press('Enter');
    // anonymous while streaming, no vote before both replies are in
    await page.locator('#arena-a-reply[aria-busy="true"], #arena-b-reply[aria-busy="true"]').first().waitFor();
    assert.deepEqual([await page.locator('#arena-a-title').textContent(), await page.locator('#arena-b-title').textContent()], ['A', 'B']);
    const [a, b] = await Promise.all([settled('#arena-a-reply'), settled('#arena-b-reply')]);
    const voteButton = view.getByRole('button', { name: button });
    await view.locator(`#arena-votes [data-vote="${vote}"]:enabled`).waitFor();
    if (round === 1) await shot(t, '7-arena-before-vote');
    await voteButton.click();
    await page.locator('#arena-result', { hasText: 'Vote recorded' }).waitFor();
    await page.locator('#arena-info', { hasText: `${round} so far` }).waitFor();
    const titleA = (await page.locator('#arena-a-title').textContent()) ?? '';
    const titleB = (await page.locator('#arena-b-title').textContent()) ?? '';
    if (round === 1) await shot(t, '8-arena-revealed');
    const lines = readFileSync(votesFile, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, round);
    const v = JSON.parse(lines[round - 1]) as {
      question_id: string; model_a: string; model_b: string; winner: string; vote: string; judge: string; anony: boolean; turn: number; tstamp: number; prompt: string;
      conversation_a: { role: string; content: string }[]; conversation_b: { role: string; content: string }[];
      config_a: { model: string; adapters: { name: string; scale: number }[] }; config_b: { model: string; adapters: { name: string; scale: number }[] };
      sampling: { temperature: number; max_tokens: number };
    };
    votes.push(v);
    assert.equal(v.vote, vote);
    assert.equal(v.winner, vote === 'b' ? 'model_b' : 'tie (bothbad)');
    assert.equal(v.prompt, `${STORY} (${round})`);
    assert.deepEqual(v.conversation_a, [{ role: 'user', content: v.prompt }, { role: 'assistant', content: a }]);
    assert.deepEqual(v.conversation_b, [{ role: 'user', content: v.prompt }, { role: 'assistant', content: b }]);
    assert.notEqual(v.model_a, v.model_b);
    // the reveal names what was voted on
    for (const [title, config, name] of [[titleA, v.config_a, v.model_a], [titleB, v.config_b, v.model_b]] as const) {
      assert.ok(title.includes(config.model), `${title} names ${config.model}`);
      for (const ad of config.adapters) assert.ok(title.includes(`${ad.name} ×${ad.scale}`), `${title} names ${ad.name}`);
      assert.equal(name, [config.model, ...config.adapters.map((ad) => `${ad.name}@${ad.scale}`)].join('+'));
    }
    assert.match(v.question_id, /^[0-9a-f-]{36}$/);
    assert.match(v.judge, /^arena_user_[0-9a-f]{8}$/);
    assert.equal(v.anony, true);
    assert.equal(v.turn, 1);
    assert.ok(Math.abs(v.tstamp - Date.now() / 1000) < 120);
    assert.deepEqual(v.sampling, { temperature: 0.7, max_tokens: 32 });
  }
  assert.equal(votes[0].judge, votes[1].judge, 'one browser, one judge');
});

test('keyboard and narrow windows: arrow keys move between tabs, focus is visible, one column at 360 px; no script error all along', { skip: SKIP }, async (t) => {
  const chatTab = page.getByRole('tab', { name: 'Chat' });
  await chatTab.click();
  await chatTab.press('ArrowRight');
  const stackTab = page.getByRole('tab', { name: 'Stack builder' });
  assert.equal(await stackTab.getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('#tab-stack:focus-visible').count(), 1, 'focus moved, and shows');
  assert.notEqual(await stackTab.evaluate((e) => getComputedStyle(e).outlineStyle), 'none', 'focus is visible');
  assert.equal(await page.locator('#view-stack').isVisible(), true);
  assert.equal(await page.locator('#view-chat').isVisible(), false);
  await stackTab.press('End');
  assert.equal(await page.getByRole('tab', { name: 'Arena' }).getAttribute('aria-selected'), 'true');

  await page.setViewportSize({ width: 360, height: 740 });
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling');
  const a = await page.locator('#arena-a-reply').boundingBox();
  const b = await page.locator('#arena-b-reply').boundingBox();
  assert.ok(a !== null && b !== null && b.y >= a.y + a.height, 'B below A');
  await shot(t, '9-narrow');
  await page.setViewportSize({ width: 1100, height: 800 });
  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations in the page, all along');
});
