// A program run by `locked run` / `locked once`: its own process group, signals to the
// whole group, "gone" only when every process of the group is gone, and a watchdog that
// kills the group if this process dies without cleaning up (SIGKILL, OOM killer).
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { say } from './messages.js';

/**
 * The environment a program of `run` or `once` is promised: ours, plus LOCKED_NAME, _ID,
 * _TOKEN, _ENDPOINTS, _PREFIX and what the caller adds (`run`: LOCKED_ELECTION_KEY; `once`:
 * LOCKED_ATTEMPT).
 */
export function programEnv(
  plan: { name: string; id: string },
  conn: { endpoints: string; prefix: string },
  token: string,
  extra: Record<string, string>,
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LOCKED_NAME: plan.name,
    LOCKED_ID: plan.id,
    LOCKED_TOKEN: token,
    ...extra,
    LOCKED_ENDPOINTS: conn.endpoints,
    LOCKED_PREFIX: conn.prefix,
  };
}

export interface ChildSpec {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /**
   * If this process dies while the group runs, the watchdog sends SIGTERM at once and
   * SIGKILL this long after. Must be shorter than the time etcd keeps the lease alive
   * without us (ttl/3 of margin at least), so no standby can start next to it.
   */
  orphanKillMs: number;
}

export interface ChildExit {
  /** Shell-style status: the exit code, 128 + signal number, 126/127 for failed starts. */
  code: number;
  /** For messages: 'exited with status 3', 'was killed by SIGTERM'. */
  how: string;
}

// The watchdog is /bin/sh, not a second Node process: a few hundred KB per program. It is
// started BEFORE the program and blocks on a pipe from us: first we write the program's
// process group id, and 'disarm' once the group is gone; EOF after the group id means we
// died: it signals the group (SIGTERM, then SIGKILL after $1 tenths of a second unless the
// group is gone). Started after the program, it left a window (a fork of /bin/sh: ms, tens
// of ms on a loaded host) in which a SIGKILL of `locked` orphaned the program for good —
// running on while the lease expired and a standby started its own: two at once. Now the
// window is the one write of the group id right after the spawn. It polls the group too,
// so it never outlives it by long (after which the group id could be reused). No `kill --`:
// dash, Debian's sh, takes "-PGID" as a process group only without it.
const WATCHDOG = `
IFS= read -r pgid || exit 0
IFS= read -r line
[ "$line" = disarm ] && exit 0
kill -TERM "-$pgid" 2>/dev/null || exit 0
i=0
while [ "$i" -lt "$1" ]; do
  kill -0 "-$pgid" 2>/dev/null || exit 0
  sleep 0.1
  i=$((i + 1))
done
kill -KILL "-$pgid" 2>/dev/null
exit 0`;

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

export class Child {
  readonly process: ChildProcess;
  readonly pid: number | undefined;
  /** Settles when the direct child has exited (or failed to start); never rejects. */
  readonly exited: Promise<ChildExit>;
  /**
   * Settles when the child's whole process group is gone — grandchildren that ignore
   * SIGTERM (`sh -c`, scripts with background jobs) included. Whoever releases a name
   * for this program does it only after this.
   */
  readonly gone: Promise<void>;
  /** True once the process group is gone: it must never be signalled again (pgid reuse). */
  done = false;
  private killTimer: NodeJS.Timeout | undefined;
  /** Monotonic ms at which the group gets SIGKILL, if it is still there. */
  private killAt: number | undefined;

  constructor(spec: ChildSpec) {
    // A process group of its own: the whole tree gets the signals, and a terminal's
    // Ctrl-C reaches only us (we forward it after deciding what to do). stdin is
    // /dev/null: a singleton's program is not interactive, and it may run on any host.
    const dog = watchdog(spec.orphanKillMs); // first: see WATCHDOG
    const p = spawn(spec.command, spec.args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env: spec.env });
    this.process = p;
    this.pid = p.pid;
    const disarm = dog(this.pid);
    this.exited = new Promise<ChildExit>((resolve) => {
      p.once('error', (err: NodeJS.ErrnoException) => {
        say(`cannot start '${spec.command}': ${err.message}`);
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
    // The group outlives the direct child while any member of it runs.
    this.gone = this.exited
      .then(() => (this.pid === undefined ? undefined : groupGone(this.pid)))
      .then(() => {
        this.done = true;
        disarm();
        if (this.killTimer) clearTimeout(this.killTimer);
      });
  }

  /** Sends `sig` to the whole group — never after it is gone (the id could be someone else's by then). */
  signal(sig: NodeJS.Signals): void {
    if (this.done || this.pid === undefined) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // The group is gone already.
    }
  }

  /** SIGKILL to the group no later than `afterMs` from now (an earlier deadline already set stands). */
  killBy(afterMs: number, why: string): void {
    if (this.done) return;
    const at = performance.now() + afterMs;
    if (this.killAt !== undefined && this.killAt <= at) return;
    this.killAt = at;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => {
      if (this.done) return;
      say(`process group ${this.pid} still running ${Math.round(afterMs / 100) / 10} s after ${why}: SIGKILL`);
      this.signal('SIGKILL');
    }, afterMs);
  }

  /** `sig` now, SIGKILL after `afterMs` unless the whole group is gone first. */
  terminate(sig: NodeJS.Signals, afterMs: number): void {
    this.signal(sig);
    this.killBy(afterMs, sig);
  }
}

/**
 * Starts a watchdog; returns the function that hands it the program's process group id
 * (undefined: the program did not start — the watchdog ends) and returns the disarm to
 * call once that group is gone.
 */
function watchdog(killAfterMs: number): (pgid: number | undefined) => () => void {
  let dog: ChildProcess;
  try {
    // detached: a session of its own, so the signals that reach us (a terminal's Ctrl-C
    // to our group, a supervisor's SIGTERM) do not reach it.
    dog = spawn('/bin/sh', ['-c', WATCHDOG, 'locked-watchdog', String(Math.max(1, Math.floor(killAfterMs / 100)))], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch (err) {
    say(`cannot start the watchdog of the program (${(err as Error).message}): if this process is killed, the program keeps running`);
    return () => () => {};
  }
  dog.on('error', (err) => say(`watchdog of the program failed: ${err.message}`));
  dog.stdin?.on('error', () => {}); // EPIPE if it ended first
  dog.unref();
  // The pipe must not keep our event loop alive, only exist.
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return (pgid) => {
    if (pgid === undefined) {
      dog.stdin?.end();
      return () => {};
    }
    dog.stdin?.write(`${pgid}\n`);
    return () => {
      dog.stdin?.end('disarm\n');
    };
  };
}
