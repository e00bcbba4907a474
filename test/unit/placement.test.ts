// The placement rules (src/features/placement.ts) as pure functions: fair share, who hands over,
// who steps aside, planned moves and promotions. The behaviour against etcd is in
// balance.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveRequests, ownerOf, parseControl, type ControlRecords } from '../../src/features/control-records.js';
import { hostsStatus } from '../../src/features/host-status.js';
import { handsOver, passesOver, planMoves, planPromotions, promotesPast, standsAside } from '../../src/features/placement.js';
import type { Candidate } from '../../src/core/queue.js';
import { HostPresence, JOIN_HOLD_MAX_MS } from '../../src/features/host-presence.js';
import { FakeClock } from '../helpers/clock.js';

const P = 'p/';
const LEASE: Record<string, string> = { a: 'a1', b: 'b2', c: 'c3', d: 'd4' };
/** Control records: every listed host with its lease, plus extra records. */
function control(hosts: string[], extra: Record<string, unknown> = {}): ControlRecords {
  const m = new Map<string, string>(hosts.map((h) => [`${P}/hosts/${h}`, JSON.stringify({ lease: LEASE[h] })]));
  for (const [k, v] of Object.entries(extra)) m.set(`${P}/${k}`, typeof v === 'string' ? v : JSON.stringify(v));
  return parseControl(P, m);
}
/** A queue of `name`, in this order (create revisions 1, 2, …). */
const queue = (name: string, ...ids: string[]): Candidate[] =>
  ids.map((id, i) => ({ key: `${P}${name}/${LEASE[id] ?? 'ff'}`, value: id, createRevision: BigInt(i + 1) }));

describe('placement', () => {
  test('control records: hosts by lease, drain orders, move and next requests; garbage is ignored', () => {
    const rec = control(['a', 'b'], {
      'drain/b': { at: 'x' },
      'move/x': { from: 'p/x/a1', to: 'b', by: 'cli' },
      'next/y': { from: 'p/y/a1', to: 'b' },
      'move/z': 'not json',
      'hosts/': '{}',
    });
    assert.equal(rec.hostByLease.get('a1'), 'a');
    assert.deepEqual([...rec.draining], ['b']);
    assert.deepEqual(rec.moves.get('x'), { from: 'p/x/a1', to: 'b', by: 'cli' });
    assert.equal(rec.moves.has('z'), false);
    assert.equal(rec.nexts.get('y')?.to, 'b');
    // A candidate is ours only if its key carries the lease of its host's record.
    assert.equal(ownerOf({ key: 'p/x/a1', value: 'a', createRevision: 1n }, rec), 'a');
    assert.equal(ownerOf({ key: 'p/x/ffa1', value: 'a', createRevision: 1n }, rec), undefined);
    assert.equal(ownerOf({ key: 'p/x/a1', value: 'etcdctl', createRevision: 1n }, rec), undefined);
  });

  test("fair share is computable from the prefix: the README's example", () => {
    const rec = control(['a', 'b', 'c']);
    const q: [string, Candidate[]][] = [
      ['x', queue('x', 'a', 'b', 'c')],
      ['y', queue('y', 'b', 'c', 'a')],
      ['z', queue('z', 'a', 'b')],
    ];
    const st = hostsStatus(q, rec);
    assert.deepEqual(
      st.map((h) => [h.id, h.share, h.leads, h.next]),
      [
        ['a', 1.17, ['x', 'z'], 0],
        ['b', 1.17, ['y'], 2],
        ['c', 0.67, [], 1],
      ],
    );
    assert.equal(st[0]!.offBy, 1);
  });

  test('a move request: the standbys ahead of the target step aside, the leader hands over once the target is next', () => {
    const rec = control(['a', 'b', 'c', 'd']);
    const q = queue('x', 'a', 'b', 'c', 'd');
    const move = { from: q[0]!.key, to: 'd' };
    assert.equal(standsAside(q, q[1]!.key, 'b', rec, move), true);
    assert.equal(standsAside(q, q[2]!.key, 'c', rec, move), true);
    assert.equal(standsAside(q, q[3]!.key, 'd', rec, move), false, 'the target stays');
    assert.equal(handsOver(q, q[0]!.key, move), false, 'd is not next yet');
    const later = queue('x', 'a', 'd', 'b', 'c');
    assert.equal(handsOver(later, later[0]!.key, { from: later[0]!.key, to: 'd' }), true);
    // A request about an older leadership is void.
    assert.equal(standsAside(q, q[1]!.key, 'b', rec, { from: 'p/x/old', to: 'd' }), false);
    assert.equal(handsOver(q, q[0]!.key, { from: 'p/x/old' }), false);
    // Without a target: whoever is next.
    assert.equal(handsOver(q, q[0]!.key, { from: q[0]!.key }), true);
    assert.equal(handsOver(queue('x', 'a'), queue('x', 'a')[0]!.key, { from: queue('x', 'a')[0]!.key }), false, 'nobody else queues');
  });

  test('a request for a draining target is ignored: it would stand aside itself, and its standbys would re-queue for ever', () => {
    const rec = control(['a', 'b', 'c', 'd'], { 'drain/d': {} });
    const q = queue('x', 'a', 'b', 'c', 'd');
    const next = { from: q[0]!.key, to: 'd', by: 'b' };
    assert.equal(standsAside(q, q[1]!.key, 'b', rec, undefined, next), false);
    assert.equal(standsAside(q, q[2]!.key, 'c', rec, undefined, next), false);
    assert.equal(standsAside(q, q[1]!.key, 'b', rec, { from: q[0]!.key, to: 'd' }), false, 'the same for a move request');
    assert.equal(standsAside(q, q[1]!.key, 'b', control(['a', 'b', 'c', 'd']), undefined, next), true, 'not draining: b steps aside');
  });

  test('a draining standby steps aside only for an eligible candidate behind it', () => {
    const rec = control(['a', 'b', 'c'], { 'drain/b': {}, 'drain/c': {} });
    const q = queue('x', 'a', 'b', 'c');
    assert.equal(standsAside(q, q[1]!.key, 'b', rec, undefined), false, 'c behind b drains too');
    const q2 = queue('x', 'a', 'b', 'd');
    assert.equal(standsAside(q2, q2[1]!.key, 'b', control(['a', 'b', 'd'], { 'drain/b': {} }), undefined), true);
    const q3 = queue('x', 'a', 'd', 'b', 'c');
    const rec3 = control(['a', 'b', 'c', 'd'], { 'drain/b': {} });
    assert.equal(standsAside(q3, q3[2]!.key, 'b', rec3, undefined), false, 'second in line: d is ahead of it, nothing to do yet');
    const q4 = queue('x', 'a', 'b', 'c');
    assert.equal(standsAside(q4, q4[1]!.key, 'b', rec3, undefined), true, 'first in line: it steps aside');
    assert.equal(
      standsAside(q4, q4[1]!.key, 'b', rec3, undefined, undefined, false),
      false,
      'not while its own leaderships are still being handed over',
    );
    const move = { from: q4[0]!.key, to: 'c' };
    assert.equal(standsAside(q4, q4[1]!.key, 'b', rec3, move, undefined, false), true, 'a move request still moves it');
  });

  test('balance: from 60/0/0 a leader plans moves to both others, within its limit; nothing at its share; never with a foreign candidate', () => {
    const rec = control(['a', 'b', 'c']);
    const qs: [string, Candidate[]][] = Array.from({ length: 60 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    const moves = planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight: new Map(), limit: 100 });
    const to = (id: string): number => moves.filter((m) => m.to === id).length;
    assert.equal(moves.length, 40, 'exactly the surplus');
    assert.deepEqual([to('b'), to('c')], [20, 20]);
    assert.equal(planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight: new Map(), limit: 16 }).length, 16);
    assert.equal(planMoves({ queues: qs, rec, self: 'a', balance: false, inFlight: new Map(), limit: 100 }).length, 0);
    // Moves in flight count as landed.
    const inFlight = new Map(moves.slice(0, 30).map((m) => [m.name, m.to]));
    assert.equal(planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight, limit: 100 }).length, 10);
    // A foreign candidate (an etcdctl elect) pins the name.
    const foreign: [string, Candidate[]][] = qs.map(([n, q]) => [
      n,
      [...q, { key: `${P}${n}/ee`, value: 'go-service', createRevision: 9n }],
    ]);
    assert.equal(planMoves({ queues: foreign, rec, self: 'a', balance: true, inFlight: new Map(), limit: 100 }).length, 0);
  });

  test('balance: two senders split a deficit in proportion to their surplus instead of both filling it', () => {
    const rec = control(['a', 'b', 'c', 'd']);
    // a and b lead 20 each, c 20, d joined (0): fair share 15 each; a, b, c have 5 over.
    const qs: [string, Candidate[]][] = [];
    for (let i = 0; i < 60; i++) {
      const leader = ['a', 'b', 'c'][i % 3]!;
      qs.push([`n${i}`, queue(`n${i}`, leader, ...['a', 'b', 'c'].filter((x) => x !== leader), 'd')]);
    }
    const plans = ['a', 'b', 'c'].map((self) => planMoves({ queues: qs, rec, self, balance: true, inFlight: new Map(), limit: 100 }));
    assert.deepEqual(
      plans.map((p) => p.length),
      [5, 5, 5],
    );
    assert.ok(plans.flat().every((m) => m.to === 'd'));
  });

  test('a draining leader plans every name it leads to the nearest candidate with room under its share', () => {
    const rec = control(['a', 'b', 'c'], { 'drain/a': {} });
    const qs: [string, Candidate[]][] = Array.from({ length: 6 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    const moves = planMoves({ queues: qs, rec, self: 'a', balance: false, inFlight: new Map(), limit: 100 });
    assert.equal(moves.length, 6);
    assert.deepEqual([moves.filter((m) => m.to === 'b').length, moves.filter((m) => m.to === 'c').length], [3, 3]);
    // b is first standby of all six: it fills its share (3), then c is the nearest with room.
    assert.deepEqual(
      moves.map((m) => m.position),
      [1, 1, 1, 2, 2, 2],
    );
  });

  test('a drain whose first standbys are spread hands every name to its first standby: no stand-aside', () => {
    const rec = control(['a', 'b', 'c', 'd'], { 'drain/a': {} });
    // a leads 6; its first standbys are b, c, d twice each; b, c and d lead 2 names each.
    const others = ['b', 'c', 'd'];
    const qs: [string, Candidate[]][] = [
      ...Array.from({ length: 6 }, (_, i): [string, Candidate[]] => {
        const first = others[i % 3]!;
        return [`n${i}`, queue(`n${i}`, 'a', first, ...others.filter((o) => o !== first))];
      }),
      ...Array.from({ length: 6 }, (_, i): [string, Candidate[]] => [`m${i}`, queue(`m${i}`, others[i % 3]!, 'a')]),
    ];
    const moves = planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight: new Map(), limit: 100 });
    assert.equal(moves.length, 6);
    assert.ok(
      moves.every((m) => m.position === 1),
      JSON.stringify(moves),
    );
    assert.deepEqual(
      others.map((o) => moves.filter((m) => m.to === o).length),
      [2, 2, 2],
    );
  });

  test('one wave: hosts planning from the same view land every host at its share, with the fewest moves', () => {
    // The bench's start after the join hold (8 hosts, 2,000 names, every host on every name).
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const rec = parseControl(P, new Map(ids.map((h, i) => [`${P}/hosts/${h}`, JSON.stringify({ lease: `${i + 1}f` })])));
    const loads = [816, 534, 251, 142, 101, 84, 50, 22];
    const qs: [string, Candidate[]][] = [];
    let n = 0;
    loads.forEach((count, li) => {
      for (let k = 0; k < count; k++, n++) {
        const others = ids.filter((_, j) => j !== li);
        const order = [ids[li]!, ...others.map((_, j) => others[(j + n) % others.length]!)]; // standbys rotated
        qs.push([`n${n}`, order.map((id, p) => ({ key: `${P}n${n}/${ids.indexOf(id) + 1}f`, value: id, createRevision: BigInt(p + 1) }))]);
      }
    });
    const final = new Map(ids.map((id, i) => [id, loads[i]!]));
    let moves = 0;
    for (const self of ids) {
      for (const m of planMoves({ queues: qs, rec, self, balance: true, inFlight: new Map(), limit: 10_000 })) {
        final.set(self, final.get(self)! - 1);
        final.set(m.to, final.get(m.to)! + 1);
        moves++;
      }
    }
    assert.deepEqual([...final.values()], Array(8).fill(250));
    assert.equal(moves, 566 + 284 + 1, 'the fewest: every surplus moved once');
    // A ninth host joins: shares 222.2 — seven hosts end at 222, two at 223, in the same wave
    // (rounded-down parts left six names to move one at a time, a pass each).
    const nine = [...ids, 'i'];
    const rec9 = parseControl(P, new Map(nine.map((h, i) => [`${P}/hosts/${h}`, JSON.stringify({ lease: `${i + 1}f` })])));
    const qs9: [string, Candidate[]][] = qs.map(([name, q]) => [
      name,
      [...q, { key: `${P}${name}/9f`, value: 'i', createRevision: BigInt(q.length + 1) }].map((c, p) => ({
        ...c,
        createRevision: BigInt(p + 1),
      })),
    ]);
    // From the spread above: every host leads 250 (the plan of the first part, applied).
    const spreadQs: [string, Candidate[]][] = [];
    let k = 0;
    for (const id of ids)
      for (let j = 0; j < 250; j++, k++) {
        const [name, q] = qs9[k]!;
        const rest = q.filter((c) => c.value !== id);
        spreadQs.push([name, [q.find((c) => c.value === id)!, ...rest].map((c, p) => ({ ...c, createRevision: BigInt(p + 1) }))]);
      }
    const final9 = new Map(nine.map((id) => [id, id === 'i' ? 0 : 250]));
    let moves9 = 0;
    for (const self of nine) {
      for (const m of planMoves({ queues: spreadQs, rec: rec9, self, balance: true, inFlight: new Map(), limit: 10_000 })) {
        final9.set(self, final9.get(self)! - 1);
        final9.set(m.to, final9.get(m.to)! + 1);
        moves9++;
      }
    }
    assert.deepEqual([...final9.values()].sort(), [222, 222, 222, 222, 222, 222, 222, 223, 223]);
    assert.equal(moves9, 222);
  });

  test('equal remainders round up where the names are: the fewest moves (a name only a leads: shares 10.7 / 9.7 / 9.7)', () => {
    const rec = control(['a', 'b', 'c']);
    const qs: [string, Candidate[]][] = [['x', queue('x', 'a')]];
    for (let i = 0; i < 29; i++) qs.push([`n${i}`, i < 15 ? queue(`n${i}`, 'b', 'c', 'a') : queue(`n${i}`, 'c', 'b', 'a')]);
    const final = new Map([
      ['a', 1],
      ['b', 15],
      ['c', 14],
    ]);
    let moves = 0;
    for (const self of ['a', 'b', 'c']) {
      for (const m of planMoves({ queues: qs, rec, self, balance: true, inFlight: new Map(), limit: 100 })) {
        final.set(self, final.get(self)! - 1);
        final.set(m.to, final.get(m.to)! + 1);
        moves++;
      }
    }
    assert.deepEqual([...final.values()], [10, 10, 10], 'b and c round up (they lead), a down');
    assert.equal(moves, 9);
  });

  test('a move past standbys: their keys go with the leader key when all are ours, else by a request', () => {
    const rec = control(['a', 'b', 'c']);
    const q = queue('x', 'a', 'b', 'c');
    assert.equal(passesOver(q, 1, rec), undefined, 'next in line: a plain hand-over');
    assert.deepEqual(passesOver(q, 2, rec), {
      keys: [{ key: q[1]!.key, createRevision: 2n }],
      target: { key: q[2]!.key, createRevision: 3n },
    });
    const foreign = [q[0]!, { key: 'p/x/ee', value: 'etcdctl', createRevision: 2n }, q[2]!];
    assert.equal(passesOver(foreign, 2, rec), undefined, 'a foreign standby ahead: by request');
    // planMoves carries it: a's surplus goes to c, second in line behind b (at its share).
    const qs: [string, Candidate[]][] = [
      ...Array.from({ length: 3 }, (_, i): [string, Candidate[]] => [`a${i}`, queue(`a${i}`, 'a', 'b', 'c')]),
      ['b0', queue('b0', 'b', 'a', 'c')],
    ];
    const moves = planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight: new Map(), limit: 100 });
    assert.deepEqual(
      moves.map((m) => [m.to, m.position, m.past?.keys.map((k) => k.key)]),
      [['c', 2, [qs[0]![1][1]!.key]]],
    );
  });

  test('a drain passes over a first standby at its share: the next candidate with room takes the name', () => {
    // Shares (a draining): b 3, c 3. b leads 3 already, c 2: x goes to c, second in line.
    const rec = control(['a', 'b', 'c'], { 'drain/a': {} });
    const qs: [string, Candidate[]][] = [
      ['x', queue('x', 'a', 'b', 'c')],
      ...Array.from({ length: 3 }, (_, i): [string, Candidate[]] => [`b${i}`, queue(`b${i}`, 'b', 'c')]),
      ...Array.from({ length: 2 }, (_, i): [string, Candidate[]] => [`c${i}`, queue(`c${i}`, 'c', 'b')]),
    ];
    const moves = planMoves({ queues: qs, rec, self: 'a', balance: true, inFlight: new Map(), limit: 100 });
    assert.deepEqual(
      moves.map((m) => [m.name, m.to, m.position]),
      [['x', 'c', 2]],
    );
  });

  test("standbys: the first standby of too many of a leader's names asks another to take its place", () => {
    const rec = control(['a', 'b', 'c']);
    const qs: [string, Candidate[]][] = Array.from({ length: 10 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    const p = planPromotions({ queues: qs, rec, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 });
    assert.equal(p.length, 5, 'from 10/0 to 5/5');
    assert.ok(p.every((m) => m.to === 'c' && m.position === 2));
    assert.equal(
      planPromotions({ queues: qs, rec, self: 'c', inFlight: new Map(), stepping: new Set(), limit: 100 }).length,
      0,
      'c is next for none',
    );
  });

  test('a promotion past standbys: the first standby and those ahead of the target go in one guarded delete, the leader held', () => {
    const rec = control(['a', 'b', 'c', 'd']);
    const q = queue('x', 'a', 'b', 'c', 'd');
    const held = (c: Candidate) => ({ key: c.key, createRevision: c.createRevision });
    assert.equal(promotesPast(q, 1, rec), undefined, 'the first standby itself: no promotion');
    assert.deepEqual(promotesPast(q, 2, rec), { keys: [], target: held(q[2]!), leader: held(q[0]!) }, 'right behind: the leader held');
    assert.deepEqual(promotesPast(q, 3, rec), { keys: [held(q[2]!)], target: held(q[3]!), leader: held(q[0]!) });
    const foreign = [q[0]!, q[1]!, { key: 'p/x/ee', value: 'etcdctl', createRevision: 3n }, q[3]!];
    assert.equal(promotesPast(foreign, 3, rec), undefined, 'a foreign standby between: by request');
    // planPromotions carries it: b, first standby of all of a's names, makes way for d (c is ahead of it).
    const qs: [string, Candidate[]][] = Array.from({ length: 9 }, (_, i) => [
      `n${i}`,
      i < 6 ? queue(`n${i}`, 'a', 'b', 'c', 'd') : queue(`n${i}`, 'a', 'c', 'b', 'd'),
    ]);
    const p = planPromotions({ queues: qs, rec, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 });
    assert.ok(p.length > 0 && p.every((m) => m.to === 'd' && m.position === 3 && m.past?.leader?.key === `${P}${m.name}/a1`));
  });

  test('no promotion of a name whose leader drains: the drain hands it to the first standby it planned for', () => {
    const rec = control(['a', 'b', 'c'], { 'drain/a': {} });
    const qs: [string, Candidate[]][] = Array.from({ length: 10 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    assert.equal(planPromotions({ queues: qs, rec, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 }).length, 0);
    const undrained = control(['a', 'b', 'c']);
    assert.equal(planPromotions({ queues: qs, rec: undrained, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 }).length, 5);
  });

  test("joining: a host record's joining flag holds balancing until it is gone, at most JOIN_HOLD_MAX_MS", async () => {
    const rec = parseControl(
      P,
      new Map([
        [`${P}/hosts/a`, JSON.stringify({ lease: 'a1', joining: true })],
        [`${P}/hosts/b`, JSON.stringify({ lease: 'b2', joining: 'yes' })],
      ]),
    );
    assert.deepEqual([...rec.joining], ['a'], 'only `true` counts');
    const clock = new FakeClock();
    let woken = 0;
    const presence = new HostPresence({ clock, respreadDelayMs: 0, preferHoldDownMs: 0 }, () => woken++);
    presence.update(rec.leaseByHost, rec.joining);
    assert.equal(presence.joining(), true);
    presence.update(rec.leaseByHost, new Set());
    assert.equal(presence.joining(), false, 'the flag is gone: balancing goes on');
    presence.update(rec.leaseByHost, rec.joining);
    await clock.advance(JOIN_HOLD_MAX_MS - 1);
    assert.equal(presence.joining(), true);
    await clock.advance(1);
    assert.ok(woken > 0, 'a pass is asked for when the hold ends');
    assert.equal(presence.joining(), false, 'a flag that stays (campaigns that cannot get in) holds nobody for good');
    presence.close();
  });

  test('weights: shares in proportion to weight, and a host of weight 0 leads nothing while another can', () => {
    // a weight 2, b weight 1, c weight 0 (standby only); 60 names all led by c at first.
    const m = new Map<string, string>([
      [`${P}/hosts/a`, JSON.stringify({ lease: LEASE['a'], weight: 2, zone: 'z1' })],
      [`${P}/hosts/b`, JSON.stringify({ lease: LEASE['b'] })],
      [`${P}/hosts/c`, JSON.stringify({ lease: LEASE['c'], weight: 0 })],
      [`${P}/hosts/d`, JSON.stringify({ lease: LEASE['d'], weight: -1, zone: '' })],
    ]);
    const rec = parseControl(P, m);
    assert.deepEqual(
      [...rec.weights],
      [
        ['a', 2],
        ['c', 0],
      ],
      'weight 1 is the default; a negative weight is garbage',
    );
    assert.deepEqual([...rec.zones], [['a', 'z1']]);
    const qs: [string, Candidate[]][] = Array.from({ length: 60 }, (_, i) => [`n${i}`, queue(`n${i}`, 'c', 'a', 'b')]);
    const st = hostsStatus(qs, rec);
    assert.deepEqual(
      st.filter((h) => h.id !== 'd').map((h) => [h.id, h.weight, h.share]),
      [
        ['a', 2, 40],
        ['b', 1, 20],
        ['c', 0, 0],
      ],
    );
    const moves = planMoves({ queues: qs, rec, self: 'c', balance: true, inFlight: new Map(), limit: 1000 });
    assert.equal(moves.length, 60, 'the standby-only host gives every name away');
    assert.deepEqual([moves.filter((x) => x.to === 'a').length, moves.filter((x) => x.to === 'b').length], [40, 20]);
    // From 30/30 the weight-2 host takes 10 more from b, and no more.
    const half: [string, Candidate[]][] = Array.from({ length: 60 }, (_, i) => [
      `n${i}`,
      i < 30 ? queue(`n${i}`, 'a', 'b', 'c') : queue(`n${i}`, 'b', 'a', 'c'),
    ]);
    const fromB = planMoves({ queues: half, rec, self: 'b', balance: true, inFlight: new Map(), limit: 1000 });
    assert.equal(fromB.length, 10);
    assert.ok(fromB.every((x) => x.to === 'a'));
    assert.equal(planMoves({ queues: half, rec, self: 'a', balance: true, inFlight: new Map(), limit: 1000 }).length, 0);
    // A standby-only first standby makes way for an eligible one behind it.
    const p = planPromotions({
      queues: qs.map(([n]) => [n, queue(n, 'a', 'c', 'b')]),
      rec,
      self: 'c',
      inFlight: new Map(),
      stepping: new Set(),
      limit: 100,
    });
    assert.equal(p.length, 60);
    assert.ok(p.every((x) => x.to === 'b'));
  });

  test("zones: a first standby in its leader's zone makes way for one in another zone, never the other way round", () => {
    const m = new Map<string, string>([
      [`${P}/hosts/a`, JSON.stringify({ lease: LEASE['a'], zone: 'z1' })],
      [`${P}/hosts/b`, JSON.stringify({ lease: LEASE['b'], zone: 'z1' })],
      [`${P}/hosts/c`, JSON.stringify({ lease: LEASE['c'], zone: 'z2' })],
      [`${P}/hosts/d`, JSON.stringify({ lease: LEASE['d'], zone: 'z2' })],
    ]);
    const rec = parseControl(P, m);
    // a leads 4 names, b (same zone) is first standby of all: two would do by load alone, four by zone.
    const qs: [string, Candidate[]][] = Array.from({ length: 4 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c', 'd')]);
    const p = planPromotions({ queues: qs, rec, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 });
    assert.equal(p.length, 4, 'every name gets a first standby in z2');
    assert.ok(p.every((x) => x.to === 'c' || x.to === 'd'));
    // c (z2) first standby of all four of a's names: spread within z2 only, never back to b.
    const qs2: [string, Candidate[]][] = Array.from({ length: 4 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'c', 'b', 'd')]);
    const p2 = planPromotions({ queues: qs2, rec, self: 'c', inFlight: new Map(), stepping: new Set(), limit: 100 });
    assert.equal(p2.length, 2, 'from 4/0 to 2/2 within z2');
    assert.ok(p2.every((x) => x.to === 'd'));
  });

  test('void requests (their leader key gone, their delete failed) block nothing once filtered by liveRequests()', () => {
    const qs: [string, Candidate[]][] = Array.from({ length: 10 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    const head = new Map(qs.map(([n, q]) => [n, q[0]!.key]));
    // A standby request and a move left behind by earlier leaderships of n0 and n1, and a live one for n2.
    const raw = control(['a', 'b', 'c'], {
      'next/n0': { from: 'p/n0/old', to: 'c', by: 'b' },
      'move/n1': { from: 'p/n1/old', to: 'c', by: 'b' },
      'move/n2': { from: head.get('n2'), to: 'c', by: 'x' },
    });
    const rec = liveRequests(raw, (n) => head.get(n));
    assert.deepEqual([...rec.nexts.keys()], []);
    assert.deepEqual([...rec.moves.keys()], ['n2']);
    assert.equal(
      liveRequests(rec, (n) => head.get(n)),
      rec,
      'nothing void: the same records',
    );
    const plan = (r: ControlRecords): string[] =>
      planPromotions({ queues: qs, rec: r, self: 'b', inFlight: new Map(), stepping: new Set(), limit: 100 }).map((m) => m.name);
    assert.ok(!plan(raw).includes('n0') && !plan(raw).includes('n1'), 'raw: the void requests rule their names');
    assert.ok(plan(rec).includes('n0') && plan(rec).includes('n1'), 'filtered: promotable again');
    assert.ok(!plan(rec).includes('n2'), 'a live move still rules its name');
  });

  test('prefer: a name moves to its first preferred host that is up past the hold-down; balancing never takes it away; a flapping host gets nothing', () => {
    const rec = control(['a', 'b', 'c']);
    // 30 names led by a, all preferring c (then b).
    const qs: [string, Candidate[]][] = Array.from({ length: 30 }, (_, i) => [`n${i}`, queue(`n${i}`, 'a', 'b', 'c')]);
    const prefer = (): readonly string[] => ['c', 'b'];
    const plan = (self: string, queues: [string, Candidate[]][], settled: (id: string) => boolean) =>
      planMoves({ queues, rec, self, balance: true, inFlight: new Map(), limit: 100, prefer, settled });
    const settledAll = (): boolean => true;
    const moves = plan('a', qs, settledAll);
    assert.equal(moves.length, 30, 'every name goes to its preferred host, beyond any fair share');
    assert.ok(moves.every((m) => m.to === 'c' && m.position === 2));
    // c just restarted (inside the hold-down): the next preferred host, b, is the target.
    const flapping = plan('a', qs, (id) => id !== 'c');
    assert.ok(flapping.length === 30 && flapping.every((m) => m.to === 'b'), 'c not settled: b');
    // Neither settled: balanced like any other name, but never onto a preferred host inside
    // its hold-down — a has no one to give to.
    assert.equal(plan('a', qs, () => false).length, 0);
    const toB = plan('a', qs, (id) => id === 'b' || id === 'a');
    assert.ok(toB.length === 30 && toB.every((m) => m.to === 'b'), 'b settled (second choice): every name goes there');
    // Led by its preferred host: balancing never moves it, even far above the fair share.
    const atC: [string, Candidate[]][] = qs.map(([n]) => [n, queue(n, 'c', 'a', 'b')]);
    assert.equal(plan('c', atC, settledAll).length, 0);
    // A preferred leader that is not the first choice hands over once the first one is settled —
    // not while it is not (it leads already: no hold-down for it).
    const atB: [string, Candidate[]][] = qs.map(([n]) => [n, queue(n, 'b', 'a', 'c')]);
    assert.equal(plan('b', atB, settledAll).filter((m) => m.to === 'c').length, 30);
    assert.equal(plan('b', atB, (id) => id !== 'c').length, 0);
    // A draining preferred host is no target.
    const drainC = control(['a', 'b', 'c'], { 'drain/c': { at: 'x' } });
    const m2 = planMoves({
      queues: qs,
      rec: drainC,
      self: 'a',
      balance: true,
      inFlight: new Map(),
      limit: 100,
      prefer,
      settled: settledAll,
    });
    assert.ok(m2.every((m) => m.to === 'b'));
  });
});
