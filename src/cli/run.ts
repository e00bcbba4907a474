// `locked run NAME -- CMD`: any program as a cluster-wide singleton. The library does
// the election; this file turns leaderships into child processes and back.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { locked, type Locker } from '../locker.js';
import type { Leadership, SingletonFunction, StopReason } from '../singleton.js';
import { NotLeaderError, describe, isHealthCheckError } from '../errors.js';
import { validateName } from '../keys.js';
import { Child } from './child.js';
import { EXIT, UsageError, authFailure, clean, flagLabel, say, type Connection, type Parsed } from './common.js';
import { duration } from './flags.js';
import { listenFlag, startProbes, stopProbes, type ListenAddress } from './probes.js';

export interface RunPlan {
  name: string;
  command: string;
  args: string[];
  ttl: number;
  graceMs: number;
  id: string;
  /** --try: one leadership or none, never queue. */
  try: boolean;
  /** --wait: give up (75) if not elected within this long. */
  waitMs: number | undefined;
  /** What SIGHUP does: pass it to the program (a reload), or stop like SIGTERM. */
  sighup: 'forward' | 'stop';
  /** --check: a shell command run every checkIntervalMs; campaign only while it exits 0. */
  check: string | undefined;
  checkIntervalMs: number;
  /** --listen: serve /healthz, /readyz, /leader and /metrics on this address. */
  listen: ListenAddress | undefined;
}

/** --ttl: whole seconds ≥ 2 (etcd leases have second granularity). `label` names where the value came from. */
export function ttlFlag(value: string | undefined, command: 'run' | 'once', label = '--ttl'): number {
  const ms = duration(label, value, 10_000, command, 2_000);
  if (ms % 1000 !== 0) throw new UsageError(`${label} must be whole seconds ≥ 2 (etcd leases count in seconds), got '${value}'`, command);
  return ms / 1000;
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
  // Messages name the flag, or the LOCKED_* variable that set it.
  const label = (flag: string): string => flagLabel(parsed, flag);
  const ttl = ttlFlag(values.ttl, 'run', label('ttl'));
  const graceMs = duration(label('grace'), values.grace, 10_000, 'run');
  if (values.try && values.wait !== undefined)
    throw new UsageError(`${label('try')} and ${label('wait')} exclude each other (--try never waits)`, 'run');
  const waitMs = values.wait === undefined ? undefined : duration(label('wait'), values.wait, 0, 'run');
  const sighup = values.sighup ?? 'forward';
  if (sighup !== 'forward' && sighup !== 'stop')
    throw new UsageError(`${label('sighup')} must be 'forward' or 'stop', got '${sighup}'`, 'run');
  const check = values.check;
  if (check !== undefined && check.trim() === '') throw new UsageError(`${label('check')} needs a command`, 'run');
  if (check !== undefined && values.try)
    throw new UsageError(
      `${label('check')} and ${label('try')} exclude each other (--try runs at most once, it never waits to be healthy)`,
      'run',
    );
  const checkIntervalMs = duration(label('check-interval'), values['check-interval'], 5_000, 'run');
  if (checkIntervalMs < 100)
    throw new UsageError(`${label('check-interval')} must be at least 100ms, got '${values['check-interval']}'`, 'run');
  if (values['check-interval'] !== undefined && check === undefined)
    throw new UsageError(`${label('check-interval')} needs --check`, 'run');
  return {
    name,
    command: cmd[0]!,
    args: cmd.slice(1),
    ttl,
    graceMs,
    id: values.id ?? `${hostname()}-${process.pid}`,
    try: values.try === true,
    waitMs,
    sighup,
    check,
    checkIntervalMs,
    listen: listenFlag(values.listen),
  };
}

/**
 * Runs until the child exits by itself or a signal ends us; resolves with the exit
 * status. `timeoutMs`: give up with 125 if etcd has not answered in that time.
 */
export async function runCommand(plan: RunPlan, conn: Connection, timeoutMs?: number): Promise<number> {
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

  /** The leadership the running program was started under (cleared when it exits). */
  let programLeadership: Leadership | undefined;
  const probes = plan.listen
    ? await startProbes(plan.listen, locker, {
        leading: () => !stopping && programLeadership?.active === true,
        describe: () =>
          stopping
            ? `stopping; not leading '${name}'`
            : programLeadership?.active
              ? `leading '${name}' as ${id} (token ${programLeadership.token})`
              : `not leading '${name}' (${id})`,
      }).catch((err: unknown) => {
        say(`cannot listen on ${plan.listen!.host}:${plan.listen!.port}: ${describe(err)}`);
        return undefined;
      })
    : undefined;
  if (plan.listen && !probes) {
    await locker.close();
    return EXIT.runFailure;
  }
  if (probes) say(`listening on ${probes.url} (/healthz /readyz /leader /metrics)`);

  let child: Child | undefined;
  /** Exit of the last child: a new leadership waits for it, so one runner never has two. */
  let lastExit: Promise<unknown> = Promise.resolve();
  let led = false;
  let stopping: Promise<number> | undefined;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const timers: NodeJS.Timeout[] = [];

  let connected = false;
  let waiting = false;
  locker.on('error', (err) => {
    // A user or a prefix etcd refuses stays refused: retrying would only hide it.
    const refused = authFailure(err, conn);
    if (refused) return fatal(refused.message);
    // The --check verdicts are this host's own business, not etcd trouble: each is said.
    if (isHealthCheckError(err)) return say(err.message);
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

  const start = (l: Leadership): Child =>
    new Child({
      command: plan.command,
      args: plan.args,
      env: {
        ...process.env,
        LOCKED_NAME: name,
        LOCKED_ID: id,
        LOCKED_TOKEN: l.token,
        // Not LOCKED_KEY: that is the TLS key file a `locked` command run by the program reads.
        LOCKED_ELECTION_KEY: l.key,
        LOCKED_ENDPOINTS: conn.endpoints,
        LOCKED_PREFIX: conn.prefix,
      },
      // If we die, etcd keeps our lease up to ttl after its last renewal, ≥ ⅔ ttl after
      // the death: the watchdog's SIGKILL comes well before.
      orphanKillMs: Math.min(graceMs, lossMarginMs),
    });

  const fn: SingletonFunction = async (_remove, l) => {
    await lastExit;
    if (l.signal.aborted || stopping) {
      if (plan.try && !stopping) {
        say(`lost '${name}' before ${plan.command} started`);
        void stop(EXIT.busy);
      }
      return;
    }
    led = true;
    const c = start(l);
    child = c;
    programLeadership = l;
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
        if (!stopping) c.signal('SIGTERM');
        c.killBy(Math.min(graceMs, lossMarginMs), 'the lease was lost');
        return;
      }
      if (stopping) return;
      say(`leadership of '${name}' ended (${reason}): SIGTERM to process group ${c.pid}`);
      c.terminate('SIGTERM', graceMs);
    };
    l.signal.addEventListener('abort', onEnd, { once: true });
    const result = await c.exited;
    // The leadership lasts until the whole group is gone: the SIGKILL deadline (if any)
    // stays armed for the grandchildren.
    await c.gone;
    l.signal.removeEventListener('abort', onEnd);
    if (child === c) child = undefined;
    if (programLeadership === l) programLeadership = undefined;
    if (stopping) return;
    if (!l.signal.aborted) {
      // Finished by itself while leading: that is the job's answer, not a failure to retry.
      say(`${plan.command} ${result.how}; releasing '${name}'`);
      void stop(result.code);
      return;
    }
    if (plan.try) {
      // A try-lock never queues again: its one leadership is over.
      say(`${plan.command} ${result.how}; not queueing again (--try)`);
      void stop(result.code);
      return;
    }
    say(`${plan.command} ${result.how}; queueing again for '${name}'`);
  };

  const stop = (status: number | Promise<number>, closeWithinMs?: number): Promise<number> => {
    stopping ??= (async () => {
      for (const t of timers) clearTimeout(t);
      // Release only after the child's whole group is gone, so a standby never overlaps with it.
      await lastExit;
      const code = await status;
      const closed = locker.close();
      // Bounded only when nothing ever ran here and etcd does not answer: then there
      // is no leadership to release, and a lease (if any) expires by itself.
      await (closeWithinMs === undefined ? closed : Promise.race([closed, new Promise((r) => setTimeout(r, closeWithinMs))]));
      if (probes) await stopProbes(probes.server);
      say(led ? `released '${name}'; exiting with status ${code}` : `left the queue for '${name}'; exiting with status ${code}`);
      finish(code);
      return code;
    })();
    return stopping;
  };

  /** Stops for good with 125: the program (if running) gets SIGTERM first, SIGKILL after --grace. */
  const fatal = (message: string): void => {
    if (stopping) return;
    say(message);
    const c = child;
    if (c && !c.done) {
      say(`stopping ${plan.command}: SIGTERM to process group ${c.pid}`);
      c.terminate('SIGTERM', graceMs);
    }
    // etcd refuses us: a release may never be answered, and the lease expires by itself.
    void stop(EXIT.runFailure, 3_000);
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    const c = child;
    if (sig === 'SIGHUP' && plan.sighup === 'forward' && !stopping) {
      if (c && !c.done) {
        say(`SIGHUP: forwarding to process group ${c.pid} (it keeps running; --sighup stop to stop it instead)`);
        c.signal('SIGHUP');
      } else {
        say(`SIGHUP: no program running here; ignored`);
      }
      return;
    }
    if (stopping) {
      if (c) {
        say(`${sig} again: SIGKILL to pid ${c.pid}`);
        c.signal('SIGKILL');
      }
      return;
    }
    if (c && !c.done) {
      // --sighup stop: a HUP means "stop" here, so the program gets the stop signal.
      const forward = sig === 'SIGHUP' ? 'SIGTERM' : sig;
      say(`${sig}: ${forward === sig ? 'forwarding' : `sending ${forward}`} to process group ${c.pid}, then releasing '${name}'`);
      c.terminate(forward, graceMs);
      void stop(c.exited.then((r) => c.gone.then(() => r.code)));
    } else {
      say(`${sig}: leaving the queue for '${name}'`);
      void stop(EXIT.ok);
    }
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, onSignal);

  if (plan.try) {
    locker.tryLock(name, fn).then(
      (r) => {
        if (r.acquired || stopping) return;
        say(`'${name}' is led by ${r.holder ?? 'another host'}: not running ${plan.command} (--try)`);
        void stop(EXIT.busy);
      },
      () => {}, // closed by a signal before etcd answered
    );
  } else {
    locker(
      name,
      fn,
      plan.check === undefined
        ? undefined
        : { healthy: shellCheck(plan.check, plan.checkIntervalMs, name, plan.id), checkInterval: plan.checkIntervalMs },
    );
  }
  if (plan.waitMs !== undefined) {
    const waitMs = plan.waitMs;
    timers.push(
      setTimeout(() => {
        if (led || stopping) return;
        say(`not elected for '${name}' within ${waitMs / 1000} s (--wait): leaving the queue`);
        void stop(EXIT.busy, 3_000);
      }, waitMs),
    );
  }
  if (timeoutMs !== undefined) {
    timers.push(
      setTimeout(() => {
        if (connected || stopping) return;
        say(`etcd at ${conn.endpoints} did not answer within ${timeoutMs / 1000} s (--timeout)`);
        void stop(EXIT.runFailure, 3_000);
      }, timeoutMs),
    );
  }
  locker.ready().then(
    () => {
      connected = true;
      waiting = false;
      say(`connected to etcd at ${conn.endpoints}; ${plan.try ? 'trying' : 'campaigning'} for '${name}' as ${id}`);
    },
    () => {}, // closed before etcd ever answered
  );
  return finished;
}

/**
 * --check: `/bin/sh -c CMD` with LOCKED_NAME and LOCKED_ID, healthy when it exits 0. Killed
 * (SIGKILL) if it outlasts the interval, which the library counts as a failure anyway.
 */
function shellCheck(command: string, intervalMs: number, name: string, id: string): () => Promise<boolean> {
  return () =>
    new Promise<boolean>((resolve, reject) => {
      const p = spawn('/bin/sh', ['-c', command], {
        stdio: 'ignore',
        env: { ...process.env, LOCKED_NAME: name, LOCKED_ID: id },
        timeout: intervalMs,
        killSignal: 'SIGKILL',
      });
      p.on('error', reject);
      p.on('exit', (code, signal) => {
        if (code === 0) resolve(true);
        else reject(new Error(signal ? `--check killed by ${signal}` : `--check exited with status ${code}`));
      });
    });
}
