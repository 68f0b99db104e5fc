// Conformance properties of memory and threads: alloc is zero-filled (recycled memory too), allocUninit hands out
// writable buffers that count and free like alloc's (and alloc after it is still zero-filled), free detaches,
// liveBytes counts exactly what is held, setThreads/getThreads round-trip.

import assert from 'node:assert/strict';
import type { Backend } from '../backend.js';
import type { Case, CaseGenerator } from './case.js';

const property = (name: string, check: (be: Backend) => void): Case => ({ kind: 'property', name, check });

const ALLOC_SIZES = [1, 3, 7, 17, 257, 100003];

export const allocCases: CaseGenerator = () => [
  property('alloc(n) has n elements, all zero, and adds n · element size to liveBytes', (be) => {
    for (const n of ALLOC_SIZES) {
      const before = be.liveBytes();
      const b = be.alloc(n);
      try {
        assert.ok(b instanceof Float32Array || b instanceof Float64Array, 'a Float32Array or Float64Array');
        assert.equal(b.length, n);
        assert.ok(b.every((x) => x === 0), `alloc(${n}) is not zero-filled`);
        assert.equal(be.liveBytes() - before, n * b.BYTES_PER_ELEMENT);
      } finally {
        be.free(b);
      }
    }
  }),
  property('memory handed out again after free is zero-filled', (be) => {
    for (let round = 0; round < 4; round++) {
      const b = be.alloc(1024);
      const zero = b.every((x) => x === 0);
      b.fill(round + 1);
      be.free(b);
      assert.ok(zero, `round ${round}: alloc(1024) after freeing a filled buffer of that size is not zero-filled`);
    }
  }),
];

export const allocUninitCases: CaseGenerator = () => [
  property('allocUninit(n) has n writable elements, adds n · element size to liveBytes and frees like alloc', (be) => {
    for (const n of ALLOC_SIZES) {
      const before = be.liveBytes();
      const b = be.allocUninit(n);
      try {
        assert.ok(b instanceof Float32Array || b instanceof Float64Array, 'a Float32Array or Float64Array');
        assert.equal(b.length, n);
        assert.equal(be.liveBytes() - before, n * b.BYTES_PER_ELEMENT);
        b.fill(2.5);
        assert.ok(b.every((x) => x === 2.5), `allocUninit(${n}) is not writable`);
      } finally {
        be.free(b);
      }
      assert.equal(be.liveBytes(), before);
      assert.equal(b.length, 0, 'a freed allocUninit buffer still has elements');
    }
  }),
  property('alloc after freeing a filled allocUninit buffer of the same size is still zero-filled', (be) => {
    for (let round = 0; round < 4; round++) {
      const u = be.allocUninit(1024);
      u.fill(round + 1);
      be.free(u);
      const b = be.alloc(1024);
      const zero = b.every((x) => x === 0);
      be.free(b);
      assert.ok(zero, `round ${round}: alloc(1024) returned a recycled block without zeroing it`);
    }
  }),
];

export const freeCases: CaseGenerator = () => [
  property('free returns the bytes and detaches the buffer (length 0)', (be) => {
    const before = be.liveBytes();
    const bufs = ALLOC_SIZES.map((n) => be.alloc(n));
    for (const b of bufs.reverse()) be.free(b);
    assert.equal(be.liveBytes(), before);
    assert.ok(bufs.every((b) => b.length === 0), 'a freed buffer still has elements');
  }),
];

export const liveBytesCases: CaseGenerator = () => [
  property('liveBytes follows interleaved allocs and frees exactly', (be) => {
    const before = be.liveBytes();
    const a = be.alloc(100);
    const b = be.alloc(7);
    const per = a.BYTES_PER_ELEMENT;
    assert.equal(be.liveBytes() - before, 107 * per);
    be.free(a);
    assert.equal(be.liveBytes() - before, 7 * per);
    const c = be.alloc(33);
    assert.equal(be.liveBytes() - before, 40 * per);
    be.free(b);
    be.free(c);
    assert.equal(be.liveBytes(), before);
  }),
];

/** Threads: at least one; a request for k gives between 1 and k; 1 gives exactly 1. The setting is restored. */
function threadProperty(be: Backend): void {
  const original = be.getThreads();
  try {
    assert.ok(Number.isInteger(original) && original >= 1, `getThreads() = ${original}`);
    be.setThreads(1);
    assert.equal(be.getThreads(), 1);
    be.setThreads(2);
    const two = be.getThreads();
    assert.ok(two === 1 || two === 2, `after setThreads(2), getThreads() = ${two}`);
  } finally {
    be.setThreads(original);
  }
  assert.equal(be.getThreads(), original);
}

export const setThreadsCases: CaseGenerator = () => [property('setThreads(k) then getThreads() ∈ [1, k]', threadProperty)];
export const getThreadsCases: CaseGenerator = () => [property('getThreads() ≥ 1 and restores', threadProperty)];
