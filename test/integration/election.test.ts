// Election among hosts that are separate processes, against a real 3-node etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { leadersOf, spawnHost, type Host, type HostConfig } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

const uniquePrefix = (): string => `t${Math.random().toString(36).slice(2, 8)}/`;

async function hosts(n: number, name: string, extra: Partial<HostConfig> = {}): Promise<Host[]> {
  const prefix = extra.prefix ?? uniquePrefix();
  const hs: Host[] = [];
  // Started one after the other, so queue order is h0, h1, h2.
  for (let i = 0; i < n; i++) {
    hs.push(await spawnHost({ endpoints: cluster.endpoints, id: `h${i}`, ttl: 2, prefix, names: [name], ...extra }));
    await hs[i]!.waitEvent((e) => e.type === 'session', 20_000, 'session');
  }
  return hs;
}

/** Waits until exactly one host leads, failing at once if two ever do. */
async function oneLeader(hs: Host[], name: string, timeoutMs = 20_000): Promise<Host> {
  return waitFor(
    () => {
      const ls = leadersOf(hs, name);
      assert.ok(ls.length <= 1, `two leaders of ${name}: ${ls.map((h) => h.id).join(', ')}`);
      return ls[0];
    },
    { timeoutMs, intervalMs: 5, message: `one leader of ${name}` },
  );
}

const stopAll = (hs: Host[]): Promise<unknown> => Promise.all(hs.map((h) => h.stop()));

describe('election among processes', () => {
  test('exactly one of three hosts leads, and every host names it', async () => {
    const hs = await hosts(3, 'build');
    try {
      const leader = await oneLeader(hs, 'build');
      for (const h of hs) assert.equal(await h.request({ op: 'leader', name: 'build' }), leader.id);
      assert.equal(leadersOf(hs, 'build').length, 1);
    } finally {
      await stopAll(hs);
    }
  });

  test('SIGKILL of the leader: a standby starts when the lease expires (not a second ttl later), with a larger token', async (t) => {
    const hs = await hosts(3, 'build');
    try {
      const first = await oneLeader(hs, 'build');
      const firstToken = BigInt(first.events.find((e) => e.type === 'start')!.token!);
      const killedAt = process.hrtime.bigint();
      first.kill('SIGKILL');
      await first.exited;
      const rest = hs.filter((h) => h !== first);
      const next = await oneLeader(rest, 'build', 15_000);
      const start = next.events.find((e) => e.type === 'start')!;
      const ms = Number(BigInt(start.t) - killedAt) / 1e6;
      t.diagnostic(`standby started ${ms.toFixed(0)} ms after the SIGKILL (ttl 2 s; the bench times failover)`);
      // One expiry, not two: generous on a loaded machine, and still a failure for a standby
      // that missed the delete and waited for something else.
      assert.ok(ms < 2 * 2000 + 1000, `failover took ${ms} ms, more than 2 × ttl (2 s) + 1 s`);
      assert.ok(BigInt(start.token!) > firstToken, 'token grows with each leadership');
    } finally {
      await stopAll(hs);
    }
  });

  test('remove() hands over at once to the next in line, which was waiting', async () => {
    const hs = await hosts(3, 'build');
    try {
      const first = await oneLeader(hs, 'build');
      await first.request({ op: 'remove', name: 'build' });
      const stop = first.events.find((e) => e.type === 'stop')!;
      assert.equal(stop.reason, 'removed');
      const next = await oneLeader(hs, 'build');
      assert.notEqual(next, first);
      const start = next.events.find((e) => e.type === 'start')!;
      assert.ok(BigInt(start.t) > BigInt(stop.t), 'the new leader starts after the old one stopped');
      // The remover left the queue for good.
      assert.equal(await first.request({ op: 'leader', name: 'build' }), next.id);
      // Two candidates left (eventually: a standby re-queueing behind another — balancing
      // standbys — is missing for a moment; seen once on CI).
      let keys: string[] = [];
      await waitFor(async () => (keys = await cluster.keys(first.config.prefix!)).length === 2 || undefined, {
        timeoutMs: 10_000,
        message: 'two candidates left',
      }).catch(() => assert.fail(`two candidates left, got ${keys.join(', ')}`));
    } finally {
      await stopAll(hs);
    }
  });

  test('fn that rejects: error, step-down with reason "error", and a standby takes over', async () => {
    const prefix = uniquePrefix();
    const bad = await spawnHost({ endpoints: cluster.endpoints, id: 'bad', ttl: 2, prefix, names: ['job'], fn: { kind: 'throw' } });
    await bad.waitEvent((e) => e.type === 'start' && e.name === 'job');
    const good = await spawnHost({ endpoints: cluster.endpoints, id: 'good', ttl: 2, prefix, names: ['job'] });
    try {
      await bad.waitEvent((e) => e.type === 'error' && e.name === 'job');
      await bad.waitEvent((e) => e.type === 'stop' && e.reason === 'error');
      await good.waitEvent((e) => e.type === 'start' && e.name === 'job');
      // The failing host queued again behind the standby instead of taking the name back.
      assert.equal(await good.request({ op: 'leader', name: 'job' }), 'good');
    } finally {
      await stopAll([bad, good]);
    }
  });

  test('close() resigns: no key and no lease of the host is left, and the process can exit', async () => {
    const prefix = uniquePrefix();
    const h = await spawnHost({ endpoints: cluster.endpoints, id: 'closer', ttl: 5, prefix, names: ['a', 'b', 'c'] });
    try {
      await h.waitEvent((e) => e.type === 'start' && e.name === 'c');
      const session = h.events.find((e) => e.type === 'session')!;
      const leaseHex = BigInt(session.leaseId!).toString(16);
      assert.ok((await cluster.leases()).includes(leaseHex), 'one lease while running');
      await h.request({ op: 'close' });
      assert.deepEqual(await cluster.keys(prefix), []);
      assert.ok(!(await cluster.leases()).includes(leaseHex), 'lease revoked');
      // With everything closed, nothing keeps the event loop alive: disconnecting IPC lets it exit.
      h.child.disconnect();
      const { code } = await h.exited;
      assert.equal(code, 0);
    } finally {
      await h.stop();
    }
  });
});
