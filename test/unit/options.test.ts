// Bad input gets a clear synchronous error naming the argument and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import locked from '../../src/index.js';
import type {
  DrainOptions,
  FailoverOptions,
  LockOptions,
  LockerOptions,
  OnceOptions,
  SignalOption,
  SingletonOptions,
} from '../../src/index.js';
import { systemClock } from '../../src/core/clock.js';
import {
  DRAIN_SCHEMA,
  FAILOVER_SCHEMA,
  LOCKER_SCHEMA,
  LOCK_SCHEMA,
  ONCE_SCHEMA,
  SINGLETON_SCHEMA,
  TRY_LOCK_SCHEMA,
  UNDRAIN_SCHEMA,
  resolveDrainOptions,
  resolveFailoverOptions,
  resolveLockOptions,
  resolveOptions,
  resolveRunOnceOptions,
  resolveSingletonOptions,
  resolveTryLockOptions,
  resolveUndrainOptions,
} from '../../src/api/options.js';
import type { Schema } from '../../src/api/options-schema.js';
import { electionKey, leaseHex, nameOf, prefixEnd } from '../../src/etcd/keys.js';

const noSignals = { handleSignals: false } as const;

test('hosts: missing or empty is a TypeError; strings and arrays are accepted, http:// added', () => {
  for (const bad of [undefined, null, '', ' , ', [], [''], 42, [7]]) {
    assert.throws(() => resolveOptions(bad), TypeError, `hosts ${String(bad)}`);
  }
  assert.deepEqual(resolveOptions('a:1, b:2').hosts, ['http://a:1', 'http://b:2']);
  assert.deepEqual(resolveOptions(['https://a:1']).hosts, ['https://a:1']);
  assert.throws(() => resolveOptions(''), /hosts must name at least one etcd endpoint, got ''/);
});

test('TLS to an IP address: a TypeError naming the host on Node ≥ 26 (grpc-js would never connect), accepted before', () => {
  const creds = { etcd: { credentials: { rootCertificate: Buffer.from('x') } } };
  const major = Number(process.versions.node.split('.')[0]);
  for (const [hosts, opts] of [
    ['127.0.0.1:2379', creds],
    ['https://[::1]:2379', {}],
    ['https://127.0.0.2:2379', {}],
  ] as const) {
    if (major >= 26)
      assert.throws(
        () => resolveOptions(hosts, opts),
        /hosts: TLS to an IP address cannot work on Node .*(127\.0\.0\.1|\[::1\]|127\.0\.0\.2)/,
      );
    else assert.doesNotThrow(() => resolveOptions(hosts, opts));
  }
  // By name, or without TLS, every line is fine.
  assert.doesNotThrow(() => resolveOptions('https://localhost:2379'));
  assert.doesNotThrow(() => resolveOptions('localhost:2379', creds));
  assert.doesNotThrow(() => resolveOptions('127.0.0.1:2379'));
});

test('ttl: not a whole number ≥ 2 is a RangeError naming the value; not a number is a TypeError', () => {
  for (const bad of [0, 1, 1.5, 2.5, -3, NaN, Infinity]) {
    assert.throws(() => resolveOptions('a:1', { ttl: bad }), RangeError, `ttl ${String(bad)}`);
  }
  assert.throws(() => resolveOptions('a:1', { ttl: '10' as unknown as number }), TypeError);
  assert.throws(() => resolveOptions('a:1', { ttl: '10' as unknown as number }), /options\.ttl must be a number, got string \('10'\)$/);
  assert.throws(() => resolveOptions('a:1', { ttl: 1 }), /options\.ttl .* got 1$/);
  assert.equal(resolveOptions('a:1', { ttl: 2 }).ttl, 2);
});

test('timings are validated against each other: keepaliveInterval < renewDeadline < ttl, interval ≤ ttl/3', () => {
  const d = resolveOptions('a:1', { ttl: 9 });
  assert.equal(d.renewDeadlineMs, 6000);
  assert.equal(d.keepaliveIntervalMs, 3000);
  assert.throws(() => resolveOptions('a:1', { ttl: 9, renewDeadline: 9 }), /renewDeadline .* < ttl \(9\), got 9/);
  assert.throws(() => resolveOptions('a:1', { ttl: 9, renewDeadline: 2 }), /keepaliveInterval \(3\) < renewDeadline/);
  assert.throws(() => resolveOptions('a:1', { ttl: 9, keepaliveInterval: 4 }), /keepaliveInterval .* \(0, ttl\/3 = 3\], got 4/);
  assert.throws(() => resolveOptions('a:1', { ttl: 9, keepaliveInterval: 0 }), RangeError);
  assert.equal(resolveOptions('a:1', { ttl: 9, keepaliveInterval: 1, renewDeadline: 8 }).renewDeadlineMs, 8000);
});

test('names: not a string, empty, over 256 characters or with a "/" is a TypeError naming the value', async () => {
  const locker = locked('127.0.0.1:1', noSignals);
  const fn = (): void => {};
  try {
    assert.throws(() => locker(42 as unknown as string, fn), /name must be a string, got number \(42\)/);
    assert.throws(() => locker('', fn), /name must not be empty/);
    assert.throws(() => locker('x'.repeat(257), fn), /at most 256 characters, got 257/);
    assert.throws(() => locker('a/b', fn), /must not contain '\/', got 'a\/b'/);
    assert.throws(() => locker('ok', 'nope' as unknown as () => void), /fn for 'ok' must be a function, got string/);
    assert.deepEqual(Object.keys(locker.singletons()), [], 'nothing registered by failed calls');
  } finally {
    await locker.close();
  }
});

test('registering a name twice on one locker is an Error', async () => {
  const locker = locked('127.0.0.1:1', { ...noSignals, id: 'me' });
  try {
    locker('build', () => {});
    assert.throws(() => locker('build', () => {}), /'build' is already registered on this locker \(id me\)/);
  } finally {
    await locker.close();
  }
});

test("key layout is etcd's election protocol: <prefix><name>/<lease id in lowercase hex>", () => {
  assert.equal(leaseHex('7587869343212843269'), '694d86f724473105');
  assert.equal(electionKey('locked/', 'build', '7587869343212843269'), 'locked/build/694d86f724473105');
  assert.equal(nameOf('locked/', 'locked/build/694d86f724473105'), 'build');
  assert.equal(nameOf('locked/', 'locked/build'), undefined, 'a key without "/" after the name is no candidate');
  assert.equal(nameOf('locked/', 'other/build/1'), undefined);
  assert.equal(prefixEnd('locked/build/').toString(), 'locked/build0');
});

test('options: id defaults to a fresh nanoid, and an empty id is refused', () => {
  const a = resolveOptions('a:1').id;
  const b = resolveOptions('a:1').id;
  assert.notEqual(a, b);
  assert.ok(a.length >= 10);
  assert.throws(() => resolveOptions('a:1', { id: '' }), /options\.id must be a non-empty string, got ''/);
});

// ——— one options module: every bag validated the same way ———

/** Every bag: its schema, how the API resolves it, and every key of its public type (checked by the compiler). */
const BAGS: { bag: string; schema: Schema; resolve: (o: unknown) => unknown; keys: Record<string, true> }[] = [
  {
    bag: 'locked(hosts, options)',
    schema: LOCKER_SCHEMA,
    resolve: (o) => resolveOptions('a:1', o as LockerOptions),
    keys: {
      id: true,
      ttl: true,
      renewDeadlineMs: true,
      renewDeadline: true,
      keepaliveIntervalMs: true,
      keepaliveInterval: true,
      prefix: true,
      handleSignals: true,
      stopTimeoutMs: true,
      stopTimeout: true,
      balance: true,
      weight: true,
      zone: true,
      prefer: true,
      etcd: true,
      clock: true,
    } satisfies Record<keyof LockerOptions, true>,
  },
  {
    bag: 'locker(name, fn, options)',
    schema: SINGLETON_SCHEMA,
    resolve: (o) => resolveSingletonOptions('x', o),
    keys: { healthy: true, checkIntervalMs: true, checkInterval: true, prefer: true } satisfies Record<keyof SingletonOptions, true>,
  },
  {
    bag: 'lock',
    schema: LOCK_SCHEMA,
    resolve: (o) => resolveLockOptions('x', o),
    keys: { timeoutMs: true, timeout: true, signal: true } satisfies Record<keyof LockOptions, true>,
  },
  {
    bag: 'tryLock',
    schema: TRY_LOCK_SCHEMA,
    resolve: (o) => resolveTryLockOptions('x', o),
    keys: { signal: true } satisfies Record<keyof SignalOption, true>,
  },
  {
    bag: 'failover',
    schema: FAILOVER_SCHEMA,
    resolve: (o) => resolveFailoverOptions('x', o, 10),
    keys: { to: true, force: true, timeoutMs: true, signal: true } satisfies Record<keyof FailoverOptions, true>,
  },
  {
    bag: 'drain',
    schema: DRAIN_SCHEMA,
    resolve: (o) => resolveDrainOptions(o),
    keys: { nodeId: true, onMove: true, force: true, signal: true } satisfies Record<keyof (DrainOptions & { nodeId?: string }), true>,
  },
  {
    bag: 'undrain',
    schema: UNDRAIN_SCHEMA,
    resolve: (o) => resolveUndrainOptions(o),
    keys: { nodeId: true, force: true, signal: true } satisfies Record<keyof (SignalOption & { nodeId?: string; force?: boolean }), true>,
  },
  {
    bag: 'runOnce',
    schema: ONCE_SCHEMA,
    resolve: (o) => resolveRunOnceOptions('x', o),
    keys: { maxAttempts: true, recordTtl: true, signal: true } satisfies Record<keyof OnceOptions, true>,
  },
];

const namesOf = (schema: Schema): string[] =>
  Object.entries(schema)
    .flatMap(([k, f]) => (f.deprecatedAlias ? [k, f.deprecatedAlias.name] : [k]))
    .sort();

test('every bag: its schema has exactly the keys of its public type (deprecated names included), each documented', () => {
  for (const { bag, schema, keys } of BAGS) {
    assert.deepEqual(namesOf(schema), Object.keys(keys).sort(), bag);
    for (const [k, f] of Object.entries(schema)) assert.ok(f.doc.length > 0, `${bag}: ${k} has a doc`);
  }
  const codes = BAGS.flatMap(({ schema }) => Object.values(schema).flatMap((f) => (f.deprecatedAlias ? [f.deprecatedAlias.code] : [])));
  assert.deepEqual(codes.sort(), ['LOCKED_DEP001', 'LOCKED_DEP002', 'LOCKED_DEP003', 'LOCKED_DEP004', 'LOCKED_DEP005']);
});

test('every bag: an unknown key is a TypeError naming it, the nearest valid key and the valid keys', () => {
  for (const { bag, schema, resolve } of BAGS) {
    for (const key of Object.keys(schema)) {
      const typo = `${key}x`;
      assert.throws(
        () => resolve({ [typo]: 1 }),
        (e: Error) =>
          e instanceof TypeError &&
          e.message.includes(`unknown option '${typo}'`) &&
          e.message.includes(`(did you mean '${key}'?)`) &&
          e.message.includes(`valid options: ${Object.keys(schema).join(', ')}`),
        `${bag}: ${typo}`,
      );
    }
    assert.throws(
      () => resolve({ zzzzzzzzzz: 1 }),
      (e: Error) => e instanceof TypeError && e.message.includes("unknown option 'zzzzzzzzzz'") && !e.message.includes('did you mean'),
      `${bag}: no suggestion when nothing is near`,
    );
  }
  // A key near a deprecated name suggests the name to use now.
  assert.throws(
    () => resolveOptions('a:1', { renewDeadlin: 5 } as never),
    /unknown option 'renewDeadlin' \(did you mean 'renewDeadlineMs'\?\)/,
  );
  assert.throws(() => resolveLockOptions('m', { timout: 5 }), /unknown option 'timout' of lock\('m'\) \(did you mean 'timeoutMs'\?\)/);
});

test('every bag: a value of the wrong type is a TypeError naming the key, the expected type and the value', () => {
  for (const { bag, schema, resolve } of BAGS) {
    for (const [key, f] of Object.entries(schema)) {
      const wrong = f.type === 'string' ? 42 : 'nope';
      for (const name of f.deprecatedAlias ? [key, f.deprecatedAlias.name] : [key]) {
        assert.throws(
          () => resolve({ [name]: wrong }),
          (e: Error) =>
            e instanceof TypeError &&
            new RegExp(`^options\\.${name}\\b.* must be an? (string|number|boolean|function|object|AbortSignal|array of strings)`).test(
              e.message,
            ) &&
            e.message.endsWith(typeof wrong === 'number' ? 'got number (42)' : "got string ('nope')"),
          `${bag}: ${name}`,
        );
      }
      assert.throws(
        () => resolve({ [key]: null }),
        (e: Error) => e instanceof TypeError && e.message.endsWith('got null'),
        `${bag}: ${key} null`,
      );
    }
    assert.throws(() => resolve(null), /^TypeError: options\b.* must be an object, got null$/, `${bag}: null bag`);
    assert.throws(
      () => resolve([]),
      (e: Error) => e instanceof TypeError && /must be an object, got an array/.test(e.message),
      `${bag}: array`,
    );
  }
  assert.throws(
    () => resolveSingletonOptions('x', { healthy: true }),
    /^TypeError: options\.healthy of 'x' must be a function, got boolean \(true\)$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { balance: 'yes' as unknown as boolean }),
    /options\.balance must be a boolean or an object, got string \('yes'\)/,
  );
  assert.throws(
    () => resolveTryLockOptions('x', { signal: {} as AbortSignal }),
    /options\.signal of tryLock\('x'\) must be an AbortSignal, got an object/,
  );
});

test('every bag: a number out of its range (or not finite) is a RangeError naming the key, the range and the value', () => {
  for (const { bag, schema, resolve } of BAGS) {
    for (const [key, f] of Object.entries(schema)) {
      if (f.type !== 'number') continue;
      for (const bad of [-1, NaN, -Infinity]) {
        assert.throws(
          () => resolve({ [key]: bad }),
          (e: Error) =>
            e instanceof RangeError &&
            e.message.startsWith(`options.${key}`) &&
            / must be .*, got /.test(e.message) &&
            e.message.endsWith(`got ${bad}`),
          `${bag}: ${key} ${bad}`,
        );
      }
    }
  }
  assert.throws(
    () => resolveOptions('a:1', { balance: { concurrency: 0 } }),
    /^RangeError: options\.balance\.concurrency must be an integer ≥ 1, got 0$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { balance: { concurency: 2 } } as never),
    /unknown option 'concurency' in options\.balance \(did you mean 'concurrency'\?\)/,
  );
  assert.throws(
    () => resolveSingletonOptions('x', { checkIntervalMs: 99 }),
    /^RangeError: options\.checkIntervalMs of 'x' must be a number of milliseconds ≥ 100, got 99$/,
  );
  assert.throws(
    () => resolveRunOnceOptions('j', { recordTtl: 0.5 }),
    /^RangeError: options\.recordTtl of runOnce\('j'\) must be a whole number of seconds ≥ 1, got 0\.5$/,
  );
  assert.throws(
    () => resolveFailoverOptions('x', { timeoutMs: 0 }, 10),
    /options\.timeoutMs of failover\('x'\) must be a number of milliseconds > 0, got 0/,
  );
});

test('durations in milliseconds: the Ms names give the same timings as the seconds they replace, and the defaults are unchanged', () => {
  const d = resolveOptions('a:1');
  assert.deepEqual(
    { ...d, id: '' },
    {
      hosts: ['http://a:1'],
      id: '',
      ttl: 10,
      renewDeadlineMs: ((2 * 10) / 3) * 1000,
      keepaliveIntervalMs: (10 / 3) * 1000,
      watchFreshnessMs: ((10 / 3) * 1000) / 2,
      prefix: 'locked/',
      handleSignals: true,
      stopTimeoutMs: 10_000,
      // 16 until 0.3, then 1000: a whole surplus moves in one wave, its writes batched (CHANGELOG).
      balanceConcurrency: 5000,
      respreadDelayMs: 0,
      preferHoldDownMs: 15_000,
      prefer: undefined,
      weight: 1,
      zone: undefined,
      etcd: {},
      clock: systemClock,
    },
  );
  const ms = resolveOptions('a:1', { ttl: 9, keepaliveIntervalMs: 1500, renewDeadlineMs: 7000, stopTimeoutMs: 2500, balance: false });
  assert.deepEqual(
    [ms.keepaliveIntervalMs, ms.renewDeadlineMs, ms.stopTimeoutMs, ms.watchFreshnessMs, ms.balanceConcurrency],
    [1500, 7000, 2500, 750, 0],
  );
  assert.equal(resolveOptions('a:1', { balance: { concurrency: 3 } }).balanceConcurrency, 3);
  assert.deepEqual(
    [resolveOptions('a:1', { balance: { respreadDelayMs: 30_000 } })].map((o) => [o.balanceConcurrency, o.respreadDelayMs]),
    [[5000, 30_000]],
  );
  assert.throws(
    () => resolveOptions('a:1', { balance: { respreadDelayMs: -1 } }),
    /^RangeError: options\.balance\.respreadDelayMs must be a number of milliseconds from 0 to 3,600,000 \(an hour\), got -1$/,
  );
  assert.deepEqual(
    [resolveOptions('a:1', { weight: 0, zone: 'eu-1a' })].map((o) => [o.weight, o.zone]),
    [[0, 'eu-1a']],
  );
  assert.throws(
    () => resolveOptions('a:1', { weight: -1 }),
    /^RangeError: options\.weight must be a finite number from 0 to 1,000,000, got -1$/,
  );
  assert.throws(() => resolveOptions('a:1', { zone: '' }), /^TypeError: options\.zone must be 1 to 64 characters/);
  // Errors speak the unit and the names the caller used.
  assert.throws(
    () => resolveOptions('a:1', { ttl: 9, renewDeadlineMs: 9000 }),
    /^RangeError: options\.renewDeadlineMs must be a number of milliseconds with keepaliveIntervalMs \(3000\) < renewDeadlineMs < ttl × 1000 \(9000\), got 9000$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { ttl: 9, keepaliveIntervalMs: 3001 }),
    /^RangeError: options\.keepaliveIntervalMs must be a number of milliseconds in \(0, ttl × 1000 \/ 3 = 3000\], got 3001$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { stopTimeoutMs: -1 }),
    /^RangeError: options\.stopTimeoutMs must be a finite number of milliseconds ≥ 0, got -1$/,
  );
  assert.throws(
    () => resolveOptions('a:1', { prefix: 'app' }),
    /^TypeError: options\.prefix must end with '\/' \(use 'app\/'\), got 'app'$/,
  );
  // The other bags: defaults, and the Ms names.
  assert.deepEqual(resolveSingletonOptions('x', undefined), { checkIntervalMs: 5000 });
  assert.deepEqual(resolveLockOptions('x', { timeoutMs: 0 }), { timeoutMs: 0, signal: undefined });
  assert.deepEqual(resolveFailoverOptions('x', {}, 2), { to: undefined, force: false, timeoutMs: 10_000, signal: undefined });
  assert.equal(resolveFailoverOptions('x', {}, 9).timeoutMs, 27_000);
  assert.throws(
    () => resolveFailoverOptions('x', { force: true, to: 'a' }, 9),
    /^TypeError: failover: 'to' cannot be combined with 'force'/,
  );
  assert.deepEqual(resolveRunOnceOptions('x', undefined), { maxAttempts: 3, recordTtl: undefined, signal: undefined });
  assert.deepEqual(resolveUndrainOptions({ nodeId: 'b' }), { nodeId: 'b', force: false, signal: undefined });
  assert.throws(() => resolveDrainOptions({ nodeId: '' }), /^TypeError: options\.nodeId of drain\(\) must be a non-empty node id, got ''$/);
});

test('a key given under its old and its new name at once is a TypeError', () => {
  assert.throws(
    () => resolveOptions('a:1', { stopTimeout: 2, stopTimeoutMs: 2000 }),
    /^TypeError: options\.stopTimeout and options\.stopTimeoutMs are the same option \(stopTimeout is its deprecated name, in seconds\): give only stopTimeoutMs$/,
  );
  assert.throws(
    () => resolveLockOptions('x', { timeout: 1, timeoutMs: 1 }),
    /options\.timeout and options\.timeoutMs of lock\('x'\) are the same option/,
  );
});

test('the public calls validate their bags before doing anything: a TypeError or RangeError, nothing registered', async () => {
  const locker = locked('127.0.0.1:1', noSignals);
  const fn = (): void => {};
  try {
    assert.throws(
      () => locker('s', fn, { checkIntervall: 100 } as never),
      /unknown option 'checkIntervall' of 's' \(did you mean 'checkIntervalMs'\?\)/,
    );
    assert.throws(() => locker('s', fn, { checkIntervalMs: 10 }), RangeError);
    await assert.rejects(
      locker.lock('l', fn, { timeotMs: 5 } as never),
      /unknown option 'timeotMs' of lock\('l'\) \(did you mean 'timeoutMs'\?\)/,
    );
    await assert.rejects(locker.lock('l', fn, { timeoutMs: -5 }), RangeError);
    await assert.rejects(
      locker.tryLock('t', fn, { signl: undefined } as never),
      /unknown option 'signl' of tryLock\('t'\) \(did you mean 'signal'\?\)/,
    );
    await assert.rejects(locker.tryLock('t', fn, { signal: 'no' as unknown as AbortSignal }), TypeError);
    await assert.rejects(
      locker.failover('f', { tiemoutMs: 5 } as never),
      /unknown option 'tiemoutMs' of failover\('f'\) \(did you mean 'timeoutMs'\?\)/,
    );
    await assert.rejects(
      locker.failover('f', { force: 'yes' as unknown as boolean }),
      /options\.force of failover\('f'\) must be a boolean, got string \('yes'\)/,
    );
    await assert.rejects(locker.drain({ onmove: fn } as never), /unknown option 'onmove' of drain\(\) \(did you mean 'onMove'\?\)/);
    await assert.rejects(locker.undrain({ nodeID: 'a' } as never), /unknown option 'nodeID' of undrain\(\) \(did you mean 'nodeId'\?\)/);
    await assert.rejects(
      locker.runOnce('o', fn, { maxAttempt: 2 } as never),
      /unknown option 'maxAttempt' of runOnce\('o'\) \(did you mean 'maxAttempts'\?\)/,
    );
    await assert.rejects(locker.runOnce('o', fn, { maxAttempts: 0 }), RangeError);
    assert.throws(
      () => locked('127.0.0.1:1', { ...noSignals, tll: 5 } as never),
      /^TypeError: unknown option 'tll' \(did you mean 'ttl'\?\); valid options: id, ttl,/,
    );
    assert.deepEqual(Object.keys(locker.singletons()), [], 'nothing registered by failed calls');
  } finally {
    await locker.close();
  }
});
