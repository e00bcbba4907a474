// A frozen etcd member among healthy ones (issue "survive a sick etcd member"): hosts as
// processes, a real 3-member etcd. A member frozen by SIGSTOP (a stalled disk, a paused VM)
// accepts connections and answers nothing, and raises no error: keepalives, campaigns and
// the watch must move to the healthy members. A frozen follower costs no step-down at all
// (ttl 4 and ttl 10); a frozen raft leader costs at most one step-down per name while the
// others elect a new raft leader, and every name is led again within ttl + 1.5 s.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { etcdRevokesLiveLeases, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from '../helpers/history.js';
import type { Host } from '../helpers/host.js';
import { allHealthy, assertLedAgain, crashFailover, hostsOn, now, raftLeader, settled, sleep, stopsSince, uniquePrefix } from '../helpers/sick.js';
import { waitFor } from '../helpers/wait.js';

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];
let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

/** The cluster's endpoints with member `i` first (hosts start on it: the worst case). */
const firstOf = (i: number): string[] => [cluster.endpoints[i]!, ...cluster.endpoints.filter((_, j) => j !== i)];

function assertNoOverlap(hs: Host[], t0: bigint): void {
  const r = checkHistories(hs.map((h) => historyOf(h)), { endOfRun: now() });
  assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
}

/** Thaws member `i` and checks every host is healthy with its watch connected within 3 s. */
async function thaw(t: TestContext, hs: Host[], i: number): Promise<void> {
  process.kill(cluster.members[i]!.pid!, 'SIGCONT');
  const healthyMs = await allHealthy(hs, now(), 3_000);
  t.diagnostic(`all healthy ${healthyMs.toFixed(0)} ms after the thaw`);
}

/**
 * A follower frozen for `faultMs`; 3 s into it the host leading 'a' is SIGKILLed: no
 * step-down but the victim's, failover within ttl + 1 s, healthy within 3 s of the thaw.
 */
async function frozenFollower(t: TestContext, ttl: number, faultMs: number): Promise<void> {
  const prefix = uniquePrefix('sick');
  const t0 = now();
  const sick = ((await raftLeader(cluster)) + 1) % cluster.members.length;
  const hs = await hostsOn(firstOf(sick), prefix, NAMES, ttl);
  try {
    await settled(cluster, hs, NAMES);
    const frozenAt = now();
    process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
    try {
      await sleep(3_000);
      await crashFailover(t, hs, NAMES, ttl, `ttl ${ttl}: crash failover during the freeze of m${sick}`);
      await sleep(Math.max(0, faultMs - ms(now() - frozenAt)));
    } catch (e) {
      process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
      throw e;
    }
    const stops = stopsSince(hs, frozenAt);
    t.diagnostic(`ttl ${ttl}: step-downs during the ${faultMs} ms freeze: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`);
    assert.deepEqual(stops, [], 'step-downs during the freeze');
    await thaw(t, hs, sick);
    assertNoOverlap(hs, t0);
  } finally {
    await Promise.all(hs.map((h) => h.stop()));
  }
}

describe('a frozen etcd member (SIGSTOP), 3 members', () => {
  test('a frozen follower for 3 × ttl (ttl 4): no step-down; a crash failover during it within ttl + 1 s; all healthy within 3 s of the thaw', async (t) => {
    await frozenFollower(t, 4, 12_000);
  });

  test('a frozen follower for 2 × ttl (ttl 10): no step-down; a crash failover during it within ttl + 1 s; all healthy within 3 s of the thaw', async (t) => {
    await frozenFollower(t, 10, 20_000);
  });

  test('the raft leader frozen for 2 × ttl (ttl 4): at most one step-down per name, every name led again within ttl + 1.5 s of the freeze', async (t) => {
    const ttl = 4;
    const prefix = uniquePrefix('sickl');
    const t0 = now();
    const sick = await raftLeader(cluster);
    // Every host starts on the raft leader: its calls and its watch hang there when it freezes.
    const hs = await hostsOn(firstOf(sick), prefix, NAMES, ttl);
    try {
      await settled(cluster, hs, NAMES);
      assert.equal(await cluster.leaderIndex(), sick, 'the raft leader moved before the freeze (retry)');
      const frozenAt = now();
      process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
      await sleep(ttl * 2000);
      const others = cluster.members.map((_, i) => i).filter((i) => i !== sick);
      const newLeader = await cluster.leaderIndex();
      t.diagnostic(`raft leader m${sick} frozen for ${ttl * 2} s; m${newLeader} leads the others`);
      assert.ok(others.includes(newLeader), 'the healthy members elected a raft leader');
      assertLedAgain(t, hs, NAMES, frozenAt, ttl, 'freeze');
      const thawedAt = now();
      await thaw(t, hs, sick);
      await waitFor(async () => cluster.members[sick]!.healthy(), { timeoutMs: 10_000, message: `m${sick} healthy after the thaw` });
      // etcd with etcd-io/etcd#15247 (etcdRevokesLiveLeases: 3.4, and 3.5 through 3.5.30 as
      // measured by bench/etcd-thaw.ts — upstream says 3.5.13): the resumed raft leader, frozen
      // longer than the ttl, revokes the leases that ran out in its own view — live ones —
      // and their keys vanish; their leaders stop 'deposed' just after the next ones started
      // (seen in the bench: 2 deposed stops after the thaw, a 1 ms overlap). On such an etcd
      // the thaw counts as a delete of every key (the checker's deposed window); on a fixed
      // etcd it does not.
      // The hosts whose leases were revoked learn it from their watch or their next keepalive,
      // some ms after the member is healthy again: judge the histories once every name has one
      // leader and every host is queued again. (The check ran at once before and counted three
      // leaderships whose 'deposed' stop had not arrived yet as 100 ms overlaps, on CI.) If they
      // never settle, the check below prints who still leads next to whom.
      await settled(cluster, hs, NAMES).catch(() => undefined);
      const deposed = stopsSince(hs, thawedAt);
      if (deposed.length) t.diagnostic(`after the thaw: ${deposed.join('; ')}${etcdRevokesLiveLeases() ? ' (this etcd has etcd#15247)' : ''}`);
      const r = checkHistories(hs.map((h) => historyOf(h)), {
        endOfRun: now(),
        ...(etcdRevokesLiveLeases() ? { deletes: NAMES.map((name) => ({ name, at: thawedAt })) } : {}),
      });
      assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
    } finally {
      process.kill(cluster.members[sick]!.pid!, 'SIGCONT'); // (again: harmless) a failed assertion must not leave it frozen
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});
