// `locked run NAME -- CMD`: any program as a cluster-wide singleton. The library does
// the election; this file turns leaderships into child processes and back.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, hostname } from 'node:os';
import { locked, type Locker } from '../locker.js';
import type { Leadership, SingletonFunction, StopReason } from '../singleton.js';
import { NotLeaderError, describe } from '../errors.js';
import { validateName } from '../keys.js';
import { EXIT, UsageError, clean, say, seconds, type Connection, type Parsed } from './common.js';

interface Child {
  readonly process: ChildProcess;
  readonly pid: number | undefined;
  /** Settles when the direct child has exited (or failed to start); never rejects. */
  readonly exited: Promise<{ code: number; how: string }>;
  /**
   * Settles when the child's whole process group is gone — grandchildren that ignore
   * SIGTERM (`sh -c`, scripts with background jobs) included. The leadership (and so the
   * name) is released only after this.
   */
  readonly gone: Promise<void>;
  /** True once the process group is gone: it must never be signalled again (pgid reuse). */
  done: boolean;
  killTimer: NodeJS.Timeout | undefined;
  /** Monotonic ms at which the group gets SIGKILL, if it is still there. */
  killAt: number | undefined;
}

/** Whether any process of group `pgid` still exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves once process group `pgid` is empty (polled: there is no event for it). */
function groupGone(pgid: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!groupAlive(pgid)) resolve();
      else setTimeout(check, 25);
    };
    check();
  });
}

export interface RunPlan {
  name: string;
  command: string;
  args: string[];
  ttl: number;
  graceMs: number;
  id: string;
}

export function planRun(parsed: Parsed): RunPlan {
  const { positionals, rest, values } = parsed;
  if (positionals.length === 0) throw new UsageError('missing NAME', 'run');
  const [name, ...more] = positionals;
  try {
    validateName(name);
  } catch (err) {
    throw new UsageError((err as Error).message, 'run');
  }
  // `run NAME CMD ARGS` works for commands without dashes; with `--` everything after it is CMD.
  if (rest !== undefined && more.length > 0) throw new UsageError(`unexpected '${more[0]}' before '--'`, 'run');
  const cmd = rest ?? more;
  if (cmd.length === 0) throw new UsageError(`missing the command to run: locked run ${name} -- CMD [ARGS...]`, 'run');
  const ttl = seconds('--ttl', values.ttl, 10, 2);
  if (!Number.isInteger(ttl)) throw new UsageError(`--ttl must be a whole number of seconds ≥ 2, got '${values.ttl}'`, 'run');
  const grace = seconds('--grace', values.grace, 10);
  return { name, command: cmd[0]!, args: cmd.slice(1), ttl, graceMs: grace * 1000, id: values.id ?? `${hostname()}-${process.pid}` };
}

/** Runs until the child exits by itself or a signal ends us; resolves with the exit status. */
export function runCommand(plan: RunPlan, conn: Connection): Promise<number> {
  const { name, id, graceMs } = plan;
  // Default renewDeadline is ⅔ ttl: after a lost lease, etcd may let a standby in ttl/3 later.
  const lossMarginMs = (plan.ttl * 1000) / 3;
  const options = {
    id,
    prefix: conn.prefix,
    ttl: plan.ttl,
    // Signals are ours: the child must stop before the key is released.
    handleSignals: false,
    // close() waits for fn, i.e. for the child, which SIGKILL ends after the grace period.
    stopTimeout: graceMs / 1000 + 1,
    etcd: conn.etcd,
  };
  let locker: Locker;
  try {
    locker = locked(conn.hosts, options);
  } catch (err) {
    throw new UsageError(describe(err), 'run');
  }

  let child: Child | undefined;
  /** Exit of the last child: a new leadership waits for it, so one runner never has two. */
  let lastExit: Promise<unknown> = Promise.resolve();
  let stopping: Promise<number> | undefined;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  let connected = false;
  let waiting = false;
  locker.on('error', (err) => {
    // Once per outage: the locker retries on its own, a line per retry helps nobody.
    if (waiting) return;
    waiting = true;
    const why = clean(err.message);
    say(connected ? `etcd trouble at ${conn.endpoints}: ${why} (retrying)` : `waiting for etcd at ${conn.endpoints}: ${why}`);
  });
  locker.on('session', () => {
    if (connected && waiting) say(`etcd is back; campaigning for '${name}' again`);
    if (connected) waiting = false;
  });
  locker.on('lost', (err) => say(err.message));

  const start = (l: Leadership): Child => {
    const env = {
      ...process.env,
      LOCKED_NAME: name,
      LOCKED_ID: id,
      LOCKED_TOKEN: l.token,
      LOCKED_KEY: l.key,
      LOCKED_ENDPOINTS: conn.endpoints,
      LOCKED_PREFIX: conn.prefix,
    };
    // A process group of its own: the whole tree gets the signals, and a terminal's
    // Ctrl-C reaches only us (we forward it after deciding what to do).
    const p = spawn(plan.command, plan.args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env });
    const exited = new Promise<{ code: number; how: string }>((resolve) => {
      p.once('error', (err: NodeJS.ErrnoException) => {
        say(`cannot start '${plan.command}': ${err.message}`);
        resolve({ code: err.code === 'ENOENT' ? 127 : 126, how: `failed to start (${err.code ?? err.message})` });
      });
      p.once('exit', (code, sig) => {
        resolve(
          sig
            ? { code: 128 + (constants.signals[sig] ?? 0), how: `was killed by ${sig}` }
            : { code: code ?? 0, how: `exited with status ${code ?? 0}` },
        );
      });
    });
    const c: Child = {
      process: p,
      pid: p.pid,
      done: false,
      killTimer: undefined,
      killAt: undefined,
      exited,
      // The group outlives the direct child while any member of it runs.
      gone: exited
        .then(() => (p.pid === undefined ? undefined : groupGone(p.pid)))
        .then(() => {
          c.done = true;
          if (c.killTimer) clearTimeout(c.killTimer);
        }),
    };
    return c;
  };

  const signalGroup = (c: Child, sig: NodeJS.Signals): void => {
    // Never after exit: the group id could by then belong to someone else.
    if (c.done || c.pid === undefined) return;
    try {
      process.kill(-c.pid, sig);
    } catch {
      // The group is gone already.
    }
  };

  /** SIGKILL to the group no later than `afterMs` from now (an earlier deadline already set stands). */
  const killBy = (c: Child, afterMs: number, why: string): void => {
    if (c.done) return;
    const at = performance.now() + afterMs;
    if (c.killAt !== undefined && c.killAt <= at) return;
    c.killAt = at;
    if (c.killTimer) clearTimeout(c.killTimer);
    c.killTimer = setTimeout(() => {
      if (c.done) return;
      say(`process group ${c.pid} still running ${Math.round(afterMs / 100) / 10} s after ${why}: SIGKILL`);
      signalGroup(c, 'SIGKILL');
    }, afterMs);
  };

  /** SIGTERM (or `sig`) now, SIGKILL after `afterMs` unless the whole group is gone first. */
  const terminate = (c: Child, sig: NodeJS.Signals, afterMs: number): void => {
    signalGroup(c, sig);
    killBy(c, afterMs, sig);
  };

  const fn: SingletonFunction = async (_remove, l) => {
    await lastExit;
    if (l.signal.aborted || stopping) return;
    const c = start(l);
    child = c;
    lastExit = c.gone;
    say(`leading '${name}' (token ${l.token}): started ${plan.command} (pid ${c.pid ?? '?'})`);
    const onEnd = (): void => {
      const reason = l.signal.reason instanceof NotLeaderError ? (l.signal.reason.reason as StopReason) : 'lost';
      if (c.done) return;
      if (reason === 'lost') {
        // etcd may expire the lease — and let a standby start the program — ttl/3 after
        // the step-down: the group must be gone by then, whatever else is going on (a
        // shutdown by signal with a longer --grace included).
        if (!stopping) say(`leadership of '${name}' ended (lost): SIGTERM to process group ${c.pid}`);
        if (!stopping) signalGroup(c, 'SIGTERM');
        killBy(c, Math.min(graceMs, lossMarginMs), 'the lease was lost');
        return;
      }
      if (stopping) return;
      say(`leadership of '${name}' ended (${reason}): SIGTERM to process group ${c.pid}`);
      terminate(c, 'SIGTERM', graceMs);
    };
    l.signal.addEventListener('abort', onEnd, { once: true });
    const result = await c.exited;
    // The leadership lasts until the whole group is gone: the SIGKILL deadline (if any)
    // stays armed for the grandchildren.
    await c.gone;
    l.signal.removeEventListener('abort', onEnd);
    if (child === c) child = undefined;
    if (stopping) return;
    if (!l.signal.aborted) {
      // Finished by itself while leading: that is the job's answer, not a failure to retry.
      say(`${plan.command} ${result.how}; releasing '${name}'`);
      void stop(result.code);
      return;
    }
    say(`${plan.command} ${result.how}; queueing again for '${name}'`);
  };

  const stop = (status: number | Promise<number>): Promise<number> => {
    stopping ??= (async () => {
      // Release only after the child's whole group is gone, so a standby never overlaps with it.
      await lastExit;
      const code = await status;
      await locker.close();
      say(`released '${name}'; exiting with status ${code}`);
      finish(code);
      return code;
    })();
    return stopping;
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    const c = child;
    if (stopping) {
      if (c) {
        say(`${sig} again: SIGKILL to pid ${c.pid}`);
        signalGroup(c, 'SIGKILL');
      }
      return;
    }
    if (c && !c.done) {
      say(`${sig}: forwarding to pid ${c.pid}, then releasing '${name}'`);
      terminate(c, sig, graceMs);
      void stop(c.exited.then((r) => c.gone.then(() => r.code)));
    } else {
      say(`${sig}: leaving the queue for '${name}'`);
      void stop(EXIT.ok);
    }
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, onSignal);

  locker(name, fn);
  locker.ready().then(
    () => {
      connected = true;
      waiting = false;
      say(`connected to etcd at ${conn.endpoints}; campaigning for '${name}' as ${id}`);
    },
    () => {}, // closed before etcd ever answered
  );
  return finished;
}
