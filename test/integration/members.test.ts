// The per-member view (issue #22): health().members (this host's own calls, no round
// trip), health({ members: true }) (every member asked for its raft role and revision),
// `locked status --members` and the probe server's /members and /health — against a real
// 3-member etcd, with one member frozen (SIGSTOP) and thawed again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import locked, { type Locker, type MembersHealth } from '../../src/index.js';
import { startProbes, stopProbes } from '../../src/cli/probes.js';
import { enableAuth } from '../helpers/auth.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let cluster: EtcdCluster;
const frozen = new Set<number>();
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  for (const pid of frozen) thaw(pid);
  await cluster?.close();
});

function freeze(pid: number): void {
  frozen.add(pid);
  process.kill(pid, 'SIGSTOP');
}
function thaw(pid: number): void {
  frozen.delete(pid);
  process.kill(pid, 'SIGCONT');
}

const uniquePrefix = (): string => `mem${Math.random().toString(36).slice(2, 8)}/`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

type CliMembers = Pick<MembersHealth, 'members' | 'quorum'>;

/** A locker leading one name: it keeps a lease alive and watches its prefix. */
async function runningHost(prefix: string): Promise<Locker> {
  const l = locked(cluster.endpoints, { ttl: 5, prefix, id: 'h', handleSignals: false });
  l.on('error', () => {});
  l('job', (_remove, leadership) => new Promise<void>((resolve) => leadership.signal.addEventListener('abort', () => resolve())));
  await l.ready();
  await waitFor(() => l.health().ready && l.health().leading.includes('job'), {
    timeoutMs: 20_000,
    message: 'the host leads job with its watch connected',
  });
  return l;
}

const describeAll = (h: Pick<MembersHealth, 'members'>): string => JSON.stringify(h.members.map((m) => ({ e: m.endpoint, ...m.status })));

describe('per-member health', () => {
  test('health().members: which member keeps the lease alive and carries the watch, and how calls there went', async () => {
    const l = await runningHost(uniquePrefix());
    try {
      // The keepalive member is the one that acknowledged last: wait for one ack after ready.
      const h = await waitFor(
        () => {
          const x = l.health();
          return x.members.some((m) => m.keepalive) ? x : undefined;
        },
        { timeoutMs: 20_000, message: 'a member acknowledged a keepalive' },
      );
      assert.equal(h.members.length, 3);
      h.members.forEach((m, i) =>
        assert.ok(m.endpoint.endsWith(cluster.endpoints[i]!), `${m.endpoint} is member ${i}, ${cluster.endpoints[i]}`),
      );
      assert.equal(h.members.filter((m) => m.keepalive).length, 1);
      assert.equal(h.members.filter((m) => m.preferred).length, 1);
      const watched = h.members.filter((m) => m.watch);
      assert.equal(watched.length, 1, JSON.stringify(h.members));
      assert.equal(watched[0]!.endpoint, h.watchEndpoint);
      const keeper = h.members.find((m) => m.keepalive)!;
      assert.ok(keeper.calls > 0 && keeper.lastRttMs !== undefined && keeper.lastOkAgoMs !== undefined, JSON.stringify(keeper));
      assert.ok(keeper.lastKeepaliveAgoMs !== undefined && keeper.lastKeepaliveAgoMs < 10_000, JSON.stringify(keeper));
      for (const m of h.members) {
        assert.equal(m.breaker, 'closed', JSON.stringify(m));
        assert.equal(m.skipped, false);
      }
      // The plain health() keeps its fields.
      assert.equal(h.ok, true);
      assert.equal(h.ready, true);
      assert.deepEqual(h.leading, ['job']);
    } finally {
      await l.close();
    }
  });

  test('health({ members: true }): one raft leader, the same revision everywhere, quorum with one failure to spare', async () => {
    const l = await runningHost(uniquePrefix());
    try {
      const leaderIndex = await cluster.leaderIndex();
      assert.ok(leaderIndex >= 0, 'the test cluster has a raft leader');
      // Revisions move with every write (keepalives are no writes; other lockers' are): wait until a poll sees them equal.
      const h = await waitFor(
        async () => {
          const x = await l.health({ members: true });
          return x.members.every((m) => m.status.revision === x.members[0]!.status.revision) ? x : undefined;
        },
        { timeoutMs: 20_000, message: 'every member reports the same revision' },
      );
      assert.equal(h.members.length, 3);
      const roles = h.members.map((m) => m.status.role).sort();
      assert.deepEqual(roles, ['follower', 'follower', 'leader'], describeAll(h));
      const leader = h.members.find((m) => m.status.role === 'leader')!;
      assert.ok(leader.endpoint.endsWith(cluster.endpoints[leaderIndex]!), `${leader.endpoint} vs ${cluster.endpoints[leaderIndex]}`);
      assert.equal(new Set(h.members.map((m) => m.status.leaderId)).size, 1, describeAll(h));
      assert.equal(leader.status.leaderId, leader.status.memberId);
      for (const m of h.members) {
        assert.equal(m.status.linearizable, true, describeAll(h));
        assert.equal(m.status.behind, 0);
        assert.ok(m.status.raftTerm! > 0 && m.status.raftAppliedIndex! > 0, describeAll(h));
        assert.ok(m.lastRttMs !== undefined, 'the poll counts in the member figures');
      }
      assert.deepEqual(h.quorum, { members: 3, quorum: 2, healthy: 3, tolerates: 1, leader: leader.endpoint, agreed: true });
      // The plain health() fields are all there too.
      assert.equal(h.ready, true);
      assert.equal(typeof h.lastKeepaliveAgoMs, 'number');
      // A bad option is refused, naming it; a bad time limit too.
      await assert.rejects(
        l.health({ members: false } as unknown as { members: true }),
        /options must be \{ members: true, timeoutMs\? \}, got members: false/,
      );
      await assert.rejects(
        l.health({ members: true, timeoutMs: -1 }),
        /timeoutMs of a member poll must be a positive number of milliseconds, got -1/,
      );
    } finally {
      await l.close();
    }
  });

  test('a frozen member shows as no answer while the others report a leader; once thawed it answers again', async () => {
    const prefix = uniquePrefix();
    const l = await runningHost(prefix);
    const leaderIndex = await cluster.leaderIndex();
    // Freeze the raft leader: the others must elect a new one, and the host must see it.
    const victim = cluster.members[leaderIndex]!;
    const victimEndpoint = cluster.endpoints[leaderIndex]!;
    const pid = victim.pid!;
    try {
      freeze(pid);
      let slowest = 0;
      const h = await waitFor(
        async () => {
          const t0 = Date.now();
          const x = await l.health({ members: true, timeoutMs: 1000 });
          slowest = Math.max(slowest, Date.now() - t0);
          const frozenOne = x.members.find((m) => m.endpoint.endsWith(victimEndpoint))!;
          const others = x.members.filter((m) => m !== frozenOne);
          const othersServe = others.every((m) => (m.status.role === 'leader' || m.status.role === 'follower') && m.status.linearizable);
          return frozenOne.status.role === 'no answer' && othersServe && x.quorum.leader !== undefined ? x : undefined;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 200,
          message: 'the frozen member shows no answer and the other two agree on a new raft leader and serve',
        },
      );
      // Bounded whatever the frozen member does: each call has 1 s (a generous margin for a loaded machine).
      assert.ok(slowest < 8_000, `a poll took ${slowest} ms`);
      const frozenOne = h.members.find((m) => m.endpoint.endsWith(victimEndpoint))!;
      assert.equal(frozenOne.status.linearizable, false);
      assert.ok(frozenOne.status.error !== undefined, describeAll(h));
      assert.ok(!h.quorum.leader!.endsWith(victimEndpoint), `new raft leader ${h.quorum.leader}`);
      assert.equal(h.quorum.healthy, 2, describeAll(h));
      assert.equal(h.quorum.tolerates, 0, 'the next fault would lose quorum');
      // This host's own calls to the frozen member wait or failed.
      await waitFor(
        () => {
          const m = l.health().members.find((x) => x.endpoint.endsWith(victimEndpoint))!;
          return m.failuresInARow > 0 || (m.pending > 0 && (m.oldestPendingMs ?? 0) > 500);
        },
        { timeoutMs: 20_000, message: 'calls to the frozen member fail or wait' },
      );
      // The CLI sees the same, and says so with exit 1.
      // --timeout: each member's time limit (a fresh process also sets up its connections).
      const r = await cli(['status', '--members', '--timeout', '3s', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
      assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`${victimEndpoint.replace(/\./g, '\\.')}\\s+no answer`));
      assert.match(r.stdout, /quorum: 2\/3 members healthy, 2 needed: tolerates NO more failures/);
      // The host leads through it (or, if its keepalive was caught by the raft leader's freeze, again soon: it is the only candidate).
      await waitFor(() => l.health().leading.includes('job'), { timeoutMs: 20_000, message: 'the host leads job during the freeze' });

      thaw(pid);
      // The thawed member rejoins (steps down to follower, catches up): wait until it serves linearizable reads.
      const back = await waitFor(
        async () => {
          const x = await l.health({ members: true });
          return x.quorum.healthy === 3 ? x : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, message: 'every member serves linearizable reads again after the thaw' },
      );
      assert.deepEqual(back.members.map((m) => m.status.role).sort(), ['follower', 'follower', 'leader'], describeAll(back));
      assert.equal(back.quorum.tolerates, 1);
      await waitFor(
        async () => (await cli(['status', '--members', '--endpoints', cluster.endpointsString, '--prefix', prefix])).code === 0,
        {
          timeoutMs: 20_000,
          intervalMs: 200,
          message: 'status --members exits 0 once every member is back',
        },
      );
    } finally {
      if (frozen.has(pid)) thaw(pid);
      await l.close();
    }
  });

  test('locked status --members: a table and JSON with three members, one leader; misuse is a usage error', async () => {
    const prefix = uniquePrefix();
    const json = await waitFor(
      async () => {
        const r = await cli(['status', '--members', '--json', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
        const out = r.code === 0 ? (JSON.parse(r.stdout) as CliMembers) : undefined;
        return out?.members.every((m) => m.status.revision === out.members[0]!.status.revision && m.status.behind === 0) ? out : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'status --members --json exits 0 with the same revision on every member' },
    );
    assert.equal(json.members.length, 3);
    assert.equal(json.members.filter((m) => m.status.role === 'leader').length, 1, JSON.stringify(json));
    assert.equal(json.quorum.healthy, 3);
    assert.ok(json.members.every((m) => typeof m.status.revision === 'number' && m.status.linearizable));

    const table = await cli(['status', '--members', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ENDPOINT\s+ROLE\s+ID\s+LEADER\s+TERM\s+REVISION\s+APPLIED\s+RTT\s+LINEARIZABLE\s+NOTE\s+LAST ERROR$/);
    const rows = lines.slice(1, -1);
    assert.equal(rows.length, 3, table.stdout);
    assert.equal(rows.filter((x) => /^\S+\s+leader\s/.test(x)).length, 1, table.stdout);
    assert.equal(rows.filter((x) => /^\S+\s+follower\s/.test(x)).length, 2, table.stdout);
    assert.match(lines.at(-1)!, /^quorum: 3\/3 members healthy, 2 needed: tolerates 1 more failure; raft leader /);

    for (const extra of ['--watch', '--hosts']) {
      const r = await cli(['status', '--members', extra, '--endpoints', cluster.endpointsString]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--members cannot be combined with ${extra}`));
    }
  });

  test("locked run's probe server: /health is this host's view, /members and /health?members=1 ask every member", async () => {
    const l = await runningHost(uniquePrefix());
    const { server, url } = await startProbes({ host: '127.0.0.1', port: 0 }, l, { leading: () => true, describe: () => 'h leads' });
    try {
      const plain = (await (await fetch(`${url}/health`)).json()) as {
        ready: boolean;
        members: { endpoint: string; watch: boolean; status?: unknown }[];
      };
      assert.equal(plain.ready, true);
      assert.equal(plain.members.length, 3);
      assert.equal(plain.members.filter((m) => m.watch).length, 1);
      assert.ok(
        plain.members.every((m) => m.status === undefined),
        'the plain view asks no member',
      );

      const polled = await fetch(`${url}/health?members=1`);
      assert.equal(polled.status, 200);
      const body = (await polled.json()) as CliMembers;
      assert.equal(body.members.filter((m) => m.status.role === 'leader').length, 1);
      assert.equal(body.quorum.members, 3);

      const members = await waitFor(
        async () => {
          const r = await fetch(`${url}/members`);
          return r.status === 200 ? r.text() : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200, message: '/members answers 200' },
      );
      // A running host uses members: the USED column shows the keepalive and watch members.
      assert.match(members, /^ENDPOINT\s+ROLE.*\sUSED\s/);
      assert.match(members, /watch/);
      assert.match(members, /quorum: 3\/3 members healthy/);
    } finally {
      await stopProbes(server);
      await l.close();
    }
  });

  test('with etcd auth, a user whose role covers only the prefix can poll the members (Status needs no root)', async () => {
    const single = await startEtcd({ members: 1 });
    try {
      await enableAuth(single, { users: [{ name: 'app', password: 'app-pw', prefix: 'app/' }] });
      const l = locked(single.endpoints, {
        prefix: 'app/',
        ttl: 5,
        handleSignals: false,
        etcd: { auth: { username: 'app', password: 'app-pw' } },
      });
      try {
        const h = await l.health({ members: true });
        assert.equal(h.members.length, 1);
        assert.equal(h.members[0]!.status.role, 'leader', describeAll(h));
        assert.equal(h.members[0]!.status.linearizable, true, describeAll(h));
        assert.deepEqual({ healthy: h.quorum.healthy, tolerates: h.quorum.tolerates }, { healthy: 1, tolerates: 0 });
      } finally {
        await l.close();
      }
    } finally {
      await single.close();
    }
  });
});
