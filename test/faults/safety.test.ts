// The safety suite (issue 3), short form: each property of "at most one host runs a
// name at any moment, and some host runs it whenever the cluster can decide" under one
// injected fault, against a real 3-node etcd with hosts as separate processes. Every
// test ends by feeding all host histories to the checker (test/helpers/history.ts).
// The long form is `npm run chaos` (test/chaos.ts).
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { leadersOf, spawnHost, type FnSpec, type Host, type HostConfig, type HostEvent } from '../helpers/host.js';
import {
  checkHistories,
  describeReport,
  historyOf,
  ms,
  timeline,
  type FaultWindow,
  type HistoryReport,
  type ProcessHistory,
} from '../helpers/history.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Short leases keep the suite short; the step-down rule scales with them. */
const TTL = 2;
/** The default renewDeadline: ⅔ × ttl. */
const RENEW_MS = (TTL * 1000 * 2) / 3;
/**
 * How long a test waits for a condition before it fails: several ttls and then some. No
 * assertion here is about speed — each waits for an order or a state, and reports how long
 * it took with t.diagnostic; the figures that matter live in `npm run bench`.
 */
const DEADLINE_MS = 3 * TTL * 1000 + 20_000;

const now = (): bigint => process.hrtime.bigint();
const hex = (leaseId: string): string => BigInt(leaseId).toString(16);
const uniquePrefix = (): string => `safe${Math.random().toString(36).slice(2, 8)}/`;
const fenced = (afterAbort?: number): FnSpec => ({ kind: 'fenced', everyMs: 50, ...(afterAbort ? { afterAbort } : {}) });
const isAfter = (ev: HostEvent, t: bigint): boolean => BigInt(ev.t) > t;

let cluster: EtcdCluster;
const live = new Set<Host>();
const proxies = new Set<Proxy>();

before(async () => {
  cluster = await startEtcd({ members: 3 });
});
afterEach(async () => {
  await Promise.all(
    [...live].map(async (h) => {
      h.kill('SIGCONT');
      await h.stop();
    }),
  );
  live.clear();
  await Promise.all([...proxies].map((p) => p.close()));
  proxies.clear();
});
after(async () => {
  await cluster?.close();
});

async function host(config: Omit<HostConfig, 'endpoints'> & { endpoints?: HostConfig['endpoints'] }): Promise<Host> {
  const h = await spawnHost({ endpoints: cluster.endpoints, ttl: TTL, ...config });
  live.add(h);
  return h;
}

async function proxyTo(member = 0): Promise<Proxy> {
  const p = await startProxy(cluster.endpoints[member]!);
  proxies.add(p);
  return p;
}

interface QueueEntry {
  key: string;
  createRevision: bigint;
  lease: string;
}

/** The candidates of `name` in etcd, oldest first. */
async function queueOf(prefix: string, name: string): Promise<QueueEntry[]> {
  const r = await cluster.etcdctl(['get', `${prefix}${name}/`, '--prefix', '-w', 'json']);
  if (r.code !== 0) throw new Error(`etcdctl get: ${r.stderr}`);
  // Revisions and lease ids are 64-bit: keep them out of JSON numbers.
  const json = r.stdout.replace(/"(create_revision|mod_revision|version|lease)":(\d+)/g, '"$1":"$2"');
  const kvs = (JSON.parse(json) as { kvs?: { key: string; create_revision: string; lease?: string }[] }).kvs ?? [];
  return kvs
    .map((kv) => ({
      key: Buffer.from(kv.key, 'base64').toString(),
      createRevision: BigInt(kv.create_revision),
      lease: BigInt(kv.lease ?? '0').toString(16),
    }))
    .sort((a, b) => (a.createRevision < b.createRevision ? -1 : 1));
}

/** Seconds etcd says lease `leaseHex` has left (etcdctl lease timetolive: "… remaining(5s)"). */
async function remainingTtl(leaseHex: string): Promise<number> {
  const r = await cluster.etcdctl(['lease', 'timetolive', leaseHex]);
  const m = /remaining\((-?\d+)s\)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`etcdctl lease timetolive ${leaseHex}: ${r.stdout} ${r.stderr}`);
  return Number(m[1]);
}

/** Waits until balancing has spread `names` over `hs`: each name one leader, every host ⌊N/H⌋..⌈N/H⌉ of them. */
async function spreadOver(hs: Host[], names: string[]): Promise<void> {
  const lo = Math.floor(names.length / hs.length);
  const hi = Math.ceil(names.length / hs.length);
  await waitFor(
    () =>
      names.every((n) => leadersOf(hs, n).length === 1) &&
      hs.every((h) => {
        const led = names.filter((n) => h.leads(n)).length;
        return led >= lo && led <= hi;
      }),
    { timeoutMs: 20_000, message: `${names.join(',')} spread over ${hs.map((h) => h.id).join(',')}` },
  );
}

/** Waits until `name` has `n` candidates in etcd (a host that reported 'session' may not have written its key yet). */
async function queued(prefix: string, name: string, n: number): Promise<QueueEntry[]> {
  return waitFor(
    async () => {
      const q = await queueOf(prefix, name);
      return q.length === n ? q : undefined;
    },
    { timeoutMs: 20_000, message: `${n} candidates of ${prefix}${name}` },
  );
}

/** Runs the checker over every host's history; fails on an overlap, a fencing violation, an anomaly or a crash. */
function judge(
  hosts: (Host | ProcessHistory)[],
  t0: bigint,
  faults: FaultWindow[] = [],
  deletes: { name: string; at: bigint }[] = [],
  spans: 'fn' | 'signal' = 'fn',
): HistoryReport {
  const histories = hosts.map((h) => ('label' in h ? h : historyOf(h)));
  const r = checkHistories(histories, { endOfRun: now(), faults, deletes, spans });
  const why = `${describeReport(r)}\n${timeline(r, t0)}`;
  assert.deepEqual(r.overlaps, [], `leaderships overlap:\n${why}`);
  assert.deepEqual(r.fencing.violations, [], `fencing violated:\n${why}`);
  assert.deepEqual(r.anomalies, [], `odd histories:\n${why}`);
  for (const h of histories) {
    const crashes = h.events.filter((e) => e.type === 'crash');
    assert.deepEqual(crashes, [], `host ${h.label} crashed`);
  }
  return r;
}

describe('safety under faults', () => {
  test('a leader cut off by a black-holed proxy stops before the standby starts, then recovers and queues again', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const name = 'cut';
    const fencePrefix = `${prefix}fence/`;
    const proxy = await proxyTo(0);
    const t0 = now();
    const a = await host({ id: 'a', endpoints: [proxy.endpoint], prefix, names: [name], fn: fenced(), fencePrefix });
    await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const b = await host({ id: 'b', prefix, names: [name], fn: fenced(), fencePrefix });
    await queued(prefix, name, 2);

    const cutAt = now();
    proxy.blackhole();
    const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === name, DEADLINE_MS, 'stop after the cut');
    assert.equal(stop.reason, 'lost');
    const start = await b.waitEvent((e) => e.type === 'start' && e.name === name, DEADLINE_MS, 'standby takes over');
    const stepDownMs = ms(BigInt(stop.t) - cutAt);
    const takeoverMs = ms(BigInt(start.t) - cutAt);
    t.diagnostic(
      `step-down ${stepDownMs.toFixed(1)} ms after the cut (renewDeadline ${RENEW_MS.toFixed(0)} ms); standby started ${takeoverMs.toFixed(1)} ms after the cut, ${ms(BigInt(start.t) - BigInt(stop.t)).toFixed(1)} ms after the step-down`,
    );
    // The step-down rule itself, as order: a's lease (its last keepalive went through before
    // the cut) expires in etcd no earlier than that keepalive's send + ttl, and only that
    // expiry lets b in — so b's start is the etcd-side event a's step-down (at most
    // renewDeadline < ttl after that send) must precede. How long it took is the diagnostic above.
    assert.ok(
      BigInt(stop.t) < BigInt(start.t),
      `the cut-off leader stopped ${ms(BigInt(stop.t) - BigInt(start.t))} ms after the standby started`,
    );
    // It stopped on its own deadline, not on news from etcd: it had none.
    assert.ok(
      !a.events.some((e) => e.type === 'session' && isAfter(e, cutAt) && BigInt(e.t) < BigInt(stop.t)),
      'a new session before the step-down',
    );

    const healAt = now();
    proxy.heal();
    const session = await a.waitEvent((e) => e.type === 'session' && isAfter(e, healAt), 30_000, 'a new session after the heal');
    // Queued again, behind the standby, with its new lease.
    await waitFor(
      async () => {
        const q = await queueOf(prefix, name);
        return q.length === 2 && q[1]!.lease === hex(session.leaseId!);
      },
      { timeoutMs: 20_000, message: `a queued again with lease ${hex(session.leaseId!)}` },
    );
    t.diagnostic(`new session ${ms(BigInt(session.t) - healAt).toFixed(0)} ms after the heal`);
    assert.equal(await b.request({ op: 'leader', name }), 'b');
    assert.ok(b.leads(name) && !a.leads(name));
    const r = judge([a, b], t0);
    assert.ok(r.fencing.accepted > 0, 'fenced writes were made');
  });

  test('SIGSTOP of the leader past its ttl: the standby takes over, the woken host stops on its own deadline before it hears from etcd, and its writes are rejected', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const name = 'pause';
    const fencePrefix = `${prefix}fence/`;
    const t0 = now();
    // a's fn ignores its signal for 5 more writes: a paused host that wakes up mid-work.
    const a = await host({ id: 'a', prefix, names: [name], fn: fenced(5), fencePrefix });
    await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const b = await host({ id: 'b', prefix, names: [name], fn: fenced(), fencePrefix });
    await queued(prefix, name, 2);
    await a.waitEvent((e) => e.type === 'write' && e.ok === true, 10_000, 'an accepted write');

    a.kill('SIGSTOP');
    const pausedAt = a.pauses.at(-1)!.from;
    const start = await b.waitEvent((e) => e.type === 'start' && e.name === name, DEADLINE_MS, 'standby takes over');
    await b.waitEvent((e) => e.type === 'write' && e.ok === true, DEADLINE_MS, "the standby's first accepted write");
    // The fault lasts ttl + 1 s at least.
    const minPauseMs = TTL * 1000 + 1000;
    const pausedMs = ms(now() - pausedAt);
    if (pausedMs < minPauseMs) await sleep(minPauseMs - pausedMs);
    a.kill('SIGCONT');
    const wokeAt = a.pauses.at(-1)!.to!;

    const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === name, DEADLINE_MS, 'stop after waking');
    const wakeToStopMs = ms(BigInt(stop.t) - wokeAt);
    t.diagnostic(
      `standby started ${ms(BigInt(start.t) - pausedAt).toFixed(0)} ms after SIGSTOP; woken leader stopped ${wakeToStopMs.toFixed(1)} ms after SIGCONT`,
    );
    // The order that makes "at once" checkable: woken past its step-down deadline, a judges
    // that deadline before anything else it does — it stops 'lost' (its own deadline), not
    // 'deposed' (the watch event of its key's expiry, already waiting in its socket), and
    // before its 'lost' session event and the new session it then asks etcd for.
    assert.equal(stop.reason, 'lost', 'the woken leader acted on an event before judging its deadline');
    const lost = await a.waitEvent((e) => e.type === 'lost' && isAfter(e, wokeAt), DEADLINE_MS, "a's lost session after waking");
    assert.ok(BigInt(stop.t) <= BigInt(lost.t), `the stop came after the 'lost' event: ${JSON.stringify([stop, lost])}`);
    // No work started on a's behalf after waking: no new leadership before the stop.
    assert.equal(a.events.filter((e) => e.type === 'start' && isAfter(e, wokeAt) && BigInt(e.t) < BigInt(stop.t)).length, 0);

    // The zombie writes after the wake reach etcd and must all be rejected by the fence.
    await waitFor(() => a.events.filter((e) => e.type === 'write' && e.sent !== undefined && BigInt(e.sent) > wokeAt).length >= 5, {
      timeoutMs: DEADLINE_MS,
      message: 'the 5 writes a makes after waking',
    });
    const late = a.events.filter((e) => e.type === 'write' && e.sent !== undefined && BigInt(e.sent) > wokeAt);
    assert.deepEqual(
      late.filter((e) => e.ok),
      [],
      'writes of the woken host after the takeover were accepted',
    );
    assert.ok(
      late.some((e) => e.ok === false && e.message === undefined),
      `the fence rejected them (not an error): ${JSON.stringify(late)}`,
    );
    const session = await a.waitEvent((e) => e.type === 'session' && isAfter(e, wokeAt), DEADLINE_MS, 'a new session after waking');
    assert.ok(BigInt(stop.t) < BigInt(session.t), 'the woken leader got a new session before it stopped');
    assert.ok(b.leads(name));

    // a's fn is a zombie on purpose (it keeps writing after its signal aborted): its
    // writes overlap b's by design and only the fence stops them, so this judges the
    // library's step-down (the signal), and the fence.
    // (judge() fails on any overlap but the checker's tolerated one right after a wake, which
    // must end with the woken host's stop.)
    const r = judge([a, b], t0, [], [], 'signal');
    if (r.wakeOverlaps.length)
      t.diagnostic(`tolerated overlap right after the wake: ${r.wakeOverlaps.map((o) => `${o.ms.toFixed(1)} ms`).join(', ')}`);
    assert.ok(r.wakeStops.some((w) => w.label === 'a' && w.reason === 'lost'));
  });

  test('own key deleted by an operator: the leader stops on the delete (deposed, its lease alive), queues at the back, the next candidate leads', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const name = 'depose';
    const fencePrefix = `${prefix}fence/`;
    const t0 = now();
    const a = await host({ id: 'a', prefix, names: [name], fn: fenced(), fencePrefix });
    const aStart = await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const b = await host({ id: 'b', prefix, names: [name], fn: fenced(), fencePrefix });
    await queued(prefix, name, 2);

    const delAt = now();
    const del = await cluster.etcdctl(['del', aStart.key!]);
    const delDone = now();
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout.trim(), '1');
    const stop = await a.waitEvent((e) => e.type === 'stop' && e.name === name, DEADLINE_MS, 'stop after the delete');
    const start = await b.waitEvent((e) => e.type === 'start' && e.name === name, DEADLINE_MS, 'the next candidate leads');
    t.diagnostic(
      `deposed leader stopped ${ms(BigInt(stop.t) - delDone).toFixed(1)} ms after etcdctl del returned (${ms(delDone - delAt).toFixed(0)} ms to run it); ` +
        `next leader started ${ms(BigInt(start.t) - BigInt(stop.t)).toFixed(1)} ms after that stop`,
    );
    // What ended it: the delete itself ('deposed'), with a's session alive throughout (no
    // lost lease, no new session) — nothing but the watch event of the delete could have.
    assert.equal(stop.reason, 'deposed');
    assert.ok(BigInt(stop.t) > delAt, 'a stopped before the delete was issued');
    assert.deepEqual(
      a.events.filter((e) => (e.type === 'lost' || e.type === 'session') && isAfter(e, delAt)),
      [],
      'the deposed leader lost or renewed its session',
    );
    // Queued again at the back: the same key (same lease) written anew, after b's.
    const q = await waitFor(
      async () => {
        const q = await queueOf(prefix, name);
        return q.length === 2 && q[1]!.key === aStart.key ? q : undefined;
      },
      { timeoutMs: DEADLINE_MS, message: 'a queued again behind b' },
    );
    assert.ok(q[1]!.createRevision > BigInt(aStart.token!));
    assert.equal(await a.request({ op: 'leader', name }), 'b');
    // Both learn of the delete from the same watch event: b may start a millisecond
    // before a stops (the checker tolerates that only for a leadership that ended 'deposed'
    // after a recorded delete, with b's start after it); a's writes after the delete are fenced off.
    const r = judge([a, b], t0, [], [{ name, at: delAt }]);
    assert.deepEqual(
      a.events.filter((e) => e.type === 'write' && e.ok && e.token === aStart.token && e.sent !== undefined && BigInt(e.sent) > delDone),
      [],
      'a write of the deposed leader sent after the delete was accepted',
    );
    if (r.deposeOverlaps.length) t.diagnostic(`b started ${r.deposeOverlaps[0]!.ms.toFixed(2)} ms before a stopped (same watch event)`);
  });

  test('a waiting candidate whose lease died while cut off never wins on the dead lease', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const name = 'dead';
    const proxy = await proxyTo(1);
    const t0 = now();
    const a = await host({ id: 'a', prefix, names: [name] });
    await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const w = await host({ id: 'w', endpoints: [proxy.endpoint], prefix, names: [name] });
    const first = await w.waitEvent((e) => e.type === 'session');
    await queued(prefix, name, 2);

    proxy.blackhole();
    const lost = await w.waitEvent((e) => e.type === 'lost', RENEW_MS + 10_000, 'the cut-off candidate loses its lease');
    // The leader leaves while w is cut off: w's old key heads the queue until its lease expires.
    await a.request({ op: 'remove', name });
    const healAt = now();
    proxy.heal();
    const session = await w.waitEvent((e) => e.type === 'session' && isAfter(e, BigInt(lost.t)), 30_000, 'a new session');
    const start = await w.waitEvent((e) => e.type === 'start' && e.name === name, 30_000, 'w leads on its new lease');
    t.diagnostic(
      `new session ${ms(BigInt(session.t) - healAt).toFixed(0)} ms after the heal; leads ${ms(BigInt(start.t) - BigInt(session.t)).toFixed(0)} ms after it`,
    );
    assert.ok(BigInt(start.t) > BigInt(session.t), 'w started before its new session: it won on the dead lease');
    assert.equal(start.key, `${prefix}${name}/${hex(session.leaseId!)}`);
    assert.notEqual(hex(first.leaseId!), hex(session.leaseId!));
    judge([a, w], t0);
  });

  test('a waiting candidate whose event loop was blocked past its ttl never wins on the dead lease', async () => {
    const prefix = uniquePrefix();
    const name = 'blocked';
    const t0 = now();
    const a = await host({ id: 'a', prefix, names: [name] });
    await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const w = await host({ id: 'w', prefix, names: [name] });
    const first = await w.waitEvent((e) => e.type === 'session');
    await queued(prefix, name, 2);

    // The leader hands over while w cannot run: when w's loop runs again, the delete
    // event says "you lead" but its lease may be gone — it must notice the deadline first.
    const blocked = w.request({ op: 'block', ms: TTL * 1000 });
    // Only once w is really blocked: had it seen the delete first, it would lead legitimately.
    await w.waitEvent((e) => e.type === 'blocking', 10_000, 'w blocks');
    await a.request({ op: 'remove', name });
    await blocked;
    const lost = await w.waitEvent((e) => e.type === 'lost', 10_000, 'w notices its lease is lost');
    const session = await w.waitEvent((e) => e.type === 'session' && isAfter(e, BigInt(lost.t)), 30_000, 'a new session');
    const start = await w.waitEvent((e) => e.type === 'start' && e.name === name, 30_000, 'w leads on its new lease');
    assert.ok(BigInt(start.t) > BigInt(session.t), 'w started before its new session: it won on the dead lease');
    assert.equal(start.key, `${prefix}${name}/${hex(session.leaseId!)}`);
    assert.notEqual(hex(first.leaseId!), hex(session.leaseId!));
    judge([a, w], t0);
  });

  test('SIGTERM to the leader: it stops, revokes its lease, and the standby starts on that revoke — before the lease could have expired; the process exits by the signal', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const name = 'term';
    // A long ttl puts the earliest possible expiry of a's lease far from its resign, so that
    // "b started before a's lease could have expired" tells a resign from an expiry on any
    // machine, however loaded.
    const ttl = 20;
    const t0 = now();
    // probes: a reports the lease revoke it sends.
    const a = await host({ id: 'a', ttl, prefix, names: [name], probes: true });
    await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const lease = hex(a.events.find((e) => e.type === 'session')!.leaseId!);
    const b = await host({ id: 'b', ttl, prefix, names: [name] });
    await queued(prefix, name, 2);

    // The etcd-side bound: etcd cannot expire a's lease before `expiresNoEarlier` (asked
    // before the SIGTERM; etcd's remaining TTL is whole seconds, hence the second off).
    const askedAt = now();
    const remainingS = await remainingTtl(lease);
    const expiresNoEarlier = askedAt + BigInt(Math.max(0, remainingS - 1)) * 1_000_000_000n;
    const termAt = now();
    a.kill('SIGTERM');
    const exit = await a.exited;
    assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });
    const stop = a.events.find((e) => e.type === 'stop' && e.name === name);
    assert.ok(stop, 'a reported its stop before exiting');
    assert.equal(stop.reason, 'closed');
    const revoke = a.events.find((e) => e.type === 'revoke' && e.leaseId !== undefined && hex(e.leaseId) === lease);
    assert.ok(revoke, `a reported no revoke of its lease ${lease}: ${JSON.stringify(a.events.filter((e) => isAfter(e, termAt)))}`);
    const start = await b.waitEvent((e) => e.type === 'start' && e.name === name, ttl * 1000 + DEADLINE_MS, 'the standby starts');
    // …and etcd no longer has a's lease, asked before it could have expired: revoked.
    const leases = await cluster.leases();
    const leasesAt = now();
    t.diagnostic(
      `stop ${ms(BigInt(stop.t) - termAt).toFixed(1)} ms after SIGTERM, revoke sent ${ms(BigInt(revoke.t) - termAt).toFixed(1)} ms after it, ` +
        `standby started ${ms(BigInt(start.t) - termAt).toFixed(1)} ms after it; a's lease could not expire before ${(ms(expiresNoEarlier - termAt) / 1000).toFixed(1)} s after it (ttl ${ttl} s)`,
    );
    // The order of a resign: fn stopped, then the lease revoked, then the standby in.
    assert.ok(BigInt(stop.t) <= BigInt(revoke.t), 'a revoked its lease before its fn stopped');
    assert.ok(BigInt(revoke.t) < BigInt(start.t), 'the standby started before a revoked its lease');
    // Not an expiry: b started, and etcd had dropped the lease, before etcd could expire it.
    assert.ok(
      BigInt(start.t) < expiresNoEarlier,
      `the standby started ${ms(BigInt(start.t) - termAt).toFixed(0)} ms after SIGTERM, when a's lease may have expired: that is an expiry, not a resign`,
    );
    assert.ok(!leases.includes(lease), `etcd still has a's lease ${lease} after the standby started`);
    assert.ok(leasesAt < expiresNoEarlier, "etcd was asked for a's lease only after it could have expired: no proof of a revoke");
    judge([a, b], t0);
  });

  test('close() during an outage returns while etcd is still unreachable, crashes nothing and leaks nothing', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const proxy = await proxyTo(2);
    const t0 = now();
    // fn returns at once: close() waits up to stopTimeout for a fn that ignores its signal.
    const a = await host({ id: 'a', endpoints: [proxy.endpoint], prefix, names: ['x', 'y'], fn: { kind: 'hold' } });
    // Both names led before the outage (seen once with only y waited for: a start or session
    // stamped after closeAt — most likely x's start, its answer through the proxy before the
    // cut, while the close request was on its way; the check below now counts from the
    // host's own 'closing' stamp).
    for (const name of ['x', 'y']) await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const session = a.events.find((e) => e.type === 'session')!;

    proxy.blackhole();
    const closeAt = now();
    // The state that matters: close() returns with etcd still unreachable (its revoke gives
    // up; it does not wait for etcd to come back). The outage lasts until it has returned, or
    // until the deadline fails the test; how long it took is a figure, not a verdict.
    let closed = false;
    const closing = a.request({ op: 'close' }).then(() => (closed = true));
    await waitFor(() => closed, { timeoutMs: DEADLINE_MS, intervalMs: 10, message: 'close() returns during the outage' });
    await closing;
    const closeMs = ms(now() - closeAt);
    t.diagnostic(`close() during the outage took ${closeMs.toFixed(0)} ms (renewDeadline ${RENEW_MS.toFixed(0)} ms)`);
    for (const name of ['x', 'y']) {
      const stop = a.events.find((e) => e.type === 'stop' && e.name === name);
      assert.equal(stop?.reason, 'closed');
    }

    // Only the IPC channel (and stdio pipes) may keep the process alive once close() is
    // done: waited for as a state — every timer and socket gone — during the outage (a retry
    // loop left running would keep a timer forever: the deadline fails the test).
    const leaks = async (): Promise<string[]> =>
      (await a.request<string[]>({ op: 'resources' })).filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
    let last: string[] = [];
    await waitFor(async () => (last = await leaks()).length === 0 || undefined, {
      timeoutMs: DEADLINE_MS,
      intervalMs: 100,
      message: `nothing active after close() but IPC (still: ${last.join(', ')})`,
    }).catch((e: unknown) => assert.fail(`${String(e)}: ${last.join(', ')}`));
    proxy.heal();
    // The revoke could not get through: etcd expires the lease by itself. Until then — a ttl
    // after the outage began, with etcd reachable again — the closed host must not wake up.
    await waitFor(async () => (await cluster.keys(prefix)).length === 0, {
      timeoutMs: DEADLINE_MS,
      message: 'the keys of the closed host expire',
    });
    assert.ok(a.alive, `host died after close: ${a.stderr}`);
    assert.deepEqual(await leaks(), [], 'something active again after the heal');
    // After close() began in the host — its own stamp, not closeAt: a start whose answer
    // passed the proxy before the cut may land while the request is on its way.
    const closeBegan = BigInt(a.events.find((e) => e.type === 'closing')!.t);
    const late = a.events.filter((e) => BigInt(e.t) > closeBegan && (e.type === 'start' || e.type === 'session'));
    assert.deepEqual(late, [], 'a start or a session after close()');
    assert.ok(!(await cluster.leases()).includes(hex(session.leaseId!)), 'the lease is gone');
    assert.doesNotMatch(a.stderr, /Unhandled|Error|Warning/, a.stderr);
    judge([a], t0);
  });

  test('killing one etcd member of three, each in turn, changes no leadership', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const names = ['m-one', 'm-two'];
    // etcd's own leader election stalls keepalives for up to 2 × election timeout (2 s
    // here): the keepalive interval must leave that much before the step-down deadline.
    const ttl = 10;
    const t0 = now();
    const fencePrefix = `${prefix}fence/`;
    const a = await host({ id: 'a', ttl, prefix, names, fn: fenced(), fencePrefix });
    await a.waitEvent((e) => e.type === 'start' && e.name === names[1]);
    const b = await host({ id: 'b', ttl, prefix, names, fn: fenced(), fencePrefix });
    for (const name of names) await queued(prefix, name, 2);
    // Balancing gives b one of a's two names (gracefully); from then on nothing may move.
    await spreadOver([a, b], names);
    const settled = now();
    const faults: FaultWindow[] = [];
    try {
      const order = [await cluster.leaderIndex(), 0, 1, 2].filter((v, i, all) => v >= 0 && all.indexOf(v) === i);
      for (const i of order) {
        const m = cluster.members[i]!;
        const from = now();
        await m.kill();
        // Held long enough for at least one keepalive of every lease to need another member.
        await sleep((ttl * 1000) / 3 + 1500);
        await m.start();
        faults.push({ kind: 'kill-member', from, to: now() });
        assert.ok(await m.healthy(), `member ${m.name} is back`);
        t.diagnostic(`member ${m.name} down ${ms(now() - from).toFixed(0)} ms`);
      }
    } finally {
      for (const m of cluster.members) if (!m.isRunning) await m.start();
      await cluster.waitHealthy();
    }
    const changes = [a, b].flatMap((h) =>
      h.events.filter((e) => (e.type === 'start' || e.type === 'stop' || e.type === 'lost') && isAfter(e, settled)),
    );
    assert.deepEqual(changes, [], 'a leadership changed while one member was down');
    judge([a, b], t0, faults);
  });

  test('quorum loss: leaders stop with "lost", nobody leads without quorum; after restore every name has exactly one leader', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const names = ['q-one', 'q-two', 'q-three'];
    const fencePrefix = `${prefix}fence/`;
    const t0 = now();
    const a = await host({ id: 'a', prefix, names, fn: fenced(), fencePrefix });
    for (const name of names) await a.waitEvent((e) => e.type === 'start' && e.name === name);
    const b = await host({ id: 'b', prefix, names, fn: fenced(), fencePrefix });
    const c = await host({ id: 'c', prefix, names, fn: fenced(), fencePrefix });
    for (const name of names) await queued(prefix, name, 3);
    const hosts = [a, b, c];
    // Balancing spreads the three names, one per host, before the fault.
    await spreadOver(hosts, names);
    const leaders = new Map(names.map((n) => [n, leadersOf(hosts, n)[0]!]));

    const from = now();
    let restoredAt: bigint;
    let restoringAt = 0n;
    try {
      await Promise.all([cluster.members[1]!.kill(), cluster.members[2]!.kill()]);
      for (const name of names) {
        const h = leaders.get(name)!;
        const stop = await h.waitEvent((e) => e.type === 'stop' && e.name === name && BigInt(e.t) > from, DEADLINE_MS, `${name} stops`);
        assert.equal(stop.reason, 'lost');
      }
      t.diagnostic(`all leaders stopped ${ms(now() - from).toFixed(0)} ms after quorum loss`);
      // The outage (a fault's length, not a verdict) lasts past the ttl: every lease would
      // have expired on a live cluster.
      await sleep(TTL * 1000 + 1000);
    } finally {
      restoringAt = now();
      await cluster.members[1]!.start();
      await cluster.members[2]!.start();
      restoredAt = now();
    }
    // Nobody led at any moment without quorum: no start between the kill and the first
    // member's restart (after it, quorum may be back before start() returns).
    {
      const during = hosts.flatMap((h) =>
        h.events.filter((e) => e.type === 'start' && BigInt(e.t) > from && BigInt(e.t) < restoringAt).map((e) => `${h.id} ${e.name}`),
      );
      assert.deepEqual(during, [], 'a leadership started without quorum');
    }
    for (const name of names) {
      await waitFor(() => leadersOf(hosts, name).length === 1, {
        timeoutMs: DEADLINE_MS,
        intervalMs: 10,
        message: `one leader of ${name} after restore`,
      });
    }
    const recoveredMs = ms(now() - restoredAt);
    t.diagnostic(`every name led again ${recoveredMs.toFixed(0)} ms after quorum was restored`);
    const r = judge(hosts, t0, [{ kind: 'quorum-loss', from, to: restoredAt, blocksDecisions: true }]);
    t.diagnostic(describeReport(r));
  });
});
