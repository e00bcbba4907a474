// An etcd member cut off from its peers while clients still reach it (issue "survive a
// sick etcd member"): hosts as processes, ttl 4, a real 3-member etcd (and a 5-member one
// with two members cut at once). Each member runs as its own unix user and
// test/helpers/partition.ts drops its peer traffic with iptables (both directions); its
// client port stays open, so hosts keep talking to a member that has no raft leader (or,
// cut as the leader, no longer a quorum). The members to be cut come first in every
// host's endpoints, so the hosts start on them.
//
// Needs root and iptables: without them the suite FAILS saying why (no skip).
//
// The clusters run with etcd's --pre-vote (off by default in etcd 3.4): without it, a cut
// member campaigns with ever higher terms and, once healed, deposes the healthy leader —
// the whole cluster is leaderless for seconds. LOCKED_TEST_PRE_VOTE=0 runs without it to
// show the difference (then step-downs after the heal are reported, not failed).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { etcdctl, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from '../helpers/history.js';
import { describeEvent, leadersOf, type Host } from '../helpers/host.js';
import { memberUsers, partitionable, type Partitioner } from '../helpers/partition.js';
import {
  allHealthy,
  assertLedAgain,
  crashFailover,
  deadlineMs,
  healthSampler,
  hostsOn,
  hostsOnRaftLeader,
  leaderSampler,
  now,
  raftLeader,
  renewedSince,
  settled,
  sleep,
  stopsSince,
  uniquePrefix,
} from '../helpers/sick.js';
import { waitFor } from '../helpers/wait.js';

const TTL = 4;
const FAULT_MS = 12_000;
const PRE_VOTE = process.env['LOCKED_TEST_PRE_VOTE'] !== '0';
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];

let cluster: EtcdCluster;
let net: Partitioner;

/** A cluster of `n` members, each its own unix user, and the partitioner for it (per describe). */
function clusterOf(n: 3 | 5): void {
  before(async () => {
    const users = memberUsers(n);
    cluster = await startEtcd({ members: n, users, extraArgs: PRE_VOTE ? ['--pre-vote'] : [] });
    net = await partitionable(cluster, users);
  });
  after(async () => {
    await net?.close();
    await cluster?.close();
  });
}

/** The cluster's endpoints with members `is` first (hosts start on the first one). */
function firstOf(is: number[]): string[] {
  return [...is.map((i) => cluster.endpoints[i]!), ...cluster.endpoints.filter((_, i) => !is.includes(i))];
}

/** Cuts members `is` off; proof that the cut works: each loses its raft leader (its /health turns false). */
async function cutOff(...is: number[]): Promise<number> {
  const at = now();
  for (const i of is) net.cut(i);
  for (const i of is) {
    await waitFor(async () => !(await cluster.members[i]!.healthy()), {
      timeoutMs: 10_000,
      intervalMs: 50,
      message: `member m${i} unhealthy after being cut off from its peers (is the iptables cut working?)`,
    });
  }
  return ms(now() - at);
}

/**
 * Heals members `is`; every host healthy again (waited for); no step-down (with pre-vote) until
 * the heal is over — every member healthy, then every host renewed on a keepalive sent after
 * that (a state: from then on the heal can cost no session), not for a fixed time.
 */
async function healAndCheck(t: TestContext, hs: Host[], is: number[], label: string): Promise<string[]> {
  const sampler = leaderSampler(cluster, () => net.cutOff);
  const healedAt = now();
  for (const i of is) net.heal(i);
  const healthyMs = await allHealthy(hs, healedAt, deadlineMs(TTL));
  t.diagnostic(`${label}: every host healthy (watch connected) ${healthyMs.toFixed(0)} ms after the heal`);
  for (const i of is)
    await waitFor(async () => cluster.members[i]!.healthy(), { timeoutMs: deadlineMs(TTL), message: `m${i} healthy after the heal` });
  const membersBack = now();
  const renewedMs = await renewedSince(hs, membersBack, deadlineMs(TTL));
  const gaps = await sampler.stop();
  const stops = stopsSince(hs, healedAt);
  t.diagnostic(
    `${label}: after the heal (members healthy ${ms(membersBack - healedAt).toFixed(0)} ms after it, every host renewed ${renewedMs.toFixed(0)} ms after that; pre-vote ${PRE_VOTE ? 'on' : 'off'}): raft leaderless ${gaps.length ? gaps.map((g) => `${g.toFixed(0)} ms`).join(', ') : 'never'}; step-downs: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`,
  );
  // A host must step down when no keepalive is acknowledged within renewDeadline (⅔ ttl)
  // of the last acknowledged one's send, which can be up to ttl/3 before a leaderless spell
  // begins: a spell of etcd's own longer than ⅓ ttl may rightly cost step-downs (it does
  // without --pre-vote, and can under CPU starvation). Shorter ones must cost none.
  const longest = Math.max(0, ...gaps);
  const allowedMs = (TTL * 1000) / 3;
  if (PRE_VOTE && longest < allowedMs)
    assert.deepEqual(stops, [], `${label}: step-downs after the heal although etcd was never leaderless for ${allowedMs.toFixed(0)} ms`);
  else if (stops.length)
    t.diagnostic(
      `${label}: etcd itself had no raft leader for ${longest.toFixed(0)} ms after the heal (≥ ttl/3): the step-downs are the rule at work`,
    );
  return stops;
}

/**
 * Followers `sick` cut off for FAULT_MS; 3 s into it the host leading 'a' is SIGKILLed.
 * No step-down but the victim's, every name led again after the crash, every watch off the cut
 * members while they are still cut, every host healthy again after the heal.
 */
async function followersCut(t: TestContext, count: number, label: string): Promise<void> {
  const prefix = uniquePrefix('cut');
  const t0 = now();
  const leader = await raftLeader(cluster);
  const n = cluster.members.length;
  const sick = Array.from({ length: count }, (_, k) => (leader + 1 + k) % n);
  // The members to be cut come first in every host's endpoints: hosts start on them (the worst case).
  const hs = await hostsOn(firstOf(sick), prefix, NAMES, TTL);
  try {
    await settled(cluster, hs, NAMES);
    const health = healthSampler(hs);
    const cutAt = now();
    const noticed = await cutOff(...sick);
    t.diagnostic(`${label}: follower(s) ${sick.map((i) => `m${i}`).join(', ')} cut off; /health false after ${noticed.toFixed(0)} ms`);
    try {
      // 3 s into the fault (keepalives and watches have had to move), SIGKILL the host leading 'a'.
      await sleep(Math.max(0, 3_000 - ms(now() - cutAt)));
      await crashFailover(t, hs, NAMES, TTL, `${label}: crash failover during the cut`);
      await sleep(Math.max(0, FAULT_MS - ms(now() - cutAt)));
    } catch (e) {
      for (const i of sick) net.heal(i);
      throw e;
    } finally {
      await health.stop();
    }
    const stops = stopsSince(hs, cutAt);
    const fig = await health.stop();
    t.diagnostic(
      `${label}: during the cut, keepalives at most ${fig.maxKeepaliveAgoMs} ms old (interval ${Math.round((TTL * 1000) / 3)}), watch down at most ${fig.maxWatchDownMs.toFixed(0)} ms, health not ok in ${fig.notOk.length} sample(s)`,
    );
    assert.deepEqual(fig.notOk, [], 'health().ok false during the cut');
    // The state the watch must reach while the cut lasts (how long it was down is the figure
    // above): connected, on a member that is not cut off.
    const cutEndpoints = sick.map((i) => cluster.endpoints[i]!);
    const watchesAt = now();
    await waitFor(
      async () => {
        for (const h of hs.filter((x) => x.alive)) {
          const health = await h.request<{ watchConnected: boolean; watchEndpoint?: string }>({ op: 'health' });
          if (!health.watchConnected || health.watchEndpoint === undefined) return undefined;
          if (cutEndpoints.some((ep) => health.watchEndpoint!.endsWith(ep))) return undefined;
        }
        return true;
      },
      { timeoutMs: deadlineMs(TTL), intervalMs: 50, message: 'every watch connected to a member that is not cut off, during the cut' },
    );
    assert.ok(net.cutOff.size > 0 && sick.every((i) => net.cutOff.has(i)), 'the members were healed before the watches were judged');
    const offCut = hs.flatMap((h) => {
      const e = h.events.find((x) => x.type === 'watch' && BigInt(x.t) > cutAt && cutEndpoints.some((ep) => x.from?.endsWith(ep)));
      return e ? [`${h.id} +${ms(BigInt(e.t) - cutAt).toFixed(0)} ms (${e.reason})`] : [];
    });
    t.diagnostic(
      `${label}: watches moved off the cut member(s) after the cut: ${offCut.join(', ') || 'none (none was on one)'}; all off it when checked ${ms(watchesAt - cutAt).toFixed(0)} ms into the cut`,
    );
    t.diagnostic(`${label}: step-downs during the ${FAULT_MS} ms cut: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`);
    assert.deepEqual(stops, [], 'step-downs while followers were cut off');
    for (const nm of NAMES) assert.equal(leadersOf(hs, nm).length, 1, `one leader of '${nm}' at the end of the cut`);
    await healAndCheck(t, hs, sick, label);
    assertNoOverlap(hs, t0);
  } finally {
    await Promise.all(hs.map((h) => h.stop()));
  }
}

/**
 * Hosts started on a follower (it comes first in their endpoints), settled, with the leader
 * of 'b' (the victim) watching a follower — the member the test cuts. Hosts start on the
 * follower, but a call it answers slower than the hedge delay (a loaded machine) makes
 * another member preferred and the watch follows: the victim's watch is where it is, not
 * where it started. If it sits on the raft leader, or raft leadership moved meanwhile, the
 * hosts start again (up to 3 times) rather than test something else than the title says.
 */
async function hostsWatchingFollower(t: TestContext, prefix: string): Promise<{ sick: number; hs: Host[]; victim: Host }> {
  for (let attempt = 1; ; attempt++) {
    const leader = await raftLeader(cluster);
    const hs = await hostsOn(firstOf([(leader + 1) % cluster.members.length]), prefix, NAMES, TTL);
    let why: string;
    try {
      await settled(cluster, hs, NAMES); // (and spread: no hand-over of 'b' under way)
      const victim = leadersOf(hs, 'b')[0]!;
      const on = await Promise.all(hs.map((h) => h.request<{ watchEndpoint?: string }>({ op: 'health' })));
      const watched = cluster.endpoints.findIndex((ep) => on[hs.indexOf(victim)]!.watchEndpoint?.endsWith(ep));
      const nowLeader = await cluster.leaderIndex();
      t.diagnostic(
        `attempt ${attempt}: raft leader m${nowLeader}; watches: ${hs.map((h, i) => `${h.id} ${on[i]!.watchEndpoint}`).join(', ')}; victim ${victim.id}`,
      );
      if (watched >= 0 && nowLeader >= 0 && watched !== nowLeader) return { sick: watched, hs, victim };
      why = `the victim ${victim.id} watches ${watched < 0 ? 'no member' : `m${watched}`}, the raft leader is m${nowLeader}`;
    } catch (e) {
      await Promise.all(hs.map((h) => h.stop()));
      throw e;
    }
    await Promise.all(hs.map((h) => h.stop()));
    if (attempt >= 3) throw new Error(`no host leading 'b' watched a follower after 3 starts (${why})`);
  }
}

function assertNoOverlap(hs: Host[], t0: bigint): void {
  const r = checkHistories(
    hs.map((h) => historyOf(h)),
    { endOfRun: now() },
  );
  assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
}

describe(`an etcd member cut off from its peers (iptables), 3 members, ttl ${TTL}, pre-vote ${PRE_VOTE ? 'on' : 'off'}`, () => {
  clusterOf(3);

  test('a follower cut off for 12 s: no step-down; every watch leaves it; a crash failover during it; all healthy again after the heal', async (t) => {
    await followersCut(t, 1, 'follower cut');
  });

  test('a forced failover right after the cut of the follower the leader watches: the watch moves off it and the deposed leader hears of the delete through it', async (t) => {
    // The leader's watch sits on the follower that is cut: the delete reaches it only once
    // the watch has noticed its member fell behind and moved (issue point 3:
    // a silent watch is noticed within ttl/3 and resumes gap-free elsewhere).
    const prefix = uniquePrefix('silent');
    const t0 = now();
    const { sick, hs, victim } = await hostsWatchingFollower(t, prefix);
    const healthy = cluster.endpoints.filter((_, i) => i !== sick);
    const deletes: { name: string; at: bigint; until: bigint }[] = [];
    try {
      const start = victim.events.filter((e) => e.type === 'start' && e.name === 'b').at(-1)!;
      const since = BigInt(start.t);
      const cutAt = now();
      net.cut(sick);
      await sleep(100); // the cut is in place; the hosts have not noticed anything yet
      const at = now();
      const r = await etcdctl(healthy, ['del', start.key!]);
      const until = now();
      assert.equal(r.code, 0, `etcdctl del ${start.key}: ${r.stderr}`);
      assert.match(r.stdout, /^1$/m, 'the leader key existed and was deleted');
      deletes.push({ name: 'b', at, until });
      const stop = await victim.waitEvent((e) => e.type === 'stop' && e.name === 'b' && BigInt(e.t) > since, deadlineMs(TTL), "'b' stops");
      const stopMs = ms(BigInt(stop.t) - at);
      // What every host said from the cut on (watch moves, stops, errors): the clue when this fails.
      for (const h of hs) {
        for (const e of h.events.filter((x) => BigInt(x.t) >= at - 200_000_000n && x.type !== 'write')) {
          t.diagnostic(`${(ms(BigInt(e.t) - at) / 1000).toFixed(3)} s ${h.id} ${describeEvent(e)}`);
        }
      }
      // Someone leads 'b' again — usually a standby, but the victim itself when the standbys
      // stood aside for balance (each already led its share: the first in line steps back
      // rather than take a name over its share, and the re-queued victim, now leading less,
      // is first). Both are one leader and no overlap; the checker below judges that.
      const next = await waitFor(
        () => {
          const ls = leadersOf(hs, 'b');
          return ls.length === 1 && ls[0]!.events.some((e) => e.type === 'start' && e.name === 'b' && BigInt(e.t) > at) ? ls[0] : undefined;
        },
        { timeoutMs: deadlineMs(TTL), message: "one host leads 'b' again" },
      ).catch(async (e: unknown) => {
        // Who leads, who queues, and what every host said since the delete: the clue.
        const q = await etcdctl(healthy, ['get', `${prefix}b/`, '--prefix']);
        const said = hs.flatMap((h) =>
          h.events
            .filter((x) => BigInt(x.t) >= at && x.type !== 'write')
            .map((x) => `${(ms(BigInt(x.t) - at) / 1000).toFixed(3)} s ${h.id} ${describeEvent(x)}`),
        );
        throw new Error(
          `${String(e)}; leaders of 'b': ${
            leadersOf(hs, 'b')
              .map((h) => h.id)
              .join(', ') || 'none'
          }; queue of 'b' in etcd: ${q.stdout.trim().split('\n').join(' ')}\n${said.join('\n')}`,
        );
      });
      const nextStart = next.events.filter((e) => e.type === 'start' && e.name === 'b').at(-1)!;
      t.diagnostic(
        `forced failover during the cut of m${sick}: deposed leader stopped (${stop.reason}) ${stopMs.toFixed(0)} ms after the delete was issued (ttl/3 ${Math.round((TTL * 1000) / 3)}); ${next.id}${next === victim ? ' (the victim again: the standbys stood aside for balance)' : ''} started ${ms(BigInt(nextStart.t) - at).toFixed(0)} ms after it`,
      );
      assert.equal(stop.reason, 'deposed', 'the old leader learned of the delete (not a lost lease)');
      // The watch left the cut member, and said why on 'locked:watch' (behind: it answered
      // with an old revision; silent: it did not answer; preferred: keepalives left it first).
      const moved = victim.events.find((e) => e.type === 'watch' && e.from?.endsWith(cluster.endpoints[sick]!) && BigInt(e.t) > cutAt);
      assert.ok(moved, `${victim.id} reported no watch move off m${sick}`);
      t.diagnostic(`${victim.id}'s watch moved off m${sick} ${ms(BigInt(moved.t) - at).toFixed(0)} ms after the delete: ${moved.reason}`);
      // The order that shows the watch resumed without a gap: the cut member never had the
      // delete, so the victim can only have heard of it ('deposed') on the member its watch
      // moved to — after the move.
      assert.ok(BigInt(moved.t) < BigInt(stop.t), `${victim.id} stopped before its watch left m${sick}`);
      const stops = stopsSince(hs, at).filter((l) => !l.startsWith(`${victim.id} b `));
      assert.deepEqual(stops, [], 'no other step-down during the cut');
      // The overlap is judged until fn settles: wait for that, or the leadership counts as open.
      await victim.waitEvent(
        (e) => e.type === 'fn-end' && e.name === 'b' && BigInt(e.t) >= BigInt(stop.t),
        deadlineMs(TTL),
        "the deposed leader's fn for 'b' settles",
      );
      // No overlap but the one a forced failover makes by design: the next leader starts on
      // the delete while the victim, whose watch sat on the cut member, has not heard of it
      // yet (its lease is alive: only the delete can stop it, and the fence — its key is gone —
      // makes its late work harmless). The checker tolerates that one only for 'b', for a
      // leadership that ended with its stop ('deposed', asserted above) after the delete,
      // with the other started after the delete; how long it lasted is a figure, so its
      // grace is as long as the test waited for the stop.
      const r2 = checkHistories(
        hs.map((h) => historyOf(h)),
        { endOfRun: now(), deletes, graceMs: deadlineMs(TTL) },
      );
      assert.deepEqual(r2.overlaps, [], `${describeReport(r2)}\n${timeline(r2, t0)}`);
      assert.ok(
        r2.deposeOverlaps.every((o) => o.name === 'b' && (o.a.label === victim.id || o.b.label === victim.id)),
        `a tolerated overlap that is not the victim's of 'b': ${JSON.stringify(r2.deposeOverlaps.map((o) => ({ ...o, from: String(o.from), to: String(o.to) })))}`,
      );
      t.diagnostic(
        `overlap of 'b' after the delete (the victim had not heard of it yet): ${r2.deposeOverlaps.map((o) => `${o.ms.toFixed(0)} ms`).join(', ') || 'none'}`,
      );
    } finally {
      net.heal(sick);
      await Promise.all(hs.map((h) => h.stop()));
    }
    await waitFor(async () => cluster.members[sick]!.healthy(), { timeoutMs: 10_000, message: `m${sick} healthy after the heal` });
  });

  test('the raft leader cut off: at most one step-down per name, each followed (never overlapped) by the next leader; every name led again', async (t) => {
    const prefix = uniquePrefix('cutl');
    const t0 = now();
    // The raft leader comes first in every host's endpoints: hosts start on it.
    const { sick, hs } = await hostsOnRaftLeader(cluster, (l) => firstOf([l]), prefix, NAMES, TTL);
    try {
      const sampler = leaderSampler(cluster, () => net.cutOff);
      const health = healthSampler(hs);
      const cutAt = now();
      try {
        const noticed = await cutOff(sick);
        t.diagnostic(`raft leader m${sick} cut off; its /health false after ${noticed.toFixed(0)} ms`);
        const faultMs = TTL * 2000;
        await sleep(Math.max(0, faultMs - ms(now() - cutAt)));
      } catch (e) {
        net.heal(sick);
        throw e;
      }
      const gaps = await sampler.stop();
      const fig = await health.stop();
      t.diagnostic(
        `raft-leader cut: keepalives at most ${fig.maxKeepaliveAgoMs} ms old, watch down at most ${fig.maxWatchDownMs.toFixed(0)} ms, health not ok in ${fig.notOk.length} sample(s)`,
      );
      t.diagnostic(
        `raft leaderless among the healthy members after the cut: ${gaps.map((g) => `${g.toFixed(0)} ms`).join(', ') || 'never (sampled every 50 ms)'}`,
      );
      await assertLedAgain(t, hs, NAMES, cutAt, TTL, 'cut', sampler.leaderBackAt);
      await healAndCheck(t, hs, [sick], 'raft-leader cut');
      assertNoOverlap(hs, t0);
    } finally {
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});

describe(`two of five etcd members cut off from their peers at once, ttl ${TTL}, pre-vote ${PRE_VOTE ? 'on' : 'off'}`, () => {
  clusterOf(5);

  test('two followers cut off for 12 s: no step-down; every watch leaves them; a crash failover during it; all healthy again after the heal', async (t) => {
    await followersCut(t, 2, '5 members, 2 followers cut');
  });
});
