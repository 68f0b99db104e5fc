// The download bar: a line per 10 % into a pipe, a throttled redraw on a terminal, on an injected clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressBar } from './progress.js';

function stream(isTTY: boolean): { s: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  return { s: { isTTY, write: (x: string) => written.push(x) } as unknown as NodeJS.WriteStream, written };
}

test('download progress: a line per decile off a terminal, with rate and ETA', () => {
  let t = 0;
  const { s, written } = stream(false);
  const dl = new ProgressBar('m.gguf', 1_000_000, 0, s, () => t);
  t = 1000;
  dl.update(250_000);
  dl.update(260_000); // same decile: no line
  t = 2000;
  dl.update(500_000);
  assert.deepEqual(written, [
    'm.gguf  [######------------------]  25%  250 kB/1.00 MB  250 kB/s  ETA 0:03\n',
    'm.gguf  [############------------]  50%  500 kB/1.00 MB  250 kB/s  ETA 0:02\n',
  ]);
});

test('download progress: on a terminal, redraws at most every 100 ms and finishes the line; resumed bytes not in the rate', () => {
  let t = 0;
  const { s, written } = stream(true);
  const dl = new ProgressBar('m.gguf', 1_000_000, 500_000, s, () => t);
  t = 1000;
  dl.update(600_000);
  t = 1050;
  dl.update(700_000); // throttled
  t = 2000;
  dl.update(1_000_000, true);
  assert.deepEqual(written, [
    '\r\x1b[Km.gguf  [##############----------]  60%  600 kB/1.00 MB  100 kB/s  ETA 0:04',
    '\r\x1b[Km.gguf  [########################] 100%  1.00 MB/1.00 MB  250 kB/s  ETA 0:00',
    '\n',
  ]);
});
