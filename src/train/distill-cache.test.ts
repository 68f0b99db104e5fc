// The teacher cache: written once, read back equal row by row, refused when stale, truncated or not a cache, and
// never left half-written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../engine/rng.js';
import type { Row } from './batching.js';
import { concatTeachers, readCacheHeader, rowsFingerprint, TeacherCache, tokenizerFingerprint, writeTeacherCache, type CacheHeader } from './distill-cache.js';
import { sparseTopK, type SparseTeacher } from './distill-loss.js';

const V = 20;
const K = 4;

function rows(n: number, seed: number): Row[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const T = 3 + i;
    const ids = Int32Array.from({ length: T }, () => rng.int(V));
    const labels = Int32Array.from({ length: T }, (_, t) => (t % 3 === 0 ? -100 : rng.int(V)));
    return { ids, labels };
  });
}

/** A deterministic fake teacher: logits from a hash of (row contents, position). */
function score(chunk: readonly Row[]): SparseTeacher[] {
  return chunk.map((r) => {
    const logits = Array.from({ length: r.ids.length * V }, (_, i) => Math.sin(i * 1.7 + r.ids[Math.floor(i / V)] * 0.3) * 3);
    return sparseTopK(logits, V, r.labels, K, 2);
  });
}

const header = (rs: Row[]): Omit<CacheHeader, 'version' | 'rows'> => ({
  teacher: 'tiny (test)', teacherId: 'abc', tokenizer: tokenizerFingerprint({ vocabSize: V, idToToken: (i) => `t${i}` }), data: rowsFingerprint(rs), vocabSize: V, k: K, temperature: 2,
});

test('teacher cache: rows read back equal to what the teacher scored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-tcache-'));
  try {
    const rs = rows(7, 1);
    const path = join(dir, 'teacher.bin');
    const h = writeTeacherCache(path, header(rs), rs, score, 3);
    assert.equal(h.rows, 7);
    assert.deepEqual(readdirSync(dir), ['teacher.bin'], 'no temporary file left');
    const c = TeacherCache.open(path, { ...header(rs), rows: rs.length });
    const want = score(rs);
    for (let r = 0; r < rs.length; r++) {
      const got = c.read(r);
      assert.deepEqual([...got.ids], [...want[r].ids], `row ${r} ids`);
      assert.deepEqual([...got.logp], [...want[r].logp], `row ${r} log-probs`);
      assert.equal(c.positions(r), got.ids.length / K);
    }
    const both = concatTeachers([c.read(2), c.read(0)], K);
    assert.deepEqual([...both.ids], [...want[2].ids, ...want[0].ids]);
    assert.throws(() => c.read(7), /outside the cache's 7 rows/);
    c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('teacher cache: a stale header is refused, naming what changed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-tcache-'));
  try {
    const rs = rows(3, 2);
    const path = join(dir, 'teacher.bin');
    writeTeacherCache(path, header(rs), rs, score);
    const ok = { ...header(rs), rows: rs.length };
    assert.throws(() => TeacherCache.open(path, { ...ok, teacherId: 'other', teacher: 'big' }), /stale teacher cache: the teacher \(cached for tiny \(test\), now big\) changed/);
    assert.throws(() => TeacherCache.open(path, { ...ok, tokenizer: tokenizerFingerprint({ vocabSize: V, idToToken: (i) => `u${i}` }) }), /the tokenizer changed/);
    assert.throws(() => TeacherCache.open(path, { ...ok, data: rowsFingerprint(rows(3, 9)) }), /the training rows changed/);
    assert.throws(() => TeacherCache.open(path, { ...ok, k: 8 }), /k changed \(4 → 8\)/);
    assert.throws(() => TeacherCache.open(path, { ...ok, temperature: 1 }), /temperature changed/);
    TeacherCache.open(path, ok).close();
    const bytes = readFileSync(path);
    truncateSync(path, bytes.length - 3);
    assert.throws(() => readCacheHeader(path), /truncated or corrupt/);
    writeFileSync(path, 'hello world, not a cache');
    assert.throws(() => readCacheHeader(path), /not a nomoat teacher cache/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('teacher cache: a failing teacher leaves no file behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-tcache-'));
  try {
    const rs = rows(5, 3);
    const path = join(dir, 'teacher.bin');
    let calls = 0;
    assert.throws(() => writeTeacherCache(path, header(rs), rs, (c) => {
      if (++calls === 2) throw new Error('teacher fell over');
      return score(c);
    }, 2), /teacher fell over/);
    assert.equal(existsSync(path), false);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
