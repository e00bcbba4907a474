// Parent side of test/fixtures/host.ts: spawn a host as its own process, collect its
// events, send it commands, pause or kill it.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export type FnSpec =
  | { kind: 'hold' }
  /** Runs until its signal aborts, then takes `stopMs` more before its promise settles. */
  | { kind: 'work'; stopMs?: number }
  | { kind: 'throw'; message?: string }
  | { kind: 'remove-after'; ms: number }
  /** Guarded writes with leadership.fence(); `afterAbort`: keep writing that many times after the signal aborted. */
  | { kind: 'fenced'; everyMs: number; afterAbort?: number };

// ——— run-once jobs (locker.once) ———
/**
 * The job a host passes to `locker.once`. None of them honours its signal: the worst case
 * for fencing. `gated`: each attempt first waits until the test sends `{ op: 'release', name }`
 * to this host (a latch: open for good once released), so tests order events without sleeps.
 */
export type JobSpec =
  /** Resolves after `ms`. */
  | { kind: 'ok-after'; ms: number; gated?: boolean }
  /** Rejects. */
  | { kind: 'always-throw'; gated?: boolean }
  /** Never settles (to be SIGKILLed or SIGSTOPped mid-job). */
  | { kind: 'hang' }
  /** Resolves after `ms`; rejects at once when its signal aborts (a job that honours its signal). */
  | { kind: 'until-abort'; ms: number };

export interface HostConfig {
  endpoints: string | string[];
  id: string;
  ttl?: number;
  renewDeadline?: number;
  stopTimeout?: number;
  prefix?: string;
  handleSignals?: boolean;
  /** Names registered at start. */
  names?: string[];
  fn?: FnSpec;
  /** Key prefix of fenced writes (default 'fence/'). */
  fencePrefix?: string;
  /** Adds listeners that throw to 'session', 'lost' and every singleton's 'start' and 'stop' (an application bug the locker must survive). */
  throwingListeners?: boolean;
  /**
   * Chaos probes (test/chaos.ts): every 'deposed' stop carries `lease` (what this process
   * knows of the lease of the deposed key), every lease revoke this process sends is
   * reported ('revoke'), and the leaderships of run-once names (locker.runOnce) are
   * reported as 'start'/'stop' events (from the 'locked:leadership' diagnostics channel).
   */
  probes?: boolean;
}

export type HostCommand =
  | { op: 'register'; name: string; fn?: FnSpec }
  | { op: 'remove'; name: string }
  | { op: 'close' }
  | { op: 'leader'; name: string }
  | { op: 'health' }
  | { op: 'tryLock'; name: string; fn?: FnSpec }
  | { op: 'block'; ms: number }
  /** Calls `locker.once`; replies at once, then reports 'job-start'/'job-end' per attempt and one 'outcome'. */
  | { op: 'once'; name: string; job: JobSpec; maxAttempts?: number; recordTtl?: number }
  /** Opens the gate of gated jobs of `name` on this host. */
  | { op: 'release'; name: string }
  /** process.getActiveResourcesInfo() of the host (what keeps its event loop alive). */
  | { op: 'resources' }
  | { op: 'exit'; code?: number };

export interface HostEvent {
  /** process.hrtime.bigint() in the host, as a decimal string. */
  t: string;
  id: string;
  /** 'crash': an uncaught exception or unhandled rejection (message), reported just before the process dies of it. */
  /** 'watch': the prefix watch moved (from 'locked:watch': from, to, reason in `message`, `revision`); 'stall': the event loop ran a timer `ms` late (the process did not run meanwhile). */
  type:
    | 'ready'
    | 'session'
    | 'lost'
    | 'start'
    | 'stop'
    | 'fn'
    | 'fn-end'
    | 'error'
    | 'write'
    | 'crash'
    | 'blocking'
    | 'revoke'
    | 'watch'
    | 'stall'
    /** The host was asked to close(): stamped just before it calls locker.close(). */
    | 'closing'
    | OnceEventType;
  name?: string;
  token?: string;
  key?: string;
  reason?: string;
  message?: string;
  leaseId?: string;
  seq?: number;
  sent?: string;
  ok?: boolean;
  revision?: string;
  /** 'watch': the member the watch left and the one it moved to; 'stall': how late a timer ran. */
  from?: string;
  to?: string;
  ms?: number;
  // ——— run-once jobs ———
  attempt?: number;
  /** 'outcome': status, attempts and by of the settled `once`; message when it rejected. */
  status?: 'done' | 'failed';
  attempts?: number;
  by?: string;
  // ——— probes (HostConfig.probes) ———
  /** On a 'deposed' stop: the lease of the deposed key as this process saw it. */
  lease?: LeaseEvidence;
}

/**
 * What a host process knew of the lease of a key when that key was deleted under it
 * ('deposed'). Send times are process.hrtime.bigint() stamps (decimal strings) taken on
 * the etcd3 client's calls, independently of the library's own bookkeeping.
 */
export interface LeaseEvidence {
  /** Lease id as in the key (lowercase hex, the key's last segment). */
  hex: string;
  /** The same id in decimal, as the etcd3 client spells it. */
  id: string;
  /** Send time of the last keepalive (or the grant) of this lease that etcd answered with TTL > 0. */
  ackSent?: string;
  /** When etcd answered a keepalive of this lease with TTL ≤ 0 (gone), if it did before the stop. */
  goneSaid?: string;
  /** When this process sent the first revoke of this lease, if it did before the stop. */
  revokeSent?: string;
  /** The library's view (locker.health()): the lease is its current one, not lost, inside its step-down deadline. */
  libAlive: boolean;
  /** health().lastKeepaliveAgoMs when health().leaseId is this lease. */
  libAckAgoMs?: number;
}

/** Run-once events: an attempt of the job began / ended here; the `once` call settled. */
export type OnceEventType = 'job-start' | 'job-end' | 'outcome';

const FIXTURE = fileURLToPath(new URL('../fixtures/host.js', import.meta.url));

export class Host {
  readonly events: HostEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  private rid = 0;
  private readonly replies = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private listeners: ((ev: HostEvent) => void)[] = [];
  // ——— fault stamps for the history checker (test/helpers/history.ts) ———
  /** process.hrtime.bigint() right after SIGKILL was sent by `kill()`/`stop()`. */
  killedAt: bigint | undefined;
  /** process.hrtime.bigint() when the parent saw the exit. */
  exitedAt: bigint | undefined;
  /** SIGSTOP … SIGCONT intervals sent through `kill()`; `to` undefined while stopped. */
  readonly pauses: { from: bigint; to?: bigint }[] = [];

  constructor(
    readonly config: HostConfig,
    readonly child: ChildProcess,
  ) {
    child.on('message', (msg: HostEvent | { rid: number; value?: unknown; error?: string }) => {
      if ('rid' in msg) {
        const r = this.replies.get(msg.rid);
        this.replies.delete(msg.rid);
        if (msg.error !== undefined) r?.reject(new Error(`host ${config.id}: ${msg.error}`));
        else r?.resolve(msg.value);
        return;
      }
      this.events.push(msg);
      for (const l of this.listeners) l(msg);
    });
    // Send failures are reported through request()'s callback; without a listener the
    // child's 'error' would be an uncaught exception in the test process.
    child.on('error', () => {});
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitedAt ??= process.hrtime.bigint();
        for (const r of this.replies.values()) r.reject(new Error(`host ${config.id} exited (${code ?? signal})`));
        this.replies.clear();
        resolve({ code, signal });
      });
    });
  }

  get id(): string {
    return this.config.id;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  onEvent(l: (ev: HostEvent) => void): void {
    this.listeners.push(l);
  }

  request<T = unknown>(cmd: HostCommand): Promise<T> {
    const rid = ++this.rid;
    return new Promise<T>((resolve, reject) => {
      this.replies.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      // A host SIGKILLed a moment ago still looks alive until its exit is seen; a send to
      // it fails (EPIPE) and must reject this request, not throw from the child's 'error'.
      this.child.send({ rid, cmd }, (err) => {
        if (!err) return;
        this.replies.delete(rid);
        reject(new Error(`host ${this.config.id}: request ${cmd.op} not sent: ${err.message}`));
      });
    });
  }

  /** Waits for an event matching `pred` (already seen ones count), with a generous deadline. */
  waitEvent(pred: (ev: HostEvent) => boolean, timeoutMs = 20_000, message = 'event'): Promise<HostEvent> {
    return waitFor(() => this.events.find(pred), { timeoutMs, intervalMs: 10, message: `host ${this.id}: ${message}` });
  }

  /** Is this host leading `name` according to its own events? */
  /** True while fn of `name` runs here: from its start until its promise settled (the span overlap is about). */
  runs(name: string): boolean {
    let running = false;
    for (const ev of this.events) {
      if (ev.name !== name) continue;
      if (ev.type === 'fn') running = true;
      if (ev.type === 'fn-end') running = false;
    }
    return running && this.alive;
  }

  leads(name: string): boolean {
    let leading = false;
    for (const ev of this.events) {
      if (ev.name !== name) continue;
      if (ev.type === 'start') leading = true;
      if (ev.type === 'stop') leading = false;
    }
    return leading && this.alive;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.alive) return;
    // Stamps on the safe side for the checker: a pause counts from after SIGSTOP went
    // out until before SIGCONT does, a killed process led until after SIGKILL went out.
    const open = this.pauses.at(-1)?.to === undefined ? this.pauses.at(-1) : undefined;
    if (signal === 'SIGCONT' && open) open.to = process.hrtime.bigint();
    this.child.kill(signal);
    if (signal === 'SIGKILL') this.killedAt ??= process.hrtime.bigint();
    if (signal === 'SIGSTOP' && !open) this.pauses.push({ from: process.hrtime.bigint() });
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.kill('SIGKILL');
    await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.signalCode === 'SIGSTOP' || this.alive) this.child.kill('SIGCONT');
    await this.stop();
  }
}

const all = new Set<Host>();
process.on('exit', () => {
  for (const h of all) {
    try {
      h.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts a host process and waits until it has reported `ready`. */
export async function spawnHost(config: HostConfig): Promise<Host> {
  const child = fork(FIXTURE, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const host = new Host(config, child);
  all.add(host);
  void host.exited.then(() => all.delete(host));
  await host.waitEvent((e) => e.type === 'ready', 20_000, 'ready');
  return host;
}

/** The hosts among `hosts` that currently lead `name`. */
export function leadersOf(hosts: Host[], name: string): Host[] {
  return hosts.filter((h) => h.leads(name));
}

/** One event as a line of a failure report: type, name, token, reason, key, watch move, stall, message. */
export function describeEvent(e: HostEvent): string {
  return [
    e.type,
    e.name,
    e.token && `token ${e.token}`,
    e.reason,
    e.leaseId && `lease ${e.leaseId}`,
    e.key,
    e.from && `${e.from} → ${e.to} after rev ${e.revision}`,
    e.ms !== undefined && `${e.ms} ms`,
    e.message,
  ]
    .filter(Boolean)
    .join(' ');
}
