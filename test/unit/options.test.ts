// Bad input gets a clear synchronous error naming the argument and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import locked from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';
import { electionKey, leaseHex, nameOf, prefixEnd } from '../../src/keys.js';

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

test('ttl: not a whole number ≥ 2 is a RangeError naming the value', () => {
  for (const bad of [0, 1, 1.5, 2.5, -3, NaN, Infinity, '10']) {
    assert.throws(() => resolveOptions('a:1', { ttl: bad as number }), RangeError, `ttl ${String(bad)}`);
  }
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
