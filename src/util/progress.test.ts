// The shared progress display: mode choice, throttled redraws, lines, notes and end(), and the rate, ETA and percent
// it renders, all on an injected clock and writer (no sleeping, no terminal).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawBar, etaSeconds, formatBytes, formatClock, formatDuration, formatPercent, fraction, ProgressDisplay, type DisplayOptions } from './progress.js';

/** A display on a hand-moved clock, writing into an array. */
function fake(o: DisplayOptions): { d: ProgressDisplay; out: string[]; tick: (ms: number) => void } {
  let t = 1000;
  const out: string[] = [];
  const d = new ProgressDisplay({ write: (s) => out.push(s), now: () => t, ...o });
  return { d, out, tick: (ms) => (t += ms) };
}

test('formatters: durations, clock, bytes, percent, bar', () => {
  assert.equal(formatDuration(12.4), '12s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(Infinity), '?');
  assert.equal(formatClock(65), '1:05');
  assert.equal(formatClock(3725), '1:02:05');
  assert.equal(formatClock(-1), '--:--');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1_234_567), '1.23 MB');
  assert.equal(formatPercent(fraction(1, 3)), ' 33%');
  assert.equal(formatPercent(fraction(7, 7)), '100%');
  assert.equal(fraction(5, 0), 0);
  assert.equal(drawBar(0.5, 10), '=====>    ');
  assert.equal(drawBar(1, 10), '==========');
  assert.equal(drawBar(0.5, 10, 'blocks'), '#####-----');
});

test('rate and ETA come from the injected clock', () => {
  const { d, tick } = fake({ mode: 'bar' });
  tick(4000);
  assert.equal(d.elapsedS(), 4);
  assert.equal(d.rate(400), 100);
  assert.equal(d.rate(400, 200), 50); // resumed units do not count
  assert.equal(etaSeconds(400, 1000, d.rate(400)), 6);
  assert.equal(etaSeconds(1000, 1000, 0), 0);
  assert.equal(etaSeconds(10, 1000, 0), Infinity);
});

test("'auto' is a bar on a terminal, lines or nothing elsewhere", () => {
  assert.equal(fake({ isTty: true }).d.kind, 'bar');
  assert.equal(fake({ isTty: false }).d.kind, 'lines');
  assert.equal(fake({ isTty: false, offTerminal: 'none' }).d.kind, 'none');
  assert.equal(fake({ isTty: true, mode: 'none' }).d.kind, 'none');
  assert.equal(fake({ isTty: false, mode: 'bar' }).d.kind, 'bar');
});

test('bar: redraws throttled unless forced; end() keeps or clears the line; notes go below', () => {
  const { d, out, tick } = fake({ mode: 'bar', redrawMs: 100 });
  assert.equal(d.redraw('a'), true);
  tick(50);
  assert.equal(d.redraw('b'), false);
  assert.equal(d.redraw('c', true), true);
  tick(100);
  d.line('only in lines mode');
  assert.equal(d.redraw('d'), true);
  d.note('saved');
  d.redraw('e', true);
  d.end();
  d.end(); // nothing drawn since: nothing written
  assert.deepEqual(out, ['\r\x1b[Ka', '\r\x1b[Kc', '\r\x1b[Kd', '\n', 'saved\n', '\r\x1b[Ke', '\n']);
  out.length = 0;
  d.redraw('f', true);
  d.end(true);
  assert.deepEqual(out, ['\r\x1b[Kf', '\r\x1b[K']);
});

test('lines and none: plain lines only when asked, nothing drawn', () => {
  const l = fake({ mode: 'lines' });
  assert.equal(l.d.redraw('x', true), false);
  l.d.line('step 1');
  l.d.note('n');
  l.d.end();
  assert.deepEqual(l.out, ['step 1\n', 'n\n']);
  const n = fake({ mode: 'none' });
  n.d.redraw('x', true);
  n.d.line('y');
  n.d.note('z');
  n.d.end();
  assert.deepEqual(n.out, []);
});
