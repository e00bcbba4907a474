// `locked run NAME -- CMD`: any program as a cluster-wide singleton. The library does
// the election, supervisor.ts decides what each leadership means for the program; this
// file reads the plan from the command line and wires the supervisor to the locker, the
// process's signals, child processes and the probes of --listen.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isHealthCheckError, type Clock, type Leadership } from '../index.js';
import { Child, programEnv } from './child.js';
import { programLocker } from './client.js';
import type { Connection } from './connection.js';
import { EXIT } from './exit.js';
import { authFailure } from './failures.js';
import { checkName, duration, ttlFlag } from './flags.js';
import { UsageError, clean, describe, say } from './messages.js';
import { flagLabel, type Parsed } from './parse.js';
import { listenFlag, startProbes, stopProbes, type ListenAddress } from './probes.js';
import { Supervisor } from './supervisor.js';

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
  /** --weight: this host's relative share of the leaderships (balancing); 0 = standby only. */
  weight: number | undefined;
  /** --zone: this host's failure domain. */
  zone: string | undefined;
  /** --prefer: the hosts (ids) that should lead NAME, best first. */
  prefer: string[] | undefined;
  /** --prefer-hold-down: how long a preferred host must be up before NAME moves back to it. */
  preferHoldDownMs: number | undefined;
  /** --respread-delay: balancing holds still this long after a host disappeared. */
  respreadDelayMs: number | undefined;
}

export function planRun(parsed: Parsed): RunPlan {
  const { positionals, rest, values } = parsed;
  if (positionals.length === 0) throw new UsageError('missing NAME', 'run');
  const [name, ...more] = positionals;
  checkName(name, 'run');
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
    weight: weightFlag(values.weight, label('weight')),
    zone: zoneFlag(values.zone, label('zone')),
    prefer: preferFlag(values.prefer, label('prefer'), values.try === true, label('try')),
    preferHoldDownMs:
      values['prefer-hold-down'] === undefined ? undefined : duration(label('prefer-hold-down'), values['prefer-hold-down'], 0, 'run'),
    respreadDelayMs:
      values['respread-delay'] === undefined ? undefined : duration(label('respread-delay'), values['respread-delay'], 0, 'run'),
  };
}

/** --prefer: host ids separated by commas, best first (the singleton option `prefer`). */
function preferFlag(v: string | undefined, flag: string, isTry: boolean, tryFlag: string): string[] | undefined {
  if (v === undefined) return undefined;
  const ids = v.split(',').map((s) => s.trim());
  if (ids.some((id) => id.length === 0 || id.length > 253))
    throw new UsageError(`${flag} must be host ids separated by commas (each 1 to 253 characters), got '${v}'`, 'run');
  if (isTry) throw new UsageError(`${flag} and ${tryFlag} exclude each other (--try never hands over)`, 'run');
  return ids;
}

/** --weight: a number ≥ 0 (the locker's `weight`). */
function weightFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1_000_000)
    throw new UsageError(`${flag} must be a number from 0 to 1000000, got '${v}'`, 'run');
  return n;
}

/** --zone: 1 to 64 characters (the locker's `zone`). */
function zoneFlag(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length > 64) throw new UsageError(`${flag} must be 1 to 64 characters, got '${v}'`, 'run');
  return v;
}

/** Timers of the real process; performance.now() keeps counting while the process is stopped. */
const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/**
 * Runs until the child exits by itself or a signal ends us; resolves with the exit
 * status. `timeoutMs`: give up with 125 if etcd has not answered in that time.
 */
export async function runCommand(plan: RunPlan, conn: Connection, timeoutMs?: number): Promise<number> {
  const { name, graceMs } = plan;
  const locker = programLocker(conn, plan, 'run');
  // Default renewDeadline is ⅔ ttl: after a lost lease, etcd may let a standby in ttl/3 later.
  const lossMarginMs = (plan.ttl * 1000) / 3;
  const supervisor = new Supervisor(
    { ...plan, lossMarginMs, timeoutMs, endpoints: conn.endpoints },
    {
      start: (l) => startProgram(plan, conn, l, Math.min(graceMs, lossMarginMs)),
      release: async (withinMs) => {
        const closed = locker.close();
        // Bounded only when nothing ever ran here and etcd does not answer: then there
        // is no leadership to release, and a lease (if any) expires by itself.
        await (withinMs === undefined ? closed : Promise.race([closed, new Promise((r) => setTimeout(r, withinMs))]));
        if (probes) await stopProbes(probes.server);
      },
      say,
      clock: systemClock,
    },
  );
  const probes = plan.listen
    ? await startProbes(plan.listen, locker, supervisor).catch((err: unknown) => {
        say(`cannot listen on ${plan.listen!.host}:${plan.listen!.port}: ${describe(err)}`);
        return undefined;
      })
    : undefined;
  if (plan.listen && !probes) {
    await locker.close();
    return EXIT.runFailure;
  }
  if (probes) say(`listening on ${probes.url} (/healthz /readyz /leader /metrics)`);

  locker.on('error', (err) => {
    // A user or a prefix etcd refuses stays refused: retrying would only hide it.
    const refused = authFailure(err, conn);
    if (refused) return supervisor.fatal(refused.message);
    // The --check verdicts are this host's own business, not etcd trouble: each is said.
    if (isHealthCheckError(err)) return say(err.message);
    supervisor.outage(clean(err.message));
  });
  locker.on('session', () => supervisor.sessionUp());
  locker.on('lost', (err) => say(err.message));
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, (sig: NodeJS.Signals) => supervisor.signal(sig));

  const fn = (_remove: unknown, l: Leadership): Promise<void> => supervisor.lead(l);
  if (plan.try) {
    locker.tryLock(name, fn).then(
      (r) => {
        if (!r.acquired) supervisor.notAcquired(r.holder);
      },
      () => {}, // closed by a signal before etcd answered
    );
  } else {
    locker(name, fn, {
      ...(plan.check === undefined
        ? {}
        : { healthy: shellCheck(plan.check, plan.checkIntervalMs, name, plan.id), checkIntervalMs: plan.checkIntervalMs }),
      ...(plan.prefer === undefined ? {} : { prefer: plan.prefer }),
    });
  }
  supervisor.start();
  locker.ready().then(
    () => supervisor.connected(),
    () => {}, // closed before etcd ever answered
  );
  return supervisor.finished;
}

/** The program for leadership `l`, with the LOCKED_* variables it is promised. */
function startProgram(plan: RunPlan, conn: Connection, l: Leadership, orphanKillMs: number): Child {
  return new Child({
    command: plan.command,
    args: plan.args,
    // Not LOCKED_KEY: that is the TLS key file a `locked` command run by the program reads.
    env: programEnv(plan, conn, l.token, { LOCKED_ELECTION_KEY: l.key }),
    // If we die, etcd keeps our lease up to ttl after its last renewal, ≥ ⅔ ttl after
    // the death: the watchdog's SIGKILL (min(grace, ttl/3)) comes well before.
    orphanKillMs,
  });
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
