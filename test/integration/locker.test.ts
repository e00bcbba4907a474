// The locker API against a real single-node etcd, in one process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import locked, { type Leadership, type Locker } from '../../src/index.js';
import { ETCDCTL_BIN, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { startProxy } from '../helpers/proxy.js';
import { sleep, waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
const lockers: Locker[] = [];
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await Promise.allSettled(lockers.map((l) => l.close()));
  await cluster?.close();
});

/** Our election key under `prefix`: its last segment is our lease id in hex. */
function ourKey(l: Locker, prefix: string): string {
  const lease = BigInt(l.health().leaseId!).toString(16);
  return `${prefix}build/${lease}`;
}

const uniquePrefix = (): string => `l${Math.random().toString(36).slice(2, 8)}/`;
function make(id: string, prefix: string, ttl = 5): Locker {
  const l = locked(cluster.endpoints, { id, ttl, prefix, handleSignals: false });
  lockers.push(l);
  return l;
}

describe('locker', () => {
  test('singletons(), leader(), isLeader and the leadership handed to fn', async () => {
    const prefix = uniquePrefix();
    const a = make('A', prefix);
    let seen: Leadership | undefined;
    const s = a('build', (_remove, l) => {
      seen = l;
    });
    a('deploy', () => {});
    await waitFor(() => s.isLeader, { timeoutMs: 10_000, message: 'A leads build' });
    assert.deepEqual(Object.keys(a.singletons()).sort(), ['build', 'deploy']);
    assert.equal(a.singletons().build, s);
    assert.equal(await a.leader('build'), 'A');
    assert.equal(await a.leader('nobody-campaigns'), undefined);
    assert.ok(seen);
    assert.equal(seen.name, 'build');
    assert.equal(seen.nodeId, 'A');
    assert.match(seen.key, new RegExp(`^${prefix}build/[0-9a-f]+$`));
    assert.match(seen.token, /^\d+$/);
    assert.equal(seen.signal.aborted, false);
    assert.equal(a.id(), 'A');
    await s.remove();
    assert.equal(seen.signal.aborted, true, 'signal aborted when leadership ends');
    assert.deepEqual(Object.keys(a.singletons()), ['deploy']);
    // A removed name may be registered again.
    const again = a('build', () => {});
    await waitFor(() => again.isLeader, { timeoutMs: 10_000, message: 'A leads build again' });
    await a.close();
  });

  test('a name may be registered again while its removal is under way: the new fn starts after the old one settled', async () => {
    const prefix = uniquePrefix();
    const a = make('A', prefix);
    const order: string[] = [];
    let oldLead: Leadership | undefined;
    let letGo!: () => void;
    const stopping = new Promise<void>((r) => (letGo = r));
    const old = a('build', async (_remove, l) => {
      oldLead = l;
      order.push('old started');
      await new Promise((r) => l.signal.addEventListener('abort', r, { once: true }));
      await stopping; // fn takes its time to stop: the removal waits for it
      order.push('old settled');
    });
    await waitFor(() => old.isLeader && oldLead, { timeoutMs: 10_000, message: 'A leads build' });
    const removed = old.remove();
    assert.equal(oldLead!.signal.aborted, true, 'the old fn was told to stop');
    let newLead: Leadership | undefined;
    const again = a('build', (_remove, l) => {
      newLead = l;
      order.push('new started');
    });
    assert.notEqual(again, old);
    assert.throws(() => a('build', () => {}), /'build' is already registered on this locker/);
    letGo();
    await removed;
    await waitFor(() => again.isLeader && newLead, { timeoutMs: 10_000, message: 'the new registration leads build' });
    assert.deepEqual(order, ['old started', 'old settled', 'new started']);
    assert.deepEqual(await cluster.keys(`${prefix}build/`), [newLead!.key], 'one key for build: the new one');
    assert.ok(BigInt(newLead!.token) > BigInt(oldLead!.token), 'a new leadership: a greater token');
    assert.equal(a.singletons().build, again);
    await a.close();
  });

  test('one lease per locker, however many names', async () => {
    const prefix = uniquePrefix();
    const before = new Set(await cluster.leases());
    const a = make('A', prefix);
    const names = Array.from({ length: 200 }, (_, i) => `n${i}`);
    const ss = names.map((n) => a(n, () => {}));
    await waitFor(() => ss.every((s) => s.isLeader), { timeoutMs: 20_000, message: 'all 200 names led' });
    const added = (await cluster.leases()).filter((l) => !before.has(l));
    assert.equal(added.length, 1, `leases added: ${added.join(', ')}`);
    const keys = await cluster.keys(prefix);
    assert.equal(keys.length, 200);
    assert.ok(
      keys.every((k) => k.endsWith(`/${added[0]}`)),
      `every key hangs off the one lease ${added[0]}: ${keys.slice(0, 3).join(', ')}`,
    );
    await a.close();
    assert.deepEqual(await cluster.keys(prefix), []);
    assert.ok(!(await cluster.leases()).includes(added[0]!));
  });

  test('interop: `etcdctl elect -l` names our leader, and we wait while `etcdctl elect` holds the name', async () => {
    const prefix = uniquePrefix();
    const a = make('ours', prefix);
    const s = a('build', () => {});
    await waitFor(() => s.isLeader, { timeoutMs: 10_000, message: 'we lead' });
    // `elect -l` prints the leader, then keeps listening for changes: stop it after a moment.
    const listed = await cluster.etcdctl(['elect', '-l', `${prefix}build`], { timeoutMs: 2_000 });
    assert.match(listed.stdout, new RegExp(`^${prefix}build/[0-9a-f]+\\nours\\n?$`));
    await s.remove();

    // etcdctl campaigns first and holds; our candidate must queue behind it.
    const eps = cluster.endpoints.join(',');
    const ctl = spawn(ETCDCTL_BIN, ['--endpoints', eps, 'elect', `${prefix}build`, 'go-service'], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    ctl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('go-service'), { timeoutMs: 10_000, message: 'etcdctl elected' });
      const s2 = a('build', () => {});
      await waitFor(async () => (await cluster.keys(`${prefix}build/`)).length === 2, { timeoutMs: 10_000, message: 'our key queued' });
      assert.equal(s2.isLeader, false, 'we wait while etcdctl holds the name');
      assert.equal(await a.leader('build'), 'go-service');
      // etcdctl 3.4 does not resign on interrupt (its session lease just runs out), so
      // delete its key as an operator would: the next in line — us — leads at once.
      const theirs = (await cluster.keys(`${prefix}build/`)).find((k) => !s2.leadership && k !== undefined && k !== ourKey(a, prefix));
      assert.ok(theirs);
      await cluster.etcdctl(['del', theirs]);
      await waitFor(() => s2.isLeader, { timeoutMs: 10_000, message: 'we lead after the etcdctl key went' });
    } finally {
      ctl.kill('SIGKILL');
    }
    await a.close();
  });

  test('fence() guards a write with the leadership token: accepted while leading, refused after', async () => {
    const prefix = uniquePrefix();
    const a = make('A', prefix);
    let lead: Leadership | undefined;
    const s = a('db', (_r, l) => {
      lead = l;
    });
    await waitFor(() => s.isLeader && lead, { timeoutMs: 10_000, message: 'leads' });
    const ok = await lead!
      .fence()
      .then(a.client.put(`${prefix}data`).value('v1'))
      .commit();
    assert.equal(ok.succeeded, true);
    await s.remove();
    const late = await lead!
      .fence()
      .then(a.client.put(`${prefix}data`).value('v2'))
      .commit();
    assert.equal(late.succeeded, false, 'a write fenced by an ended leadership is refused');
    assert.equal(await a.client.get(`${prefix}data`).string(), 'v1');
    assert.throws(() => lead!.check(), /not the leader of 'db' any more \(removed\)/);
    await a.close();
  });

  test('an unreachable etcd and no error listener: nothing thrown, no unhandled rejection, close() returns', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const l = locked('127.0.0.1:9', { ttl: 2, handleSignals: false });
      l('x', () => {});
      await waitFor(() => warnings.find((w) => w.name === 'LockedWarning'), { timeoutMs: 15_000, message: 'one warning' });
      const t0 = Date.now();
      await l.close();
      assert.ok(Date.now() - t0 < 5_000, 'close() returns promptly during an outage');
      assert.equal(l.health().ok, false);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      process.off('warning', onWarning);
    }
  });

  test('close() during an outage leaves nothing pending: the process exits by itself', async () => {
    const index = fileURLToPath(new URL('../../src/index.js', import.meta.url));
    const script = `
      const { locked } = await import(${JSON.stringify(index)});
      const l = locked('127.0.0.1:9', { ttl: 2, handleSignals: false });
      l.on('error', () => {});
      l('x', () => {});
      await new Promise((r) => setTimeout(r, 1500));
      await l.close();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    assert.match(out, /closed/);
    assert.equal(code, 0, 'the process exits on its own after close() (a leftover timer or stream would keep it alive)');
  });

  test('a watch that resumes after a compaction re-reads every queue and still sees its turn come', async () => {
    const prefix = uniquePrefix();
    const proxy = await startProxy(cluster.endpoints[0]!);
    const a = locked(proxy.endpoint, { id: 'A', ttl: 10, prefix, handleSignals: false });
    lockers.push(a);
    a.on('error', () => {}); // the cut is expected to produce etcd errors
    const b = make('B', prefix, 10);
    try {
      const sb = b('x', () => {});
      await waitFor(() => sb.isLeader, { timeoutMs: 10_000, message: 'B leads x' });
      const sa = a('x', () => {});
      await waitFor(() => sa.position === 1, { timeoutMs: 10_000, message: 'A queued behind B' });
      // A hears nothing while B leaves and the history of it is compacted away.
      proxy.blackhole();
      await sb.remove();
      await cluster.put(`${prefix}unrelated`, '1');
      const rev = JSON.parse((await cluster.etcdctl(['get', `${prefix}unrelated`, '-w', 'json'])).stdout).header.revision as number;
      assert.equal((await cluster.etcdctl(['compact', String(rev)])).code, 0);
      await sleep(500); // a short cut: well inside A's renewDeadline (6.7 s)
      proxy.heal();
      // Its watch resumes at a compacted revision; only a fresh snapshot shows B is gone.
      await waitFor(() => sa.isLeader, { timeoutMs: 20_000, message: 'A leads x after the compaction' });
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
      await proxy.close();
    }
  });
});
