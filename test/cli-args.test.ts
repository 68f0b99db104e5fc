// The CLI's argument parser: typed values, repeatable flags, `--flag=value`, `--`, negative numbers, and the
// errors users see (unknown flag with a suggestion, missing values and positionals).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, editDistance, formatFlags, parseArgs, suggest, type FlagSpecs } from '../src/cli/args.js';

const FLAGS = {
  model: { kind: 'string', short: 'm', metavar: 'FILE', help: 'model' },
  'n-predict': { kind: 'int', short: 'n', help: 'tokens' },
  temp: { kind: 'number', help: 'temperature', default: 0.8 },
  json: { kind: 'boolean', help: 'json' },
  stop: { kind: 'list', help: 'stop strings' },
  'lora-scaled': { kind: 'pairs', metavar: ['FILE', 'SCALE'], help: 'adapters' },
} as const satisfies FlagSpecs;

test('parses every kind of flag and positionals', () => {
  const p = parseArgs(
    ['in.gguf', '-m', 'a.gguf', '-n', '-1', '--temp=0.5', '--json', '--stop', 'x', '--stop=y', '--lora-scaled', 'ad', '0.5', '--', '--not-a-flag'],
    FLAGS,
    [{ name: 'input', help: '' }, { name: 'extra', help: '', optional: true }],
  );
  assert.deepEqual(p.positionals, ['in.gguf', '--not-a-flag']);
  assert.equal(p.flags.model, 'a.gguf');
  assert.equal(p.flags['n-predict'], -1);
  assert.equal(p.flags.temp, 0.5);
  assert.equal(p.flags.json, true);
  assert.deepEqual(p.flags.stop, ['x', 'y']);
  assert.deepEqual(p.flags['lora-scaled'], [['ad', '0.5']]);
  const empty = parseArgs([], FLAGS);
  assert.equal(empty.flags.json, false);
  assert.deepEqual(empty.flags.stop, []);
  assert.equal(empty.flags.temp, undefined);
});

test('errors name the problem', () => {
  const err = (argv: string[], re: RegExp, pos: { name: string; help: string }[] = []): void =>
    assert.throws(() => parseArgs(argv, FLAGS, pos), (e: unknown) => e instanceof UsageError && re.test(e.message));
  err(['--tmep', '1'], /unknown flag --tmep \(did you mean --temp\?\)/);
  err(['--zzzzzzzz'], /^unknown flag --zzzzzzzz$/);
  err(['-n', '1.5'], /-n expects a whole number/);
  err(['--temp', 'hot'], /--temp expects a number/);
  err(['-m'], /-m needs a value \(FILE\)/);
  err(['--lora-scaled', 'a'], /needs two values \(FILE SCALE\)/);
  err(['--json=1'], /takes no value/);
  err([], /missing INPUT/, [{ name: 'input', help: '' }]);
  err(['a', 'b'], /unexpected argument "b"/, [{ name: 'input', help: '' }]);
});

test('suggestions and help table', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(suggest('genrate', ['generate', 'chat']), 'generate');
  assert.equal(suggest('xyz', ['generate', 'chat']), null);
  const help = formatFlags(FLAGS);
  assert.match(help, /-m, --model FILE\s+model/);
  assert.match(help, /--stop VALUE\s+stop strings \(repeatable\)/);
  assert.match(help, /--temp VALUE\s+temperature \(default: 0\.8\)/);
  assert.match(help, /--lora-scaled FILE SCALE/);
});
