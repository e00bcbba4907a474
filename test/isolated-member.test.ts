// An etcd member cut off from its peers while clients still reach it (issue "survive a
// sick etcd member"): hosts as processes, a real 3-member etcd, ttl 4. Each member runs
// as its own unix user and test/helpers/partition.ts drops its peer traffic with iptables
// (both directions); its client port stays open, so hosts keep talking to a member that
// has no raft leader (or, cut as the leader, that no longer has a quorum).
//
// Needs root and iptables: without them the suite FAILS saying why (no skip).
//
// The cluster runs with etcd's --pre-vote (off by default in etcd 3.4): without it, a cut
// member campaigns with ever higher terms and, once healed, deposes the healthy leader —
// the whole cluster is leaderless for a while. LOCKED_TEST_PRE_VOTE=0 runs without it to
// show the difference (then a step-down after the heal is reported, not failed).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdCluster } from './helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from './helpers/history.js';
import { leadersOf, type Host } from './helpers/host.js';
import { memberUsers, partitionable, type Partitioner } from './helpers/partition.js';
import { allHealthy, hostsOn, leaderSampler, now, raftLeader, settled, sleep, stopsSince, uniquePrefix } from './helpers/sick.js';
import { waitFor } from './helpers/wait.js';

const TTL = 4;
const FAULT_MS = 12_000;
const AFTER_HEAL_MS = 5_000;
const PRE_VOTE = process.env['LOCKED_TEST_PRE_VOTE'] !== '0';
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];

let cluster: EtcdCluster;
let net: Partitioner;
before(async () => {
  const users = memberUsers(3);
  cluster = await startEtcd({ members: 3, users, extraArgs: PRE_VOTE ? ['--pre-vote'] : [] });
  net = await partitionable(cluster, users);
});
after(async () => {
  await net?.close();
  await cluster?.close();
});

/** Proof that the cut works: the member loses its raft leader (its /health turns false). */
async function cutOff(i: number): Promise<number> {
  const at = now();
  net.cut(i);
  await waitFor(async () => !(await cluster.members[i]!.healthy()), {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: `member m${i} unhealthy after being cut off from its peers (is the iptables cut working?)`,
  });
  return ms(now() - at);
}

/** Heals member i; every host healthy within 3 s; no step-down (with pre-vote) for AFTER_HEAL_MS. */
async function healAndCheck(t: TestContext, hs: Host[], i: number, label: string): Promise<string[]> {
  const sampler = leaderSampler(cluster, () => net.cutOff);
  const healedAt = now();
  net.heal(i);
  const healthyMs = await allHealthy(hs, healedAt, 3_000);
  t.diagnostic(`${label}: every host healthy (watch connected) ${healthyMs.toFixed(0)} ms after the heal`);
  await sleep(Math.max(0, AFTER_HEAL_MS - ms(now() - healedAt)));
  const gaps = await sampler.stop();
  const stops = stopsSince(hs, healedAt);
  t.diagnostic(
    `${label}: after the heal (${AFTER_HEAL_MS} ms, pre-vote ${PRE_VOTE ? 'on' : 'off'}): raft leaderless ${gaps.length ? gaps.map((g) => `${g.toFixed(0)} ms`).join(', ') : 'never'}; step-downs: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`,
  );
  await waitFor(async () => cluster.members[i]!.healthy(), { timeoutMs: 10_000, message: `m${i} healthy after the heal` });
  if (PRE_VOTE) assert.deepEqual(stops, [], `${label}: step-downs after the heal`);
  return stops;
}

function assertNoOverlap(hs: Host[], t0: bigint): void {
  const r = checkHistories(hs.map((h) => historyOf(h)), { endOfRun: now() });
  assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
}

describe(`an etcd member cut off from its peers (iptables), 3 members, ttl ${TTL}, pre-vote ${PRE_VOTE ? 'on' : 'off'}`, () => {
  test('a follower cut off for 12 s: no step-down; a crash failover during it within ttl + 1 s; all healthy within 3 s of the heal', async (t) => {
    const prefix = uniquePrefix('cut');
    const t0 = now();
    const hs = await hostsOn(cluster.endpoints, prefix, NAMES, TTL);
    try {
      await settled(cluster, hs, NAMES);
      const sick = ((await raftLeader(cluster)) + 1) % 3;
      const cutAt = now();
      const noticed = await cutOff(sick);
      t.diagnostic(`follower m${sick} cut off; its /health false after ${noticed.toFixed(0)} ms`);
      let killedAt: bigint;
      try {
        // 3 s into the fault (keepalives and watches have had to move), SIGKILL the host leading 'a'.
        await sleep(Math.max(0, 3_000 - ms(now() - cutAt)));
        const victim = leadersOf(hs, 'a')[0]!;
        const led = NAMES.filter((n) => victim.leads(n));
        victim.kill('SIGKILL');
        killedAt = now();
        const survivors = hs.filter((h) => h !== victim);
        const took = await waitFor(() => (led.every((n) => leadersOf(survivors, n).length === 1) ? now() : undefined), {
          timeoutMs: 30_000,
          intervalMs: 10,
          message: `a standby leads ${led.join(',')}`,
        });
        const failoverMs = ms(took - killedAt);
        t.diagnostic(`crash failover during the cut: ${led.length} name(s) led again ${failoverMs.toFixed(0)} ms after SIGKILL (limit ${TTL * 1000 + 1000})`);
        assert.ok(failoverMs <= TTL * 1000 + 1000, `failover took ${failoverMs} ms, more than ttl + 1 s`);
        await sleep(Math.max(0, FAULT_MS - ms(now() - cutAt)));
      } catch (e) {
        net.heal(sick);
        throw e;
      }
      const stops = stopsSince(hs, cutAt);
      t.diagnostic(`step-downs during the ${FAULT_MS} ms cut: ${stops.length}`);
      assert.deepEqual(stops, [], 'step-downs while a follower was cut off');
      for (const n of NAMES) assert.equal(leadersOf(hs, n).length, 1, `one leader of '${n}' at the end of the cut`);
      await healAndCheck(t, hs, sick, 'follower cut');
      assertNoOverlap(hs, t0);
    } finally {
      await Promise.all(hs.map((h) => h.stop()));
    }
  });

  test('the raft leader cut off: at most one step-down per name, every name led again within ttl + 1.5 s of the cut', async (t) => {
    const prefix = uniquePrefix('cutl');
    const t0 = now();
    const hs = await hostsOn(cluster.endpoints, prefix, NAMES, TTL);
    try {
      await settled(cluster, hs, NAMES);
      const sick = await raftLeader(cluster);
      const sampler = leaderSampler(cluster, () => net.cutOff);
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
      t.diagnostic(`raft leaderless among the healthy members after the cut: ${gaps.map((g) => `${g.toFixed(0)} ms`).join(', ') || 'never (sampled every 50 ms)'}`);
      const stops = stopsSince(hs, cutAt);
      t.diagnostic(`step-downs during the ${TTL * 2} s cut: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`);
      const limit = TTL * 1000 + 1500;
      for (const n of NAMES) {
        const mine = hs.flatMap((h) => h.events.filter((e) => e.type === 'stop' && e.name === n && BigInt(e.t) > cutAt));
        assert.ok(mine.length <= 1, `'${n}' stepped down ${mine.length} times: ${stops.join('; ')}`);
        if (mine.length === 0) continue;
        const next = hs
          .flatMap((h) => h.events.filter((e) => e.type === 'start' && e.name === n && BigInt(e.t) > BigInt(mine[0]!.t)))
          .map((e) => BigInt(e.t))
          .sort((a, b) => (a < b ? -1 : 1))[0];
        assert.ok(next !== undefined, `'${n}' not led again after its step-down`);
        const again = ms(next - cutAt);
        t.diagnostic(`'${n}' led again ${again.toFixed(0)} ms after the cut (limit ${limit})`);
        assert.ok(again <= limit, `'${n}' led again ${again} ms after the cut, more than ttl + 1.5 s`);
      }
      for (const n of NAMES) assert.equal(leadersOf(hs, n).length, 1, `one leader of '${n}' at the end of the cut`);
      await healAndCheck(t, hs, sick, 'raft-leader cut');
      assertNoOverlap(hs, t0);
    } finally {
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});
