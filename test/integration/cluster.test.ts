// Cluster view against a real 3-node etcd: status, observe, failover, health. The
// lockers live in this process: nothing here crashes, pauses or signals a host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once as onceEvent } from 'node:events';
import { locked, type LeaderInfo, type Locker, type Singleton, type StopReason } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { once, waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
const open: Locker[] = [];
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await Promise.allSettled(open.map((l) => l.close()));
  await cluster?.close();
});

const uniquePrefix = (): string => `c${Math.random().toString(36).slice(2, 8)}/`;

function locker(id: string, prefix: string): Locker {
  const l = locked(cluster.endpoints, { id, ttl: 3, prefix, handleSignals: false });
  l.on('error', () => {}); // etcd trouble is retried; the assertions below are what count
  open.push(l);
  return l;
}

/** Registers `name` on each locker in turn, each after the previous one is in the queue. */
async function candidates(ids: string[], name: string, prefix: string): Promise<{ lockers: Locker[]; singletons: Singleton[] }> {
  const lockers: Locker[] = [];
  const singletons: Singleton[] = [];
  for (const id of ids) {
    const l = locker(id, prefix);
    const s = l(name, (_remove, lead) => new Promise((resolve) => lead.signal.addEventListener('abort', resolve)));
    lockers.push(l);
    singletons.push(s);
    await waitFor(() => s.position !== undefined, { timeoutMs: 10_000, message: `${id} queued for ${name}` });
    // First in line is not yet leading: a candidate starts only on a recent acknowledged
    // keepalive (session.ts startable()), and under load the grant may be older than that
    // when the campaign lands (CI, Node 24 leg) — the tests read the first one's leadership.
    if (lockers.length === 1) await waitFor(() => s.leadership !== undefined, { timeoutMs: 10_000, message: `${id} leads ${name}` });
  }
  return { lockers, singletons };
}

describe('cluster view', () => {
  test('status(): every name, leader first, tokens; run-once records and foreign keys ignored', async () => {
    const prefix = uniquePrefix();
    const viewer = locker('viewer', prefix);
    assert.deepEqual(await viewer.status(), []);
    const job = await candidates(['a', 'b', 'c'], 'job', prefix);
    await candidates(['d'], 'cron', prefix);
    // A run-once record sits at `<prefix><name>` itself: not a candidate, not a name.
    await cluster.put(`${prefix}report`, '{"status":"done"}');
    await cluster.put(`${prefix}`, 'x');
    const status = await viewer.status();
    const token = job.singletons[0]!.leadership!.token;
    assert.deepEqual(status, [
      { name: 'cron', leader: 'd', token: status[0]!.token, candidates: ['d'] },
      { name: 'job', leader: 'a', token, candidates: ['a', 'b', 'c'] },
    ]);
    assert.match(status[0]!.token!, /^\d+$/);
  });

  test('observe(): leader changes seen from a host that does not campaign, ending on close', async () => {
    const prefix = uniquePrefix();
    const viewer = locker('viewer', prefix);
    const obs = viewer.observe('job');
    const seen: LeaderInfo[] = [];
    obs.on('change', (i) => seen.push(i));
    const initial = await obs.ready();
    assert.deepEqual(initial, { name: 'job', leader: undefined, token: undefined, key: undefined, since: undefined });

    const { lockers, singletons } = await candidates(['a', 'b'], 'job', prefix);
    const first = await waitFor(() => (obs.current?.leader === 'a' ? obs.current : undefined), {
      timeoutMs: 10_000,
      message: 'observer sees a lead',
    });
    assert.equal(first.token, singletons[0]!.leadership!.token);
    assert.equal(first.key, singletons[0]!.leadership!.key);
    assert.equal(typeof first.since, 'number');

    await singletons[0]!.remove();
    const second = await waitFor(() => (obs.current?.leader === 'b' ? obs.current : undefined), {
      timeoutMs: 10_000,
      message: 'observer sees b lead',
    });
    assert.ok(BigInt(second.token!) > BigInt(first.token!), 'the token grows with the new leadership');

    await lockers[1]!.close();
    await waitFor(() => obs.current && obs.current.leader === undefined, { timeoutMs: 10_000, message: 'observer sees nobody lead' });
    // One event per leadership, in order, none missed or repeated.
    assert.deepEqual(
      seen.map((i) => i.leader),
      [undefined, 'a', 'b', undefined],
    );

    // A second observer of a name that already has a leader starts with it, `since` unknown.
    const { singletons: again } = await candidates(['c'], 'job', prefix);
    // An observer reads the viewer's own view, which trails etcd by a watch event: c leading
    // on its locker says nothing yet of the viewer's. Wait until the view has c (obs says so).
    await waitFor(() => obs.current?.leader === 'c', { timeoutMs: 10_000, message: 'the viewer sees c lead' });
    const obs2 = viewer.observe('job');
    const now = await obs2.ready();
    assert.equal(now.leader, 'c');
    assert.equal(now.token, again[0]!.leadership!.token);
    assert.equal(now.since, undefined);

    const ended = onceEvent(obs, 'close');
    await viewer.close();
    await ended;
    assert.ok(obs.closed && obs2.closed, 'closing the locker ends its observers');
    assert.throws(() => viewer.observe('job'), /closed/);
  });

  test('failover(): the leader hands over gracefully (or, forced, is deposed) and re-queues at the back, the next candidate leads', async () => {
    const prefix = uniquePrefix();
    const { lockers, singletons } = await candidates(['a', 'b', 'c'], 'job', prefix);
    const [a, b, c] = singletons as [Singleton, Singleton, Singleton];
    const oldToken = a.leadership!.token;
    const stopped = once<[StopReason]>(a, 'stop', { timeoutMs: 10_000 });
    const started = once(b, 'start', { timeoutMs: 10_000 });
    const operator = locker('operator', prefix);

    assert.equal(await operator.failover('job'), 'b');
    assert.equal((await stopped)[0], 'handover');
    await started;
    assert.ok(BigInt(b.leadership!.token) > BigInt(oldToken));
    assert.deepEqual(lockers[1]!.health().leading, ['job']);
    assert.deepEqual(lockers[0]!.health().leading, []);
    await waitFor(async () => (await operator.status())[0]?.candidates.join() === 'b,c,a', {
      timeoutMs: 10_000,
      message: 'a queued again behind c',
    });

    // Forced: the key is deleted; b learns it from the same event that makes c lead.
    const deposed = once<[StopReason]>(b, 'stop', { timeoutMs: 10_000 });
    const cStarted = once(c, 'start', { timeoutMs: 10_000 });
    assert.equal(await operator.failover('job', { force: true }), 'c');
    assert.equal((await deposed)[0], 'deposed');
    await cStarted;
    await assert.rejects(operator.failover('job', { force: true, to: 'a' }), /cannot be combined/);

    // Nobody campaigns: nothing to fail over.
    assert.equal(await operator.failover('nobody'), undefined);
    await assert.rejects(operator.failover('a/b'), /must not contain '\/'/);
  });

  test('failover() with a single candidate: graceful keeps it where it is; forced gives undefined, and it leads again with a new token', async () => {
    const prefix = uniquePrefix();
    const { singletons } = await candidates(['solo'], 'job', prefix);
    const s = singletons[0]!;
    const oldToken = s.leadership!.token;
    assert.equal(await locker('operator', prefix).failover('job'), 'solo');
    assert.equal(s.leadership?.token, oldToken, 'nobody else queues: nothing moved');
    const restarted = waitFor(() => (s.leadership?.token !== oldToken ? s.leadership : undefined), {
      timeoutMs: 10_000,
      message: 'solo leads again',
    });
    assert.equal(await locker('operator', prefix).failover('job', { force: true }), undefined);
    assert.ok(BigInt((await restarted).token) > BigInt(oldToken));
  });
});
