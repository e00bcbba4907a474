// Health-gated candidacy: a singleton registered with `healthy` campaigns only while its
// check passes; a leader whose check fails twice in a row hands over gracefully to a
// queued standby, and keeps leading (saying so) while nobody else queues. Real etcd;
// the library in-process, and `locked run --check` as processes.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import locked, { isHealthCheckError, type Leadership, type Locker } from '../../src/index.js';
import { LockedProcesses, MAIN, runArgs } from '../helpers/cli.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
let dir: string;
const procs = new LockedProcesses();
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'locked-check-'));
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  procs.killAll();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

const uniquePrefix = (): string => `hc${Math.random().toString(36).slice(2, 8)}/`;
const queueOf = async (l: Locker, name: string): Promise<string[]> =>
  (await l.status()).find((s) => s.name === name)?.candidates.map((c) => c) ?? [];

/** A locker whose check answers `state.ok`; fn runs until its signal aborts and records start/settle times. */
function host(id: string, prefix: string, state: { ok: boolean }, log: string[]): { locker: Locker; errors: Error[] } {
  const locker = locked(cluster.endpoints, { ttl: 3, prefix, id, handleSignals: false });
  const errors: Error[] = [];
  locker.on('error', (e) => errors.push(e));
  locker(
    'job',
    (_remove, l: Leadership) =>
      new Promise<void>((resolve) => {
        log.push(`${id} start`);
        l.signal.addEventListener('abort', () =>
          // fn needs a moment to stop: the standby must not start before it has.
          setTimeout(() => {
            log.push(`${id} settled`);
            resolve();
          }, 150),
        );
      }),
    { healthy: () => state.ok, checkInterval: 150 },
  );
  return { locker, errors };
}

describe('healthy: health-gated candidacy', () => {
  test('an unhealthy host does not queue; a leader failing twice hands over gracefully, and queues again once healthy', async () => {
    const prefix = uniquePrefix();
    const log: string[] = [];
    const sa = { ok: true };
    const sb = { ok: false };
    const a = host('a', prefix, sa, log);
    const b = host('b', prefix, sb, log);
    try {
      await waitFor(() => log.includes('a start') || undefined, { timeoutMs: 15_000, message: 'a leads' });
      // b's check fails: it never campaigns.
      await waitFor(() => b.errors.some(isHealthCheckError) || undefined, { timeoutMs: 10_000, message: "b's failing check reported" });
      assert.deepEqual(await queueOf(a.locker, 'job'), ['a'], 'b is not in the queue while unhealthy');
      // b healthy: it queues behind a.
      sb.ok = true;
      await waitFor(async () => ((await queueOf(a.locker, 'job')).join() === 'a,b' ? true : undefined), {
        timeoutMs: 10_000,
        message: 'b queues',
      });
      // a unhealthy: after two failures it hands over; b starts after a's fn settled.
      sa.ok = false;
      await waitFor(() => log.includes('b start') || undefined, { timeoutMs: 15_000, message: 'b takes over' });
      assert.deepEqual(log, ['a start', 'a settled', 'b start'], 'a drained before b started');
      assert.ok(
        a.errors.some((e) => isHealthCheckError(e) && e.failures === 1),
        'the first failure is reported',
      );
      assert.deepEqual(await queueOf(b.locker, 'job'), ['b'], 'a left the queue while unhealthy');
      assert.equal(a.locker.metrics().names['job']?.leadershipsStopped.unhealthy, 1);
      // a healthy again: queues behind b, does not take over.
      sa.ok = true;
      await waitFor(async () => ((await queueOf(b.locker, 'job')).join() === 'b,a' ? true : undefined), {
        timeoutMs: 10_000,
        message: 'a queues again',
      });
      assert.deepEqual(log, ['a start', 'a settled', 'b start']);
    } finally {
      await Promise.all([a.locker.close(), b.locker.close()]);
    }
  });

  test('with nobody else queued, an unhealthy leader keeps leading and says so once', async () => {
    const prefix = uniquePrefix();
    const log: string[] = [];
    const sa = { ok: true };
    const a = host('a', prefix, sa, log);
    try {
      await waitFor(() => log.includes('a start') || undefined, { timeoutMs: 15_000, message: 'a leads' });
      sa.ok = false;
      const keeps = (): Error[] => a.errors.filter((e) => isHealthCheckError(e) && /keeps leading/.test(e.message));
      await waitFor(() => keeps().length > 0 || undefined, { timeoutMs: 10_000, message: 'a says it keeps leading' });
      // Several more failing checks: still leading, said once.
      const failuresNow = (): number => a.errors.filter(isHealthCheckError).length;
      const before = failuresNow();
      await waitFor(() => (a.locker.singletons()['job']!.isLeader && keeps().length === 1 ? true : undefined), {
        timeoutMs: 5_000,
        message: 'still leading',
      });
      assert.ok(before >= 2);
      assert.deepEqual(log, ['a start']);
      assert.equal(keeps().length, 1);
    } finally {
      await a.locker.close();
    }
  });

  test('options are checked: unknown keys, a non-function check, a too short interval', () => {
    const locker = locked(cluster.endpoints, { ttl: 3, prefix: uniquePrefix(), handleSignals: false });
    try {
      assert.throws(() => locker('x', () => {}, { healthy: () => true, checkIntervall: 100 } as never), /unknown option 'checkIntervall'/);
      assert.throws(() => locker('x', () => {}, { healthy: true } as never), /options.healthy of 'x' must be a function, got boolean/);
      assert.throws(
        () => locker('x', () => {}, { healthy: () => true, checkInterval: 10 }),
        /checkInterval of 'x' must be a number of milliseconds ≥ 100, got 10/,
      );
      assert.deepEqual(Object.keys(locker.singletons()), []);
    } finally {
      void locker.close();
    }
  });
});

describe('locked run --check', () => {
  function run(id: string, prefix: string, flag: string, out: string): ChildProcess {
    const program = `require('fs').appendFileSync(${JSON.stringify(out)}, ${JSON.stringify(id)} + ' start ' + Date.now() + '\\n'); process.on('SIGTERM', () => { require('fs').appendFileSync(${JSON.stringify(out)}, ${JSON.stringify(id)} + ' end ' + Date.now() + '\\n'); process.exit(0); }); setInterval(() => {}, 1000);`;
    const flags = ['--ttl', '3', '--check', `test -e ${flag}`, '--check-interval', '500ms'];
    return procs.spawn(runArgs({ endpoints: cluster.endpointsString, prefix, id, flags, program }));
  }
  const lines = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : []);

  test('only a host whose check passes runs the program; a failing leader hands it to the healthy standby', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const out = join(dir, 'check.out');
    const okA = join(dir, 'a.ok');
    const okB = join(dir, 'b.ok');
    writeFileSync(okA, '');
    const a = run('a', prefix, okA, out);
    const b = run('b', prefix, okB, out);
    await waitFor(() => (lines(out).some((l) => l.startsWith('a start')) ? true : undefined), {
      timeoutMs: 20_000,
      message: 'a runs the program',
    });
    // The first failure is the one reported: usually "--check exited with status 1", but on a
    // loaded machine spawning the check can outlast the interval ("no answer within 500 ms").
    await waitFor(
      () =>
        /health check of 'job' failed \(the check failed: (--check exited with status 1|no answer within 500 ms)\)/.test(procs.stderr(b))
          ? true
          : undefined,
      {
        timeoutMs: 30_000,
        message: 'b says its check fails',
      },
    );
    // Swap health: a must hand over to b, stopping its program first.
    writeFileSync(okB, '');
    await waitFor(
      async () => {
        const l = locked(cluster.endpoints, { prefix, handleSignals: false });
        try {
          return (await queueOf(l, 'job')).join() === 'a,b' ? true : undefined;
        } finally {
          await l.close();
        }
      },
      { timeoutMs: 10_000, message: 'b queues once healthy' },
    );
    rmSync(okA);
    await waitFor(() => (lines(out).some((l) => l.startsWith('b start')) ? true : undefined), {
      timeoutMs: 20_000,
      message: 'b runs the program',
    });
    const ev = lines(out).map((l) => l.split(' '));
    const aEnd = Number(ev.find(([id, what]) => id === 'a' && what === 'end')?.[2]);
    const bStart = Number(ev.find(([id, what]) => id === 'b' && what === 'start')?.[2]);
    t.diagnostic(`b's program started ${bStart - aEnd} ms after a's ended`);
    assert.ok(aEnd > 0 && bStart >= aEnd, `a's program ended (${aEnd}) before b's started (${bStart})`);
    assert.match(procs.stderr(a), /ended \(unhealthy\)/);
    for (const p of [a, b]) p.kill('SIGTERM');
    await Promise.all([a, b].map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
  });

  test('--check with --try, or without a command, is a usage error (125 with run usage)', async () => {
    for (const args of [
      ['--try', '--check', 'true'],
      ['--check', ''],
      ['--check-interval', '1s'],
    ]) {
      const p = spawn(process.execPath, [MAIN, 'run', 'job', '--endpoints', cluster.endpointsString, ...args, '--', 'true'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      assert.equal(code, 125, `${args.join(' ')}: ${err}`);
      assert.match(err, /Usage: locked run/);
    }
  });
});
