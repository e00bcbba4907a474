// The respread delay (`balance: { respreadDelayMs }`), in the deterministic simulation: a
// host crashes and restarts with the same id within the delay. Its leaderships fail over at
// its lease's expiry as always; meanwhile the survivors make no balancing move and write no
// standby request (their spread and standby order hold still); once it is back, the spread
// is reached again (the simulation's checks after the quiet period).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, World } from '../helpers/sim/world.js';
import { controlPrefix } from '../../src/etcd/keys.js';

const TTL = 3;
const NAMES = Array.from({ length: 12 }, (_, i) => `n${i}`);

async function crashRestart(
  delayMs: number,
  seed: number,
): Promise<{ handovers: number; requests: number; failovers: number; violations: string[] }> {
  let killAt = -1;
  let backAt = -1;
  let handovers = 0;
  let requests = 0;
  let failovers = 0;
  const w = new World({
    seed,
    hosts: 3,
    names: NAMES.length,
    horizonMs: 30_000,
    ttl: TTL,
    faults: 0,
    latency: [1, 4],
    lossAfterApply: 0,
    respreadDelayMs: delayMs,
    script: (w) => {
      for (const h of w.hosts) for (const n of NAMES) w.register(h, n, 'work');
      const survivors = [w.hosts[0]!, w.hosts[2]!];
      for (const h of survivors) {
        for (const n of NAMES) {
          const s = h.locker.singletons()[n]!;
          s.on('stop', (reason) => {
            if (killAt >= 0 && backAt < 0 && w.sched.now >= killAt && reason === 'handover') handovers++;
          });
          s.on('start', () => {
            if (killAt >= 0 && backAt < 0 && w.sched.now >= killAt) failovers++;
          });
        }
      }
      const onPut = w.model.onPut;
      w.model.onPut = (kv) => {
        onPut(kv);
        const c = controlPrefix(PREFIX);
        if (killAt >= 0 && backAt < 0 && (kv.key.startsWith(`${c}next/`) || kv.key.startsWith(`${c}move/`))) requests++;
      };
      // Spread and standbys settled by 8 s; the victim is down from 8 s to 8 s + 2 ttl (its
      // lease expires about a ttl after the kill: the restart comes a ttl after that).
      w.at(8_000, () => {
        killAt = w.sched.now;
        w.crashRestart(w.hosts[1]!, 2 * TTL * 1000);
      });
      w.at(8_000 + 2 * TTL * 1000, () => (backAt = w.sched.now));
    },
  });
  const r = await w.run();
  return { handovers, requests, failovers, violations: r.violations.map((v) => `${v.at}: ${v.what}`) };
}

test('respread delay: a host that restarts within it costs its failovers and nothing else until it is back', async (t: TestContext) => {
  for (const seed of [1, 2, 3]) {
    const held = await crashRestart(20_000, seed);
    const free = await crashRestart(0, seed);
    t.diagnostic(
      `seed ${seed}: while the victim was down — delay 20 s: ${held.failovers} failovers, ${held.handovers} balancing hand-overs, ${held.requests} move/standby requests; ` +
        `no delay: ${free.failovers} failovers, ${free.handovers} hand-overs, ${free.requests} requests`,
    );
    assert.deepEqual(held.violations, []);
    assert.deepEqual(free.violations, []);
    assert.ok(held.failovers > 0, 'the victim led names that failed over');
    assert.equal(held.handovers, 0, 'no balancing hand-over while the delay holds');
    assert.equal(held.requests, 0, 'no move or standby request while the delay holds');
  }
});
