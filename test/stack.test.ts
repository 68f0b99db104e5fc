// Stacking through the CLI: generate --recipe equals the same adapters as --lora flags; `nomoat stack` writes PEFT
// and GGUF adapters that reproduce the unmerged stack (cat) or PEFT's combination (--method); bad recipes name the
// field at fault.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { combineAdapters, loadAdapter } from '../src/lora/index.js';
import { loadModel } from '../src/models/load.js';
import { logitsOf, makeFixture, maxDiff, nomoat, ok, stackLogits, type Fixture } from './stack-helpers.js';

let fx: Fixture;
before(() => {
  fx = makeFixture('nomoat-stack-');
});
after(() => rmSync(fx.dir, { recursive: true, force: true }));

const tokens = (args: string[]): number[] => (JSON.parse(ok(['generate', '-p', 'the cat', '-n', '10', '--temp', '0', '--ignore-eos', '--json', '-t', '1', ...args]).stdout) as { tokens: number[] }).tokens;

test('generate --recipe gives the same output as the same adapters passed as --lora / --lora-scaled (negative scale)', () => {
  const viaFlags = tokens(['-m', fx.base, '--lora', fx.a, '--lora-scaled', fx.b, '-0.5']);
  const viaRecipe = tokens(['--recipe', fx.recipe]); // -m from the recipe's base, resolved against its folder
  assert.deepEqual(viaRecipe, viaFlags);
  assert.deepEqual(tokens(['-m', fx.base, '--recipe', fx.recipe]), viaFlags);
  assert.notDeepEqual(tokens(['-m', fx.base]), viaFlags, 'the adapters should change the output');
  const chat = nomoat(['chat', '--recipe', fx.recipe, '--temp', '0', '-n', '4', '-t', '1']);
  assert.equal(chat.status, 0, chat.stderr);
});

test('stack without a method writes PEFT and GGUF adapters equal to the unmerged stack (cat: ranks add up)', () => {
  const want = stackLogits(fx.base, [[fx.a, 1], [fx.b, -0.5]]);
  const peft = join(fx.dir, 'stacked');
  const gguf = join(fx.dir, 'stacked.gguf');
  const r = ok(['stack', fx.recipe, '-o', peft]);
  assert.match(r.stderr, /2 adapters → cat \(exact stack\)/);
  ok(['stack', '-m', fx.base, '--lora', fx.a, '--lora-scaled', fx.b, '-0.5', '-o', gguf]);
  const cfg = JSON.parse(readFileSync(join(peft, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.use_rslora, false);
  // q_proj (in both adapters) gets r 4 + 2; the others keep their own rank (rank_pattern), alpha = r everywhere
  const { model } = loadModel(fx.base);
  const st = loadAdapter(peft, model, { onWarning: () => {} });
  const rankOf = (m: string): number | undefined => st.modules.get(`model.layers.1.${m}`)?.r;
  assert.deepEqual([rankOf('self_attn.q_proj'), rankOf('self_attn.v_proj'), rankOf('self_attn.k_proj'), rankOf('mlp.up_proj')], [6, 4, 2, 2]);
  assert.ok([...st.modules.values()].every((m) => m.alpha === m.r && m.scaling === 1));
  st.dispose();
  model.dispose();
  for (const out of [peft, gguf]) {
    const got = stackLogits(fx.base, [[out, 1]]);
    const d = maxDiff(got, want);
    assert.ok(d < 1e-4, `${out}: max |Δlogit| ${d}`);
  }
  assert.deepEqual(tokens(['-m', fx.base, '--lora', gguf]), tokens(['--recipe', fx.recipe]));
  assert.equal(nomoat(['stack', fx.recipe, '-o', gguf]).status, 1, 'overwrote without --force');
  ok(['stack', fx.recipe, '-o', gguf, '--force', '--outtype', 'f16']);
  assert.ok(maxDiff(stackLogits(fx.base, [[gguf, 1]]), want) < 2e-2, 'f16 adapter drifted');
});

test('stack --method uses PEFT combinations (same result as combineAdapters) and the recipe\'s merge block', () => {
  const { model } = loadModel(fx.base);
  const a = loadAdapter(fx.a, model, { onWarning: () => {} });
  const b = loadAdapter(fx.b, model, { onWarning: () => {} });
  const svd = combineAdapters([a, b], 'svd', { weights: [1, -0.5], svdRank: 3 });
  svd.attach(model);
  const want = logitsOf(model);
  svd.dispose();
  model.dispose();
  const out = join(fx.dir, 'svd.gguf');
  ok(['stack', fx.recipe, '--method', 'svd', '--svd-rank', '3', '-o', out]);
  assert.ok(maxDiff(stackLogits(fx.base, [[out, 1]]), want) < 1e-4);

  const ties = join(fx.dir, 'ties-recipe.json');
  writeFileSync(ties, JSON.stringify({ base: 'base.gguf', adapters: [{ path: 'a' }, { path: 'b.gguf' }], merge: { method: 'ties_svd', density: 0.5, seed: 2 } }));
  const t1 = join(fx.dir, 't1');
  ok(['stack', ties, '-o', t1]);
  const t2 = join(fx.dir, 't2');
  ok(['stack', '-m', fx.base, '--lora', fx.a, '--lora', fx.b, '--method', 'ties_svd', '--density', '0.5', '--merge-seed', '2', '-o', t2]);
  assert.equal(maxDiff(stackLogits(fx.base, [[t1, 1]]), stackLogits(fx.base, [[t2, 1]])), 0, 'recipe and flags should give the same combination');
});

test('bad recipes and flags: the error names the field', () => {
  const bad = (name: string, v: unknown): string => {
    const p = join(fx.dir, name);
    writeFileSync(p, JSON.stringify(v));
    return p;
  };
  const cases: [string, RegExp][] = [
    [bad('r1.json', { base: 'base.gguf', adapters: [{ path: 'a' }, { path: 'b.gguf', scale: 'half' }] }), /adapters\[1\]\.scale must be a finite number/],
    [bad('r2.json', { base: 'base.gguf', adapters: [{ path: 'a' }], merge: { method: 'average' } }), /merge\.method must be one of linear\|cat/],
    [bad('r3.json', { base: 'base.gguf', adapters: [{ path: 'a' }, { path: 'a' }], merge: { method: 'ties' } }), /merge\.density is required by method "ties"/],
    [bad('r4.json', { base: 'base.gguf', adapter: [] }), /adapter is not a recipe field/],
    [bad('r5.json', { adapters: [{ path: 'a' }] }), /base must be a non-empty path string/],
  ];
  cases.forEach(([p, re], i) => {
    const runs = [['stack', p, '-o', join(fx.dir, 'never')], ['merge', p, '-o', join(fx.dir, 'never.gguf')], ['generate', '--recipe', p, '-p', 'x']];
    for (const args of i < 2 ? runs : runs.slice(0, 1)) { // every command reads recipes the same way: two cases each suffice
      const r = nomoat(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.ok(r.stderr.includes(p), `the error should name the recipe file: ${r.stderr}`);
    }
  });
  const missing = bad('r6.json', { base: 'base.gguf', adapters: [{ path: 'nope' }] });
  assert.match(nomoat(['stack', missing, '-o', join(fx.dir, 'never')]).stderr, /LoRA adapter not found: .*nope/);
  const noMethod = nomoat(['stack', fx.recipe, '--density', '0.5', '-o', join(fx.dir, 'never')]);
  assert.equal(noMethod.status, 2);
  assert.match(noMethod.stderr, /need --method/);
  const flagDensity = nomoat(['stack', fx.recipe, '--method', 'dare_ties', '-o', join(fx.dir, 'never')]);
  assert.match(flagDensity.stderr, /merge\.density is required by method "dare_ties"/);
  assert.match(nomoat(['stack', fx.recipe, '--format', 'zip', '-o', 'x']).stderr, /--format must be peft or gguf/);
});
