// `locked run` ends the program's whole process group before it releases the name, and
// after a lost lease no later than ttl/3 — also during a shutdown by signal with a long
// --grace. Real etcd, `locked` as a process, programs that ignore SIGTERM.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { LockedProcesses, runArgs } from '../helpers/cli.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait.js';

/** Writes its pid to $PIDS, starts a grandchild in its own group that ignores SIGTERM (pid to $PIDS too), exits on SIGTERM. */
const PARENT_OF_STUBBORN = `
const { spawn } = require('child_process');
const fs = require('fs');
const g = spawn('sh', ['-c', 'trap "" TERM; while true; do sleep 0.05; done'], { stdio: 'ignore' });
fs.appendFileSync(process.env.PIDS, process.pid + ' ' + g.pid + '\\n');
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`;
/** Appends Date.now() to $OUT at start, then idles. */
/** Writes its start time and pid (one line, appended at once) to $OUT, then runs until killed. */
const MARKER = `require('fs').appendFileSync(process.env.OUT, Date.now() + ' ' + process.pid + '\\n'); setInterval(() => {}, 1000);`;
/** Ignores SIGTERM entirely (from before it writes its pid to $PIDS: a test may signal it at once). */
const STUBBORN = `process.on('SIGTERM', () => {}); require('fs').appendFileSync(process.env.PIDS, process.pid + '\\n'); setInterval(() => {}, 1000);`;

let cluster: EtcdCluster;
let dir: string;
const procs = new LockedProcesses();
const pids: number[] = [];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'locked-group-'));
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  procs.killAll();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const locked = (args: string[], env: NodeJS.ProcessEnv): ChildProcess => procs.spawn(args, env);
const stderrOf = (p: ChildProcess): string => procs.stderr(p);
const readPids = (f: string): number[] => (existsSync(f) ? readFileSync(f, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);
/** MARKER's line in `file`: when the program started and its pid. */
const marker = (file: string): { at: number; pid: number } | undefined => {
  const [at, pid] = existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).map(Number) : [];
  return at !== undefined && pid !== undefined && Number.isFinite(at) && Number.isFinite(pid) ? { at, pid } : undefined;
};
const uniquePrefix = (): string => `grp${Math.random().toString(36).slice(2, 8)}/`;

/**
 * Runs `fault`, waits until the standby's MARKER program (in `out`) starts, and asserts the
 * order that matters: process `pid` (`what`) was gone before — watched every 5 ms, hence the
 * 10 ms of slack. Returns when each happened.
 */
async function goneBeforeStandby(
  pid: number,
  what: string,
  out: string,
  fault: () => Promise<void> | void,
  context: () => string,
): Promise<{ goneAt: number; started: number }> {
  let goneAt: number | undefined;
  const watch = setInterval(() => {
    if (goneAt === undefined && !alive(pid)) goneAt = Date.now();
  }, 5);
  try {
    await fault();
    const started = await waitFor(() => marker(out)?.at, { timeoutMs: 30_000, message: `the standby starts its program (${context()})` });
    assert.ok(goneAt !== undefined, `${what} (pid ${pid}) was still alive when the standby started its program`);
    assert.ok(started >= goneAt - 10, `the standby started its program ${goneAt - started} ms before ${what} was gone`);
    return { goneAt, started };
  } finally {
    clearInterval(watch);
  }
}

describe('locked run and the process group', () => {
  test('a grandchild that ignores SIGTERM is gone before the standby starts its program', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const pidsFile = join(dir, 'a.pids');
    const out = join(dir, 'b.out');
    const common = ['--endpoints', cluster.endpointsString, '--prefix', prefix, '--ttl', '4', '--grace', '1'];
    const a = locked(['run', 'job', ...common, '--id', 'a', '--', process.execPath, '-e', PARENT_OF_STUBBORN], { PIDS: pidsFile });
    const [, grandchild] = await waitFor(() => (readPids(pidsFile).length === 2 ? readPids(pidsFile) : undefined), {
      timeoutMs: 20_000,
      message: 'a runs its program',
    });
    pids.push(...readPids(pidsFile));
    const b = locked(['run', 'job', ...common, '--id', 'b', '--', process.execPath, '-e', MARKER], { OUT: out });
    // b queued: give it time to campaign, observed through etcd.
    await waitFor(async () => ((await cluster.keys(`${prefix}job/`)).length === 2 ? true : undefined), {
      timeoutMs: 20_000,
      message: 'b queued',
    });
    try {
      const { goneAt, started } = await goneBeforeStandby(
        grandchild!,
        'the grandchild',
        out,
        () => void a.kill('SIGTERM'),
        () => `a: ${stderrOf(a)}`,
      );
      t.diagnostic(`grandchild gone; b's program started ${started - goneAt} ms after that`);
    } finally {
      b.kill('SIGKILL');
      // b's program holds b's stderr, a pipe to this process: left running, it would keep
      // this test file from ever exiting. Its watchdog must end it (SIGKILL of locked run);
      // if it does not, say so and end it here.
      const program = marker(out)?.pid;
      if (program !== undefined) {
        pids.push(program);
        await waitFor(() => (alive(program) ? undefined : true), {
          timeoutMs: 10_000,
          message: `b's program (pid ${program}) still running 10 s after b was SIGKILLed: its watchdog did not end it (b: ${stderrOf(b)})`,
        });
      }
    }
  });

  test('a lost lease during a shutdown by signal with a long --grace: the group is gone before the standby starts its program', async (t: TestContext) => {
    const prefix = uniquePrefix();
    const pidsFile = join(dir, 'c.pids');
    const proxy: Proxy = await startProxy(cluster.endpoints[0]!);
    try {
      // ttl 3: renewDeadline 2 s, ttl/3 = 1 s. --grace 60 would keep the program for a minute.
      const c = locked(runArgs({ endpoints: proxy.endpoint, prefix, id: 'c', flags: ['--ttl', '3', '--grace', '60'], program: STUBBORN }), {
        PIDS: pidsFile,
      });
      const [pid] = await waitFor(() => (readPids(pidsFile).length === 1 ? readPids(pidsFile) : undefined), {
        timeoutMs: 20_000,
        message: 'c runs its program',
      });
      pids.push(pid!);
      // A standby on etcd directly: it starts its program once etcd has expired c's lease.
      const out = join(dir, 'd.out');
      const d = locked(runArgs({ endpoints: cluster.endpointsString, prefix, id: 'd', flags: ['--ttl', '3'], program: MARKER }), {
        OUT: out,
      });
      await waitFor(async () => ((await cluster.keys(`${prefix}job/`)).length === 2 ? true : undefined), {
        timeoutMs: 20_000,
        message: 'd queued',
      });
      try {
        let cutAt = 0;
        // The order that matters: c's program (which ignores SIGTERM, with 60 s of grace) is
        // gone before the standby's program starts — the lost lease ended the grace…
        const { goneAt, started } = await goneBeforeStandby(
          pid!,
          "c's program",
          out,
          async () => {
            c.kill('SIGTERM'); // forwarded and ignored: the 60 s grace begins
            await waitFor(() => /SIGTERM: forwarding to process group/.test(stderrOf(c)) || undefined, {
              timeoutMs: 20_000,
              message: `c forwards SIGTERM (${stderrOf(c)})`,
            });
            cutAt = Date.now();
            proxy.blackhole(); // the lease is lost ≤ renewDeadline (2 s) later, long before the grace ends
          },
          () => `c: ${stderrOf(c)}`,
        );
        // …and the loss ended it, not the SIGTERM (which the program ignores).
        assert.match(stderrOf(c), /after the lease was lost: SIGKILL/);
        t.diagnostic(`c's program gone ${goneAt - cutAt} ms after the cut, d's started ${started - goneAt} ms after that`);
      } finally {
        d.kill('SIGTERM');
      }
    } finally {
      await proxy.close();
    }
  });
});
