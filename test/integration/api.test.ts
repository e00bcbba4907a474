// The public API as Node users use it: a callable EventEmitter, events.once/on,
// runOnce, remove() inside fn, option validation.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, on, once } from 'node:events';
import diagnostics_channel from 'node:diagnostics_channel';
import locked, {
  AbortedError,
  DIAGNOSTICS_CHANNELS,
  isAbortedError,
  isLockerClosedError,
  Locker,
  type LeadershipMessage,
  type SessionMessage,
} from '../../src/index.js';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { ms } from '../helpers/history.js';
import { spawnHost, type Host } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await cluster?.close();
});

const uniquePrefix = (): string => `api${Math.random().toString(36).slice(2, 8)}/`;

describe('the locker as an EventEmitter', () => {
  test('events.once(locker, "session") waits for the event and starts no job; the locker is callable', async () => {
    const locker = locked(cluster.endpoints, { ttl: 2, prefix: uniquePrefix(), handleSignals: false });
    try {
      assert.ok(locker instanceof EventEmitter);
      assert.ok(locker instanceof Locker);
      assert.equal(typeof locker, 'function');
      const session = once(locker, 'session');
      const s = locker('n', () => {});
      const [leaseId] = (await session) as [string];
      assert.equal(leaseId, locker.health().leaseId);
      await waitFor(() => s.isLeader || undefined, { timeoutMs: 20_000, message: 'leading' });
      assert.deepEqual(Object.keys(locker.singletons()), ['n'], 'no run-once job named "session" was started');
      assert.equal((await cluster.keys(locker.prefix)).filter((k) => k.startsWith(`${locker.prefix}session`)).length, 0);
      // on/off/once chain and return the callable locker.
      const l = (): void => {};
      assert.equal(locker.on('error', l).off('error', l), locker);
    } finally {
      await locker.close();
    }
  });

  test('events.on(locker, "error") can be left with break', async () => {
    const locker = locked('127.0.0.1:9', { ttl: 2, handleSignals: false });
    try {
      locker('n', () => {}); // campaigns against a closed port: errors follow
      for await (const [err] of on(locker, 'error')) {
        assert.ok(err instanceof Error);
        break;
      }
    } finally {
      await locker.close();
    }
  });
});

describe('a closed locker', () => {
  test('every promise-returning call rejects with a LockerClosedError instead of throwing', async () => {
    const locker = locked('127.0.0.1:9', { ttl: 2, handleSignals: false });
    await locker.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['tryLock', () => locker.tryLock('x', () => {})],
      ['lock', () => locker.lock('x', () => {})],
      ['runOnce', () => locker.runOnce('x', () => {})],
      ['ready', () => locker.ready()],
      ['leader', () => locker.leader('x')],
      ['status', () => locker.status()],
      ['exists', () => locker.exists('x')],
    ];
    for (const [what, call] of calls) {
      let p: Promise<unknown> | undefined;
      assert.doesNotThrow(() => (p = call()), `${what} threw synchronously`);
      await assert.rejects(p!, (err: unknown) => isLockerClosedError(err), `${what} did not reject with a LockerClosedError`);
    }
  });
});

describe('{ signal } on calls that wait', () => {
  test('ready, leader, status and tryLock reject with an AbortedError (the reason as cause) when their signal aborts', async () => {
    // A loopback listener that accepts and never answers: every call waits.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const locker = locked(`127.0.0.1:${port}`, { ttl: 2, handleSignals: false });
    try {
      const calls: [string, (signal: AbortSignal) => Promise<unknown>][] = [
        ['ready', (signal) => locker.ready({ signal })],
        ['leader', (signal) => locker.leader('x', { signal })],
        ['status', (signal) => locker.status({ signal })],
        ['tryLock', (signal) => locker.tryLock('x', () => {}, { signal })],
      ];
      for (const [what, call] of calls) {
        const ac = new AbortController();
        const p = call(ac.signal);
        const reason = new Error(`stop ${what}`);
        setTimeout(() => ac.abort(reason), 50);
        await assert.rejects(p, (err: unknown) => isAbortedError(err) && err instanceof AbortedError && err.cause === reason, what);
        // Already aborted: rejects at once, starts nothing.
        await assert.rejects(call(AbortSignal.abort(reason)), (err: unknown) => isAbortedError(err), `${what}, pre-aborted`);
      }
      assert.deepEqual(Object.keys(locker.singletons()), [], 'the aborted try-lock left');
    } finally {
      await locker.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('a try-lock aborted before it is decided leaves nothing in etcd', async () => {
    const prefix = uniquePrefix();
    const locker = locked(cluster.endpoints, { ttl: 2, prefix, handleSignals: false });
    try {
      await locker.ready();
      await assert.rejects(
        locker.tryLock('x', () => {}, { signal: AbortSignal.abort() }),
        (err: unknown) => isAbortedError(err),
      );
      const ac = new AbortController();
      const p = locker.tryLock('y', () => new Promise(() => {}), { signal: ac.signal });
      ac.abort();
      await assert.rejects(p, (err: unknown) => isAbortedError(err));
      // The rejection is prompt; the name leaves singletons() once its removal settled (its
      // key, if one was written, deleted) — CI (node 24) once looked 70 ms in, before that.
      await waitFor(
        async () => ((await cluster.keys(prefix)).length === 0 && Object.keys(locker.singletons()).length === 0 ? true : undefined),
        {
          timeoutMs: 10_000,
          message: 'no key left in etcd and no singleton registered',
        },
      );
    } finally {
      await locker.close();
    }
  });
});

describe('diagnostics_channel', () => {
  test('leadership starts and stops, sessions granted, and errors are published for subscribers', async () => {
    const prefix = uniquePrefix();
    const leaderships: LeadershipMessage[] = [];
    const sessions: SessionMessage[] = [];
    const onLeadership = (m: unknown): void => void leaderships.push(m as LeadershipMessage);
    const onSession = (m: unknown): void => void sessions.push(m as SessionMessage);
    diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS.leadership, onLeadership);
    diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS.session, onSession);
    const a = locked(cluster.endpoints, { ttl: 2, prefix, id: 'diag-a', handleSignals: false });
    const b = locked(cluster.endpoints, { ttl: 2, prefix, id: 'diag-b', handleSignals: false });
    try {
      const untilStopped = (_remove: unknown, l: { signal: AbortSignal }): Promise<void> =>
        new Promise((r) => l.signal.addEventListener('abort', () => r()));
      const sa = a('job', untilStopped);
      await once(sa, 'start');
      b('job', untilStopped);
      await waitFor(() => sessions.filter((m) => m.event === 'granted').length >= 2 || undefined, {
        timeoutMs: 10_000,
        message: 'two sessions',
      });
      await sa.remove();
      await waitFor(() => leaderships.some((m) => m.id === 'diag-b' && m.event === 'start') || undefined, {
        timeoutMs: 10_000,
        message: 'b starts',
      });
      const mine = leaderships.filter((m) => m.name === 'job').map((m) => `${m.id} ${m.event}${m.reason ? ` ${m.reason}` : ''}`);
      assert.deepEqual(mine, ['diag-a start', 'diag-a stop removed', 'diag-b start']);
      const tokens = leaderships.filter((m) => m.name === 'job').map((m) => m.token);
      assert.ok(
        tokens.every((t) => /^\d+$/.test(t)) && tokens[0] === tokens[1] && BigInt(tokens[2]!) > BigInt(tokens[0]!),
        tokens.join(' '),
      );
      assert.deepEqual(new Set(sessions.map((m) => m.id)), new Set(['diag-a', 'diag-b']));
    } finally {
      diagnostics_channel.unsubscribe(DIAGNOSTICS_CHANNELS.leadership, onLeadership);
      diagnostics_channel.unsubscribe(DIAGNOSTICS_CHANNELS.session, onSession);
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('remove() inside fn', () => {
  test('await remove() inside fn hands over at once, not after stopTimeout', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const hosts: Host[] = [];
    try {
      // ttl 10: stopTimeout 10 s, the time the old implementation waited.
      const a = await spawnHost({
        endpoints: cluster.endpoints,
        id: 'a',
        ttl: 10,
        prefix,
        names: ['job'],
        fn: { kind: 'remove-after', ms: 300 },
      });
      hosts.push(a);
      await a.waitEvent((e) => e.type === 'start' && e.name === 'job');
      const b = await spawnHost({ endpoints: cluster.endpoints, id: 'b', ttl: 10, prefix, names: ['job'], fn: { kind: 'work' } });
      hosts.push(b);
      const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === 'job', 20_000, 'a stops');
      assert.equal(stop.reason, 'removed');
      const end = await a.waitEvent((e) => e.type === 'fn-end' && e.name === 'job', 20_000, "a's fn returns");
      const start = await b.waitEvent((e) => e.type === 'fn' && e.name === 'job', 20_000, 'b starts');
      const handOverMs = ms(BigInt(start.t) - BigInt(end.t));
      t.diagnostic(
        `b started ${handOverMs.toFixed(1)} ms after a's fn returned (${ms(BigInt(start.t) - BigInt(stop.t)).toFixed(1)} ms after remove())`,
      );
      assert.ok(BigInt(start.t) > BigInt(end.t), 'b starts only after a returned');
      // At once, not after stopTimeout: half of it is a generous bound (the speed is the bench's).
      assert.ok(handOverMs < 5000, `hand-over took ${handOverMs} ms (stopTimeout is 10 s)`);
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
  });
});

describe('options', () => {
  test('an unknown option key is a TypeError naming it and the nearest valid one', () => {
    assert.throws(
      () => locked('127.0.0.1:9', { tll: 5 } as never),
      (e: Error) => e instanceof TypeError && /unknown option 'tll' \(did you mean 'ttl'\?\)/.test(e.message),
    );
    assert.throws(
      () => locked('127.0.0.1:9', { colour: 1 } as never),
      (e: Error) => e instanceof TypeError && /unknown option 'colour'; valid options/.test(e.message),
    );
  });

  test('a prefix must end with "/"', () => {
    assert.throws(
      () => locked('127.0.0.1:9', { prefix: 'app' }),
      (e: Error) => e instanceof TypeError && /must end with '\/'/.test(e.message),
    );
  });
});

describe('lock(): a waiting mutex', () => {
  test('two lockers: the second runs after the first released, both get their values, nothing is left in etcd', async () => {
    const prefix = uniquePrefix();
    const a = locked(cluster.endpoints, { ttl: 2, prefix, handleSignals: false });
    const b = locked(cluster.endpoints, { ttl: 2, prefix, handleSignals: false });
    try {
      const events: string[] = [];
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const first = a.lock('m', async (l) => {
        events.push(`a start ${l.token}`);
        await gate;
        events.push('a end');
        return 'A';
      });
      await waitFor(() => events.length > 0 || undefined, { timeoutMs: 20_000, message: 'a holds the lock' });
      const second = b.lock('m', (l) => {
        events.push(`b start ${l.token}`);
        return 42;
      });
      await waitFor(async () => ((await cluster.keys(`${prefix}m/`)).length === 2 ? true : undefined), {
        timeoutMs: 20_000,
        message: 'b queued',
      });
      assert.equal(events.length, 1, 'b waits while a holds the lock');
      open();
      assert.equal(await first, 'A');
      assert.equal(await second, 42);
      assert.equal(events[1], 'a end');
      assert.match(events[2]!, /^b start /);
      assert.ok(BigInt(events[2]!.split(' ')[2]!) > BigInt(events[0]!.split(' ')[2]!), 'a larger token');
      assert.deepEqual(await cluster.keys(`${prefix}m/`), []);
      assert.deepEqual(Object.keys(a.singletons()), []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('timeout and abort while waiting reject with a LockCancelledError and leave nothing queued', async () => {
    const prefix = uniquePrefix();
    const a = locked(cluster.endpoints, { ttl: 2, prefix, handleSignals: false });
    const b = locked(cluster.endpoints, { ttl: 2, prefix, handleSignals: false });
    try {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      let held = false;
      const first = a.lock('m', async () => {
        held = true;
        await gate;
      });
      await waitFor(() => held || undefined, { timeoutMs: 20_000, message: 'a holds the lock' });
      const { isLockCancelledError } = await import('../../src/index.js');
      await assert.rejects(
        b.lock('m', () => assert.fail('must not run'), { timeout: 300 }),
        (e) => isLockCancelledError(e) && e.reason === 'timeout',
      );
      const ac = new AbortController();
      const aborted = b.lock('m', () => assert.fail('must not run'), { signal: ac.signal });
      await waitFor(async () => ((await cluster.keys(`${prefix}m/`)).length === 2 ? true : undefined), {
        timeoutMs: 20_000,
        message: 'b queued',
      });
      ac.abort(new Error('no longer needed'));
      await assert.rejects(aborted, (e) => isLockCancelledError(e) && e.reason === 'aborted');
      assert.equal((await cluster.keys(`${prefix}m/`)).length, 1, "only a's key is left");
      open();
      await first;
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
