// A frozen etcd member among healthy ones (issue "survive a sick etcd member"): hosts as
// processes, a real 3-member etcd. A member frozen by SIGSTOP (a stalled disk, a paused VM)
// accepts connections and answers nothing, and raises no error: keepalives, campaigns and
// the watch must move to the healthy members. A frozen follower costs no step-down at all
// (ttl 4 and ttl 10); a frozen raft leader costs at most one step-down per name while the
// others elect a new raft leader, each followed (never overlapped) by the next leader. How
// long each step took is reported (t.diagnostic); failover timings live in `npm run bench`.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { etcdRevokesLiveLeases, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from '../helpers/history.js';
import { leadersOf, type Host } from '../helpers/host.js';
import {
  allHealthy,
  assertLedAgain,
  crashFailover,
  deadlineMs,
  eventsSince,
  hostsOn,
  hostsOnRaftLeader,
  leaderSampler,
  now,
  raftLeader,
  settled,
  sleep,
  stopsSince,
  uniquePrefix,
} from '../helpers/sick.js';
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
  const r = checkHistories(
    hs.map((h) => historyOf(h)),
    { endOfRun: now() },
  );
  assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
}

/** Thaws member `i` and waits until every host is healthy with its watch connected. */
async function thaw(t: TestContext, hs: Host[], i: number, ttl: number): Promise<void> {
  process.kill(cluster.members[i]!.pid!, 'SIGCONT');
  const healthyMs = await allHealthy(hs, now(), deadlineMs(ttl));
  t.diagnostic(`all healthy ${healthyMs.toFixed(0)} ms after the thaw`);
}

/**
 * A follower frozen for `faultMs`; 3 s into it the host leading 'a' is SIGKILLed: no
 * step-down but the victim's, its names led again by survivors, every host healthy again after the thaw.
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
    await thaw(t, hs, sick, ttl);
    assertNoOverlap(hs, t0);
  } finally {
    await Promise.all(hs.map((h) => h.stop()));
  }
}

describe('a frozen etcd member (SIGSTOP), 3 members', () => {
  test('a frozen follower for 3 × ttl (ttl 4): no step-down; a crash failover during it; all healthy again after the thaw', async (t) => {
    await frozenFollower(t, 4, 12_000);
  });

  test('a frozen follower for 2 × ttl (ttl 10): no step-down; a crash failover during it; all healthy again after the thaw', async (t) => {
    await frozenFollower(t, 10, 20_000);
  });

  test('the raft leader frozen and quorum gone until every host lost its session (ttl 9): once quorum is back, every name is led again before etcd could expire a lost lease — no host waits out a call to the frozen member', async (t) => {
    // Every host starts on the raft leader, which stays frozen; a second member is frozen
    // too until every session is lost, so no member can renew or revoke anything. When the
    // second one resumes, its peer and it elect a raft leader and — as etcd does on a raft
    // leader change — renew every lease for a full ttl. A host that could not get off the
    // frozen member (its lease grant is never hedged) or gave up revoking its lost lease
    // leaves its keys first in line until then: its names wait a full ttl after quorum is
    // back. (A CI run of the test above met that: a name led again 7.1 s after the freeze.)
    // Every call is hedged to the next member after a third of its time, and a host that
    // lost its session retries its grant after at most 2 s and its old lease's revoke every
    // 200 ms: every name leads again on the revokes (about 4 s after quorum in the worst
    // alignment: 2 s backoff + 2 s hedge + round trips), not on an expiry a ttl later.
    const ttl = 9;
    const prefix = uniquePrefix('sickq');
    const t0 = now();
    const { sick, hs } = await hostsOnRaftLeader(cluster, firstOf, prefix, NAMES, ttl);
    const other = (sick + 1) % cluster.members.length;
    const third = (sick + 2) % cluster.members.length;
    try {
      const frozenAt = now();
      process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
      process.kill(cluster.members[other]!.pid!, 'SIGSTOP');
      try {
        await waitFor(() => hs.every((h) => h.events.some((e) => e.type === 'lost' && BigInt(e.t) > frozenAt)) || undefined, {
          timeoutMs: 30_000,
          message: 'every host lost its session while quorum was gone',
        });
        process.kill(cluster.members[other]!.pid!, 'SIGCONT');
        const resumedAt = now();
        // Quorum is back when one of the two running members reports itself raft leader (the
        // frozen one would hold a metrics request: it is not asked).
        const quorumAt = await waitFor(
          async () => {
            for (const i of [other, third]) {
              const text = await cluster.metrics(i).catch(() => '');
              if (/^etcd_server_is_leader 1$/m.test(text)) return now();
            }
            return undefined;
          },
          { timeoutMs: 30_000, intervalMs: 20, message: `m${other} or m${third} raft leader after m${other} resumed` },
        );
        await waitFor(() => NAMES.every((n) => leadersOf(hs, n).length === 1) || undefined, {
          timeoutMs: deadlineMs(ttl),
          intervalMs: 10,
          message: 'every name led again after quorum came back',
        });
        // When each name's current leadership started (its leader's last start event).
        const startedAt = NAMES.map((n) => {
          const h = leadersOf(hs, n)[0]!;
          return BigInt(h.events.filter((e) => e.type === 'start' && e.name === n).at(-1)!.t);
        });
        const ledAt = startedAt.reduce((a, b) => (a > b ? a : b));
        // The order against etcd's own event: a raft leader taking office renews every lease
        // for a full ttl, and none could take office before the second frozen member resumed (the only running
        // member had no quorum) — so no lost lease left in line could expire before
        // resumedAt + ttl. Every name led before that was led on a revoke, not on an expiry:
        // no host waited out a call to the frozen member.
        const noExpiryBefore = resumedAt + BigInt(ttl) * 1_000_000_000n;
        t.diagnostic(
          `quorum back ${(ms(quorumAt - frozenAt) / 1000).toFixed(1)} s after the freeze; every name led again ${ms(ledAt - quorumAt).toFixed(0)} ms later; ` +
            `no lease could expire before ${ms(noExpiryBefore - quorumAt).toFixed(0)} ms after quorum`,
        );
        for (const [i, n] of NAMES.entries()) {
          assert.ok(
            startedAt[i]! > resumedAt && startedAt[i]! < noExpiryBefore,
            `'${n}' led again ${ms(startedAt[i]! - quorumAt).toFixed(0)} ms after quorum came back: not before a lost lease could expire (a ttl after m${other} resumed)\n${eventsSince(hs, frozenAt, n)}`,
          );
        }
      } finally {
        process.kill(cluster.members[other]!.pid!, 'SIGCONT');
      }
      const thawedAt = now();
      process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
      await waitFor(async () => cluster.members[sick]!.healthy(), { timeoutMs: 10_000, message: `m${sick} healthy after the thaw` });
      // As in the test below: on an etcd with etcd#15247 the resumed raft leader may revoke
      // live leases; judge once every name has one leader and every host queues again.
      await settled(cluster, hs, NAMES).catch(() => undefined);
      const r = checkHistories(
        hs.map((h) => historyOf(h)),
        {
          endOfRun: now(),
          ...(etcdRevokesLiveLeases() ? { deletes: NAMES.map((name) => ({ name, at: thawedAt })) } : {}),
        },
      );
      assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
    } finally {
      process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
      process.kill(cluster.members[other]!.pid!, 'SIGCONT');
      await Promise.all(hs.map((h) => h.stop()));
    }
  });

  test('the raft leader frozen for 2 × ttl (ttl 4): at most one step-down per name, each followed (never overlapped) by the next leader; every name led again', async (t) => {
    const ttl = 4;
    const prefix = uniquePrefix('sickl');
    const t0 = now();
    // Every host starts on the raft leader: its calls and its watch hang there when it freezes.
    const { sick, hs } = await hostsOnRaftLeader(cluster, firstOf, prefix, NAMES, ttl);
    try {
      const frozenAt = now();
      process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
      // When the other two elect a raft leader (the frozen one is not asked: it would hold the request).
      const sampler = leaderSampler(cluster, () => new Set([sick]));
      await sleep(ttl * 2000);
      const gaps = await sampler.stop();
      t.diagnostic(
        `raft leaderless among the healthy members after the freeze: ${gaps.map((g) => `${g.toFixed(0)} ms`).join(', ') || 'never'}`,
      );
      const others = cluster.members.map((_, i) => i).filter((i) => i !== sick);
      const newLeader = await cluster.leaderIndex();
      t.diagnostic(`raft leader m${sick} frozen for ${ttl * 2} s; m${newLeader} leads the others`);
      assert.ok(others.includes(newLeader), 'the healthy members elected a raft leader');
      await assertLedAgain(t, hs, NAMES, frozenAt, ttl, 'freeze', sampler.leaderBackAt);
      const thawedAt = now();
      await thaw(t, hs, sick, ttl);
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
      if (deposed.length)
        t.diagnostic(`after the thaw: ${deposed.join('; ')}${etcdRevokesLiveLeases() ? ' (this etcd has etcd#15247)' : ''}`);
      const r = checkHistories(
        hs.map((h) => historyOf(h)),
        {
          endOfRun: now(),
          ...(etcdRevokesLiveLeases() ? { deletes: NAMES.map((name) => ({ name, at: thawedAt })) } : {}),
        },
      );
      assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
    } finally {
      process.kill(cluster.members[sick]!.pid!, 'SIGCONT'); // (again: harmless) a failed assertion must not leave it frozen
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});
