// The step-down rule of src/core/session.ts, with an injected clock and a fake lease API
// (pure timing logic; behaviour against real etcd is in safety.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/etcd/store.js';
import { Session } from '../../src/core/session.js';
import { isLeaseLostError, type LeaseLostError } from '../../src/core/errors.js';
import { FakeClock, settle } from '../helpers/clock.js';

type Answer = { ttl: number } | 'never' | 'error';

/** A lease API whose keepalive answers are scripted, and which records each send time. */
class FakeLeases {
  answers: Answer[] = [];
  defaultAnswer: Answer = { ttl: 3 };
  sends: number[] = [];
  revoked: string[] = [];
  /** Answers held back, to be delivered later (an ack sitting in a socket buffer). */
  held: (() => void)[] = [];
  holdAnswers = false;

  constructor(private readonly clock: FakeClock) {}

  store(): Store {
    const unused = (): never => {
      throw new Error('not used by Session');
    };
    return {
      grant: async () => '7587869343212843269',
      revoke: async (id: string) => {
        this.revoked.push(id);
      },
      keepAlive: (_id: string) =>
        new Promise<number>((resolve, reject) => {
          this.sends.push(this.clock.now());
          const a = this.answers.shift() ?? this.defaultAnswer;
          const deliver = (): void => {
            if (a === 'error') reject(new Error('unavailable'));
            else if (a !== 'never') resolve(a.ttl);
          };
          if (this.holdAnswers) this.held.push(deliver);
          else queueMicrotask(deliver);
        }),
      campaign: unused,
      resign: unused,
      readPrefix: unused,
      watchPrefix: unused,
    };
  }
}

async function start(clock: FakeClock, leases: FakeLeases, ttl = 3): Promise<{ session: Session; lost: LeaseLostError[] }> {
  const lost: LeaseLostError[] = [];
  const session = await Session.grant(
    leases.store(),
    { ttl, renewDeadlineMs: (2 * ttl * 1000) / 3, keepaliveIntervalMs: (ttl * 1000) / 3, clock },
    (err) => lost.push(err),
  );
  return { session, lost };
}

test('answered keepalives keep the session alive, one every ttl/3 — every ttl/6 in its first two ttls', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { session, lost } = await start(clock, leases);
  await clock.advance(30_000);
  assert.equal(lost.length, 0);
  assert.ok(session.alive());
  const early = leases.sends.filter((t) => t <= 6_000);
  const rest = leases.sends.filter((t) => t > 6_000);
  assert.deepEqual(
    early,
    [500, 1_000, 1_500, 2_000, 2_500, 3_000, 3_500, 4_000, 4_500, 5_000, 5_500, 6_000],
    'a new session starts strained',
  );
  assert.equal(rest.length, 24, `then one per second until 30 s with ttl 3, got ${rest.join(', ')}`);
  for (let i = 1; i < leases.sends.length; i++) assert.ok(leases.sends[i]! - leases.sends[i - 1]! <= 1000);
  await session.close(true);
  assert.deepEqual(leases.revoked, ['7587869343212843269']);
});

test('without acknowledgements the session is lost exactly at last acknowledged send + renewDeadline', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { session, lost } = await start(clock, leases);
  await clock.advance(5_000); // keepalives sent at 1000, 2000, … all answered: last acknowledged send at 5000
  leases.defaultAnswer = 'never';
  await clock.advance(1_999); // deadline = 5000 + 2000
  assert.equal(lost.length, 0, 'not before the deadline');
  assert.ok(session.alive());
  await clock.advance(1);
  assert.equal(lost.length, 1, 'at the deadline');
  assert.ok(session.signal.aborted);
  assert.ok(isLeaseLostError(session.signal.reason));
  assert.ok(!session.alive());
  // Losing a lease never revokes it: fn may still run on it (the release gate decides).
  await settle();
  assert.deepEqual(leases.revoked, []);
});

test('failed keepalives are retried quickly, and one success before the deadline saves the session', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { lost } = await start(clock, leases);
  leases.answers = ['error', 'error', 'error'];
  await clock.advance(1_500);
  assert.ok(leases.sends.length >= 4, `retries after failures, sends at ${leases.sends.join(', ')}`);
  await clock.advance(10_000);
  assert.equal(lost.length, 0);
});

test('etcd answering TTL 0 (lease expired or revoked) ends the session at once', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { lost } = await start(clock, leases);
  leases.answers = [{ ttl: 0 }];
  await clock.advance(1_000);
  assert.equal(lost.length, 1);
  assert.match(lost[0]!.message, /expired or revoked/);
});

test('an acknowledgement processed after its deadline (paused process) extends nothing', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { session, lost } = await start(clock, leases);
  await clock.advance(6_000); // past the strained start: one keepalive per second
  leases.holdAnswers = true;
  await clock.advance(1_000); // keepalive sent at 7000; its answer sits in a buffer
  assert.equal(leases.held.length, 1);
  clock.jump(5_000); // the process was stopped: no timer ran
  assert.ok(!session.alive(), 'alive() reads the clock, not the timers');
  leases.held.shift()!(); // the old answer is read first after waking
  await settle();
  assert.equal(lost.length, 1, 'lost as soon as the stale acknowledgement is seen');
});

test('a stalled keepalive (no answer at all) still ends the session on time', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { lost } = await start(clock, leases);
  leases.defaultAnswer = 'never';
  await clock.advance(1_999);
  assert.equal(lost.length, 0);
  await clock.advance(1);
  assert.equal(lost.length, 1, 'deadline counted from the grant when no keepalive was acknowledged');
});

test('startable(): only while keepalives are on schedule; renewed() wakes the waiter at the next acknowledgement', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { session, lost } = await start(clock, leases); // ttl 3: interval 1000, attempt 500, renewDeadline 2000
  await clock.advance(9_000); // last acknowledged send at 9000 (one per second since the strained start ended at 6000)
  assert.ok(session.startable(), 'fresh after an acknowledgement');
  leases.defaultAnswer = 'error';
  await clock.advance(1_250); // the keepalive of 10000 and its retries fail: 1250 ≤ 1000 + 250
  assert.ok(session.startable(), 'within an interval plus half an attempt');
  await clock.advance(1);
  assert.ok(session.alive(), 'still alive (deadline 11000)…');
  assert.ok(!session.startable(), '…but overdue: nothing new starts on it');
  let woke = false;
  void session.renewed().then(() => (woke = true));
  await settle();
  assert.ok(!woke);
  leases.defaultAnswer = { ttl: 3 };
  await clock.advance(400); // the retry after the failed attempt is answered
  assert.ok(woke, 'renewed() resolved at the acknowledgement');
  assert.ok(session.startable(), 'on schedule again');
  assert.equal(lost.length, 0);

  leases.defaultAnswer = 'error';
  let ended = false;
  await clock.advance(1_600);
  void session.renewed().then(() => (ended = true));
  await clock.advance(2_000);
  assert.equal(lost.length, 1);
  assert.ok(ended, 'renewed() resolves when the session ends instead');
  assert.ok(!session.startable());
});

test('under strain keepalives go every half interval, for two ttls after the last slow round trip, then every interval again', async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases(clock);
  const { session, lost } = await start(clock, leases); // ttl 3: interval 1000, attempt 500
  await clock.advance(10_000); // past the strained start (6 s)
  leases.sends = [];
  await clock.advance(2_000);
  assert.deepEqual(leases.sends, [11_000, 12_000], 'at rest: one per interval');
  leases.holdAnswers = true;
  await clock.advance(1_000); // sent at 13000, its answer held
  await clock.advance(300);
  leases.holdAnswers = false;
  for (const deliver of leases.held.splice(0)) deliver(); // answered after 300 ms > attempt / 2
  await clock.advance(5_700); // to 19000
  const strained = leases.sends.filter((t) => t > 13_000);
  assert.deepEqual(
    strained,
    [13_500, 14_000, 14_500, 15_000, 15_500, 16_000, 16_500, 17_000, 17_500, 18_000, 18_500, 19_000],
    'every 500 ms while strained',
  );
  await clock.advance(6_000);
  const after = leases.sends.filter((t) => t > 19_300 + 500);
  for (let i = 1; i < after.length; i++) assert.equal(after[i]! - after[i - 1]!, 1_000, `back to one per interval: ${after.join(', ')}`);
  assert.ok(after.length >= 4);
  assert.equal(lost.length, 0);
  assert.ok(session.alive());
});
