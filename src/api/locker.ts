import { EventEmitter } from 'node:events';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError } from '../etcd/etcd3.js';
import { checkSignal, untilAborted, type SignalOption } from '../core/abort.js';
import { CampaignBatcher } from '../core/campaign.js';
import { sleep, type Clock } from '../core/clock.js';
import { publishError, publishSession, publishWatchMove } from '../core/diagnostics.js';
import { safeEmit } from '../core/emit.js';
import {
  AbortedError,
  EtcdUnavailableError,
  HostNotFoundError,
  LockCancelledError,
  LockerClosedError,
  NotLeaderError,
  describe,
  isHandOverError,
  type LeaseLostError,
} from '../core/errors.js';
import { EtcdStore } from '../etcd/etcd-store.js';
import { Members, withRequireLeader } from '../etcd/members.js';
import { membersHealth, polledMembersHealth, type MemberHealth, type PolledMemberHealth } from '../features/member-health.js';
import type { MemberPollOptions, QuorumView } from '../etcd/member-status.js';
import { MetricsRecorder, timedKeepalive, type MetricsSnapshot } from '../features/metrics.js';
import { namePrefix, validateName } from '../etcd/keys.js';
import { Mover, knownHosts, requestHandOver } from '../features/mover.js';
import { hostsStatus, parseControl, type HostStatus } from '../features/placement.js';
import {
  resolveDrainOptions,
  resolveFailoverOptions,
  resolveLockOptions,
  resolveOptions,
  resolveRunOnceOptions,
  resolveSingletonOptions,
  resolveTryLockOptions,
  resolveUndrainOptions,
  type DrainOptions,
  type FailoverOptions,
  type LockOptions,
  type LockerOptions,
  type OnceOptions,
  type ResolvedOptions,
  type SingletonOptions,
} from './options.js';
import { ReleaseGate } from '../core/release.js';
import { Session } from '../core/session.js';
import type { ControlStore, Store } from '../etcd/store.js';
import { onShutdown } from '../features/signals.js';
import { Singleton, type Leadership, type SingletonFunction, type TryLockResult } from './singleton.js';
import { clusterStatus, failover, observe, type NameStatus, type Observer } from '../features/cluster.js';
import { runOnce, type OnceFunction, type OnceOutcome } from '../features/once.js';
import { PrefixView } from '../core/view.js';

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
  /**
   * Liveness (client-go's leader-election health check): false only while a leader fn of
   * this host still runs past the time etcd may have expired its lease (see `health()`).
   * Never false merely because etcd is unreachable: restarting would not bring it back.
   */
  live: boolean;
  /** Readiness: a lease is held (inside its step-down deadline) and the prefix watch is connected. */
  ready: boolean;
  /** Names whose fn makes `live` false: still running past its lease's TTL since the last acknowledged keepalive. */
  overdue: string[];
  leaseId: string | undefined;
  /** Milliseconds since the send of the last acknowledged keepalive. */
  lastKeepaliveAgoMs: number | undefined;
  /** Names this host leads now. */
  leading: string[];
  /** Names registered on this host. */
  registered: string[];
  watchConnected: boolean;
  /** The etcd member the prefix watch is on (as listed in `hosts`); it follows the member that answers and keeps up. */
  watchEndpoint: string | undefined;
  lastError: string | undefined;
  /** This host's view of each etcd member, in `hosts` order: what it uses it for and how its calls there went. */
  members: MemberHealth[];
}

/** `health({ members: true })`: health() with each member's own answer, and the quorum margin. */
export interface MembersHealth extends Health {
  members: PolledMemberHealth[];
  quorum: QuorumView;
}

/** Options of `health({ members: true })`: `timeoutMs` bounds each call to each member (default 1000). */
export interface MembersHealthOptions extends MemberPollOptions, SignalOption {
  members: true;
}

/**
 * A locker is callable: `locker(name, fn)` registers an elected singleton (the same as
 * `locker.register(name, fn)`).
 */
export interface Locker {
  /** Registers `fn` under `name`: this host campaigns, and runs fn whenever elected (`healthy`: only while a check passes). */
  (name: string, fn: SingletonFunction, options?: SingletonOptions): Singleton;
}

/** gRPC keepalive lets a connection that went silent (no RST) be noticed and replaced. etcd refuses pings more often than every 5 s. */
const GRPC_KEEPALIVE = { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 };

/**
 * The host side of all elections under one prefix: one etcd client, one lease (the
 * Session), one view of the prefix (PrefixView), one release gate, and the registered
 * Singletons. It recovers by itself: when the session is lost it grants a new lease
 * and every name campaigns again. A plain EventEmitter (`on`, `once`, `events.once`…),
 * and callable: `locker(name, fn)`. Create it with `locked(hosts, options)`.
 */
// No `implements SingletonHost, OnceHost, ClusterHost`: those interfaces are internal and
// stripped from the published types, where the clause would name missing exports. The
// compiler still checks the fit wherever a locker is handed over as one of them.
export class Locker extends EventEmitter<LockerEvents> {
  /** The etcd3 client, for your own (fenced) writes. */
  readonly client: Etcd3;
  /** @internal */
  readonly store: ControlStore;
  /** @internal */
  readonly members: Members;
  /** @internal */
  readonly batcher: CampaignBatcher;
  /** @internal */
  readonly opts: ResolvedOptions;
  /** @internal */
  readonly view: PrefixView;
  /** @internal */
  readonly gate = new ReleaseGate();
  /** @internal */
  readonly recorder = new MetricsRecorder();
  private readonly names = new Map<string, Singleton>();
  /** Registrations waiting behind a retiring one of the same name (removed, an aborted try-lock): admitted once it has left. */
  private readonly successors = new Map<string, Singleton>();
  /** Balance, drain and requested hand-overs (mover.ts drives placement.ts). */
  private readonly mover: Mover;
  /** Observers of single names (cluster.ts), fed by the same view. */
  private readonly watchers = new Map<string, Set<() => void>>();
  private current: Session | undefined;
  /** Lost sessions whose lease is revoked once every fn on it settled and etcd answers. */
  private readonly lostSessions = new Set<Session>();
  private watchConnected = false;
  private started = false;
  private readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private closing: Promise<void> | undefined;
  private readonly lifetime = new AbortController();
  private readonly unhook: (() => void) | undefined;
  private lastError: Error | undefined;
  private warned = false;
  /** The store as sessions see it: every answered keepalive's round trip is recorded. */
  private readonly keepaliveStore: Store;

  /** Use `locked(hosts, options)`. @internal */
  constructor(hosts: unknown, options?: LockerOptions, store?: ControlStore) {
    super();
    this.opts = resolveOptions(hosts, options);
    const { etcd } = this.opts;
    const clientOptions = withRequireLeader({
      ...etcd,
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
    // For the application (fenced writes) and the cluster view: etcd3's own member choice.
    this.client = new Etcd3({ ...clientOptions, hosts: this.opts.hosts });
    // For the election core: one client per member, chosen by who answers (members.ts).
    this.members = new Members(this.opts.hosts, clientOptions);
    this.store =
      store ??
      new EtcdStore(
        this.members,
        this.opts.watchFreshnessMs,
        (from, to, reason, after) =>
          publishWatchMove(() => ({ id: this.opts.id, from: from.endpoint, to: to.endpoint, reason, revision: after.toString() })),
        this.client,
      );
    this.keepaliveStore = timedKeepalive(this.store, this.opts.clock, (ms) => this.recorder.keepaliveRtt(ms));
    this.batcher = new CampaignBatcher(this.store, () => this.requestTimeoutMs());
    this.view = new PrefixView(this.store, this.opts.prefix, this.opts.clock, () => this.requestTimeoutMs(), {
      changed: (names, reread) => this.changed(reread ? new Set([...names, ...this.names.keys(), ...this.watchers.keys()]) : names),
      trouble: (err) => this.report(err),
      connected: (up) => {
        this.watchConnected = up;
      },
      control: () => this.mover.controlChanged(),
    });
    const self = this;
    this.mover = new Mover({
      view: this.view,
      store: this.store,
      prefix: this.opts.prefix,
      nodeId: this.opts.id,
      clock: this.opts.clock,
      ttl: this.opts.ttl,
      balanceConcurrency: this.opts.balanceConcurrency,
      session: () => self.session(),
      requestTimeoutMs: () => self.requestTimeoutMs(),
      handOver: (name) => self.names.get(name)?.handOver() ?? false,
      stepBack: (name) => self.names.get(name)?.stepBack() ?? false,
      movable: (name) => self.names.get(name)?.mode === 'queue',
      judge: (names) => {
        for (const name of names === 'all' ? [...self.names.keys()] : names) self.names.get(name)?.judge();
      },
      report: (err) => self.report(err),
    });
    if (this.opts.handleSignals) this.unhook = onShutdown(() => this.close());
    // The instance itself is callable (`locker(name, fn)`): see callable().
    return callable(this);
  }

  /** Aborted when close() begins: views living on this locker's client (observers) end with it. */
  /** @internal */
  get closeSignal(): AbortSignal {
    return this.lifetime.signal;
  }

  // ——— SingletonHost ———
  /** @internal */
  get nodeId(): string {
    return this.opts.id;
  }
  /** @internal */
  get clock(): Clock {
    return this.opts.clock;
  }
  /** @internal */
  get stopTimeoutMs(): number {
    return this.opts.stopTimeoutMs;
  }
  /** @internal */
  requestTimeoutMs(): number {
    return Math.max(this.opts.renewDeadlineMs, 2000);
  }
  /** @internal */
  session(): Session | undefined {
    // Not `alive()`: a session just past its deadline may still be saved by an answer in
    // flight, and a name registered meanwhile must not wait for an event to campaign.
    // Nothing starts on it unless alive() (Singleton.judge); if it is lost, its names
    // campaign again on the next one.
    return this.view.current && this.current && !this.current.ended ? this.current : undefined;
  }
  /** @internal */
  standsAside(name: string, key: string): boolean {
    return this.mover.standsAside(name, key);
  }
  /** @internal */
  handsOver(name: string, key: string): boolean {
    return this.mover.handsOver(name, key);
  }
  /** @internal */
  unregister(s: Singleton): void {
    if (this.names.get(s.name) === s) this.names.delete(s.name);
    else if (this.successors.get(s.name) === s) this.successors.delete(s.name);
  }
  /** @internal */
  report(err: Error): void {
    this.lastError = err;
    publishError(() => ({ id: this.opts.id, error: err }));
    if (this.listenerCount('error') > 0) {
      safeEmit(this, 'error', [err], () => {});
    } else if (!this.warned) {
      // No listener: say it once per outage instead of throwing out of an emitter.
      this.warned = true;
      process.emitWarning(`locked: ${err.message} (add an 'error' listener to see every occurrence)`, 'LockedWarning');
    }
  }

  /** Calls `fn` whenever the view of `name` changed; returns the unsubscribe. @internal */
  watchName(name: string, fn: () => void): () => void {
    let set = this.watchers.get(name);
    if (!set) this.watchers.set(name, (set = new Set()));
    set.add(fn);
    this.ensureStarted(false);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.watchers.get(name) === set) this.watchers.delete(name);
    };
  }

  // ——— public operations ———

  /** This host's node id (the value of its election keys). */
  id(): string {
    return this.opts.id;
  }

  /** Key prefix of every election of this locker. */
  get prefix(): string {
    return this.opts.prefix;
  }

  /** Lease TTL in seconds. */
  get ttl(): number {
    return this.opts.ttl;
  }

  /** Registers `fn` under `name`: this host campaigns, and runs fn whenever elected. Same as `locker(name, fn)`. */
  register(name: string, fn: SingletonFunction, options?: SingletonOptions): Singleton {
    const s = this.add(name, fn, 'queue', options);
    this.begin(s);
    return s;
  }

  /**
   * Campaigns for `name` only if nobody else does, and never queues: resolves with the
   * running singleton, or with the holder's node id (nothing is left in etcd then).
   * A try-lock that is later lost stops and does not campaign again.
   */
  tryLock(name: string, fn: SingletonFunction, options: SignalOption = {}): Promise<TryLockResult> {
    // A promise-returning call answers every refusal (closed, bad name) with a rejection,
    // never a synchronous throw: `await locker.tryLock(...)` and `.catch()` both see it.
    let s: Singleton;
    let signal: AbortSignal | undefined;
    try {
      signal = resolveTryLockOptions(name, options).signal;
      if (signal?.aborted) throw new AbortedError(`tryLock('${name}')`, signal.reason);
      s = this.add(name, fn, 'try');
    } catch (err) {
      return Promise.reject(err);
    }
    const outcome = s.outcome();
    this.begin(s);
    // On abort the try-lock leaves: a key it wrote is taken back out, an fn that just
    // started is stopped. The outcome then settles to nobody.
    return untilAborted(
      () => outcome,
      signal,
      `tryLock('${name}')`,
      () => {
        outcome.catch(() => {});
        void s.remove();
      },
    );
  }

  /**
   * A waiting mutex for a critical section (etcd3's `lock().do()`, Go's
   * `concurrency.Mutex`): queues for `name` on the same election protocol, runs
   * `fn(leadership)` once elected, releases the name as soon as fn settles (or its signal
   * aborts on loss), and resolves with fn's value — or rejects with fn's error. Rejects
   * with a LockCancelledError on `timeoutMs` (waiting only) or `signal`, leaving
   * nothing queued in etcd.
   */
  lock<T>(name: string, fn: (leadership: Leadership) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    try {
      return this.startLock(name, fn, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private startLock<T>(name: string, fn: (leadership: Leadership) => T | Promise<T>, options: LockOptions): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError(`fn for lock '${name}' must be a function, got ${typeof fn}`);
    const { signal, timeoutMs: timeout } = resolveLockOptions(name, options);
    if (signal?.aborted) return Promise.reject(new LockCancelledError(name, 'aborted', signal.reason));
    let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    let cancelled: LockCancelledError | undefined;
    const s = this.add(
      name,
      async (_remove, l) => {
        try {
          result = { ok: true, value: await fn(l) };
        } catch (error) {
          result = { ok: false, error };
          throw error;
        }
      },
      'lock',
    );
    const cancel = (why: 'timeout' | 'aborted', reason?: unknown): void => {
      if (result !== undefined || s.isLeader || cancelled) return; // only waiting is cancelled
      cancelled = new LockCancelledError(name, why, reason);
      void s.remove();
    };
    const onAbort = (): void => cancel('aborted', signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = timeout !== undefined ? this.clock.setTimeout(() => cancel('timeout'), timeout) : undefined;
    this.begin(s);
    return s.released().then(() => {
      signal?.removeEventListener('abort', onAbort);
      if (timer) this.clock.clearTimeout(timer);
      if (result?.ok) return result.value;
      if (result) throw result.error;
      if (cancelled) throw cancelled;
      if (this.closing) throw new LockerClosedError(`lock '${name}'`);
      throw new NotLeaderError(name, 'lost before fn could run');
    });
  }

  private add(name: string, fn: SingletonFunction, mode: 'queue' | 'try' | 'lock', options?: SingletonOptions): Singleton {
    validateName(name);
    if (typeof fn !== 'function') throw new TypeError(`fn for '${name}' must be a function, got ${typeof fn}`);
    const resolved = resolveSingletonOptions(name, options);
    if (this.closing) throw new LockerClosedError(`register '${name}'`);
    const old = this.names.get(name);
    if ((old && !old.retiring) || this.successors.has(name)) {
      throw new Error(`singleton '${name}' is already registered on this locker (id ${this.nodeId})`);
    }
    const s = new Singleton(name, fn, this, mode, resolved);
    if (old) {
      // The old registration is on its way out (removed, an aborted try-lock, a lock
      // released) but its write or fn has not settled: campaigning beside it would write
      // the same key. This one waits and campaigns once the old one has left.
      this.successors.set(name, s);
      void old.released().then(() => this.admit(s));
    } else {
      this.names.set(name, s);
    }
    this.ensureStarted(true);
    return s;
  }

  /** Campaigns now, or — waiting behind a retiring registration of the name — once admitted. */
  private begin(s: Singleton): void {
    if (this.names.get(s.name) === s) s.start();
  }

  /** The retiring registration has left: its successor takes the name, unless it was removed or the locker closed meanwhile. */
  private admit(s: Singleton): void {
    if (this.successors.get(s.name) !== s) return;
    this.successors.delete(s.name);
    this.names.set(s.name, s);
    s.start();
  }

  /** Runs `fn` to completion once across the cluster (see README, "run-once jobs"). */
  runOnce(name: string, fn: OnceFunction, options?: OnceOptions): Promise<OnceOutcome> {
    try {
      resolveRunOnceOptions(name, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return runOnce(this, name, fn, options);
  }

  /** Leader changes of `name`, for any host, campaigning or not. */
  observe(name: string): Observer {
    return observe(this, name);
  }

  /**
   * Every name under the prefix, cluster-wide: leader, token and queue. With
   * `{ hosts: true }`: every host instead — names led and queued, draining, fair share.
   */
  status(options?: SignalOption & { hosts?: false }): Promise<NameStatus[]>;
  status(options: SignalOption & { hosts: true }): Promise<HostStatus[]>;
  status(options: SignalOption & { hosts?: boolean } = {}): Promise<NameStatus[] | HostStatus[]> {
    if (options.hosts) {
      return this.read('status({ hosts: true })', options, async () => {
        try {
          const snap = await this.store.readPrefix(this.prefix, this.requestTimeoutMs());
          return hostsStatus(snap.queues, parseControl(this.prefix, snap.control ?? new Map()));
        } catch (err) {
          throw new EtcdUnavailableError(`status read of prefix '${this.prefix}'`, err);
        }
      });
    }
    return this.read('status()', options, () => clusterStatus(this));
  }

  /** A one-off read: refused once closed, given up when its signal aborts. */
  private read<T>(operation: string, options: SignalOption, work: () => Promise<T>): Promise<T> {
    try {
      const signal = checkSignal(options.signal, operation);
      if (this.closing) throw new LockerClosedError(operation);
      return untilAborted(work, signal, operation);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Asks the leader of `name` to hand over gracefully — it stops and drains fn, then
   * deletes its key, so old and new never overlap — to `to` if given (it must queue for
   * the name), else to whoever is next. Resolves with the new leader's id (the same
   * leader when nobody else queues; undefined when nobody leads). Rejects with a
   * HandOverError if the leader does not act within `timeoutMs` or the name went
   * elsewhere; with a HostNotFoundError if no live host has the id `to` (a HandOverError
   * of kind 'not-queued' if one has, but does not queue for the name). `{ force: true }`
   * deletes the leader's key instead, without waiting for it.
   */
  failover(name: string, options: FailoverOptions = {}): Promise<string | undefined> {
    let o: ReturnType<typeof resolveFailoverOptions>;
    try {
      o = resolveFailoverOptions(name, options, this.opts.ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.read(`failover('${name}')`, o, async () => {
      if (o.force) return failover(this, name);
      const { timeoutMs } = o;
      try {
        return await requestHandOver(this.store, this.clock, this.prefix, name, this.opts.id, {
          ...(o.to !== undefined ? { to: o.to } : {}),
          timeoutMs,
          requestTimeoutMs: this.requestTimeoutMs(),
        });
      } catch (err) {
        // Not queued: a typo in `to` deserves another answer than a host queued elsewhere.
        if (o.to !== undefined && isHandOverError(err) && err.kind === 'not-queued') {
          const { live } = await knownHosts(this.store, this.prefix, this.requestTimeoutMs());
          if (!live.includes(o.to)) throw new HostNotFoundError(`failover('${name}', { to: '${o.to}' })`, o.to, live, '');
        }
        throw err;
      }
    });
  }

  /**
   * Drains this host (or, with `nodeId`, another one, as `locked drain` does): writes a
   * drain order, after which the host hands every leadership gracefully to an eligible
   * candidate and takes a name only when no other candidate can. Resolves once it leads
   * nothing that another host could take. Holds until `undrain()`, across restarts of a
   * host with the same id. A `nodeId` that no live host has rejects with a
   * HostNotFoundError, unless `force` (an order for a host about to start).
   */
  async drain(options: DrainOptions & { nodeId?: string } = {}): Promise<void> {
    const o = resolveDrainOptions(options);
    const id = o.nodeId ?? this.opts.id;
    await this.read(`drain('${id}')`, o, async () => {
      if (o.nodeId !== undefined && !o.force) await this.requireHost(`drain('${id}')`, id, false);
      await this.mover.drained(id, options, () => this.mover.order(id, true));
    });
  }

  /**
   * Ends a drain (of this host, or of `nodeId`): it takes names again and balancing gives
   * it its share. A `nodeId` that is neither a live host nor drained rejects with a
   * HostNotFoundError, unless `force`.
   */
  async undrain(options: SignalOption & { nodeId?: string; force?: boolean } = {}): Promise<void> {
    const o = resolveUndrainOptions(options);
    const id = o.nodeId ?? this.opts.id;
    await this.read(`undrain('${id}')`, o, async () => {
      if (o.nodeId !== undefined && !o.force) await this.requireHost(`undrain('${id}')`, id, true);
      await this.mover.order(id, false);
    });
  }

  /** Rejects with HostNotFoundError unless a live host has node id `id` (or, with `drained`, a drain order names it). */
  private async requireHost(operation: string, id: string, drained: boolean): Promise<void> {
    const { live, draining } = await knownHosts(this.store, this.prefix, this.requestTimeoutMs());
    if (live.includes(id) || (drained && draining.has(id))) return;
    throw new HostNotFoundError(operation, id, live, 'pass force: true to write the order anyway, for a host about to start');
  }

  /** True while anyone, anywhere, leads `name`. */
  async exists(name: string, options: SignalOption = {}): Promise<boolean> {
    return (await this.leader(name, options)) !== undefined;
  }

  /** The singletons registered on this host, by name. */
  singletons(): Record<string, Singleton> {
    return Object.fromEntries(this.names);
  }

  /** Node id of the cluster-wide leader of `name`, or undefined when nobody campaigns for it. */
  leader(name: string, options: SignalOption = {}): Promise<string | undefined> {
    return this.read(`leader('${name}')`, options, async () => {
      validateName(name);
      return (await this.store.readQueue(namePrefix(this.prefix, name), this.requestTimeoutMs(), true))[0]?.value;
    });
  }

  /**
   * Cheap, synchronous health for probes.
   *
   * `live` follows client-go's leader-election health check: unhealthy only while this
   * host leads and its renewal is overdue past a grace period. Here: false while some
   * fn of this host has not settled (leading, or still draining after its leadership
   * ended) on a lease whose last acknowledged keepalive was sent more than
   * renewDeadline + (ttl − renewDeadline) = ttl ago — the moment from which etcd may
   * have expired the lease and let a standby start. The step-down at renewDeadline
   * aborts fn's signal; the grace (the step-down margin) is fn's time to stop. A host
   * that does not lead, or whose fns stopped in time, stays live however long etcd is
   * unreachable: a restart would not bring etcd back, and it is recovering by itself.
   *
   * `ready`: a lease is held inside its step-down deadline and the watch of the prefix
   * is connected — the locker can campaign and see hand-overs.
   */
  health(): Health;
  /**
   * health() plus a poll of every etcd member, all at once, each call bounded by
   * `timeoutMs` (default 1000): its raft role, leader, term, applied revision and index,
   * whether it serves a linearizable read — and the quorum margin as this host sees it.
   * Costs two round trips per member: not for probes that run every second.
   */
  health(options: MembersHealthOptions): Promise<MembersHealth>;
  health(options?: MembersHealthOptions): Health | Promise<MembersHealth> {
    if (options !== undefined) {
      if (options === null || typeof options !== 'object' || options.members !== true) {
        const got =
          options === null
            ? 'null'
            : typeof options !== 'object'
              ? typeof options
              : `members: ${String((options as { members?: unknown }).members)}`;
        return Promise.reject(new TypeError(`health(options): options must be { members: true, timeoutMs? }, got ${got}`));
      }
      return this.read('health({ members: true })', options, async () => {
        const polled = await polledMembersHealth(
          this.members,
          this.prefix,
          () => this.view.watchEndpoint,
          options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
        );
        return { ...this.health(), ...polled };
      });
    }
    const s = this.current;
    const now = this.clock.now();
    const leading = [...this.names.values()].filter((x) => x.isLeader).map((x) => x.name);
    const overdue = [...this.names.values()]
      .filter((x) => {
        const on = x.runningOn;
        return on !== undefined && now - on.lastAcknowledged() > this.opts.ttl * 1000;
      })
      .map((x) => x.name);
    return {
      ok: !this.closing && (!this.started || (s !== undefined && s.alive() && this.view.current)),
      live: overdue.length === 0,
      ready: !this.closing && this.session() !== undefined && s !== undefined && s.alive() && this.watchConnected,
      overdue,
      leaseId: s?.leaseId,
      lastKeepaliveAgoMs: s ? Math.round(this.clock.now() - s.lastAcknowledged()) : undefined,
      leading,
      registered: [...this.names.keys()],
      watchConnected: this.watchConnected,
      watchEndpoint: this.view.watchEndpoint,
      lastError: this.lastError?.message ?? s?.describeLastError(),
      members: membersHealth(this.members, this.view.watchEndpoint),
    };
  }

  /**
   * The locker's figures since it was created: per name whether this host leads, its
   * queue position, leaderships started and stopped (by reason); lease losses; the
   * keepalive round-trip histogram. `renderPrometheus(locker.metrics())` is the
   * Prometheus text exposition of it.
   */
  metrics(): MetricsSnapshot {
    const live = new Map<string, { leader: boolean; queuePosition: number | undefined }>();
    for (const [name, s] of this.names) live.set(name, { leader: s.isLeader, queuePosition: s.position });
    const { ready, live: isLive } = this.health();
    const { ttl, renewDeadlineMs, keepaliveIntervalMs } = this.opts;
    return this.recorder.snapshot(this.opts.id, live, { ready, live: isLive, ttl, renewDeadlineMs, keepaliveIntervalMs });
  }

  /** Resolves once the locker holds a lease and watches its prefix (registering a name starts both); rejects once it is closed. */
  ready(options: SignalOption = {}): Promise<void> {
    return this.read('ready()', options, () => {
      this.ensureStarted(true);
      if (this.session()) return Promise.resolve();
      return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    });
  }

  /** Stops every fn, then revokes the lease and closes the client. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async shutdown(): Promise<void> {
    this.unhook?.();
    this.mover.close();
    this.lifetime.abort();
    for (const w of this.readyWaiters.splice(0)) w.reject(new LockerClosedError('wait for ready'));
    // Stop every fn first, then revoke: the revoke lets standbys in, so it must come
    // last (the gate). A fn that ignores its signal past stopTimeout is not waited for
    // any longer: the lease is then left to expire by itself, never revoked under it.
    const singletons = [...this.names.values(), ...this.successors.values()];
    const closing = Promise.allSettled(singletons.map((s) => s.close()));
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((resolve) => (timer = this.clock.setTimeout(() => resolve(true), this.opts.stopTimeoutMs))),
    ]);
    if (timer) this.clock.clearTimeout(timer);
    this.names.clear();
    const session = this.current;
    this.current = undefined;
    if (timedOut) {
      this.report(
        new Error(
          `close(): fn still running ${this.opts.stopTimeoutMs} ms after its signal aborted; the lease is left to expire by itself`,
        ),
      );
    }
    const revokes: Promise<unknown>[] = [];
    if (session) {
      if (timedOut || this.gate.unsettled(session) > 0) revokes.push(session.close(false));
      else revokes.push(session.close(false).then(() => this.gate.revoke(session, this.opts.renewDeadlineMs)));
    }
    for (const old of this.lostSessions) if (this.gate.unsettled(old) === 0) revokes.push(this.gate.revoke(old, 1000));
    await Promise.allSettled([this.view.close(), ...revokes]);
    this.client.close();
    this.members.close();
  }

  // ——— lifecycle ———

  private ensureStarted(campaign: boolean): void {
    if (this.closing) return;
    this.view.start();
    if (!campaign || this.started) return;
    this.started = true;
    void this.renew();
  }

  /** Grants a lease, retrying with exponential backoff and jitter until it works or the locker closes. */
  private async renew(): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    let session: Session | undefined;
    while (!this.closing && !session) {
      try {
        session = await Session.grant(this.keepaliveStore, this.opts, (err) => this.lost(session!, err));
      } catch (err) {
        if (this.closing) return;
        this.report(new EtcdUnavailableError('lease grant', err));
        await this.pause(backoff.duration);
        backoff = backoff.next(undefined);
      }
    }
    if (!session) return;
    if (this.closing) {
      await session.close(true); // nothing ran on it
      return;
    }
    this.current = session;
    this.warned = false;
    this.mover.sessionGranted(session);
    // etcd answers again: revoke the leases of lost sessions whose fns have settled (their
    // keys would make our names wait a full TTL).
    for (const old of this.lostSessions) {
      void this.gate.revoke(old, this.requestTimeoutMs(), 2).then(() => this.lostSessions.delete(old));
    }
    // Outside any try: a throwing listener is reported, not taken for a failed grant.
    publishSession(() => ({ id: this.opts.id, event: 'granted', leaseId: session!.leaseId }));
    safeEmit(this, 'session', [session.leaseId], (e) => this.report(asError(e)));
    this.becameReady();
  }

  private lost(session: Session, err: LeaseLostError): void {
    if (this.current !== session) return;
    this.current = undefined;
    this.recorder.leaseLost();
    this.lostSessions.add(session);
    for (const s of [...this.names.values()]) s.sessionLost(session);
    publishSession(() => ({ id: this.opts.id, event: 'lost', leaseId: session.leaseId, error: err }));
    safeEmit(this, 'lost', [err], (e) => this.report(asError(e)));
    // Once every fn on it has settled, revoke — and keep trying for a while: a session is
    // typically lost while etcd cannot answer (its raft leader froze and the others refuse
    // with "no leader" until they elect one). Left to expire, the lease keeps this host's
    // keys first in line for up to a ttl after the new raft leader took over (etcd renews
    // every lease when a raft leader takes office): its names would wait that long.
    // Stops at 2 × ttl after the loss, or when the locker closes (close revokes too).
    const until = this.clock.now() + 2 * this.opts.ttl * 1000;
    const again = async (): Promise<boolean> => {
      if (this.lifetime.signal.aborted || this.clock.now() >= until) return false;
      await this.pause(200);
      return !this.lifetime.signal.aborted;
    };
    void this.gate.revoke(session, Math.min(1000, this.opts.renewDeadlineMs), again).then((ok) => {
      if (ok) this.lostSessions.delete(session);
    });
    if (!this.closing) void this.renew();
  }

  private becameReady(): void {
    if (!this.session()) return;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    for (const s of [...this.names.values()]) {
      s.sessionChanged();
      s.start();
    }
  }

  private changed(names: ReadonlySet<string>): void {
    // After a pause (SIGSTOP, VM freeze) I/O callbacks run before timers: judge the
    // step-down deadline first, so a woken leader stops as 'lost' before acting on events.
    this.current?.checkDeadline();
    this.becameReady();
    for (const name of names) {
      this.names.get(name)?.judge();
      const ws = this.watchers.get(name);
      if (ws) for (const fn of [...ws]) fn();
    }
    this.mover.viewChanged(names);
  }

  /** Waits `ms`, or less if the locker closes. Leaves no listener behind (outages can be long). */
  private pause(ms: number): Promise<void> {
    return sleep(this.clock, ms, this.lifetime.signal);
  }
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(describe(e)));

/** Creates a locker for the etcd cluster at `hosts` (`'h1:2379,h2:2379'` or an array). */
export function locked(hosts: string | string[], options?: LockerOptions): Locker {
  return new Locker(hosts, options);
}

/**
 * The locker as a function that registers singletons, and otherwise the locker itself:
 * every property read, write and method call goes to the instance (methods bound to it;
 * a method returning the instance, like `on`, returns the callable), `instanceof Locker`
 * and `instanceof EventEmitter` hold.
 */
function callable(core: Locker): Locker {
  const bound = new Map<PropertyKey, unknown>();
  const target = ((name: string, fn: SingletonFunction, options?: SingletonOptions) =>
    core.register(name, fn, options)) as unknown as Locker;
  const proxy: Locker = new Proxy(target, {
    apply: (_t, _this, args: unknown[]) =>
      core.register(args[0] as string, args[1] as SingletonFunction, args[2] as SingletonOptions | undefined),
    get: (_t, p) => {
      const v: unknown = Reflect.get(core, p, core);
      if (typeof v !== 'function' || p === 'constructor') return v;
      let b = bound.get(p);
      if (b === undefined || (b as { original?: unknown }).original !== v) {
        const f = v as (...a: unknown[]) => unknown;
        const w = (...a: unknown[]): unknown => {
          const r = f.apply(core, a);
          return r === core ? proxy : r;
        };
        (w as { original?: unknown }).original = v;
        bound.set(p, (b = w));
      }
      return b;
    },
    set: (_t, p, v) => Reflect.set(core, p, v, core),
    has: (_t, p) => Reflect.has(core, p),
    getPrototypeOf: () => Object.getPrototypeOf(core) as object,
    ownKeys: (t) => [
      ...new Set([...Reflect.ownKeys(core), ...Reflect.ownKeys(t).filter((k) => !Reflect.getOwnPropertyDescriptor(t, k)?.configurable)]),
    ],
    getOwnPropertyDescriptor: (t, p) => {
      const own = Reflect.getOwnPropertyDescriptor(t, p);
      if (own && !own.configurable) return own;
      const d = Reflect.getOwnPropertyDescriptor(core, p);
      return d ? { ...d, configurable: true } : undefined;
    },
  });
  return proxy;
}
