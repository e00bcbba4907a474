// The option names replaced by the unit rule (durations in ms, names ending in Ms) keep
// working: the value is taken in its old unit, and each old name warns once per process
// with its own code. Its own file: warnings are once per process, and no other test here
// may have used an old name first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveLockOptions, resolveOptions, resolveSingletonOptions } from '../../src/api/options.js';

const warnings: (Error & { code?: string })[] = [];
process.on('warning', (w) => warnings.push(w));

/** Warnings are emitted on the next tick: collect what `fn` caused. */
async function warned(fn: () => void): Promise<(Error & { code?: string })[]> {
  const from = warnings.length;
  fn();
  await new Promise((r) => setImmediate(r));
  return warnings.slice(from);
}

test('the new names warn about nothing', async () => {
  const got = await warned(() => {
    resolveOptions('a:1', { ttl: 9, renewDeadlineMs: 5000, keepaliveIntervalMs: 1000, stopTimeoutMs: 2000 });
    resolveSingletonOptions('x', { checkIntervalMs: 200 });
    resolveLockOptions('x', { timeoutMs: 20 });
  });
  assert.deepEqual(got, []);
});

const CASES: { old: string; now: string; code: string; use: () => number; expect: number }[] = [
  {
    old: 'renewDeadline',
    now: 'renewDeadlineMs',
    code: 'LOCKED_DEP001',
    use: () => resolveOptions('a:1', { ttl: 9, renewDeadline: 5 }).renewDeadlineMs,
    expect: 5000,
  },
  {
    old: 'keepaliveInterval',
    now: 'keepaliveIntervalMs',
    code: 'LOCKED_DEP002',
    use: () => resolveOptions('a:1', { ttl: 9, keepaliveInterval: 1.5 }).keepaliveIntervalMs,
    expect: 1500,
  },
  {
    old: 'stopTimeout',
    now: 'stopTimeoutMs',
    code: 'LOCKED_DEP003',
    use: () => resolveOptions('a:1', { stopTimeout: 2.5 }).stopTimeoutMs,
    expect: 2500,
  },
  {
    old: 'checkInterval',
    now: 'checkIntervalMs',
    code: 'LOCKED_DEP004',
    use: () => resolveSingletonOptions('x', { checkInterval: 250 }).checkIntervalMs,
    expect: 250,
  },
  { old: 'timeout', now: 'timeoutMs', code: 'LOCKED_DEP005', use: () => resolveLockOptions('x', { timeout: 30 }).timeoutMs!, expect: 30 },
];

for (const { old, now, code, use, expect } of CASES) {
  test(`${old} still works, in its old unit, and warns once (${code}) naming ${now}`, async () => {
    const values: number[] = [];
    const got = await warned(() => {
      values.push(use());
      values.push(use());
    });
    assert.deepEqual(values, [expect, expect]);
    assert.equal(got.length, 1, `one warning for two uses, got ${got.map((w) => w.message).join(' | ')}`);
    const w = got[0]!;
    assert.equal(w.name, 'DeprecationWarning');
    assert.equal(w.code, code);
    assert.match(w.message, new RegExp(`options\\.${old} is deprecated: use ${now}\\b`));
    // Once per process: a third use, later, says nothing more.
    assert.deepEqual(await warned(() => void use()), []);
  });
}

test('an old name keeps its old errors: unit and names as the caller wrote them', () => {
  assert.throws(
    () => resolveOptions('a:1', { ttl: 9, renewDeadline: 9 }),
    /^RangeError: options\.renewDeadline must be a number of seconds with keepaliveInterval \(3\) < renewDeadline < ttl \(9\), got 9$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { ttl: 9, keepaliveInterval: 4 }),
    /^RangeError: options\.keepaliveInterval must be a number of seconds in \(0, ttl\/3 = 3\], got 4$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { stopTimeout: -1 }),
    /^RangeError: options\.stopTimeout must be a finite number of seconds ≥ 0, got -1$/,
  );
  assert.throws(
    () => resolveSingletonOptions('x', { checkInterval: 10 }),
    /^RangeError: options\.checkInterval of 'x' must be a number of milliseconds ≥ 100, got 10$/,
  );
  assert.throws(
    () => resolveLockOptions('x', { timeout: -1 }),
    /^RangeError: options\.timeout of lock\('x'\) must be a finite number of milliseconds ≥ 0, got -1$/,
  );
});
