// The supervisor of `locked run` as pure logic: fake programs, fake leaderships and a
// fake clock, no etcd and no processes. The integration tests (cli*.test.ts) run the
// same rules with real programs against a real etcd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotLeaderError, type Leadership } from '../../src/index.js';
import type { ChildExit } from '../../src/cli/child.js';
import { Supervisor, TRANSITIONS, type Program, type RunStateKind, type SupervisorPlan } from '../../src/cli/supervisor.js';
import { FakeClock, settle } from '../helpers/clock.js';

const SIGNALS: Record<string, number> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2 };

/** A program whose exit, and the end of its process group, the test decides. */
class FakeProgram implements Program {
  done = false;
  readonly signals: NodeJS.Signals[] = [];
  readonly killBys: { afterMs: number; why: string }[] = [];
  readonly exited: Promise<ChildExit>;
  readonly gone: Promise<void>;
  private exitWith!: (e: ChildExit) => void;
  private vanish!: () => void;

  constructor(readonly pid: number) {
    this.exited = new Promise((resolve) => (this.exitWith = resolve));
    this.gone = new Promise<void>((resolve) => (this.vanish = resolve)).then(() => {
      this.done = true;
    });
  }

  /** Exits with `code`; its group ends with it unless a grandchild lingers. */
  exit(code: number, options: { groupLingers?: boolean } = {}): void {
    this.exitWith({ code, how: `exited with status ${code}` });
    if (!options.groupLingers) this.vanish();
  }

  killed(sig: NodeJS.Signals): void {
    this.exitWith({ code: 128 + SIGNALS[sig]!, how: `was killed by ${sig}` });
    this.vanish();
  }

  /** The last process of the group is gone. */
  groupGone(): void {
    this.vanish();
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.done) this.signals.push(sig);
  }

  killBy(afterMs: number, why: string): void {
    this.killBys.push({ afterMs, why });
  }

  terminate(sig: NodeJS.Signals, afterMs: number): void {
    this.signal(sig);
    this.killBy(afterMs, sig);
  }
}

/** A leadership of 'job' with fencing token `token`; `end(reason)` aborts it as the library does. */
function leadership(token: string): { l: Leadership; end(reason: string): void } {
  const c = new AbortController();
  const l = {
    name: 'job',
    nodeId: 'me',
    key: `locked/job/${token}`,
    token,
    signal: c.signal,
    since: Date.now(),
    get active() {
      return !c.signal.aborted;
    },
    check() {},
    fence() {
      throw new Error('not used by the supervisor');
    },
  } as unknown as Leadership;
  return { l, end: (reason) => c.abort(new NotLeaderError('job', reason)) };
}

function harness(plan: Partial<SupervisorPlan> = {}) {
  const clock = new FakeClock();
  const lines: string[] = [];
  const programs: FakeProgram[] = [];
  const releases: (number | undefined)[] = [];
  const kinds: RunStateKind[] = ['connecting'];
  const sup = new Supervisor(
    {
      name: 'job',
      command: 'prog',
      id: 'me',
      graceMs: 10_000,
      lossMarginMs: 2_000,
      try: false,
      sighup: 'forward',
      waitMs: undefined,
      timeoutMs: undefined,
      endpoints: '127.0.0.1:2379',
      ...plan,
    },
    {
      start: () => {
        const p = new FakeProgram(1000 + programs.length);
        programs.push(p);
        return p;
      },
      release: async (withinMs) => {
        releases.push(withinMs);
      },
      say: (m) => lines.push(m),
      clock,
      onTransition: (from, to) => {
        assert.ok(TRANSITIONS[from.kind].includes(to.kind), `${from.kind} → ${to.kind} is a transition`);
        kinds.push(to.kind);
      },
    },
  );
  sup.start();
  const program = (i: number): FakeProgram => {
    const p = programs[i];
    assert.ok(p, `program ${i} was started`);
    return p;
  };
  return { sup, clock, lines, programs, program, releases, kinds };
}

test('a program that exits by itself: the name is released once its whole group is gone, and run exits with its status', async () => {
  const h = harness();
  h.sup.connected();
  const a = leadership('7');
  const led = h.sup.lead(a.l);
  assert.equal(h.sup.state.kind, 'leading');
  assert.equal(h.sup.leading(), true);
  assert.equal(h.sup.describe(), "leading 'job' as me (token 7)");
  h.program(0).exit(3, { groupLingers: true });
  await settle();
  assert.equal(h.sup.state.kind, 'leading', 'still leading while a grandchild runs');
  assert.deepEqual(h.releases, [], 'not released while a grandchild runs');
  h.program(0).groupGone();
  assert.equal(await h.sup.finished, 3);
  await led;
  assert.deepEqual(h.kinds, ['connecting', 'queued', 'leading', 'stopping', 'done']);
  assert.deepEqual(h.releases, [undefined], 'released once, unbounded: a leadership is there to release');
  assert.ok(h.lines.includes("prog exited with status 3; releasing 'job'"), h.lines.join('\n'));
  assert.equal(h.lines.at(-1), "released 'job'; exiting with status 3");
});

test('a lost lease: SIGTERM at once, SIGKILL by min(grace, ttl/3), then campaigning again once the group is gone', async () => {
  const h = harness({ graceMs: 10_000, lossMarginMs: 2_000 });
  h.sup.connected();
  const a = leadership('7');
  const led = h.sup.lead(a.l);
  a.end('lost');
  assert.equal(h.sup.state.kind, 'ending');
  assert.equal(h.sup.leading(), false);
  assert.deepEqual(h.program(0).signals, ['SIGTERM']);
  assert.deepEqual(h.program(0).killBys, [{ afterMs: 2_000, why: 'the lease was lost' }]);
  h.program(0).killed('SIGTERM');
  await led;
  assert.equal(h.sup.state.kind, 'queued');
  assert.deepEqual(h.releases, [], 'a lost leadership is no reason to exit');
  assert.ok(h.lines.includes("prog was killed by SIGTERM; queueing again for 'job'"), h.lines.join('\n'));
  assert.deepEqual(h.kinds, ['connecting', 'queued', 'leading', 'ending', 'queued']);
});

test('a hand-over (failover): SIGTERM and SIGKILL after --grace', async () => {
  const h = harness({ graceMs: 7_000 });
  h.sup.connected();
  const a = leadership('7');
  void h.sup.lead(a.l);
  a.end('failover');
  assert.deepEqual(h.program(0).signals, ['SIGTERM']);
  assert.deepEqual(h.program(0).killBys, [{ afterMs: 7_000, why: 'SIGTERM' }]);
  assert.ok(h.lines.includes("leadership of 'job' ended (failover): SIGTERM to process group 1000"), h.lines.join('\n'));
});

test("a leadership won while the last program is being stopped starts its program only after that program's group is gone", async () => {
  const h = harness();
  h.sup.connected();
  const a = leadership('7');
  void h.sup.lead(a.l);
  a.end('failover');
  const b = leadership('9');
  void h.sup.lead(b.l);
  await settle();
  assert.equal(h.programs.length, 1, "no second program while the first one's group runs");
  h.program(0).exit(0, { groupLingers: true });
  await settle();
  assert.equal(h.programs.length, 1, 'not even after the first program exited, while its group runs');
  h.program(0).groupGone();
  await settle();
  assert.equal(h.programs.length, 2);
  assert.equal(h.sup.describe(), "leading 'job' as me (token 9)");
  assert.deepEqual(h.kinds, ['connecting', 'queued', 'leading', 'ending', 'queued', 'leading']);
});

test('SIGTERM while leading: forwarded, the name released once the group is gone, with its status; a second SIGTERM kills it', async () => {
  const h = harness();
  h.sup.connected();
  void h.sup.lead(leadership('7').l);
  h.sup.signal('SIGTERM');
  assert.equal(h.sup.state.kind, 'stopping');
  assert.equal(h.sup.describe(), "stopping; not leading 'job'");
  assert.deepEqual(h.program(0).signals, ['SIGTERM']);
  assert.deepEqual(h.program(0).killBys, [{ afterMs: 10_000, why: 'SIGTERM' }]);
  h.sup.signal('SIGTERM');
  assert.deepEqual(h.program(0).signals, ['SIGTERM', 'SIGKILL']);
  await settle();
  assert.deepEqual(h.releases, [], 'not released while the program runs');
  h.program(0).killed('SIGKILL');
  assert.equal(await h.sup.finished, 137);
  assert.deepEqual(h.releases, [undefined]);
  assert.deepEqual(h.kinds, ['connecting', 'queued', 'leading', 'stopping', 'done']);
});

test('a lease lost during a shutdown by signal still ends the program by ttl/3, without a second SIGTERM', () => {
  const h = harness({ graceMs: 30_000, lossMarginMs: 2_000 });
  h.sup.connected();
  const a = leadership('7');
  void h.sup.lead(a.l);
  h.sup.signal('SIGINT');
  a.end('lost');
  assert.deepEqual(h.program(0).signals, ['SIGINT']);
  assert.deepEqual(h.program(0).killBys, [
    { afterMs: 30_000, why: 'SIGINT' },
    { afterMs: 2_000, why: 'the lease was lost' },
  ]);
});

test('SIGINT while queued leaves the queue with status 0', async () => {
  const h = harness();
  h.sup.connected();
  h.sup.signal('SIGINT');
  assert.equal(await h.sup.finished, 0);
  assert.deepEqual(h.kinds, ['connecting', 'queued', 'stopping', 'done']);
  assert.equal(h.lines.at(-1), "left the queue for 'job'; exiting with status 0");
});

test('SIGHUP is forwarded and the program keeps running; with --sighup stop it stops run like SIGTERM', async () => {
  const forward = harness();
  forward.sup.connected();
  void forward.sup.lead(leadership('7').l);
  forward.sup.signal('SIGHUP');
  assert.deepEqual(forward.program(0).signals, ['SIGHUP']);
  assert.equal(forward.sup.state.kind, 'leading');

  const stop = harness({ sighup: 'stop' });
  stop.sup.connected();
  void stop.sup.lead(leadership('7').l);
  stop.sup.signal('SIGHUP');
  assert.deepEqual(stop.program(0).signals, ['SIGTERM']);
  assert.equal(stop.sup.state.kind, 'stopping');
  stop.program(0).killed('SIGTERM');
  assert.equal(await stop.sup.finished, 143);
});

test('--wait: 75 when not elected in time, the release bounded; never once a program ran here', async () => {
  const h = harness({ waitMs: 5_000 });
  h.sup.connected();
  await h.clock.advance(4_999);
  assert.equal(h.sup.state.kind, 'queued');
  await h.clock.advance(1);
  assert.equal(await h.sup.finished, 75);
  assert.deepEqual(h.releases, [3_000]);

  const elected = harness({ waitMs: 5_000 });
  elected.sup.connected();
  const a = leadership('7');
  void elected.sup.lead(a.l);
  a.end('lost');
  elected.program(0).killed('SIGTERM');
  await settle();
  assert.equal(elected.sup.state.kind, 'queued');
  await elected.clock.advance(10_000);
  assert.equal(elected.sup.state.kind, 'queued', 'a host that led once waits in the queue as long as it takes');
});

test('--timeout: 125 while etcd has not answered; nothing once it has', async () => {
  const h = harness({ timeoutMs: 3_000 });
  h.sup.outage('connect ECONNREFUSED');
  await h.clock.advance(3_000);
  assert.equal(await h.sup.finished, 125);
  assert.deepEqual(h.releases, [3_000]);
  assert.ok(h.lines.includes('etcd at 127.0.0.1:2379 did not answer within 3 s (--timeout)'), h.lines.join('\n'));

  const answered = harness({ timeoutMs: 3_000 });
  answered.sup.connected();
  await answered.clock.advance(10_000);
  assert.equal(answered.sup.state.kind, 'queued');
});

test('--try: 75 when another host leads; after its one leadership the status of the program, never queueing again', async () => {
  const busy = harness({ try: true });
  busy.sup.connected();
  busy.sup.notAcquired('other-host');
  assert.equal(await busy.sup.finished, 75);
  assert.ok(busy.lines.includes("'job' is led by other-host: not running prog (--try)"), busy.lines.join('\n'));

  const once = harness({ try: true });
  once.sup.connected();
  const a = leadership('7');
  void once.sup.lead(a.l);
  a.end('lost');
  once.program(0).killed('SIGTERM');
  assert.equal(await once.sup.finished, 143);
  assert.deepEqual(once.kinds, ['connecting', 'queued', 'leading', 'ending', 'stopping', 'done']);

  const late = harness({ try: true });
  late.sup.connected();
  const b = leadership('8');
  b.end('lost');
  await late.sup.lead(b.l);
  assert.equal(await late.sup.finished, 75);
  assert.equal(late.programs.length, 0);
  assert.ok(late.lines.includes("lost 'job' before prog started"), late.lines.join('\n'));
});

test('a user etcd refuses: the running program is stopped first, then 125 with a bounded release', async () => {
  const h = harness();
  h.sup.connected();
  void h.sup.lead(leadership('7').l);
  h.sup.fatal("etcd at 127.0.0.1:2379 refused user 'u': authentication failed");
  assert.deepEqual(h.program(0).signals, ['SIGTERM']);
  h.sup.fatal('said once');
  assert.ok(!h.lines.includes('said once'), 'a second fatal error while stopping is not said');
  await settle();
  assert.deepEqual(h.releases, []);
  h.program(0).killed('SIGTERM');
  assert.equal(await h.sup.finished, 125);
  assert.deepEqual(h.releases, [3_000]);
});

test('etcd trouble is said once per outage: waiting before the first answer, trouble and recovery after', () => {
  const h = harness();
  h.sup.outage('connect ECONNREFUSED');
  h.sup.outage('connect ECONNREFUSED again');
  h.sup.sessionUp();
  h.sup.connected();
  h.sup.outage('deadline exceeded');
  h.sup.outage('deadline exceeded again');
  h.sup.sessionUp();
  h.sup.sessionUp();
  assert.deepEqual(h.lines, [
    'waiting for etcd at 127.0.0.1:2379: connect ECONNREFUSED',
    "connected to etcd at 127.0.0.1:2379; campaigning for 'job' as me",
    'etcd trouble at 127.0.0.1:2379: deadline exceeded (retrying)',
    "etcd is back; campaigning for 'job' again",
  ]);
});

test('done is final: signals, leaderships and timers after it change nothing', async () => {
  const h = harness({ waitMs: 1_000 });
  h.sup.connected();
  h.sup.signal('SIGTERM');
  assert.equal(await h.sup.finished, 0);
  const before = h.lines.length;
  h.sup.signal('SIGTERM');
  await h.sup.lead(leadership('9').l);
  await h.clock.advance(5_000);
  assert.equal(h.sup.state.kind, 'done');
  assert.equal(h.programs.length, 0);
  assert.equal(h.lines.length, before);
  assert.deepEqual(h.releases, [undefined]);
});
