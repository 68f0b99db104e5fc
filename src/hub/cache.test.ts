// Where the cache and the token are found (huggingface_hub's constants.py order), and the refs/links writers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedCommit, hubCacheDir, hubOffline, hubToken, linkSnapshotFile, repoFolder, snapshotFiles, writeRef } from './cache.js';

test('cache folder, offline flag and token follow huggingface_hub\'s environment variables', () => {
  assert.equal(hubCacheDir({}), join(homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  assert.equal(hubCacheDir({ HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), '/h/hub');
  assert.equal(hubCacheDir({ HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/legacy' }), '/legacy');
  assert.equal(hubCacheDir({ HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HUB_CACHE: '/c' }), '/c');
  for (const v of ['1', 'true', 'YES', 'on']) assert.equal(hubOffline({ HF_HUB_OFFLINE: v }), true, v);
  for (const v of ['', '0', 'false']) assert.equal(hubOffline({ HF_HUB_OFFLINE: v }), false, v);
  const home = mkdtempSync(join(tmpdir(), 'nomoat-hftoken-'));
  try {
    assert.equal(hubToken({ HF_HOME: home }), undefined);
    writeFileSync(join(home, 'token'), 'hf_saved\n');
    assert.equal(hubToken({ HF_HOME: home }), 'hf_saved');
    assert.equal(hubToken({ HF_HOME: home, HF_TOKEN: 'hf_env' }), 'hf_env');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('refs and snapshot links as huggingface_hub writes them; a dangling link is not a cached file', () => {
  const cache = mkdtempSync(join(tmpdir(), 'nomoat-hfcache-'));
  try {
    const folder = repoFolder('org/m', cache);
    assert.equal(folder, join(cache, 'models--org--m'));
    const commit = 'a'.repeat(40);
    writeRef(folder, 'main', commit);
    assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), commit);
    assert.equal(cachedCommit(folder, 'main'), commit);
    assert.equal(cachedCommit(folder, 'dev'), null);
    mkdirSync(join(folder, 'blobs'));
    const p = linkSnapshotFile(folder, commit, 'sub/dir/f.json', 'e1');
    assert.equal(readlinkSync(p), '../../../../blobs/e1');
    assert.deepEqual(snapshotFiles(join(folder, 'snapshots', commit)), []); // blob e1 absent
    writeFileSync(join(folder, 'blobs', 'e1'), '{}');
    assert.deepEqual(snapshotFiles(join(folder, 'snapshots', commit)), ['sub/dir/f.json']);
    assert.equal(cachedCommit(folder, commit), commit);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
