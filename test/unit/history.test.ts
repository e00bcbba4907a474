// The history checker (test/helpers/history.ts) on hand-made histories: what the safety,
// fault and chaos tests conclude rests on it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostEvent } from '../helpers/host.js';
import { checkHistories, historyOf, type ProcessHistory } from '../helpers/history.js';

describe('the history checker', () => {
  const ev = (t: number, type: HostEvent['type'], extra: Partial<HostEvent> = {}): HostEvent => ({
    t: String(t * 1_000_000),
    id: 'x',
    type,
    ...extra,
  });
  const h = (label: string, events: HostEvent[], more: Partial<ProcessHistory> = {}): ProcessHistory => ({
    label,
    host: label,
    events,
    ...more,
  });
  const end = 10_000n * 1_000_000n;

  test('hand-overs without overlap pass; an overlap is found', () => {
    const ok = checkHistories(
      [
        h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(1000, 'stop', { name: 'n', reason: 'lost', token: '5' })]),
        h('b', [ev(1001, 'start', { name: 'n', token: '7' })]),
      ],
      { endOfRun: end },
    );
    assert.deepEqual(ok.overlaps, []);
    assert.equal(ok.leaderships.length, 2);
    assert.equal(ok.gaps[0]!.ms, 1);
    assert.deepEqual(ok.leadersAtEnd, { n: ['b'] });

    const bad = checkHistories(
      [
        h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(1000, 'stop', { name: 'n', reason: 'lost' })]),
        h('b', [ev(999, 'start', { name: 'n', token: '7' })]),
      ],
      { endOfRun: end },
    );
    assert.equal(bad.overlaps.length, 1);
    assert.equal(bad.overlaps[0]!.ms, 1);
  });

  test('a killed host leads until the kill stamp; a paused one does not run while stopped', () => {
    const killed = checkHistories(
      [
        h('a', [ev(100, 'start', { name: 'n', token: '5' })], { killedAt: 500_000_000n }),
        h('b', [ev(2600, 'start', { name: 'n', token: '9' })]),
      ],
      { endOfRun: end },
    );
    assert.deepEqual(killed.overlaps, []);
    assert.equal(killed.leaderships[0]!.endedBy, 'killed');
    assert.equal(killed.gaps[0]!.ms, 2100);
    // Not killed: a still leads when b starts.
    const alive = checkHistories(
      [h('a', [ev(100, 'start', { name: 'n', token: '5' })]), h('b', [ev(2600, 'start', { name: 'n', token: '9' })])],
      {
        endOfRun: end,
      },
    );
    assert.equal(alive.overlaps.length, 1);

    // Paused 500 → 3000, b leads from 2600, a stops 20 ms after waking: tolerated, reported apart.
    const paused = [
      h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(3020, 'stop', { name: 'n', reason: 'lost' })], {
        pauses: [{ from: 500_000_000n, to: 3_000_000_000n }],
      }),
      h('b', [ev(2600, 'start', { name: 'n', token: '9' })]),
    ];
    const woke = checkHistories(paused, { endOfRun: end });
    assert.deepEqual(woke.overlaps, []);
    assert.equal(woke.wakeOverlaps.length, 1);
    assert.equal(woke.wakeStops[0]!.ms, 20);
    // The same, but the woken host keeps leading for 1.5 s: a violation.
    paused[0] = h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(4500, 'stop', { name: 'n', reason: 'lost' })], {
      pauses: [{ from: 500_000_000n, to: 3_000_000_000n }],
    });
    assert.equal(checkHistories(paused, { endOfRun: end }).overlaps.length, 1);
    // A stall the process reported (its timer ran 2.5 s late, at 3000) counts like a SIGSTOP (historyOf folds it in).
    const stalled = (stopAt: number): ReturnType<typeof h>[] => [
      historyOf({
        id: 'a',
        events: [
          ev(100, 'start', { name: 'n', token: '5' }),
          ev(3000, 'stall', { ms: 2500 }),
          ev(stopAt, 'stop', { name: 'n', reason: 'lost' }),
        ],
      }),
      h('b', [ev(2600, 'start', { name: 'n', token: '9' })]),
    ];
    const st = checkHistories(stalled(3020), { endOfRun: end });
    assert.deepEqual([st.overlaps.length, st.wakeOverlaps.length], [0, 1]);
    assert.equal(checkHistories(stalled(4500), { endOfRun: end }).overlaps.length, 1, 'running on long after the stall');
    // Woken at 3000, a second stall 3050 → 3500 (starved right after the wake), stop at
    // 3520: 70 ms of running time after the wake — tolerated, though the first segment
    // after the wake (3000–3050) does not end the leadership (chaos seed 20261207).
    const split = (stopAt: number): ReturnType<typeof h>[] => [
      historyOf({
        id: 'a',
        events: [
          ev(100, 'start', { name: 'n', token: '5' }),
          ev(3000, 'stall', { ms: 2500 }),
          ev(3500, 'stall', { ms: 450 }),
          ev(stopAt, 'stop', { name: 'n', reason: 'lost' }),
        ],
      }),
      h('b', [ev(2600, 'start', { name: 'n', token: '9' })]),
    ];
    const sp = checkHistories(split(3520), { endOfRun: end });
    assert.deepEqual([sp.overlaps.length, sp.wakeOverlaps.length > 0], [0, true], 'a stall splitting the post-wake segment');
    assert.ok(checkHistories(split(5000), { endOfRun: end }).overlaps.length > 0, '1.55 s of running time after the wake: a violation');
  });

  test('a deposed leader may overlap the next one briefly, only right after a recorded delete of its key', () => {
    const hs = [
      h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(2001, 'stop', { name: 'n', reason: 'deposed' })]),
      h('b', [ev(2000, 'start', { name: 'n', token: '9' })]),
    ];
    assert.equal(checkHistories(hs, { endOfRun: end }).overlaps.length, 1);
    const deleted = checkHistories(hs, { endOfRun: end, deletes: [{ name: 'n', at: 1_990_000_000n }] });
    assert.deepEqual(deleted.overlaps, []);
    assert.equal(deleted.deposeOverlaps.length, 1);
    // A stop long after the delete is no "at once".
    assert.equal(checkHistories(hs, { endOfRun: end, deletes: [{ name: 'n', at: 500_000_000n }] }).overlaps.length, 1);
    // A leader that was handing the name over when the delete came stops as 'handover': the same window.
    const moving = [h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(2001, 'stop', { name: 'n', reason: 'handover' })]), hs[1]!];
    assert.equal(
      checkHistories(moving, { endOfRun: end }).overlaps.length,
      1,
      'a hand-over overlapping its receiver without a delete is an overlap',
    );
    assert.equal(checkHistories(moving, { endOfRun: end, deletes: [{ name: 'n', at: 1_990_000_000n }] }).deposeOverlaps.length, 1);
    // Stopped 'deposed', then SIGKILLed while fn still settled (no 'fn-end'): the same window,
    // ending at the kill (seen in chaos: the kill came 115 ms after the deposed stop).
    const killed = [
      h(
        'a',
        [
          ev(100, 'start', { name: 'n', token: '5' }),
          ev(101, 'fn', { name: 'n', token: '5' }),
          ev(2001, 'stop', { name: 'n', token: '5', reason: 'deposed' }),
        ],
        {
          killedAt: 2_100_000_000n,
        },
      ),
      hs[1]!,
    ];
    const k = checkHistories(killed, { endOfRun: end, deletes: [{ name: 'n', at: 1_990_000_000n }] });
    assert.deepEqual(
      [k.overlaps.length, k.deposeOverlaps.length, k.leaderships[0]!.endedBy, k.leaderships[0]!.reason],
      [0, 1, 'killed', 'deposed'],
    );
    assert.equal(checkHistories(killed, { endOfRun: end }).overlaps.length, 1, 'without a delete it is an overlap');
    // Killed with no stop reported: the host never let go, no window.
    const silent = [h('a', [ev(100, 'start', { name: 'n', token: '5' })], { killedAt: 2_100_000_000n }), hs[1]!];
    assert.equal(
      checkHistories(silent, { endOfRun: end, deletes: [{ name: 'n', at: 1_990_000_000n }] }).overlaps.length,
      1,
      'a kill is no deposed stop',
    );
  });

  test('a leadership started around a delete — issued before, or judged on a view that has not delivered it yet — is deposed by it', () => {
    const hs = [
      h('a', [ev(2000, 'start', { name: 'n', token: '5' }), ev(2010, 'stop', { name: 'n', reason: 'deposed' })]),
      h('b', [ev(2005, 'start', { name: 'n', token: '9' })]),
    ];
    const issued = { name: 'n', at: 1_950_000_000n };
    assert.equal(checkHistories(hs, { endOfRun: end, deletes: [issued] }).deposeOverlaps.length, 1, 'issued before a started');
    assert.equal(
      checkHistories(hs, { endOfRun: end, deletes: [{ ...issued, until: 1_990_000_000n }] }).deposeOverlaps.length,
      1,
      'returned before a started: a watch behind etcd',
    );
    assert.equal(
      checkHistories(hs, { endOfRun: end, deletes: [{ name: 'n', at: 2_006_000_000n }] }).overlaps.length,
      1,
      'issued after b started: b did not start on it',
    );
    const late = [h('a', [ev(2000, 'start', { name: 'n', token: '5' }), ev(3500, 'stop', { name: 'n', reason: 'deposed' })]), hs[1]!];
    assert.equal(
      checkHistories(late, { endOfRun: end, deletes: [issued] }).overlaps.length,
      1,
      'a stop 1.5 s after the delete is no deposed window',
    );
  });

  test("a leader cut off when its key was deleted stops 'lost' at its deadline: tolerated within the grace, not after it, and never without a delete", () => {
    const cut = (stopAt: number): ReturnType<typeof h>[] => [
      h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(stopAt, 'stop', { name: 'n', reason: 'lost' })]),
      h('b', [ev(2000, 'start', { name: 'n', token: '9' })]),
    ];
    const deletes = [{ name: 'n', at: 1_990_000_000n }];
    assert.equal(checkHistories(cut(2300), { endOfRun: end, deletes }).deposeOverlaps.length, 1);
    assert.equal(checkHistories(cut(2300), { endOfRun: end, deletes }).overlaps.length, 0);
    assert.equal(checkHistories(cut(3500), { endOfRun: end, deletes }).overlaps.length, 1, 'past the grace');
    assert.equal(checkHistories(cut(2300), { endOfRun: end }).overlaps.length, 1, 'no delete: a lost lease overlapping is a violation');
  });

  test('fencing: an accepted write with an older token after a newer one is a violation', () => {
    const w = (t: number, token: string, revision: string, ok = true): HostEvent => ev(t, 'write', { name: 'n', token, revision, ok });
    const fine = checkHistories(
      [h('a', [w(1, '5', '10'), w(2, '5', '11'), w(9, '5', '30', false)]), h('b', [w(5, '9', '20'), w(6, '9', '21')])],
      { endOfRun: end },
    );
    assert.deepEqual(fine.fencing.violations, []);
    assert.equal(fine.fencing.accepted, 4);
    assert.equal(fine.fencing.rejected, 1);
    const broken = checkHistories([h('a', [w(1, '5', '10'), w(9, '5', '30')]), h('b', [w(5, '9', '20')])], { endOfRun: end });
    assert.equal(broken.fencing.violations.length, 1);
    assert.equal(broken.fencing.violations[0]!.write.revision, 30n);
    assert.equal(broken.fencing.violations[0]!.newer.token, '9');
  });

  test('time to a new leader is counted from the heal of faults that kept the cluster from deciding', () => {
    const hs = [
      h('a', [ev(100, 'start', { name: 'n', token: '5' }), ev(1000, 'stop', { name: 'n', reason: 'lost' })]),
      h('b', [ev(6000, 'start', { name: 'n', token: '9' })]),
    ];
    assert.equal(checkHistories(hs, { endOfRun: end }).worstGap!.effectiveMs, 5000);
    const excused = checkHistories(hs, {
      endOfRun: end,
      faults: [{ kind: 'quorum-loss', from: 800_000_000n, to: 4_000_000_000n, blocksDecisions: true }],
    });
    assert.equal(excused.worstGap!.effectiveMs, 2000);
    // A fault on the previous leader's own host excuses nothing.
    const own = checkHistories(hs, { endOfRun: end, faults: [{ kind: 'pause', host: 'a', from: 900_000_000n, to: 4_000_000_000n }] });
    assert.equal(own.worstGap!.effectiveMs, 5000);
    // Nobody leads at the end: an open gap.
    const open = checkHistories([hs[0]!], { endOfRun: end });
    assert.equal(open.gaps[0]!.to, undefined);
    assert.equal(open.gaps[0]!.ms, 9000);
  });
});
