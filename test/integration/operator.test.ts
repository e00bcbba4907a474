// Safety against ordinary operator and application actions, with real etcd and hosts as
// processes: `etcdctl del --prefix`, a leader paused just past its step-down deadline
// whose fn needs time to stop, listeners that throw, close() during a try-lock.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import locked, { isLockerClosedError } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from '../helpers/history.js';
import { spawnHost, type Host, type HostConfig } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await cluster?.close();
});

const now = (): bigint => process.hrtime.bigint();
const uniquePrefix = (): string => `op${Math.random().toString(36).slice(2, 8)}/`;
const hosts: Host[] = [];
async function host(config: Omit<HostConfig, 'endpoints'>): Promise<Host> {
  const h = await spawnHost({ endpoints: cluster.endpoints, ttl: 4, ...config });
  hosts.push(h);
  await h.waitEvent((e) => e.type === 'session', 20_000, 'session');
  return h;
}
after(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
});

/** Keys of `name` in etcd, oldest first, with their values (node ids). */
async function queueOf(prefix: string, name: string): Promise<{ key: string; value: string; create: bigint }[]> {
  const r = await cluster.etcdctl(['get', `${prefix}${name}/`, '--prefix', '-w', 'json']);
  if (r.code !== 0) throw new Error(`etcdctl get: ${r.stderr}`);
  const json = r.stdout.replace(/"(create_revision|mod_revision|version|lease)":(\d+)/g, '"$1":"$2"');
  const kvs = (JSON.parse(json) as { kvs?: { key: string; value: string; create_revision: string }[] }).kvs ?? [];
  return kvs
    .map((kv) => ({
      key: Buffer.from(kv.key, 'base64').toString(),
      value: Buffer.from(kv.value, 'base64').toString(),
      create: BigInt(kv.create_revision),
    }))
    .sort((a, b) => (a.create < b.create ? -1 : 1));
}

/**
 * Waits until `name` is settled the way etcd says: `n` candidates queued, exactly one
 * host running fn, and it is the host whose key is first in etcd. Fails at once if two
 * hosts ever run fn at the same time.
 */
async function settledOn(hs: Host[], prefix: string, name: string, n: number): Promise<Host> {
  return waitFor(
    async () => {
      const running = hs.filter((h) => h.leads(name));
      assert.ok(running.length <= 1, `two hosts lead '${name}': ${running.map((h) => h.id).join(', ')}`);
      const q = await queueOf(prefix, name);
      const again = hs.filter((h) => h.leads(name));
      assert.ok(again.length <= 1, `two hosts lead '${name}': ${again.map((h) => h.id).join(', ')}`);
      if (q.length !== n || again.length !== 1 || again[0] !== running[0]) return undefined;
      return q[0]!.value === again[0]!.id ? again[0] : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 20, message: `one leader of '${name}', the first key in etcd, with ${n} candidates` },
  );
}

function judge(hs: Host[], t0: bigint, deletes: { name: string; at: bigint }[]): void {
  const r = checkHistories(
    hs.map((h) => historyOf(h)),
    { endOfRun: now(), deletes },
  );
  const why = `${describeReport(r)}\n${timeline(r, t0)}`;
  assert.deepEqual(r.overlaps, [], `fn runs overlap:\n${why}`);
  assert.deepEqual(r.anomalies, [], `odd histories:\n${why}`);
  for (const h of hs)
    assert.deepEqual(
      h.events.filter((e) => e.type === 'crash'),
      [],
      `host ${h.id} crashed`,
    );
}

describe('operator actions', () => {
  test('etcdctl del --prefix of a name, three times, then of the whole prefix: never two leaders', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const t0 = now();
    const hs: Host[] = [];
    for (const id of ['a', 'b', 'c']) hs.push(await host({ id, prefix, names: ['x', 'y'], fn: { kind: 'work' } }));
    const deletes: { name: string; at: bigint }[] = [];
    for (let round = 1; round <= 4; round++) {
      await settledOn(hs, prefix, 'x', 3);
      await settledOn(hs, prefix, 'y', 3);
      const whole = round === 4;
      const at = now();
      const r = await cluster.etcdctl(['del', '--prefix', whole ? prefix : `${prefix}x/`]);
      assert.equal(r.code, 0, r.stderr);
      // One revision, several deletes: the name's three keys (the whole prefix: both names'
      // and the three hosts' records, `<prefix>/hosts/<id>`). A standby that is stepping aside
      // to re-queue behind another (balancing standbys) can be missing at that instant (seen
      // once on CI: 8 of 9), and a standby request record (`<prefix>/next/…`) can be extra.
      const deleted = Number(r.stdout.trim());
      const expected = whole ? 9 : 3;
      assert.ok(deleted >= 2 && Math.abs(deleted - expected) <= 1, `one revision, several deletes: ${deleted}, expected ${expected} ± 1`);
      deletes.push({ name: 'x', at });
      if (whole) deletes.push({ name: 'y', at });
      // Every host learns its key is gone: the leader stops ('deposed'), all queue again.
      const leader = await settledOn(hs, prefix, 'x', 3);
      t.diagnostic(`round ${round}: '${leader.id}' leads x again ${ms(now() - at).toFixed(0)} ms after the delete`);
    }
    await settledOn(hs, prefix, 'y', 3);
    judge(hs, t0, deletes);
  });

  test("a lost lease is not revoked while fn still runs on it: the standby starts after the paused leader's fn settled", async (t: TestContext) => {
    const prefix = uniquePrefix();
    const t0 = now();
    // ttl 10: renewDeadline 6.67 s. fn needs 1 s to stop once its signal aborts.
    const a = await host({ id: 'a', prefix, ttl: 10, names: ['job'], fn: { kind: 'work', stopMs: 1000 } });
    await a.waitEvent((e) => e.type === 'start' && e.name === 'job');
    const b = await host({ id: 'b', prefix, ttl: 10, names: ['job'], fn: { kind: 'work' } });
    await waitFor(async () => (await queueOf(prefix, 'job')).length === 2 || undefined, { timeoutMs: 20_000, message: 'b queued' });
    // Pause right after a keepalive was acknowledged, so the lease cannot expire before
    // a wakes (expiry ≥ ack + 10 s; a wakes at pause + 7.3 s, past its deadline of ack + 6.67 s).
    await waitFor(
      async () => ((await a.request<{ lastKeepaliveAgoMs?: number }>({ op: 'health' })).lastKeepaliveAgoMs ?? 1e9) < 400 || undefined,
      { timeoutMs: 20_000, intervalMs: 50, message: 'a fresh keepalive' },
    );
    a.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 7_300)); // the fault: a pause just past the step-down deadline
    a.kill('SIGCONT');
    const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === 'job', 20_000, 'a steps down');
    assert.equal(stop.reason, 'lost');
    const fnEnd = await a.waitEvent((e) => e.type === 'fn-end' && e.name === 'job', 20_000, "a's fn settles");
    const bStart = await b.waitEvent((e) => e.type === 'fn' && e.name === 'job', 30_000, 'b starts');
    t.diagnostic(
      `a's fn settled ${ms(BigInt(fnEnd.t) - BigInt(stop.t)).toFixed(0)} ms after its step-down; b started ${ms(BigInt(bStart.t) - BigInt(fnEnd.t)).toFixed(0)} ms after that`,
    );
    assert.ok(
      BigInt(bStart.t) > BigInt(fnEnd.t),
      `b started ${ms(BigInt(fnEnd.t) - BigInt(bStart.t)).toFixed(0)} ms before a's fn settled`,
    );
    judge([a, b], t0, []);
  });
});

describe('application mistakes', () => {
  test('a throwing session listener does not make the locker grant lease after lease', async () => {
    const locker = locked(cluster.endpoints, { ttl: 2, prefix: uniquePrefix(), handleSignals: false });
    let sessions = 0;
    const errors: Error[] = [];
    locker.on('error', (e) => errors.push(e));
    locker.on('session', () => {
      sessions++;
      throw new Error('listener bug');
    });
    try {
      const s = locker('n', () => {});
      await waitFor(() => s.isLeader || undefined, { timeoutMs: 20_000, message: 'leading' });
      // Several keepalive rounds later, still the one lease.
      const first = locker.health().leaseId;
      // (Counted by the keepalive histogram: a sawtooth of lastKeepaliveAgoMs sampled right
      // after an answer may never show a smaller value.)
      const acked = (): number => locker.metrics().keepaliveRtt.count;
      const start = acked();
      await waitFor(() => (acked() >= start + 3 ? true : undefined), { timeoutMs: 15_000, message: 'three keepalives' });
      assert.equal(sessions, 1, `${sessions} sessions granted`);
      assert.equal(locker.health().leaseId, first);
      assert.ok(s.isLeader);
      assert.ok(
        errors.some((e) => /listener bug/.test(e.message)),
        'the throw is reported',
      );
      const leases = await cluster.leases();
      assert.ok(leases.includes(BigInt(first!).toString(16)), 'its lease is in etcd');
    } finally {
      await locker.close();
    }
  });

  test('close() during a try-lock that never reached etcd rejects it with a typed error, and nothing is unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      // A closed loopback port: etcd never answers.
      const locker = locked('127.0.0.1:9', { ttl: 2, handleSignals: false });
      locker.on('error', () => {});
      const attempt = locker.tryLock('n', () => {});
      const ready = locker.ready();
      await locker.close();
      await assert.rejects(attempt, (e) => isLockerClosedError(e));
      await assert.rejects(ready, (e) => isLockerClosedError(e));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
