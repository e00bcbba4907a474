// A sick etcd member among healthy ones (issue "survive a sick etcd member"): hosts as
// processes, a real 3-member etcd, ttl 4. A member frozen by SIGSTOP accepts connections
// and answers nothing: keepalives, campaigns and the watch must move to the healthy
// members without a single step-down, and a crash failover must work as on a healthy
// cluster.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdCluster } from './helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from './helpers/history.js';
import { leadersOf, spawnHost, type Host } from './helpers/host.js';
import { isStepDown, settled } from './helpers/sick.js';
import { waitFor } from './helpers/wait.js';

const TTL = 4;
let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

const now = (): bigint => process.hrtime.bigint();
const uniquePrefix = (): string => `sick${Math.random().toString(36).slice(2, 8)}/`;

async function hostsOn(prefix: string, names: string[], n = 3): Promise<Host[]> {
  const hs: Host[] = [];
  for (let i = 0; i < n; i++) {
    const h = await spawnHost({ endpoints: cluster.endpoints, id: `h${i}`, ttl: TTL, prefix, names, fn: { kind: 'work' } });
    hs.push(h);
    await h.waitEvent((e) => e.type === 'session', 20_000, 'session');
  }
  return hs;
}

/** A follower member's index (not the raft leader). */
async function follower(): Promise<number> {
  const leader = await waitFor(async () => {
    const i = await cluster.leaderIndex();
    return i >= 0 ? { i } : undefined; // (index 0 is falsy)
  }, { timeoutMs: 20_000, message: 'a raft leader' });
  return (leader.i + 1) % cluster.members.length;
}

describe('a frozen etcd member (SIGSTOP)', () => {
  test('a frozen follower for 3 × ttl: no step-down; a crash failover during it within ttl + 1 s; all healthy again after', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const t0 = now();
    const hs = await hostsOn(prefix, names);
    try {
      await settled(cluster, hs, names);
      const sick = cluster.members[await follower()]!;
      const frozenAt = now();
      process.kill(sick.pid!, 'SIGSTOP');
      let killedAt: bigint | undefined;
      try {
        // 3 s into the fault, SIGKILL the host that leads 'a'.
        await new Promise((r) => setTimeout(r, 3_000));
        const victim = leadersOf(hs, 'a')[0]!;
        const led = names.filter((n) => victim.leads(n));
        victim.kill('SIGKILL');
        killedAt = now();
        const survivors = hs.filter((h) => h !== victim);
        const took = await waitFor(
          () => (led.every((n) => leadersOf(survivors, n).length === 1) ? now() : undefined),
          { timeoutMs: 30_000, intervalMs: 10, message: `a standby leads ${led.join(',')}` },
        );
        const failoverMs = ms(took - killedAt);
        t.diagnostic(`crash failover during the freeze: ${led.length} names led again ${failoverMs.toFixed(0)} ms after SIGKILL (ttl ${TTL} s)`);
        assert.ok(failoverMs <= TTL * 1000 + 1000, `failover took ${failoverMs} ms, more than ttl + 1 s`);
        // The fault lasts 3 × ttl in all.
        const left = TTL * 3000 - ms(now() - frozenAt);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      } finally {
        process.kill(sick.pid!, 'SIGCONT');
      }
      const thawedAt = now();
      const alive = hs.filter((h) => h.alive);
      // No host stepped down for any reason but the kill.
      const stops = alive.flatMap((h) => h.events.filter((e) => isStepDown(e) && BigInt(e.t) > frozenAt).map((e) => `${h.id} ${e.name} ${e.reason}`));
      assert.deepEqual(stops, [], 'step-downs during the freeze');
      // Back to healthy by itself within 3 s of the thaw.
      await waitFor(
        async () => {
          for (const h of alive) {
            const health = await h.request<{ ok: boolean; watchConnected: boolean }>({ op: 'health' });
            if (!health.ok || !health.watchConnected) return undefined;
          }
          return true;
        },
        { timeoutMs: 3_000, intervalMs: 50, message: 'every host healthy with its watch connected' },
      );
      t.diagnostic(`all healthy ${ms(now() - thawedAt).toFixed(0)} ms after the thaw`);
      const r = checkHistories(hs.map((h) => historyOf(h)), { endOfRun: now() });
      assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
    } finally {
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});
