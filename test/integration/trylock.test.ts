// tryLock / exists: try once, never queue — hosts as separate processes, real etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAbortedError, locked, type Health, type Leadership, type Locker, type Singleton } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { spawnHost, type Host } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await cluster?.close();
});

const uniquePrefix = (): string => `try${Math.random().toString(36).slice(2, 8)}/`;

interface TryAnswer {
  acquired: boolean;
  holder?: string | null;
}

async function twoHosts(prefix: string): Promise<[Host, Host]> {
  const [a, b] = await Promise.all(['a', 'b'].map((id) => spawnHost({ endpoints: cluster.endpoints, id, ttl: 2, prefix })));
  return [a!, b!];
}

/** A locker in the test process that only reads (exists), for the view of a third party. */
function observer(prefix: string): Locker {
  return locked(cluster.endpoints, { prefix, ttl: 2, handleSignals: false });
}

/** A hang (e.g. a request never answered) fails the test instead of blocking the run. */
const TEST_TIMEOUT_MS = 60_000;

const registered = async (h: Host): Promise<string[]> => (await h.request<Health>({ op: 'health' })).registered;

// One test at a time: each runs hosts with 2 s leases, and the machine is small.
describe('tryLock', () => {
  test('the first host acquires; the second gets the holder, writes nothing and queues nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const [a, b] = await twoHosts(prefix);
    const view = observer(prefix);
    try {
      assert.equal(await view.exists('report'), false, 'nobody leads before the first tryLock');
      const first = await a.request<TryAnswer>({ op: 'tryLock', name: 'report' });
      assert.deepEqual(first, { acquired: true });
      await a.waitEvent((e) => e.type === 'fn' && e.name === 'report', 10_000, 'fn runs on the holder');
      const keysBefore = await cluster.keys(prefix);
      assert.equal(keysBefore.length, 1, `one election key, got ${keysBefore.join(', ')}`);

      const second = await b.request<TryAnswer>({ op: 'tryLock', name: 'report' });
      assert.deepEqual(second, { acquired: false, holder: 'a' });
      // The loser's single campaign txn was guarded by `Create == 0` over the name: it wrote nothing.
      assert.deepEqual(await cluster.keys(prefix), keysBefore);
      assert.deepEqual(await registered(b), [], 'nothing queued on the loser');
      assert.ok(!b.events.some((e) => e.type === 'fn' || e.type === 'start'), 'fn never ran on the loser');

      assert.equal(await view.exists('report'), true);
      assert.equal(await view.exists('other'), false);

      await a.request({ op: 'remove', name: 'report' });
      await a.waitEvent((e) => e.type === 'stop' && e.reason === 'removed');
      assert.equal(await view.exists('report'), false, 'exists is false once the holder released');
      // Released: the former loser can take it now.
      assert.deepEqual(await b.request<TryAnswer>({ op: 'tryLock', name: 'report' }), { acquired: true });
      assert.equal(await view.exists('report'), true);
    } finally {
      await view.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('two simultaneous tryLocks: exactly one acquires, the other names it', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const [a, b] = await twoHosts(prefix);
    try {
      // Warm both lockers up (lease + watch), so the two campaigns really race.
      await Promise.all([a, b].map((h) => h.request({ op: 'tryLock', name: 'warmup' })));
      const answers = await Promise.all([a, b].map((h) => h.request<TryAnswer>({ op: 'tryLock', name: 'race' })));
      const winners = answers.filter((r) => r.acquired);
      assert.equal(winners.length, 1, `exactly one winner, got ${JSON.stringify(answers)}`);
      const winner = answers[0]!.acquired ? 'a' : 'b';
      const loser = answers.find((r) => !r.acquired)!;
      assert.equal(loser.holder, winner);
      const keys = (await cluster.keys(prefix)).filter((k) => k.startsWith(`${prefix}race/`));
      assert.equal(keys.length, 1, `one key for 'race', got ${keys.join(', ')}`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a try-lock whose key is deleted (etcdctl del) stops and does not campaign again', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const [a, b] = await twoHosts(prefix);
    try {
      assert.deepEqual(await a.request<TryAnswer>({ op: 'tryLock', name: 'nightly' }), { acquired: true });
      const start = await a.waitEvent((e) => e.type === 'start' && e.name === 'nightly');
      const del = await cluster.etcdctl(['del', start.key!]);
      assert.equal(del.code, 0, del.stderr);
      const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === 'nightly', 10_000, 'stop after the key was deleted');
      assert.equal(stop.reason, 'deposed');
      assert.deepEqual(await registered(a), [], 'the try-lock left the locker');
      // Had the deposed try-lock queued again, its key would make this tryLock fail.
      assert.deepEqual(await b.request<TryAnswer>({ op: 'tryLock', name: 'nightly' }), { acquired: true });
      const keys = await cluster.keys(prefix);
      assert.equal(keys.length, 1, `only b's key, got ${keys.join(', ')}`);
      assert.equal(await cluster.get(keys[0]!), 'b');
      assert.equal(a.events.filter((e) => e.type === 'start' && e.name === 'nightly').length, 1, 'a never led again');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test(
    'a try-lock whose lease is lost (process paused past its TTL) stops and does not campaign again',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const prefix = uniquePrefix();
      const [a, b] = await twoHosts(prefix);
      const view = observer(prefix);
      try {
        assert.deepEqual(await a.request<TryAnswer>({ op: 'tryLock', name: 'nightly' }), { acquired: true });
        await a.waitEvent((e) => e.type === 'start' && e.name === 'nightly');
        a.kill('SIGSTOP');
        // The lease (ttl 2 s) expires while the process is stopped, and its key with it.
        await waitFor(async () => !(await view.exists('nightly')), { timeoutMs: 15_000, intervalMs: 100, message: "a's key expired" });
        a.kill('SIGCONT');
        const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === 'nightly', 10_000, 'stop after resume');
        assert.equal(stop.reason, 'lost');
        // The locker recovers with a new lease, but the try-lock is not part of it any more.
        await waitFor(() => a.events.filter((e) => e.type === 'session').length >= 2, { timeoutMs: 10_000, message: 'a new session on a' });
        assert.deepEqual(await registered(a), []);
        assert.deepEqual(await cluster.keys(prefix), [], 'no key of a came back');
        assert.deepEqual(await b.request<TryAnswer>({ op: 'tryLock', name: 'nightly' }), { acquired: true });
        assert.equal(a.events.filter((e) => e.type === 'start' && e.name === 'nightly').length, 1, 'a never led again');
      } finally {
        a.kill('SIGCONT');
        await view.close();
        await Promise.all([a.stop(), b.stop()]);
      }
    },
  );

  test('a try-lock whose fn throws steps down and does not campaign again', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const a = await spawnHost({ endpoints: cluster.endpoints, id: 'a', ttl: 2, prefix });
    try {
      assert.deepEqual(await a.request<TryAnswer>({ op: 'tryLock', name: 'job', fn: { kind: 'throw' } }), { acquired: true });
      // The failure reaches the locker's 'error' event (the fixture attaches singleton listeners too late to see it).
      await a.waitEvent((e) => e.type === 'error' && /failed on purpose/.test(e.message ?? ''), 10_000, 'the fn failure');
      await waitFor(async () => (await cluster.keys(prefix)).length === 0, {
        timeoutMs: 10_000,
        message: 'key deleted after the step-down',
      });
      await waitFor(async () => (await registered(a)).length === 0, { timeoutMs: 10_000, message: 'try-lock retired' });
      assert.equal(a.events.filter((e) => e.type === 'fn').length, 1, 'fn ran once: no second campaign');
      assert.deepEqual(await cluster.keys(prefix), []);
    } finally {
      await a.stop();
    }
  });
});

// Issue #23: right after an aborted tryLock('y') rejected, its removal was still under way
// (the campaign write in flight, then the delete of its key), and a new tryLock('y') or
// locker('y', fn) threw "already registered". The new registration now waits behind it.
describe('registering a name again right after an aborted tryLock', () => {
  /** A locker in this process, ready (lease granted, view current), and an aborted tryLock('y') whose removal is under way. */
  async function afterAbortedTryLock(prefix: string): Promise<{ locker: Locker; old: Singleton }> {
    const locker = locked(cluster.endpoints, { id: 'me', prefix, ttl: 2, handleSignals: false });
    await locker.ready();
    const ac = new AbortController();
    const attempt = locker.tryLock('y', () => {}, { signal: ac.signal });
    // The locker holds a session, so the campaign write is in flight now; the abort has
    // the try-lock take its key back out once the write answers.
    ac.abort(new Error('changed my mind'));
    await assert.rejects(attempt, (e: unknown) => isAbortedError(e));
    const old = locker.singletons()['y'];
    assert.ok(old, 'the aborted try-lock is still leaving (its write has not answered yet): the case under test');
    return { locker, old };
  }

  test('a new tryLock of the name waits for the removal, then acquires', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const { locker, old } = await afterAbortedTryLock(prefix);
    try {
      let led: Leadership | undefined;
      const res = await locker.tryLock('y', (_remove, l) => void (led = l));
      assert.ok(res.acquired, `acquired, not taken by ${res.acquired ? '' : String(res.holder)}`);
      assert.equal(old.phase, 'retired', 'the old try-lock had left before the new one campaigned');
      assert.equal(locker.singletons()['y'], res.singleton);
      await waitFor(() => led, { timeoutMs: 10_000, message: 'fn ran on the new try-lock' });
      const keys = await cluster.keys(`${prefix}y/`);
      assert.deepEqual(keys, [led!.key], "one key for y: the new try-lock's");
      await res.singleton.remove();
      assert.deepEqual(await cluster.keys(prefix), []);
    } finally {
      await locker.close();
    }
  });

  test(
    'locker(name, fn) returns at once, waits for the removal, then leads; a third registration still throws',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const prefix = uniquePrefix();
      const { locker, old } = await afterAbortedTryLock(prefix);
      try {
        let led: Leadership | undefined;
        const s = locker('y', (_remove, l) => void (led = l));
        assert.throws(() => locker('y', () => {}), /'y' is already registered on this locker/, 'one registration waits, not two');
        await assert.rejects(
          locker.tryLock('y', () => {}),
          /'y' is already registered on this locker/,
        );
        await waitFor(() => s.isLeader && led, { timeoutMs: 10_000, message: 'the new registration leads y' });
        assert.equal(old.phase, 'retired');
        assert.equal(locker.singletons()['y'], s);
        assert.deepEqual(locker.health().registered, ['y']);
        assert.deepEqual(await cluster.keys(`${prefix}y/`), [led!.key], "one key for y: the new registration's");
        await s.remove();
        assert.deepEqual(await cluster.keys(prefix), []);
      } finally {
        await locker.close();
      }
    },
  );

  test('a waiting registration removed before its turn never campaigns', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const { locker, old } = await afterAbortedTryLock(prefix);
    try {
      let ran = false;
      const s = locker('y', () => void (ran = true));
      await s.remove();
      assert.equal(s.phase, 'retired');
      await old.remove(); // resolves once the old try-lock has left
      assert.deepEqual(locker.singletons(), {});
      assert.deepEqual(await cluster.keys(prefix), [], 'nothing of either is in etcd');
      assert.equal(ran, false);
      // The name is free again for a plain registration.
      const again = locker('y', () => {});
      await waitFor(() => again.isLeader, { timeoutMs: 10_000, message: 'y led again' });
    } finally {
      await locker.close();
    }
  });
});
