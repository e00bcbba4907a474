import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import { startEtcd, etcdctl } from '../helpers/etcd.js';
import { startProxy } from '../helpers/proxy.js';
import { waitFor, once, sleep } from '../helpers/wait.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('1-member cluster: put/get through etcdctl, close kills it and removes its data', async () => {
  const cluster = await startEtcd();
  const pid = cluster.members[0]!.pid;
  try {
    assert.equal(cluster.members.length, 1);
    assert.match(cluster.endpoints[0]!, /^127\.0\.0\.1:\d+$/);
    assert.equal(cluster.endpointsString, cluster.endpoints.join(','));
    assert.ok(existsSync(cluster.members[0]!.dataDir));
    assert.ok(pid !== undefined && isAlive(pid));

    const put = await cluster.etcdctl(['put', 'locked-test/a', 'hello']);
    assert.equal(put.code, 0, put.stderr);
    const get = await cluster.etcdctl(['get', 'locked-test/a', '--print-value-only']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), 'hello');

    await cluster.put('locked-test/b', '-starts-with-dash');
    assert.equal(await cluster.get('locked-test/b'), '-starts-with-dash');
    assert.equal(await cluster.get('locked-test/missing'), undefined);
    assert.deepEqual(await cluster.keys('locked-test/'), ['locked-test/a', 'locked-test/b']);

    assert.deepEqual(await cluster.leases(), []);
    const grant = await cluster.etcdctl(['lease', 'grant', '60']);
    assert.equal(grant.code, 0, grant.stderr);
    const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
    assert.ok(id, grant.stdout);
    assert.deepEqual(await cluster.leases(), [BigInt(`0x${id}`).toString(16)]);

    const metrics = await cluster.metrics();
    assert.match(metrics, /^etcd_server_has_leader 1$/m);
    assert.equal(await cluster.leaderIndex(), 0);
  } finally {
    await cluster.close();
  }
  assert.equal(existsSync(cluster.rootDir), false, 'data dir removed');
  assert.equal(cluster.members[0]!.isRunning, false);
  assert.ok(pid !== undefined && !isAlive(pid), 'etcd process gone');
  await cluster.close(); // idempotent
});

test('3-member cluster survives losing its leader; the member restarts and rejoins', async (t) => {
  const t0 = Date.now();
  await using cluster = await startEtcd({ members: 3 });
  const startMs = Date.now() - t0;
  assert.equal(cluster.members.length, 3);
  assert.equal(new Set(cluster.endpoints).size, 3);
  await cluster.put('k', 'before');

  const leader = await cluster.leaderIndex();
  assert.ok(leader >= 0, 'a leader exists');
  const victim = cluster.members[leader]!;
  await victim.kill();
  assert.equal(victim.isRunning, false);
  assert.equal(victim.pid, undefined);

  // The others elect a new leader and keep serving writes.
  await waitFor(async () => (await cluster.etcdctl(['put', 'k', 'during', '--command-timeout=2s'])).code === 0, {
    timeoutMs: 20_000,
    intervalMs: 200,
    message: `put with ${victim.name} dead\n${cluster.diagnostics()}`,
  });
  assert.equal(await cluster.get('k'), 'during');
  const newLeader = await waitFor(
    async () => {
      const i = await cluster.leaderIndex();
      return i >= 0 ? { i } : undefined;
    },
    { timeoutMs: 10_000, message: 'new leader' },
  );
  assert.notEqual(newLeader.i, leader);

  // Restart with the same data dir; it catches up with the write it missed.
  await victim.start();
  assert.equal(victim.isRunning, true);
  await cluster.waitHealthy();
  await waitFor(
    async () => {
      const r = await etcdctl(victim.endpoint, ['get', 'k', '--print-value-only', '--consistency=s']);
      return r.code === 0 && r.stdout.trim() === 'during';
    },
    { timeoutMs: 10_000, message: `${victim.name} serves the write made while it was down` },
  );
  const members = await cluster.etcdctl(['member', 'list']);
  assert.equal(
    members.stdout
      .trim()
      .split('\n')
      .filter((l) => l.includes('started')).length,
    3,
  );

  // Graceful stop works too.
  await victim.stop();
  assert.equal(victim.isRunning, false);
  t.diagnostic(`3-member startup took ${startMs} ms`);
});

test('proxy forwards etcd traffic, blackhole times out, heal restores', async () => {
  await using cluster = await startEtcd();
  await using proxy = await startProxy(cluster.endpoints[0]!);
  const ctl = (args: string[]) => etcdctl(proxy.endpoint, ['--dial-timeout=1s', '--command-timeout=1s', ...args]);

  const ok = await ctl(['put', 'via-proxy', '1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(await cluster.get('via-proxy'), '1');
  assert.ok(proxy.stats.accepted >= 1);
  assert.ok(proxy.stats.bytesUp > 0 && proxy.stats.bytesDown > 0);

  // A connection that is open when the blackhole starts stays open but dead.
  const sock = connect(Number(proxy.endpoint.split(':')[1]), '127.0.0.1');
  await once(sock, 'connect', { timeoutMs: 5_000 });
  proxy.blackhole();
  assert.equal(proxy.isBlackholed, true);
  let sockClosed = false;
  let sockError: NodeJS.ErrnoException | undefined;
  sock.on('close', () => (sockClosed = true));
  sock.on('error', (e) => (sockError = e));
  sock.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

  const t0 = Date.now();
  const dead = await ctl(['put', 'via-proxy', '2']);
  const elapsed = Date.now() - t0;
  assert.notEqual(dead.code, 0, 'etcdctl through a black hole must fail');
  assert.ok(elapsed < 10_000, `failed by timeout, not hang (${elapsed} ms)`);
  assert.equal(await cluster.get('via-proxy'), '1', 'nothing reached etcd');
  assert.ok(proxy.stats.bytesDropped > 0);
  assert.equal(sockClosed, false, 'no FIN/RST while black-holed');

  proxy.heal();
  const healed = await ctl(['put', 'via-proxy', '3']);
  assert.equal(healed.code, 0, healed.stderr);
  assert.equal(await cluster.get('via-proxy'), '3');
  await waitFor(() => sockClosed, { timeoutMs: 5_000, message: 'stale connection destroyed on heal' });
  assert.equal(sockError?.code, 'ECONNRESET', 'stale connection is reset (RST), not closed');

  // reset() RSTs open connections; the proxy keeps accepting.
  const s2 = connect(Number(proxy.endpoint.split(':')[1]), '127.0.0.1');
  await once(s2, 'connect', { timeoutMs: 5_000 });
  await waitFor(() => proxy.stats.active >= 1, { timeoutMs: 5_000, message: 'proxy sees connection' });
  const reset = once<[NodeJS.ErrnoException]>(s2, 'error', { timeoutMs: 5_000 });
  proxy.reset();
  const [err] = await reset;
  assert.equal(err.code, 'ECONNRESET');
  const again = await ctl(['get', 'via-proxy', '--print-value-only']);
  assert.equal(again.stdout.trim(), '3');
});

test('wait helpers', async () => {
  let n = 0;
  assert.equal(await waitFor(() => (++n >= 3 ? n : 0), { timeoutMs: 2_000, intervalMs: 5, message: 'n>=3' }), 3);
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 100, intervalMs: 10, message: 'never' }),
    /timed out after \d+ ms .*waiting for: never/,
  );
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('boom');
      },
      { timeoutMs: 50, message: 'thrower' },
    ),
    /thrower; last error: Error: boom/,
  );
  const em = new EventEmitter();
  setTimeout(() => em.emit('x', 1, 2), 10);
  assert.deepEqual(await once(em, 'x', { timeoutMs: 1_000 }), [1, 2]);
  await assert.rejects(once(em, 'x', { timeoutMs: 20 }), /timed out after 20 ms waiting for event x/);
  setTimeout(() => em.emit('error', new Error('bad')), 10);
  await assert.rejects(once(em, 'x', { timeoutMs: 1_000 }), /bad/);
  assert.equal(em.listenerCount('x'), 0);
  const t = Date.now();
  await sleep(30);
  assert.ok(Date.now() - t >= 25);
});

test('proxy delay adds latency per direction, keeps order, and delay(0) flushes at once', async () => {
  const { createServer } = await import('node:net');
  // An echo server on loopback.
  const echo = createServer((s) => {
    s.on('error', () => {}); // the proxy's close resets it
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const addr = echo.address() as { port: number };
  const proxy = await startProxy(`127.0.0.1:${addr.port}`);
  try {
    const [host, port] = proxy.endpoint.split(':') as [string, string];
    const sock = connect({ host, port: Number(port) });
    await once(sock, 'connect', { timeoutMs: 5_000 });
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    proxy.delay(200);
    assert.equal(proxy.delayMs, 200);
    const sent = Date.now();
    for (let i = 0; i < 20; i++) sock.write(`${i},`);
    const expected = Array.from({ length: 20 }, (_, i) => `${i},`).join('');
    await waitFor(() => got === expected, { timeoutMs: 5_000, intervalMs: 5, message: 'echo through the delayed proxy' });
    const rtt = Date.now() - sent;
    assert.ok(rtt >= 390, `round trip ${rtt} ms, expected >= 400 (200 each way)`);
    // delay(0) while bytes are queued: they come out at once, in order.
    got = '';
    sock.write('x,');
    proxy.delay(0);
    sock.write('y,');
    await waitFor(() => got === 'x,y,', { timeoutMs: 150, intervalMs: 5, message: 'queued bytes flushed by delay(0)' });
    sock.destroy();
  } finally {
    await proxy.close();
    await new Promise<void>((r) => echo.close(() => r()));
  }
});
