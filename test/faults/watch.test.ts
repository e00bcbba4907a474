// The prefix watch on its own (src/etcd/watch.ts), against a real 3-member etcd: when the member it
// is on stops delivering — frozen (SIGSTOP): the connection stays open and no error comes —
// and nothing else moves it (no keepalive of a session is involved here), its freshness check
// must notice (its own read times out after half a period) and resume on another member
// without a gap; how long that took is reported, not judged. With no check (freshnessMs 0)
// it never moves.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Members, withRequireLeader } from '../../src/etcd/members.js';
import type { KeyEvent } from '../../src/core/queue.js';
import { PrefixWatch } from '../../src/etcd/watch.js';
import { startEtcd, etcdctl, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

const now = (): number => performance.now();

async function follower(): Promise<number> {
  const r = await waitFor(
    async () => {
      const i = await cluster.leaderIndex();
      return i >= 0 ? { i } : undefined;
    },
    { timeoutMs: 20_000, message: 'a raft leader' },
  );
  return (r.i + 1) % cluster.members.length;
}

/** A PrefixWatch on `prefix`, starting on member `first`, that records every event. */
function watchOn(
  first: number,
  prefix: string,
  freshnessMs: number,
  onConnected: () => void = () => {},
): {
  watch: PrefixWatch;
  members: Members;
  keys: string[];
  seen: Map<string, number>;
  moves: { from: string; to: string; reason: string; at: number }[];
} {
  const endpoints = [cluster.endpoints[first]!, ...cluster.endpoints.filter((_, i) => i !== first)];
  const members = new Members(endpoints, withRequireLeader({}));
  const keys: string[] = [];
  const seen = new Map<string, number>();
  const moves: { from: string; to: string; reason: string; at: number }[] = [];
  const watch = new PrefixWatch(
    members,
    prefix,
    {
      events: (evs: KeyEvent[]) => {
        for (const e of evs) {
          if (e.type !== 'put') continue;
          keys.push(e.key);
          seen.set(e.key, now());
        }
      },
      reset: () => {
        throw new Error('the watch reset (it should have resumed gap-free)');
      },
      connected: (up: boolean) => {
        if (up) onConnected();
      },
    },
    2_000,
    freshnessMs,
    (from, to, reason) => moves.push({ from: from.endpoint, to: to.endpoint, reason, at: now() }),
  );
  return { watch, members, keys, seen, moves };
}

describe('the prefix watch', () => {
  test('on a member that freezes: the freshness check moves it off the silent member, and it resumes without a gap', async (t: TestContext) => {
    const sick = await follower();
    const prefix = `w${Math.random().toString(36).slice(2, 8)}/`;
    const freshnessMs = 500;
    const w = watchOn(sick, prefix, freshnessMs);
    const healthy = cluster.endpoints.filter((_, i) => i !== sick);
    try {
      await w.watch.ready;
      assert.equal(w.watch.endpoint, cluster.endpoints[sick], 'the watch starts on the member listed first');
      for (const k of ['k1', 'k2']) assert.equal((await etcdctl(healthy, ['put', prefix + k, 'v'])).code, 0);
      await waitFor(() => w.keys.length === 2 || undefined, { timeoutMs: 10_000, message: 'k1, k2 seen before the freeze' });
      process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
      try {
        const putAt = now();
        for (const k of ['k3', 'k4', 'k5']) assert.equal((await etcdctl(healthy, ['put', prefix + k, 'v'])).code, 0);
        await waitFor(() => w.keys.length === 5 || undefined, { timeoutMs: 30_000, message: 'k3..k5 seen after the freeze' });
        const lateMs = w.seen.get(`${prefix}k3`)! - putAt;
        t.diagnostic(
          `a put on the healthy members reached the watch ${lateMs.toFixed(0)} ms later (check every ${freshnessMs} ms); the watch moved to ${w.watch.endpoint}`,
        );
        assert.notEqual(w.watch.endpoint, cluster.endpoints[sick], 'the watch left the frozen member');
        assert.ok(w.watch.staleMoves >= 1, 'moved by the freshness check');
        assert.ok(w.moves[0], 'no move reported');
        const { at: movedAt, ...move } = w.moves[0];
        assert.deepEqual(
          move,
          { from: cluster.endpoints[sick], to: w.watch.endpoint, reason: 'silent' },
          'the move was reported, as a silent member',
        );
        // The order: the frozen member delivers nothing, so k3 arrived through the move.
        assert.ok(movedAt <= w.seen.get(`${prefix}k3`)!, 'k3 was seen before the watch left the frozen member');
      } finally {
        process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
      }
      assert.deepEqual(
        w.keys,
        ['k1', 'k2', 'k3', 'k4', 'k5'].map((k) => prefix + k),
        'every put once, in order: no gap, no duplicate',
      );
    } finally {
      await w.watch.close();
      w.members.close();
    }
  });

  test('moved twice in a row, the second time before the first move caught up: no event is skipped', async () => {
    // A resumed watch is confirmed (its created response, with the member's current revision)
    // before etcd sends the events it missed. If that revision counted as seen, a second move
    // right then — keepalives preferring yet another member — would resume after it and skip
    // them: a deposed leader that never learns of its key's delete.
    const sick = await follower();
    const [a, b] = [0, 1, 2].filter((i) => i !== sick) as [number, number];
    const prefix = `w${Math.random().toString(36).slice(2, 8)}/`;
    let armed = false;
    const prefer = (i: number): Promise<void> =>
      w.members.hedged(
        async (_c, m) => {
          if (m.endpoint !== cluster.endpoints[i]) throw new Error('not this member');
        },
        10_000,
        10_000,
      );
    const w = watchOn(sick, prefix, 0, () => {
      if (!armed) return;
      armed = false;
      void prefer(b); // on the first confirmation of the watch on member a
    });
    const healthy = [cluster.endpoints[a]!, cluster.endpoints[b]!];
    try {
      await w.watch.ready;
      assert.equal((await etcdctl(healthy, ['put', `${prefix}k1`, 'v'])).code, 0);
      await waitFor(() => w.keys.length === 1 || undefined, { timeoutMs: 10_000, message: 'k1 seen' });
      process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
      try {
        for (const k of ['k2', 'k3']) assert.equal((await etcdctl(healthy, ['put', prefix + k, 'v'])).code, 0);
        armed = true;
        await prefer(a);
        await waitFor(() => w.watch.endpoint === cluster.endpoints[b] || undefined, {
          timeoutMs: 10_000,
          message: 'the watch moved on to the second member',
        });
        assert.equal((await etcdctl(healthy, ['put', `${prefix}k4`, 'v'])).code, 0);
        await waitFor(() => w.keys.includes(`${prefix}k4`) || undefined, { timeoutMs: 10_000, message: 'k4 seen after the moves' });
      } finally {
        process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
      }
      assert.deepEqual(
        w.moves.map((m) => m.reason),
        ['preferred', 'preferred'],
        'two moves, both because another member was preferred',
      );
      assert.deepEqual(
        w.keys,
        ['k1', 'k2', 'k3', 'k4'].map((k) => prefix + k),
        'every put once, in order: k2 and k3 were not skipped',
      );
    } finally {
      await w.watch.close();
      w.members.close();
    }
  });

  test('on healthy members it stays put: no move in 3 s of checks with writes going on', async () => {
    const sick = await follower();
    const prefix = `w${Math.random().toString(36).slice(2, 8)}/`;
    const w = watchOn(sick, prefix, 200);
    try {
      await w.watch.ready;
      for (let i = 0; i < 15; i++) {
        assert.equal((await etcdctl(cluster.endpoints, ['put', `${prefix}k${i}`, 'v'])).code, 0);
        await new Promise((r) => setTimeout(r, 200));
      }
      await waitFor(() => w.keys.length === 15 || undefined, { timeoutMs: 10_000, message: 'every put seen' });
      assert.equal(w.watch.staleMoves, 0, 'a healthy member was taken for a stale one');
      assert.deepEqual(w.moves, [], 'no move reported');
      assert.equal(w.watch.endpoint, cluster.endpoints[sick]);
    } finally {
      await w.watch.close();
      w.members.close();
    }
  });
});
