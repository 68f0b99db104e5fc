// The README's TypeScript blocks run as written (taken from README.md, not copied here): the engine example trains
// through the package's name and frees what it says it frees; the OpenAI client example streams from a real server
// (only its baseURL rewritten to the test's port); both type-check as written. Every `nomoat <command>` the README names is in the command table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { COMMANDS } from '../src/cli/commands.js';
import { createServer, crossEntropy, getBackend, linear, loadModel, rmsnorm, ServeEngine, Tensor, tidy, type AdamW } from '../src/index.js';
import { LoraAdapter, savePeftAdapter } from '../src/lora/index.js';
import { randomize } from './lora-helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
// inside the package, so that `import ... from 'nomoat'` resolves to this build (package.json "exports")
const BLOCKS_DIR = join(ROOT, 'dist', 'test', 'readme-blocks');

/** The README's fenced blocks of one language, in order. */
function fences(lang: string): string[] {
  return [...README.matchAll(/^```(\S*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === lang).map((m) => m[2]);
}

/** A README block as an ES module in dist/test/readme-blocks (types stripped only, nothing else changed), plus `tail`. */
function writeBlock(name: string, source: string, tail = ''): string {
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  mkdirSync(BLOCKS_DIR, { recursive: true });
  const path = join(BLOCKS_DIR, `${name}.mjs`);
  writeFileSync(path, js + tail);
  return path;
}

function block(marker: string): string {
  const found = fences('ts').filter((b) => b.includes(marker));
  assert.equal(found.length, 1, `one ts block in README.md with ${marker}`);
  return found[0];
}

test('the README has two TypeScript blocks, and this test runs both', () => {
  assert.equal(fences('ts').length, 2, 'a new ts block in README.md needs a test here');
});

test('both blocks type-check as written (strict, against this build\'s declarations of nomoat and openai\'s)', () => {
  mkdirSync(BLOCKS_DIR, { recursive: true });
  const files = fences('ts').map((b, i) => {
    const path = join(BLOCKS_DIR, `check-${i}.mts`);
    writeFileSync(path, b);
    return path;
  });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'], types: ['node'], strict: true, skipLibCheck: true, noEmit: true, esModuleInterop: true,
  });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
  assert.deepEqual(errors, []);
});

test('README engine example, as written, trains and frees what tidy() says it frees', async () => {
  const before = getBackend().liveBytes();
  // the block's top-level w and opt, exported so the test can measure and free them
  const path = writeBlock('engine', block("from 'nomoat'"), '\nexport { w, opt };\n');
  const mod = (await import(pathToFileURL(path).href)) as { w: Tensor; opt: AdamW };
  // the README's data and loss, with the weights it trained: ln 16 ≈ 2.77 at the start (w ~ 0.1)
  const lossOf = (w: Tensor): number => tidy(() => {
    const x = Tensor.from(Array.from({ length: 4 * 8 }, (_, i) => Math.sin(i)), [4, 8]);
    return crossEntropy(linear(rmsnorm(x, Tensor.full([8], 1), 1e-5), w), new Int32Array([1, 2, 3, -100])).item();
  });
  const trained = lossOf(mod.w);
  assert.ok(trained < 1, `loss after the README's 100 steps: ${trained}`);
  // only w (kept) and the optimizer's state outlive the loop
  mod.opt.dispose();
  mod.w.dispose();
  assert.equal(getBackend().liveBytes(), before);
});

test('README OpenAI client example, as written, streams a reply from createServer (model "demo")', async () => {
  const source = block("from 'openai'");
  const readmeUrl = 'http://127.0.0.1:8080/v1';
  assert.equal(source.split(readmeUrl).length, 2, `the block's baseURL is ${readmeUrl}`);
  const dir = mkdtempSync(join(tmpdir(), 'nomoat-readme-'));
  const { model, tokenizer } = loadModel(join(ROOT, 'assets', 'default-model'));
  assert.ok(tokenizer);
  // "demo" as `nomoat serve --lora demo=nomoat-demo/adapter` names it: here a random adapter (B ≠ 0)
  const adapter = randomize(LoraAdapter.create(model, { r: 4, loraAlpha: 8, targetModules: 'all-linear' }, { seed: 1, name: 'demo' }), 7, 0.2);
  savePeftAdapter(adapter, join(dir, 'demo'));
  adapter.dispose();
  const server = createServer({
    engine: new ServeEngine(model, tokenizer, { parallel: 1, contextSize: 256 }), modelId: 'default-model', port: 0,
    loras: [{ name: 'demo', path: join(dir, 'demo') }], log: () => {},
  });
  try {
    const url = await server.listen();
    const path = writeBlock('serve', source.replace(readmeUrl, `${url}/v1`));
    // a child process: the block writes to process.stdout, and this process must stay free to serve it
    const child = spawn(process.execPath, [path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err);
    assert.ok(out.trim().length > 0, 'no text streamed');
  } finally {
    await server.close();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every `nomoat <command>` the README names is in the CLI\'s command table', () => {
  const names = new Set(COMMANDS.map((c) => c.name));
  const named: [string, string | undefined][] = [];
  // command lines in sh blocks (also after && or |) and inline code spans
  for (const b of fences('sh')) for (const m of b.matchAll(/(?:^|&&|\|)\s*nomoat ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/gm)) named.push([m[1], m[2]]);
  for (const m of README.matchAll(/`nomoat ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) named.push([m[1], m[2]]);
  assert.ok(named.length >= 10, `found ${named.length}`);
  for (const [w1, w2] of named) {
    assert.ok(names.has(w1) || names.has(`${w1} ${w2}`), `README names "nomoat ${w1}${w2 ? ` ${w2}` : ''}", not a command (src/cli/commands.ts)`);
  }
});
