// The small cases the exhaustive exploration runs (test/sim/exhaustive.test.ts): each a
// scripted World with no random latency, so many events fall on the same instant, and a
// window of virtual time in which every order of them is explored.
import type { Chooser } from './scheduler.js';
import { PREFIX, World, type SimHost, type WorldOptions } from './world.js';

/** A scripted scenario with no random latency: many events fall on the same instant, and the explorer orders them every way. */
export function scenario(script: (w: World) => void, extra: Partial<WorldOptions> = {}): (chooser: Chooser) => World {
  return (chooser) =>
    new World({
      seed: 7,
      hosts: 2,
      names: 1,
      horizonMs: 3_000,
      ttl: 2,
      faults: 0,
      latency: [0, 0],
      lossAfterApply: 0,
      chooser,
      script,
      ...extra,
    });
}

/** Runs `fn` once, at the instant `h` first stops a leadership for `reason` (an event of its own, ordered every way). */
function onStop(w: World, h: SimHost, reason: string, fn: () => void): void {
  let done = false;
  for (const s of Object.values(h.locker.singletons())) {
    s.on('stop', (r) => {
      if (done || r !== reason) return;
      done = true;
      w.at(w.sched.now, fn);
    });
  }
}

/** When h0 of 'a join races a lease loss' loses its lease (latency 0: always the same instant). */
const JOIN_RACE_AT = 2_000;

// The first five are races of the election core: balancing off (one name between two hosts has nothing to balance).
const core = { balance: false };

/** Label, world, window of virtual ms explored, and the depth (choice points explored every way; default 10). */
export const cases: [string, ReturnType<typeof scenario>, [number, number], number?][] = [
  [
    'two hosts start at once',
    scenario((w) => {
      for (const h of w.hosts) w.register(h, 'n0', 'work');
    }, core),
    [0, 200],
    // Every host's record write and lease grant are due at 0 ms too: 9 deep is ~2,200 orders (10: more than 5,000).
    9,
  ],
  [
    'the leader removes itself while the standby campaigns',
    scenario((w) => {
      w.register(w.hosts[0]!, 'n0', 'work');
      w.at(300, () => w.register(w.hosts[1]!, 'n0', 'work'));
      w.at(300, () => w.remove(w.hosts[0]!, 'n0', 200));
    }, core),
    [300, 600],
  ],
  [
    'del --prefix of the queue while the leader resigns',
    scenario((w) => {
      for (const h of w.hosts) w.register(h, 'n0', 'quick');
      w.at(400, () => w.remove(w.hosts[0]!, 'n0', 100));
      w.at(400, () => w.deletePrefix(`${PREFIX}n0/`));
    }, core),
    [400, 700],
  ],
  [
    'the standby loses its watch as the leader hands over',
    scenario((w) => {
      for (const h of w.hosts) w.register(h, 'n0', 'work');
      w.at(400, () => w.cancelWatch(w.hosts[1]!));
      w.at(400, () => w.remove(w.hosts[0]!, 'n0', 100));
    }, core),
    [400, 700],
  ],
  [
    'a try-lock races a campaign',
    scenario((w) => {
      w.register(w.hosts[0]!, 'n0', 'work');
      w.tryLock(w.hosts[1]!, 'n0');
    }, core),
    [0, 200],
    9,
  ],
  [
    // h0 leads both names; h1 joins and balancing moves one to it: h1 crashes at the very
    // instant h0 stops for the hand-over (its key stays first until its lease expires).
    'a balance move races a crash of its target',
    scenario(
      (w) => {
        const [h0, h1] = w.hosts as [SimHost, SimHost];
        for (const n of ['n0', 'n1']) w.register(h0, n, 'work');
        w.at(300, () => {
          for (const n of ['n0', 'n1']) w.register(h1, n, 'work');
          onStop(w, h0, 'handover', () => w.kill(h1));
        });
      },
      { names: 2 },
    ),
    [300, 900],
  ],
  [
    // The same move, but the old leader crashes while its fn stops, and restarts with the same id at once.
    'a balance move races a crash and restart of its leader',
    scenario(
      (w) => {
        const [h0, h1] = w.hosts as [SimHost, SimHost];
        for (const n of ['n0', 'n1']) w.register(h0, n, 'work');
        w.at(300, () => {
          for (const n of ['n0', 'n1']) w.register(h1, n, 'work');
          onStop(w, h0, 'handover', () => w.crashRestart(h0, 0));
        });
      },
      { names: 2 },
    ),
    [300, 900],
  ],
  [
    // h1 leads n0, h0 queues; at once: h0 is drained, and n0 is failed over to h0.
    'a drain races a failover --to the drained host',
    scenario((w) => {
      const [h0, h1] = w.hosts as [SimHost, SimHost];
      w.register(h1, 'n0', 'work');
      w.at(100, () => w.register(h0, 'n0', 'work'));
      w.at(400, () => w.drain(h0));
      w.at(400, () => w.failoverTo(h1, 'n0', 'h0'));
    }),
    [400, 700],
  ],
  [
    // h0 leads two names alone; its keepalives go unanswered until it loses its lease, and
    // at that instant h1 joins: h1 leads both, then h0 is back and gets its share.
    'a join races a lease loss',
    scenario(
      (w) => {
        const h0 = w.hosts[0]!;
        for (const n of ['n0', 'n1']) w.register(h0, n, 'work');
        w.at(800, () => (h0.store.keepalivesDown = true));
        h0.locker.once('lost', () => {
          w.at(w.sched.now, () => w.join());
          w.at(w.sched.now + 300, () => (h0.store.keepalivesDown = false));
        });
      },
      { hosts: 1, names: 2, horizonMs: 4_000 },
    ),
    [JOIN_RACE_AT, JOIN_RACE_AT + 300],
  ],
];
