// The data tools' byte progress: MB done, MB/s and ETA on an injected clock, redrawn at most every 200 ms.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteProgress } from './progress.js';

test('byte progress: rate and ETA from the clock, throttled redraws, end() clears, silent off a terminal', () => {
  let t = 0;
  const out: string[] = [];
  const bytes = new ByteProgress('scan', 48e6, { mode: 'bar', write: (s) => out.push(s), now: () => t });
  t = 2000;
  bytes.add(12e6); // 6 MB/s, 36 MB left: 6 s
  assert.deepEqual(out, ['\r\x1b[Kscan [======>                 ] 12.0/48.0 MB 6.0 MB/s ETA 6s']);
  t = 2100;
  bytes.add(1e6); // within 200 ms: not redrawn
  assert.equal(out.length, 1);
  bytes.end();
  assert.equal(out[1], '\r\x1b[K');

  const quiet: string[] = [];
  const off = new ByteProgress('scan', 10, { write: (s) => quiet.push(s), isTty: false });
  off.add(5);
  off.end();
  assert.deepEqual(quiet, []);
});
