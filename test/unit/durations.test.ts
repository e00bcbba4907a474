// Durations as etcdctl and consul users type them (Go's time.ParseDuration form), and
// plain seconds; anything else is a usage error naming the flag and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/cli/messages.js';
import { duration, parseDuration } from '../../src/cli/flags.js';

test("Go's form, compound ones included, and plain seconds: in milliseconds", () => {
  const good: [string, number][] = [
    ['10', 10_000],
    ['2.5', 2_500],
    ['0', 0],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3.5s', 3_723_500],
    ['1.5h', 5_400_000],
    ['2s500ms', 2_500],
    ['1500000us', 1_500],
    ['1500000µs', 1_500],
    ['2000000000ns', 2_000],
    [' 30s ', 30_000],
  ];
  for (const [text, ms] of good) assert.equal(parseDuration(text), ms, text);
});

test('a sign, another base, an exponent, a space inside, an unknown unit or a bare unit is not a duration', () => {
  for (const bad of [
    '',
    '-1',
    '-1s',
    '+5s',
    '0x10',
    '1e3',
    '10 s',
    '1m 30s',
    '1d',
    '1w',
    's',
    'ms',
    '1.2.3s',
    '1m30',
    'm30s',
    '10S',
    '1h-2m',
    'Infinity',
    'NaN',
  ]) {
    assert.ok(Number.isNaN(parseDuration(bad)), `'${bad}' gave ${parseDuration(bad)}`);
  }
});

test('duration(): the fallback when not given; a usage error naming the flag (or variable), the minimum and the value', () => {
  assert.equal(duration('--grace', undefined, 10_000, 'run'), 10_000);
  assert.equal(duration('--grace', '1m30s', 10_000, 'run'), 90_000);
  assert.throws(
    () => duration('--wait', '1m30', 0, 'run'),
    (e: unknown) =>
      e instanceof UsageError &&
      e.command === 'run' &&
      e.message === "--wait must be a duration such as 500ms, 10s, 1m30s or plain seconds, got '1m30'",
  );
  assert.throws(
    () => duration('LOCKED_TTL', '1500ms', 10_000, 'once', 2_000),
    /^UsageError: LOCKED_TTL must be a duration ≥ 2s .*got '1500ms'$/,
  );
  assert.throws(() => duration('--timeout', '0s', 0, 'status', 1), /--timeout must be a duration ≥ 1ms/);
});
