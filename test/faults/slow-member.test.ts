// A slow etcd member (issue "survive a sick etcd member"): hosts as processes, a real
// 3-member etcd, ttl 4; every host reaches one follower through test/helpers/proxy.ts,
// listed first among its endpoints (so it starts there), and the proxy adds 1 s of
// latency to each direction (2 s more per round trip) for 12 s. Keepalives and the
// watch must move to the fast members without a step-down; a crash failover during it
// must hand every name of the victim to a survivor; after the latency goes away every host
// is healthy again. How long each step took is reported (t.diagnostic), not judged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { checkHistories, describeReport, historyOf, ms, timeline } from '../helpers/history.js';
import { leadersOf } from '../helpers/host.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import {
  allHealthy,
  crashFailover,
  deadlineMs,
  healthSampler,
  hostsOn,
  now,
  raftLeader,
  settled,
  sleep,
  stopsSince,
  uniquePrefix,
} from '../helpers/sick.js';

const TTL = 4;
const LATENCY_MS = 1_000;
const FAULT_MS = 12_000;
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];

let cluster: EtcdCluster;
let proxy: Proxy | undefined;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await proxy?.close();
  await cluster?.close();
});

describe(`a slow etcd member (+${LATENCY_MS} ms each way), 3 members, ttl ${TTL}`, () => {
  test('a follower slowed for 12 s: no step-down; a crash failover during it; all healthy again after', async (t) => {
    const slow = ((await raftLeader(cluster)) + 1) % 3;
    proxy = await startProxy(cluster.endpoints[slow]!);
    const endpoints = [proxy.endpoint, ...cluster.endpoints.filter((_, i) => i !== slow)];
    const prefix = uniquePrefix('slow');
    const t0 = now();
    const hs = await hostsOn(endpoints, prefix, NAMES, TTL);
    try {
      await settled(cluster, hs, NAMES);
      const health = healthSampler(hs);
      const slowAt = now();
      proxy.delay(LATENCY_MS);
      t.diagnostic(`follower m${slow} slowed by ${LATENCY_MS} ms each way (proxy ${proxy.endpoint}, first endpoint of every host)`);
      try {
        await sleep(3_000);
        await crashFailover(t, hs, NAMES, TTL, 'crash failover while slowed');
        await sleep(Math.max(0, FAULT_MS - ms(now() - slowAt)));
      } finally {
        proxy.delay(0);
        await health.stop();
      }
      const fastAt = now();
      const stops = stopsSince(hs, slowAt);
      t.diagnostic(`step-downs during the ${FAULT_MS} ms of latency: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`);
      assert.deepEqual(stops, [], 'step-downs while a follower was slow');
      const fig = await health.stop();
      t.diagnostic(
        `while slowed, keepalives at most ${fig.maxKeepaliveAgoMs} ms old (interval ${Math.round((TTL * 1000) / 3)}), watch down at most ${fig.maxWatchDownMs.toFixed(0)} ms, health not ok in ${fig.notOk.length} sample(s)`,
      );
      assert.deepEqual(fig.notOk, [], 'health().ok false while a follower was slow');
      for (const n of NAMES) assert.equal(leadersOf(hs, n).length, 1, `one leader of '${n}' at the end`);
      const healthyMs = await allHealthy(hs, fastAt, deadlineMs(TTL));
      t.diagnostic(
        `every host healthy (watch connected) ${healthyMs.toFixed(0)} ms after the latency went away; proxy stats ${JSON.stringify(proxy.stats)}`,
      );
      const r = checkHistories(
        hs.map((h) => historyOf(h)),
        { endOfRun: now() },
      );
      assert.deepEqual(r.overlaps, [], `${describeReport(r)}\n${timeline(r, t0)}`);
    } finally {
      await Promise.all(hs.map((h) => h.stop()));
    }
  });
});
