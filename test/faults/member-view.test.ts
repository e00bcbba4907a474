// The per-member view through a real partition (issue #22, item 5): a follower cut off from
// its peers with iptables (test/helpers/partition.ts; needs root) while this host still
// reaches it. health({ members: true }) must show it without a raft leader and not serving,
// the quorum with no failure to spare — and, after the heal, the rejoin window until it
// serves linearizable reads again (its length is reported, not bounded tightly: it varies).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import locked, { type MembersHealth } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { memberUsers, partitionable, type Partitioner } from '../helpers/partition.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
let net: Partitioner;
before(async () => {
  const users = memberUsers(3);
  cluster = await startEtcd({ members: 3, users, extraArgs: ['--pre-vote'] });
  net = await partitionable(cluster, users);
});
after(async () => {
  await net?.close();
  await cluster?.close();
});

const roles = (h: MembersHealth): string =>
  h.members
    .map(
      (m) =>
        `${m.endpoint.replace(/^https?:\/\//, '')}=${m.status.role}${m.status.linearizable ? '' : '(no read)'}${m.status.staleTerm ? '(old term)' : ''}`,
    )
    .join(' ');

describe('per-member view under a partition', () => {
  test('a cut-off follower shows no leader and no linearizable read; after the heal the view shows its rejoin until it serves again', async (t) => {
    const prefix = `mv${Math.random().toString(36).slice(2, 8)}/`;
    const l = locked(cluster.endpoints, { ttl: 5, prefix, id: 'h', handleSignals: false });
    l.on('error', () => {});
    l('job', (_remove, leadership) => new Promise<void>((resolve) => leadership.signal.addEventListener('abort', () => resolve())));
    try {
      await l.ready();
      await waitFor(async () => (await l.health({ members: true })).quorum.healthy === 3, {
        timeoutMs: 20_000,
        intervalMs: 200,
        message: 'every member serves before the cut',
      });
      const leader = await cluster.leaderIndex();
      const victim = leader === 0 ? 1 : 0;
      const victimEndpoint = cluster.endpoints[victim]!;
      net.cut(victim);
      const during = await waitFor(
        async () => {
          const h = await l.health({ members: true });
          const v = h.members.find((m) => m.endpoint.endsWith(victimEndpoint))!;
          return v.status.role === 'no leader' && h.quorum.healthy === 2 ? h : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, message: `the cut member ${victimEndpoint} shows no leader while the other two serve` },
      );
      t.diagnostic(`during the cut: ${roles(during)}`);
      const v = during.members.find((m) => m.endpoint.endsWith(victimEndpoint))!;
      assert.equal(v.status.linearizable, false, roles(during));
      assert.match(v.status.error ?? '', /no leader/);
      assert.equal(during.quorum.tolerates, 0);
      assert.ok(during.quorum.leader !== undefined && !during.quorum.leader.endsWith(victimEndpoint), roles(during));

      const healedAt = Date.now();
      net.heal(victim);
      const seen: string[] = [];
      await waitFor(
        async () => {
          const h = await l.health({ members: true });
          const line = roles(h);
          if (seen.at(-1)?.endsWith(line) !== true) seen.push(`+${Date.now() - healedAt} ms: ${line}`);
          return h.quorum.healthy === 3;
        },
        { timeoutMs: 60_000, intervalMs: 200, message: `the healed member ${victimEndpoint} serves linearizable reads again` },
      );
      t.diagnostic(`rejoin window ${Date.now() - healedAt} ms after the heal; polls: ${seen.join(' | ')}`);
      // The host leads (the only candidate): the view's polls did not get in the way of its lease.
      await waitFor(() => l.health().leading.includes('job'), { timeoutMs: 20_000, message: 'the host leads job after the heal' });
    } finally {
      await l.close();
    }
  });
});
