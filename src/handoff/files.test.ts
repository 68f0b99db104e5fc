// writeFolderAtomic: a folder appears whole or not at all, an existing one is kept unless forced.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFolderAtomic } from './files.js';

test('a failed fill leaves neither the folder nor its temp; an existing folder is refused, or replaced whole with force', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-files-'));
  try {
    const out = join(dir, 'out');
    assert.throws(() => writeFolderAtomic(out, false, (tmp) => {
      writeFileSync(join(tmp, 'half'), 'x');
      throw new Error('disk full');
    }), /disk full/);
    assert.deepEqual(readdirSync(dir), [], 'nothing left behind');
    writeFolderAtomic(out, false, (tmp) => writeFileSync(join(tmp, 'a'), '1'));
    assert.throws(() => writeFolderAtomic(out, false, () => undefined), /exists; pass --force/);
    assert.throws(() => writeFolderAtomic(out, true, () => {
      throw new Error('no');
    }), /no/);
    assert.equal(readFileSync(join(out, 'a'), 'utf8'), '1', 'a failed replacement keeps the old folder');
    writeFolderAtomic(out, true, (tmp) => writeFileSync(join(tmp, 'b'), '2'));
    assert.ok(!existsSync(join(out, 'a')) && readFileSync(join(out, 'b'), 'utf8') === '2');
    assert.deepEqual(readdirSync(dir), ['out']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
