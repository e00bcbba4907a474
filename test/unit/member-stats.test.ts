// What health().members is built from (src/etcd/member-stats.ts, src/features/member-health.ts): the
// figures of one member's calls, the breaker state read from etcd3's per-host policy, and
// which member keeps the lease alive. Pure logic: the calls below stand in for etcd calls
// (the clients connect lazily and so never dial).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsecutiveBreaker, circuitBreaker, handleAll, retry } from 'cockatiel';
import { MemberStats, breakerState } from '../../src/etcd/member-stats.js';
import { membersHealth } from '../../src/features/member-health.js';
import { Members } from '../../src/etcd/members.js';

test('MemberStats: calls, failures in a row (reset by a success), pending calls, last error and round trip', async () => {
  const s = new MemberStats();
  let release!: () => void;
  const waiting = s.track(new Promise<void>((r) => (release = r)));
  assert.equal(s.snapshot().pending, 1);
  assert.ok(s.snapshot().oldestPendingMs! >= 0);
  await assert.rejects(s.track(Promise.reject(new Error('etcdserver: no leader\n  Resolution note: '))));
  await assert.rejects(s.track(Promise.reject(new Error('deadline exceeded'))));
  let snap = s.snapshot();
  assert.deepEqual([snap.calls, snap.failures, snap.failuresInARow, snap.pending], [3, 2, 2, 1]);
  assert.equal(snap.lastError, 'deadline exceeded');
  assert.equal(snap.lastRttMs, undefined);
  release();
  await waiting;
  snap = s.snapshot();
  assert.deepEqual([snap.calls, snap.failures, snap.failuresInARow, snap.pending, snap.oldestPendingMs], [3, 2, 0, 0, undefined]);
  assert.ok(snap.lastRttMs !== undefined && snap.lastOkAgoMs !== undefined);
  // The last error stays (with its age) after the member recovered.
  assert.equal(snap.lastError, 'deadline exceeded');
  assert.ok(snap.lastErrorAgoMs !== undefined);
});

test("breakerState reads cockatiel's circuit breaker and nothing else", async () => {
  const breaker = circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(2) });
  assert.equal(breakerState(breaker), 'closed');
  for (let i = 0; i < 2; i++) await assert.rejects(breaker.execute(() => Promise.reject(new Error('down'))));
  assert.equal(breakerState(breaker), 'open');
  const isolated = circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(2) });
  const handle = isolated.isolate();
  assert.equal(breakerState(isolated), 'isolated');
  handle.dispose();
  assert.equal(breakerState(retry(handleAll, { maxAttempts: 1 })), undefined);
  assert.equal(breakerState(undefined), undefined);
});

test('membersHealth: preferred, keepalive (the member that acknowledged last), watch, skipped while the breaker is open', async () => {
  const breakers = new Map<string, ReturnType<typeof circuitBreaker>>();
  const members = new Members(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'], {
    faultHandling: {
      host: (h) => {
        const b = circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(1) });
        breakers.set(h, b);
        return b;
      },
    },
  });
  try {
    let view = membersHealth(members, undefined);
    assert.deepEqual(
      view.map((m) => [m.preferred, m.keepalive, m.watch, m.breaker, m.skipped]),
      [
        [true, false, false, 'closed', false],
        [false, false, false, 'closed', false],
        [false, false, false, 'closed', false],
      ],
    );
    members.all[2]!.stats.keptAlive();
    await new Promise((r) => setTimeout(r, 5));
    members.all[1]!.stats.keptAlive();
    await assert.rejects(breakers.get('127.0.0.1:3')!.execute(() => Promise.reject(new Error('down'))));
    view = membersHealth(members, '127.0.0.1:3');
    assert.deepEqual(
      view.map((m) => [m.keepalive, m.watch, m.breaker, m.skipped]),
      [
        [false, false, 'closed', false],
        [true, false, 'closed', false],
        [false, true, 'open', true],
      ],
    );
    assert.ok(view[2]!.lastKeepaliveAgoMs! >= view[1]!.lastKeepaliveAgoMs!);
    // A hedged call counts on the member it ran on.
    await members.hedged(async () => 'ok', 1000, 1000);
    assert.equal(membersHealth(members, undefined)[0]!.calls, 1);
  } finally {
    members.close();
  }
});
