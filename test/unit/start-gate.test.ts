// Who campaigns first when a fleet starts (src/features/start-gate.ts) and the rendezvous
// assignment it decides by (src/core/rendezvous.ts), as logic on a fake clock and a fake
// view. The fleet start against etcd is in balance.test.ts and balance-processes.test.ts;
// the times in the bench (start row).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rendezvousAssign, rendezvousOwner } from '../../src/core/rendezvous.js';
import { MAX_HOLD_MS, OWNER_WAIT_MS, SETTLE_MS, StartGate } from '../../src/features/start-gate.js';
import { parseControl, type ControlRecords } from '../../src/features/control-records.js';
import type { PrefixView } from '../../src/core/view.js';
import type { Candidate } from '../../src/core/queue.js';
import type { CampaignRequest } from '../../src/etcd/store.js';
import { FakeClock } from '../helpers/clock.js';

const P = 'p/';
const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `${P}n${i}/`);
const equal = (ids: string[]): { id: string; weight: number }[] => ids.map((id) => ({ id, weight: 1 }));
const counts = (m: Map<string, string>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const v of m.values()) out[v] = (out[v] ?? 0) + 1;
  return out;
};

describe('rendezvous', () => {
  test('owner: a host leaving moves only the names it owned; weights make shares proportional', () => {
    const all = names(20_000);
    const four = equal(['a', 'b', 'c', 'd']);
    const three = four.filter((h) => h.id !== 'd');
    let moved = 0;
    for (const n of all) {
      const before = rendezvousOwner(n, four)!;
      const after = rendezvousOwner(n, three)!;
      if (before !== 'd' && after !== before) moved++;
    }
    assert.equal(moved, 0, 'names of the hosts that stayed keep their owner');
    const weighted = counts(
      new Map(
        all.map((n) => [
          n,
          rendezvousOwner(n, [
            { id: 'a', weight: 2 },
            { id: 'b', weight: 1 },
            { id: 'z', weight: 0 },
          ])!,
        ]),
      ),
    );
    assert.equal(weighted['z'], undefined, 'a host of weight 0 owns nothing');
    const ratio = weighted['a']! / weighted['b']!;
    assert.ok(ratio > 1.85 && ratio < 2.15, `weight 2 vs 1: ${weighted['a']} vs ${weighted['b']}`);
    assert.equal(rendezvousOwner(all[0]!, [{ id: 'z', weight: 0 }]), undefined);
  });

  test('assign: every host gets its quota exactly, whatever order the names come in; fixed names stay', () => {
    const all = names(2_000);
    const hosts = equal(['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7']);
    const a = rendezvousAssign(all, hosts);
    assert.deepEqual(Object.values(counts(a)), Array(8).fill(250), `loads ${JSON.stringify(counts(a))}`);
    // The same answer from the names in another order and the hosts in another order.
    const b = rendezvousAssign([...all].reverse(), [...hosts].reverse());
    assert.deepEqual([...a].sort(), [...b].sort());
    // Mostly rendezvous: the quota moves only the excess (±√n per host), not the lot.
    const pure = all.filter((n) => a.get(n) === rendezvousOwner(n, hosts)).length;
    assert.ok(pure > 1_800, `${pure} of 2,000 names on their rendezvous owner`);
    // Weights: quotas by largest remainder (1,000 × 2/3 = 666.7 → 667, 333.3 → 333).
    const w = counts(
      rendezvousAssign(names(1_000), [
        { id: 'x', weight: 2 },
        { id: 'y', weight: 1 },
        { id: 'z', weight: 0 },
      ]),
    );
    assert.deepEqual(w, { x: 667, y: 333 });
    // Fixed (a preferred host): kept even past the quota; the rest fill around them.
    const fixed = rendezvousAssign(names(100), equal(['a', 'b']), (n) => (n < `${P}n5` ? 'b' : undefined));
    for (const n of names(100).filter((n) => n < `${P}n5`)) assert.equal(fixed.get(n), 'b', n);
    assert.deepEqual(counts(fixed), { a: 50, b: 50 });
  });

  test('assign: hosts that differ by one agree on most names', () => {
    const all = names(2_000);
    const eight = equal(['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7']);
    const a = rendezvousAssign(all, eight);
    const b = rendezvousAssign(all, eight.slice(0, 7));
    const same = all.filter((n) => a.get(n) === b.get(n)).length;
    // h7's 250 names go elsewhere; of the others, most stay.
    assert.ok(same > 1_500, `${same} of 2,000 names keep their owner`);
  });
});

// ——— the gate ———

class FakeView {
  readonly queues = new Map<string, Candidate[]>();
  queue(name: string): readonly Candidate[] {
    return this.queues.get(name) ?? [];
  }
  /** `id` campaigned for `name`. */
  add(name: string, id: string): void {
    const q = this.queues.get(name) ?? [];
    q.push({ key: `${P}${name}/${id}`, value: id, createRevision: BigInt(q.length + 1) });
    this.queues.set(name, q);
  }
}

const hostRecords = (hosts: Record<string, { joining?: boolean; weight?: number; zone?: string; draining?: boolean }>): ControlRecords => {
  const m = new Map<string, string>();
  for (const [id, r] of Object.entries(hosts)) {
    m.set(
      `${P}/hosts/${id}`,
      JSON.stringify({
        lease: `${id}-lease`,
        ...(r.joining ? { joining: true } : {}),
        ...(r.weight !== undefined ? { weight: r.weight } : {}),
        ...(r.zone ? { zone: r.zone } : {}),
      }),
    );
    if (r.draining) m.set(`${P}/drain/${id}`, JSON.stringify({ at: 'x' }));
  }
  return parseControl(P, m);
};

function gateOf(self: string, opts: { gated?: (name: string) => boolean; prefer?: (name: string) => readonly string[] | undefined } = {}) {
  const clock = new FakeClock();
  const view = new FakeView();
  let rec = hostRecords({});
  const gate = new StartGate({
    view: view as unknown as PrefixView,
    prefix: P,
    nodeId: self,
    clock,
    weight: 1,
    zone: undefined,
    gated: opts.gated ?? (() => true),
    prefer: opts.prefer ?? (() => undefined),
    records: () => rec,
  });
  const released = new Set<string>();
  const hold = (name: string, extra: Partial<CampaignRequest> = {}): boolean => {
    const p = gate.hold({ namePrefix: `${P}${name}/`, key: `${P}${name}/${self}`, value: self, leaseId: '1', ...extra });
    if (p === undefined) return false;
    void p.then(() => released.add(name));
    return true;
  };
  const setHosts = (h: Parameters<typeof hostRecords>[0]): void => {
    rec = hostRecords(h);
    gate.hostsChanged();
  };
  return { clock, view, gate, released, hold, setHosts };
}

const fleet = { a: { joining: true }, b: { joining: true }, c: { joining: true } };
const list = Array.from({ length: 30 }, (_, i) => `n${i}`);
const key = (n: string): string => `${P}${n}/`;

/** A gate of host a that sees `hosts` and holds every name of `list`. */
function holding(hosts: Parameters<typeof hostRecords>[0] = fleet, opts: Parameters<typeof gateOf>[1] = {}): ReturnType<typeof gateOf> {
  const g = gateOf('a', opts);
  g.setHosts(hosts);
  for (const n of list) g.hold(n);
  return g;
}

describe('start gate', () => {
  test('never holds a name that has a candidate, a try-lock, or a name not gated', () => {
    const g = gateOf('a', { gated: (n) => n !== 'plain' });
    g.view.add('taken', 'b');
    assert.equal(g.hold('taken'), false);
    assert.equal(g.hold('x', { tryOnly: true }), false);
    assert.equal(g.hold('plain'), false);
    assert.equal(g.hold('free'), true);
    assert.equal(g.gate.size, 1);
    g.gate.close();
  });

  test('owners go once the host set stood still for SETTLE_MS; then first standbys once every name has a leader; then the rest', async () => {
    const g = gateOf('a');
    g.setHosts({ a: { joining: true } });
    for (const n of list) assert.ok(g.hold(n));
    await g.clock.advance(SETTLE_MS - 100);
    // b and c appear: the set changed, the wait starts again.
    g.setHosts(fleet);
    await g.clock.advance(SETTLE_MS - 1);
    assert.equal(g.released.size, 0, 'nothing goes while the set moved less than SETTLE_MS ago');
    await g.clock.advance(1);
    const owners = rendezvousAssign(list.map(key), equal(['a', 'b', 'c']));
    const own = list.filter((n) => owners.get(key(n)) === 'a');
    assert.ok(own.length === 10, `a's quota of 30 names over 3 hosts: ${own.length}`);
    assert.deepEqual([...g.released].sort(), [...own].sort(), 'a campaigns for its own names first');
    // The others' leaders land: a's first-standby names go, not yet the rest.
    for (const n of list) if (!own.includes(n)) g.view.add(n, owners.get(key(n))!);
    g.gate.viewChanged(new Set(list));
    await g.clock.advance(0);
    const second = g.released.size - own.length;
    assert.ok(second > 0 && second < 20, `first standbys of a: ${second}`);
    // Every held name gets its first standby: a's last ones go.
    for (const n of list) if (!g.released.has(n)) g.view.add(n, 'x');
    g.gate.viewChanged(new Set(list));
    await g.clock.advance(0);
    assert.equal(g.released.size, list.length);
    assert.equal(g.gate.size, 0);
  });

  test('an owner that never campaigns holds its names at most OWNER_WAIT_MS after the set settled; a set that never settles, MAX_HOLD_MS', async () => {
    const g = holding();
    await g.clock.advance(SETTLE_MS);
    const own = g.released.size;
    await g.clock.advance(OWNER_WAIT_MS - 1);
    assert.equal(g.released.size, own, 'the others wait for their owners');
    await g.clock.advance(1);
    assert.equal(g.released.size, list.length, 'then go whatever happened');

    const h = holding();
    // A host comes or goes every 400 ms: the set never stands still for SETTLE_MS.
    for (let t = 0; t < MAX_HOLD_MS; t += 400) {
      h.setHosts(t % 800 === 0 ? { ...fleet, d: { joining: true } } : fleet);
      await h.clock.advance(Math.min(400, MAX_HOLD_MS - 1 - t));
    }
    assert.equal(h.released.size, 0, 'nothing goes while the set never settles');
    await h.clock.advance(1);
    assert.equal(h.released.size, list.length, `all go at MAX_HOLD_MS (${MAX_HOLD_MS} ms)`);
  });

  test('owners are the hosts joining now, not draining, of weight > 0; a preferred host owns its names', async () => {
    const prefer = (n: string): string[] | undefined => (n === 'n0' || n === 'n1' ? ['c'] : undefined);
    // b: running (not joining: a tool with a session, or a host started long ago); c: draining; d: weight 0.
    const g = holding({ a: { joining: true }, b: {}, c: { joining: true, draining: true }, d: { joining: true, weight: 0 } }, { prefer });
    await g.clock.advance(SETTLE_MS);
    assert.equal(g.released.size, list.length, 'a is the only host that may own: every name goes at once');

    const p = holding({ a: { joining: true }, c: { joining: true } }, { prefer });
    await p.clock.advance(SETTLE_MS);
    assert.ok(!p.released.has('n0') && !p.released.has('n1'), "c's preferred names wait for c");
  });

  test('after the settle, owners follow the hosts, computed over every name of the round (not over those still held)', async () => {
    const g = holding();
    await g.clock.advance(SETTLE_MS);
    const three = rendezvousAssign(list.map(key), equal(['a', 'b', 'c']));
    assert.deepEqual([...g.released].sort(), list.filter((n) => three.get(key(n)) === 'a').sort());
    // c is done joining without having campaigned (it registers other names): a and b share its names.
    g.setHosts({ a: { joining: true }, b: { joining: true }, c: {} });
    await g.clock.advance(0);
    const two = rendezvousAssign(list.map(key), equal(['a', 'b']));
    const mine = list.filter((n) => three.get(key(n)) === 'a' || two.get(key(n)) === 'a');
    assert.deepEqual([...g.released].sort(), mine.sort(), "a's names for the hosts now, the 30 names of the round over a and b");
    g.gate.close();
  });

  test('close() lets every held campaign go; a new session releases the old one', async () => {
    const g = holding();
    g.gate.close();
    await g.clock.advance(0);
    assert.equal(g.released.size, list.length);
    assert.equal(g.hold('later'), false, 'closed: nothing held');

    const s = gateOf('a');
    s.setHosts(fleet);
    s.hold('n0');
    s.hold('n1', { leaseId: '2' });
    await s.clock.advance(0);
    assert.ok(s.released.has('n0'), "the old session's campaign went");
    assert.ok(!s.released.has('n1'));
    s.gate.close();
  });
});
