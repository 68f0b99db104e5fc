// Path confinement: web files (readStatic) and runtime adapters (insideRoot) never leave their folder, through
// `..`, encoded separators, absolute paths or symlinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from './protocol.js';
import { insideRoot } from './registry.js';
import { readStatic } from './static.js';
import { isLoopback } from './http.js';

test('readStatic serves plain files under the root only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-static-'));
  try {
    const root = join(dir, 'web');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<p>hi</p>');
    writeFileSync(join(root, 'sub', 'a.css'), 'p{}');
    writeFileSync(join(dir, 'secret'), 'no');
    symlinkSync(join(dir, 'secret'), join(root, 'out'));
    symlinkSync(join(root, 'sub', 'a.css'), join(root, 'in.css'));
    assert.equal(readStatic(root, '')?.type, 'text/html; charset=utf-8');
    assert.equal(readStatic(root, 'sub/a.css')?.body.toString(), 'p{}');
    assert.equal(readStatic(root, 'in.css')?.body.toString(), 'p{}', 'a link inside the root is fine');
    for (const p of ['../secret', 'sub/../../secret', 'out', 'nope', 'sub/..\\..\\secret', 'x\0', join(dir, 'secret')]) assert.equal(readStatic(root, p), null, p);
    assert.equal(readStatic(join(dir, 'missing'), ''), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('insideRoot: adapters only from inside the adapters folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-confine-'));
  try {
    const root = join(dir, 'adapters');
    mkdirSync(join(root, 'ok'), { recursive: true });
    writeFileSync(join(root, 'ok', 'adapter_config.json'), '{}');
    writeFileSync(join(root, 'x.gguf'), '');
    mkdirSync(join(dir, 'evil'));
    writeFileSync(join(dir, 'evil', 'w'), '');
    symlinkSync(join(dir, 'evil'), join(root, 'link'));
    mkdirSync(join(root, 'mixed'));
    symlinkSync(join(dir, 'evil', 'w'), join(root, 'mixed', 'adapter_model.safetensors'));
    assert.equal(insideRoot(root, 'ok'), join(root, 'ok'));
    assert.equal(insideRoot(root, join(root, 'x.gguf')), join(root, 'x.gguf'));
    for (const p of ['../evil', 'link', 'mixed', 'ok/../../evil', join(dir, 'evil'), '.', 'missing', 'a\0b']) {
      assert.throws(() => insideRoot(root, p), (e: unknown) => e instanceof ApiError && e.status === 400 && e.param === 'lora_path', p);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('isLoopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.org', '128.0.0.1']) assert.ok(!isLoopback(h), h);
});
