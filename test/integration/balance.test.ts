// Balance, drain and graceful (targeted) failover against a real etcd: lockers in this
// process for the spread and the API, host processes for the hand-over order.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import locked, { isHandOverError, isHostNotFoundError, type Locker, type LockerOptions } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { spawnHost, type Host } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';
import { Etcd3 } from 'etcd3';
import { JOINING_AT } from '../../src/core/campaign.js';
import { controlPrefix, hostKey } from '../../src/etcd/keys.js';
import { uniquePrefix, names, register, overlaps, spread, within, type Span } from '../helpers/balance.js';

let cluster: EtcdCluster;
const lockers: Locker[] = [];
const hosts: Host[] = [];
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await Promise.allSettled(hosts.map((h) => h.kill()));
  await Promise.allSettled(lockers.map((l) => l.close()));
  await cluster?.close();
});

function make(id: string, prefix: string, options: Pick<LockerOptions, 'balance' | 'weight' | 'zone' | 'prefer'> = {}): Locker {
  const l = locked(cluster.endpoints, { id, ttl: 5, prefix, handleSignals: false, ...options });
  lockers.push(l);
  return l;
}
describe('balance', () => {
  test('three hosts on the same 60 names end up leading 20 each, with every move graceful; a fourth joins and gets its share', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const list = names(60);
    const a = make('a', prefix);
    register(a, 'a', list, spans);
    await waitFor(async () => (await spread(a)).get('a') === 60, { timeoutMs: 20_000, message: 'a leads all 60 first' });
    const b = make('b', prefix);
    const c = make('c', prefix);
    register(b, 'b', list, spans);
    register(c, 'c', list, spans);
    await waitFor(async () => within(await spread(a), ['a', 'b', 'c'], 60), { timeoutMs: 20_000, message: 'spread 20/20/20' });
    const d = make('d', prefix);
    register(d, 'd', list, spans);
    await waitFor(async () => within(await spread(a), ['a', 'b', 'c', 'd'], 60), {
      timeoutMs: 20_000,
      message: 'spread 15 each after d joined',
    });
    const moves = spans.length - 60;
    // From 60/0/0 to 20/20/20 takes 40 moves, then 15 more for d: at most 1.2 × 55.
    assert.ok(moves <= Math.ceil(1.2 * 55), `moves ${moves} > 1.2 × the fewest (55)`);
    assert.deepEqual(overlaps(spans), []);
  });

  test('weights and zones: shares follow the weights (2:1:1:0), the standby-only host leads nothing, every first standby sits in another zone than its leader', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const list = names(40);
    // z1: a (weight 2), b; z2: c, d (weight 0: standby only). Fair shares 20, 10, 10, 0.
    const specs = [
      ['a', { weight: 2, zone: 'z1' }],
      ['b', { zone: 'z1' }],
      ['c', { zone: 'z2' }],
      ['d', { weight: 0, zone: 'z2' }],
    ] as const;
    // d first: it leads every name until the others are in, then gives all away.
    const ls = specs.map(([id, o]) => make(id, prefix, o));
    register(ls[3]!, 'd', list, spans);
    await waitFor(async () => (await spread(ls[3]!)).get('d') === 40, { timeoutMs: 20_000, message: 'd leads all 40 first' });
    for (let i = 0; i < 3; i++) register(ls[i]!, specs[i]![0], list, spans);
    await waitFor(
      async () => {
        const s = await spread(ls[0]!);
        return s.get('a') === 20 && s.get('b') === 10 && s.get('c') === 10 && (s.get('d') ?? 0) === 0;
      },
      { timeoutMs: 30_000, message: 'spread 20/10/10/0 by weight' },
    );
    const zone: Record<string, string> = { a: 'z1', b: 'z1', c: 'z2', d: 'z2' };
    let last = '';
    await waitFor(
      async () => {
        const st = await ls[0]!.status();
        const same = st.filter((n) => n.candidates.length > 1 && zone[n.candidates[0]!] === zone[n.candidates[1]!]);
        const d1 = st.filter((n) => n.candidates[1] === 'd');
        last = `${same.length} name(s) with a same-zone first standby, ${d1.length} with d (standby only) first`;
        return same.length === 0 && d1.length === 0;
      },
      { timeoutMs: 30_000, message: 'every first standby in another zone, none standby-only' },
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last seen: ${last}`);
    });
    // The per-host view, once no standby is between stepping back and queueing again (a
    // candidate out of a queue for a moment counts for less of the share).
    const want = JSON.stringify([
      ['a', 'z1', 2, 20],
      ['b', 'z1', 1, 10],
      ['c', 'z2', 1, 10],
      ['d', 'z2', 0, 0],
    ]);
    await waitFor(
      async () => {
        last = JSON.stringify((await ls[0]!.status({ hosts: true })).map((h) => [h.id, h.zone, h.weight, h.share]));
        return last === want;
      },
      { timeoutMs: 30_000, message: `status({ hosts: true }) says ${want}` },
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last seen: ${last}`);
    });
    assert.deepEqual(overlaps(spans), []);
  });

  test('prefer: names lead on their preferred host once it is up, balancing fills the rest around them; when it leaves they fail over, when it returns they move back', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const list = names(30);
    const preferred = new Set(list.slice(0, 6));
    const opts = { balance: { preferHoldDownMs: 1_000 }, prefer: (name: string) => (preferred.has(name) ? ['c'] : undefined) };
    const [a, b] = [make('a', prefix, opts), make('b', prefix, opts)];
    register(a, 'a', list, spans);
    register(b, 'b', list, spans);
    await waitFor(async () => within(await spread(a), ['a', 'b'], 30), { timeoutMs: 20_000, message: 'spread 15/15 without c' });
    const leaderOf = async (): Promise<Map<string, string | undefined>> => new Map((await a.status()).map((n) => [n.name, n.leader]));
    const onC = async (): Promise<number> => [...(await leaderOf())].filter(([n, l]) => preferred.has(n) && l === 'c').length;
    let last = '';
    const expect = async (what: string, want: Record<string, number>, preferredOnC: number): Promise<void> => {
      await waitFor(
        async () => {
          const s = await spread(a);
          const c = await onC();
          last = `${JSON.stringify(Object.fromEntries(s))}, ${c} preferred name(s) on c`;
          return Object.entries(want).every(([id, n]) => (s.get(id) ?? 0) === n) && c === preferredOnC;
        },
        { timeoutMs: 30_000, message: what },
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; last seen: ${last}`);
      });
    };
    // c joins: its 6 preferred names go to it, and it gets its share (8) of the other 24.
    let c = make('c', prefix, opts);
    register(c, 'c', list, spans);
    await expect('c leads its 6 preferred names and 8 others', { a: 8, b: 8, c: 14 }, 6);
    // c leaves: everything is led by a and b again.
    await c.close();
    await expect('a and b lead everything once c left', { a: 15, b: 15 }, 0);
    // c returns (a new process, the same id): its preferred names come back to it.
    c = make('c', prefix, opts);
    register(c, 'c', list, spans);
    await expect('the preferred names back on c', { a: 8, b: 8, c: 14 }, 6);
    assert.deepEqual(overlaps(spans), []);
    // A singleton's own list takes precedence over the locker's function, and is validated.
    assert.throws(
      () => a('x', () => {}, { prefer: 'c' as unknown as string[] }),
      /options\.prefer of 'x' must be an array of strings, got string \('c'\)/,
    );
    assert.throws(() => a('y', () => {}, { prefer: [''] }), /options\.prefer of 'y'\[0\] must be a host id/);
  });

  test('a joining host: its record says so before any of its campaigns lands, and no leader hands a name to it until the record no longer does', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const list = names(2 * JOINING_AT);
    const a = make('a', prefix);
    register(a, 'a', list, spans);
    await waitFor(async () => (await spread(a)).get('a') === list.length, { timeoutMs: 30_000, message: `a leads all ${list.length}` });
    const client = new Etcd3({ hosts: cluster.endpoints });
    try {
      const aLease = (JSON.parse((await client.get(hostKey(prefix, 'a')).string()) ?? '{}') as { lease?: string }).lease;
      assert.ok(aLease, "a's host record names its lease");
      const events: { type: 'put' | 'delete'; key: string; value: string; rev: bigint }[] = [];
      const watcher = await client.watch().prefix(prefix).create();
      const push = (type: 'put' | 'delete') => (kv: { key: Buffer; value: Buffer; mod_revision: string }) =>
        events.push({ type, key: kv.key.toString(), value: kv.value.toString(), rev: BigInt(kv.mod_revision) });
      watcher.on('put', push('put'));
      watcher.on('delete', push('delete'));
      const b = make('b', prefix);
      register(b, 'b', list, spans);
      await waitFor(async () => within(await spread(a), ['a', 'b'], list.length), { timeoutMs: 30_000, message: 'spread 200/200' });
      await watcher.cancel();
      const records = events
        .filter((e) => e.type === 'put' && e.key === hostKey(prefix, 'b'))
        .map((e) => ({ joining: (JSON.parse(e.value) as { joining?: unknown }).joining === true, rev: e.rev }));
      const on = records.find((r) => r.joining);
      assert.ok(on, `b's record said joining (${JSON.stringify(records, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))})`);
      const off = records.find((r) => !r.joining && r.rev > on.rev);
      assert.ok(off, "then b's record no longer said so");
      const election = (e: { key: string }) => !e.key.startsWith(controlPrefix(prefix));
      const campaigns = events.filter((e) => e.type === 'put' && election(e) && e.value === 'b');
      assert.equal(campaigns.filter((e) => e.rev < on.rev).length, 0, 'a campaign of b landed before its record said joining');
      const handOvers = events.filter((e) => e.type === 'delete' && election(e) && e.key.endsWith(`/${aLease}`));
      assert.ok(handOvers.length >= list.length / 2, `a handed ${handOvers.length} names over`);
      const early = handOvers.filter((e) => e.rev < off.rev);
      assert.equal(
        early.length,
        0,
        `${early.length} hand-overs while b was joining (first at revision ${early[0]?.rev}, joining until ${off.rev})`,
      );
      assert.deepEqual(overlaps(spans), []);
    } finally {
      client.close();
    }
  });

  test('{ balance: false } keeps every name where it is; a name with a foreign candidate is never moved', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const a = make('a', prefix, { balance: false });
    register(a, 'a', names(10), spans);
    await waitFor(async () => (await spread(a)).get('a') === 10, { timeoutMs: 20_000, message: 'a leads all 10' });
    const b = make('b', prefix, { balance: false });
    register(b, 'b', names(10), spans);
    await waitFor(async () => (await a.status()).every((s) => s.candidates.length === 2), { timeoutMs: 20_000, message: 'b queues' });
    // b balances, a does not: still nothing moves (only a leader moves its names).
    assert.equal((await spread(a)).get('a'), 10);
    assert.equal(spans.length, 10);
  });

  test('drain hands every leadership over gracefully and keeps the host a standby; undrain lets balance give it its share back', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const list = names(30);
    const a = make('a', prefix);
    const b = make('b', prefix);
    const c = make('c', prefix);
    for (const [l, id] of [
      [a, 'a'],
      [b, 'b'],
      [c, 'c'],
    ] as const)
      register(l, id, list, spans);
    // Spread, and every standby queued again: a name just handed over lacks the keys of the
    // hosts that made way until their campaigns land, and drain() rightly counts a name that
    // no other host queues for as one it may keep (it is in the view drain() judges from by
    // then: the drain order is written after this read).
    await waitFor(async () => within(await spread(a), ['a', 'b', 'c'], 30) && (await a.status()).every((n) => n.candidates.length === 3), {
      timeoutMs: 20_000,
      message: 'spread 10/10/10, three candidates for every name',
    });
    const moved: string[] = [];
    await a.drain({ onMove: (name) => moved.push(name) });
    const after = await spread(b);
    assert.equal(after.get('a') ?? 0, 0, 'a leads nothing after drain()');
    assert.ok(within(after, ['b', 'c'], 30), `b and c share the 30: ${JSON.stringify([...after])}`);
    const st = await a.status({ hosts: true });
    assert.equal(st.find((h) => h.id === 'a')?.draining, true);
    // Each handed-over name is campaigned for again, at the back of its queue.
    await waitFor(async () => (await a.status({ hosts: true })).find((h) => h.id === 'a')?.queued.length === 30, {
      timeoutMs: 10_000,
      message: 'a queues again for every name',
    });
    // A drained host still takes a name nobody else can: b and c leave one.
    b.singletons()['job000']!.remove();
    c.singletons()['job000']!.remove();
    await waitFor(async () => (await a.leader('job000')) === 'a', { timeoutMs: 20_000, message: 'a takes job000 when alone' });
    await a.undrain();
    await waitFor(async () => within(await spread(a), ['a', 'b', 'c'], 30), { timeoutMs: 20_000, message: 'spread again after undrain' });
    assert.deepEqual(overlaps(spans), []);
  });
});

describe('graceful failover', () => {
  test('failover(name, { to }) hands the name to the named host after the old fn settled; errors say what was wrong', async () => {
    const prefix = uniquePrefix();
    const spans: Span[] = [];
    const ls = ['a', 'b', 'c', 'd'].map((id) => make(id, prefix, { balance: false }));
    ls.forEach((l, i) => register(l, 'abcd'[i]!, ['x'], spans));
    await waitFor(async () => (await ls[0]!.status())[0]?.candidates.length === 4, { timeoutMs: 20_000, message: 'four candidates' });
    for (const to of ['d', 'b', 'c', 'a', 'd']) {
      assert.equal(await ls[0]!.failover('x', { to }), to);
      await waitFor(() => spans.filter((s) => s.end === undefined).length === 1 && spans.at(-1)!.host === to, {
        timeoutMs: 10_000,
        message: `${to} runs x`,
      });
    }
    assert.deepEqual(overlaps(spans), []);
    // No live host is 'nobody' (test/integration/host-not-found.test.ts has the live host that does not queue).
    await assert.rejects(
      ls[0]!.failover('x', { to: 'nobody' }),
      (e: unknown) => isHostNotFoundError(e) && e.nodeId === 'nobody' && e.liveIds.join() === 'a,b,c,d',
    );
    // A draining host stands aside whenever another may lead: refused at once, not left to time out.
    const notLeading = ['a', 'b', 'c', 'd'].find((id) => id !== spans.at(-1)!.host)!;
    await ls[0]!.drain({ nodeId: notLeading });
    await assert.rejects(ls[0]!.failover('x', { to: notLeading }), (e: unknown) => isHandOverError(e) && /is draining/.test(e.message));
    await ls[0]!.undrain({ nodeId: notLeading });
    // Without a target: whoever is next; with nobody else, the leader stays.
    const before = await ls[0]!.leader('x');
    const next = await ls[0]!.failover('x');
    assert.notEqual(next, before);
    assert.equal(await ls[0]!.failover('nobody-runs-this'), undefined);
  });

  test('20 targeted failovers between host processes: the named host leads next and the old stop precedes the new start every time', async () => {
    const prefix = uniquePrefix();
    const ids = ['p0', 'p1', 'p2'];
    for (const id of ids)
      hosts.push(await spawnHost({ endpoints: cluster.endpoints, id, ttl: 5, prefix, names: ['y'], fn: { kind: 'work', stopMs: 20 } }));
    const ctl = make('ctl', prefix);
    await waitFor(async () => (await ctl.status())[0]?.candidates.length === 3, { timeoutMs: 20_000, message: 'three candidates' });
    for (let i = 0; i < 20; i++) {
      // The last leader queues again after its hand-over: the target may be it.
      await waitFor(async () => (await ctl.status())[0]?.candidates.length === 3, {
        timeoutMs: 20_000,
        message: `trial ${i}: three candidates`,
      });
      const leader = await ctl.leader('y');
      const others = ids.filter((id) => id !== leader);
      const to = others[i % others.length]!;
      const from = hosts.find((h) => h.config.id === leader)!;
      const target = hosts.find((h) => h.config.id === to)!;
      const startsBefore = target.events.filter((e) => e.type === 'fn' && e.name === 'y').length;
      assert.equal(await ctl.failover('y', { to }), to);
      await waitFor(() => target.events.filter((e) => e.type === 'fn' && e.name === 'y').length > startsBefore, {
        timeoutMs: 10_000,
        message: `${to} starts y`,
      });
      const lastEnd = BigInt(from.events.filter((e) => e.type === 'fn-end' && e.name === 'y').at(-1)!.t);
      const lastStart = BigInt(target.events.filter((e) => e.type === 'fn' && e.name === 'y').at(-1)!.t);
      assert.ok(lastEnd < lastStart, `trial ${i}: ${leader}'s fn ended at ${lastEnd}, after ${to} started at ${lastStart}`);
    }
  });
});
