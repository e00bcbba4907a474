import { EventEmitter } from 'node:events';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { CampaignBatcher } from './campaign.js';
import type { Clock } from './clock.js';
import { EtcdUnavailableError, LockerClosedError, describe, type LeaseLostError } from './errors.js';
import { nameOf, validateName } from './keys.js';
import { readLeader, readPrefix } from './reads.js';
import { resolveOptions, type LockerOptions, type ResolvedOptions } from './options.js';
import type { KeyEvent } from './queue.js';
import { Session } from './session.js';
import { onShutdown } from './signals.js';
import { Singleton, type SingletonFunction, type SingletonHost, type TryLockResult } from './singleton.js';
import { clusterStatus, failover, observe, type NameStatus, type Observer } from './cluster.js';
import { once, type OnceFunction, type OnceOptions, type OnceOutcome } from './once.js';
import { PrefixWatch } from './watch.js';

export interface LockerEvents {
  /** etcd trouble or a failing fn with no `error` listener of its own. The locker keeps going. */
  error: [error: Error];
  /** A lease was granted (at start and after every recovery). */
  session: [leaseId: string];
  /** The lease was lost: every leadership ended with reason 'lost'; a new lease is on its way. */
  lost: [error: LeaseLostError];
}

/** Cheap, synchronous health for probes. */
export interface Health {
  /** True when the locker holds a lease that is inside its step-down deadline (or has nothing to hold). */
  ok: boolean;
  leaseId: string | undefined;
  /** Milliseconds since the send of the last acknowledged keepalive. */
  lastKeepaliveAgoMs: number | undefined;
  /** Names this host leads now. */
  leading: string[];
  /** Names registered on this host. */
  registered: string[];
  watchConnected: boolean;
  lastError: string | undefined;
}

/** A locker: call it to register a singleton; the methods manage the whole host. */
export interface Locker {
  /** Registers `fn` under `name`: this host campaigns, and runs fn whenever elected. */
  (name: string, fn: SingletonFunction): Singleton;
  /** This host's node id (the value of its election keys). */
  id(): string;
  /** The singletons registered on this host, by name. */
  singletons(): Record<string, Singleton>;
  /** Node id of the cluster-wide leader of `name`, or undefined when nobody campaigns for it. */
  leader(name: string): Promise<string | undefined>;
  /**
   * Campaigns for `name` only if nobody else does, and never queues: resolves with the
   * running singleton, or with the holder's node id (nothing is left in etcd then).
   * A try-lock that is later lost stops and does not campaign again.
   */
  tryLock(name: string, fn: SingletonFunction): Promise<TryLockResult>;
  /** True while anyone, anywhere, leads `name`. */
  exists(name: string): Promise<boolean>;
  /** Runs `fn` to completion once across the cluster (see README, "run-once jobs"). */
  once(name: string, fn: OnceFunction, options?: OnceOptions): Promise<OnceOutcome>;
  /** Leader changes of `name`, for any host, campaigning or not. */
  observe(name: string): Observer;
  /** Every name under the prefix, cluster-wide: leader, token and queue. */
  status(): Promise<NameStatus[]>;
  /** Forces the leader of `name` to hand over; resolves with the new leader's id, if any. */
  failover(name: string): Promise<string | undefined>;
  /** Cheap, synchronous health for probes. */
  health(): Health;
  /** Resolves once the locker holds a lease and watches its prefix (registering a name starts both). */
  ready(): Promise<void>;
  /** Resigns everything, revokes the lease and closes the client. Idempotent. */
  close(): Promise<void>;
  /** The etcd3 client, for your own (fenced) writes. */
  readonly client: Etcd3;
  readonly prefix: string;
  readonly ttl: number;
  // No event `once` here: `locker.once(name, fn)` is the run-once job.
  on<K extends keyof LockerEvents>(event: K, listener: (...args: LockerEvents[K]) => void): Locker;
  off<K extends keyof LockerEvents>(event: K, listener: (...args: LockerEvents[K]) => void): Locker;
  [Symbol.asyncDispose](): Promise<void>;
}

/** gRPC keepalive lets a connection that went silent (no RST) be noticed and replaced. etcd refuses pings more often than every 5 s. */
const GRPC_KEEPALIVE = { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 };

/**
 * The host side of all elections under one prefix: one etcd client, one lease (the
 * Session), one prefix watch, and the registered Singletons. It recovers by itself:
 * when the session is lost it grants a new lease and every name campaigns again.
 */
export class LockerCore extends EventEmitter<LockerEvents> implements SingletonHost {
  readonly client: Etcd3;
  readonly batcher: CampaignBatcher;
  readonly opts: ResolvedOptions;
  private readonly names = new Map<string, Singleton>();
  private current: Session | undefined;
  private watch: PrefixWatch | undefined;
  /** The prefix watch was confirmed once: campaign reads are covered by it from then on. */
  private watchUp = false;
  private watchConnected = false;
  private started = false;
  private readyWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly lifetime = new AbortController();
  private readonly unhook: (() => void) | undefined;
  private lastError: Error | undefined;
  /** Leases of lost sessions, revoked again once etcd answers (their keys block our names until then). */
  private readonly orphans = new Set<string>();
  private warned = false;

  constructor(hosts: unknown, options?: LockerOptions) {
    super();
    this.opts = resolveOptions(hosts, options);
    const { etcd } = this.opts;
    this.client = new Etcd3({
      ...etcd,
      hosts: this.opts.hosts,
      grpcOptions: { ...GRPC_KEEPALIVE, ...etcd.grpcOptions },
      faultHandling: {
        // etcd3's watch reconnect backoff grows to 30 s: after an outage our names would be
        // blind that long. Campaigns don't need the watch up, but hand-overs do.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next(),
        // etcd3 shuts a member out for 5 s after 3 failures; a host that was cut off then
        // rejoins 5–10 s after the heal. A lease lives for seconds: probe again after 1 s.
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(3) }),
        ...etcd.faultHandling,
      },
    });
    this.batcher = new CampaignBatcher(this.client, () => this.requestTimeoutMs());
    if (this.opts.handleSignals) this.unhook = onShutdown(() => this.close());
  }

  /** Aborted when close() begins: views living on this locker's client (observers) end with it. */
  get closeSignal(): AbortSignal {
    return this.lifetime.signal;
  }

  // ——— SingletonHost ———
  get prefix(): string {
    return this.opts.prefix;
  }
  get nodeId(): string {
    return this.opts.id;
  }
  get clock(): Clock {
    return this.opts.clock;
  }
  get stopTimeoutMs(): number {
    return this.opts.stopTimeoutMs;
  }
  requestTimeoutMs(): number {
    return Math.max(this.opts.renewDeadlineMs, 2000);
  }
  session(): Session | undefined {
    return this.watchUp && this.current && this.current.alive() ? this.current : undefined;
  }
  unregister(s: Singleton): void {
    if (this.names.get(s.name) === s) this.names.delete(s.name);
  }
  report(err: Error): void {
    this.lastError = err;
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
      } catch {
        // A throwing error listener must not take the election logic down with it.
      }
    } else if (!this.warned) {
      // No listener: say it once per outage instead of throwing out of an emitter.
      this.warned = true;
      process.emitWarning(`locked: ${err.message} (add an 'error' listener to see every occurrence)`, 'LockedWarning');
    }
  }

  // ——— public operations ———

  register(name: string, fn: SingletonFunction, mode: 'queue' | 'try' = 'queue'): Singleton {
    validateName(name);
    if (typeof fn !== 'function') throw new TypeError(`fn for '${name}' must be a function, got ${typeof fn}`);
    if (this.closing) throw new LockerClosedError(`register '${name}'`);
    if (this.names.has(name)) throw new Error(`singleton '${name}' is already registered on this locker (id ${this.nodeId})`);
    const s = new Singleton(name, fn, this, mode);
    this.names.set(name, s);
    this.ensureStarted();
    s.start();
    return s;
  }

  async tryLock(name: string, fn: SingletonFunction): Promise<TryLockResult> {
    const s = this.register(name, fn, 'try');
    const outcome = s.outcome();
    await this.ready();
    s.start();
    return outcome;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.leader(name)) !== undefined;
  }

  singletons(): Record<string, Singleton> {
    return Object.fromEntries(this.names);
  }

  async leader(name: string): Promise<string | undefined> {
    validateName(name);
    return (await readLeader(this.client, this.prefix, name, this.requestTimeoutMs()))?.value;
  }

  health(): Health {
    const s = this.current;
    const leading = [...this.names.values()].filter((x) => x.isLeader).map((x) => x.name);
    return {
      ok: !this.closing && (!this.started || (s !== undefined && s.alive() && this.watchUp)),
      leaseId: s?.leaseId,
      lastKeepaliveAgoMs: s ? Math.round(this.clock.now() - s.lastAcknowledged()) : undefined,
      leading,
      registered: [...this.names.keys()],
      watchConnected: this.watchConnected,
      lastError: this.lastError?.message ?? s?.describeLastError(),
    };
  }

  ready(): Promise<void> {
    if (this.closing) return Promise.reject(new LockerClosedError('wait for ready'));
    this.ensureStarted();
    if (this.session()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.unhook?.();
    this.lifetime.abort();
    // Stop every fn first, then revoke: the revoke lets standbys in, so it must come last.
    await Promise.allSettled([...this.names.values()].map((s) => s.close()));
    this.names.clear();
    const session = this.current;
    this.current = undefined;
    await Promise.allSettled([this.watch?.close(), session?.close(true, this.opts.renewDeadlineMs)]);
    this.client.close();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  // ——— lifecycle ———

  private ensureStarted(): void {
    if (this.started || this.closing) return;
    this.started = true;
    void this.startWatch();
    void this.renew();
  }

  private async startWatch(): Promise<void> {
    try {
      this.watch = new PrefixWatch(this.client, this.prefix, {
        events: (evs) => this.dispatch(evs),
        resync: () => void this.resyncAll(),
        // A reconnecting watch resumes gap-free, so campaigning goes on while it is down;
        // the state only feeds health().
        connected: (up) => {
          this.watchConnected = up;
        },
      });
      await this.watch.ready;
    } catch (err) {
      if (this.closing) return;
      void this.watch?.close();
      this.report(new EtcdUnavailableError('watch', err));
      await this.pause(1000);
      return this.startWatch();
    }
    if (this.closing) {
      void this.watch.close();
      return;
    }
    this.watchUp = this.watchConnected = true;
    this.becameReady();
  }

  /** Grants a lease, retrying with exponential backoff and jitter until it works or the locker closes. */
  private async renew(): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    while (!this.closing) {
      try {
        const session = await Session.grant(this.client, this.opts, (err) => this.lost(session, err));
        if (this.closing) {
          await session.close(true);
          return;
        }
        this.current = session;
        this.warned = false;
        this.revokeOrphans();
        this.emit('session', session.leaseId);
        this.becameReady();
        return;
      } catch (err) {
        if (this.closing) return;
        this.report(new EtcdUnavailableError('lease grant', err));
        await this.pause(backoff.duration);
        backoff = backoff.next(undefined);
      }
    }
  }

  private lost(session: Session, err: LeaseLostError): void {
    if (this.current !== session) return;
    this.current = undefined;
    // The session tries to revoke its lease at once; during an outage that fails, and the
    // old keys would make every name of ours wait a full TTL after etcd is back. Revoke
    // again as soon as a new lease shows etcd answers.
    this.orphans.add(session.leaseId);
    for (const s of this.names.values()) s.sessionLost();
    try {
      this.emit('lost', err);
    } catch (e) {
      this.report(e instanceof Error ? e : new Error(describe(e)));
    }
    if (!this.closing) void this.renew();
  }

  private revokeOrphans(): void {
    for (const id of this.orphans) {
      this.orphans.delete(id);
      // An unknown lease (already expired or revoked) is the usual answer: nothing to do.
      this.client.leaseClient.leaseRevoke({ ID: id }, { deadline: new Date(Date.now() + this.requestTimeoutMs()) }).catch(() => {});
    }
  }

  private becameReady(): void {
    if (!this.session()) return;
    for (const w of this.readyWaiters.splice(0)) w();
    for (const s of this.names.values()) s.start();
  }

  private dispatch(events: KeyEvent[]): void {
    // After a pause (SIGSTOP, VM freeze) I/O callbacks run before timers: judge the
    // step-down deadline first, so a woken leader stops as 'lost' before acting on events.
    this.current?.checkDeadline();
    // Group by name: a batch of events for one name is applied before the queue is judged.
    let byName: Map<string, KeyEvent[]> | undefined;
    for (const ev of events) {
      const name = nameOf(this.prefix, ev.key);
      if (name === undefined || !this.names.has(name)) continue;
      byName ??= new Map();
      const list = byName.get(name);
      if (list) list.push(ev);
      else byName.set(name, [ev]);
    }
    if (!byName) return;
    for (const [name, evs] of byName) this.names.get(name)?.events(evs);
  }

  /**
   * The watch missed events (compaction while we were away): one snapshot of the whole
   * prefix, not a read per name, retried until it works — a queue left without a
   * snapshot would never judge its name again.
   */
  private async resyncAll(): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    while (!this.closing) {
      try {
        const { revision, queues } = await readPrefix(this.client, this.prefix, this.requestTimeoutMs());
        for (const s of this.names.values()) s.resync(queues.get(s.name) ?? [], revision);
        return;
      } catch (err) {
        this.report(new EtcdUnavailableError(`re-read of prefix '${this.prefix}'`, err));
        await this.pause(backoff.duration);
        backoff = backoff.next(undefined);
      }
    }
  }

  /** Waits `ms`, or less if the locker closes. Leaves no listener behind (outages can be long). */
  private pause(ms: number): Promise<void> {
    const signal = this.lifetime.signal;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Creates a locker for the etcd cluster at `hosts` (`'h1:2379,h2:2379'` or an array). */
export function locked(hosts: string | string[], options?: LockerOptions): Locker {
  const core = new LockerCore(hosts, options);
  const locker = ((name: string, fn: SingletonFunction) => core.register(name, fn)) as Locker;
  const methods = {
    id: () => core.nodeId,
    singletons: () => core.singletons(),
    leader: (name: string) => core.leader(name),
    tryLock: (name: string, fn: SingletonFunction) => core.tryLock(name, fn),
    exists: (name: string) => core.exists(name),
    once: (name: string, fn: OnceFunction, options?: OnceOptions) => once(core, name, fn, options),
    observe: (name: string) => observe(core, name),
    status: () => clusterStatus(core),
    failover: (name: string) => failover(core, name),
    health: () => core.health(),
    ready: () => core.ready(),
    close: () => core.close(),
    on: (event: keyof LockerEvents, l: (...args: never[]) => void) => (core.on(event, l as never), locker),
    off: (event: keyof LockerEvents, l: (...args: never[]) => void) => (core.off(event, l as never), locker),
    [Symbol.asyncDispose]: () => core.close(),
  };
  Object.assign(locker, methods);
  Object.defineProperties(locker, {
    client: { get: () => core.client, enumerable: true },
    prefix: { get: () => core.prefix, enumerable: true },
    ttl: { get: () => core.opts.ttl, enumerable: true },
  });
  return locker;
}
