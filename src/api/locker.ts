// THE PUBLIC FACE of a locker: `locked()`, the Locker's methods and the types they take
// and give. Each method validates its arguments, refuses once the locker is closed, and
// hands the work to the runtime behind it (runtime.ts) or to a feature through that
// feature's own host (feature-hosts.ts). What a locker does is there; what may be asked
// of it, and how it answers wrong questions, is here.
import { EventEmitter } from 'node:events';
import type { Etcd3 } from '../etcd/etcd3.js';
import { checkSignal, untilAborted, type SignalOption } from '../core/abort.js';
import { AbortedError, LockCancelledError, LockerClosedError, type LeaseLostError } from '../core/errors.js';
import type { ControlStore } from '../etcd/store.js';
import { namePrefix, validateName } from '../etcd/keys.js';
import { describeTyped } from './options-schema.js';
import { polledMembersHealth } from '../features/member-health.js';
import type { MetricsSnapshot } from '../features/metrics.js';
import type { HostStatus } from '../features/host-status.js';
import { clusterStatus, observe, type ClusterHost, type NameStatus, type Observer } from '../features/cluster.js';
import { runOnce, type OnceFunction, type OnceHost, type OnceOutcome } from '../features/once.js';
import { callable } from './callable.js';
import { clusterHost, lockHost, onceHost, singletonHost } from './feature-hosts.js';
import type { Health, MembersHealth, MembersHealthOptions } from './health.js';
import { awaitTryLock, lock, type LockHost } from './lock.js';
import { handOver, hostsOf, requireHost } from './operator.js';
import {
  resolveDrainOptions,
  resolveFailoverOptions,
  resolveLockOptions,
  resolveRunOnceOptions,
  resolveSingletonOptions,
  resolveTryLockOptions,
  resolveUndrainOptions,
  type DrainOptions,
  type FailoverOptions,
  type LockOptions,
  type LockerOptions,
  type OnceOptions,
  type SingletonOptions,
} from './options.js';
import { LockerRuntime } from './runtime.js';
import { Singleton, type Leadership, type SingletonFunction, type SingletonHost, type TryLockResult } from './singleton.js';

// The health types are declared in health.ts and belong to this face: `locked-etcd` exports them from here.
export type { Health, MembersHealth, MembersHealthOptions } from './health.js';

export interface LockerEvents {
  /** etcd trouble or a failing fn with no `error` listener of its own. The locker keeps going. */
  error: [error: Error];
  /** A lease was granted (at start and after every recovery). */
  session: [leaseId: string];
  /** The lease was lost: every leadership ended with reason 'lost'; a new lease is on its way. */
  lost: [error: LeaseLostError];
}

/**
 * A locker is callable: `locker(name, fn)` registers an elected singleton (the same as
 * `locker.register(name, fn)`).
 */
export interface Locker {
  /** Registers `fn` under `name`: this host campaigns, and runs fn whenever elected (`healthy`: only while a check passes). */
  (name: string, fn: SingletonFunction, options?: SingletonOptions): Singleton;
}

/**
 * The host side of all elections under one prefix: one etcd client, one lease (the
 * Session), one view of the prefix (PrefixView), one release gate, and the registered
 * Singletons. It recovers by itself: when the session is lost it grants a new lease
 * and every name campaigns again. A plain EventEmitter (`on`, `once`, `events.once`…),
 * and callable: `locker(name, fn)`. Create it with `locked(hosts, options)`.
 */
export class Locker extends EventEmitter<LockerEvents> {
  /** The etcd3 client, for your own (fenced) writes. */
  readonly client: Etcd3;
  /** Everything behind the public face: session, view, mover, the registered names. @internal */
  readonly runtime: LockerRuntime;
  /** Each feature's own narrow view of the runtime (feature-hosts.ts). */
  private readonly features: { singleton: SingletonHost; once: OnceHost; cluster: ClusterHost; lock: LockHost };

  /** Use `locked(hosts, options)`. @internal */
  constructor(hosts: unknown, options?: LockerOptions, store?: ControlStore) {
    super();
    const rt = (this.runtime = new LockerRuntime(hosts, options, store, this));
    this.client = rt.client;
    this.features = {
      singleton: singletonHost(rt),
      once: onceHost(rt, (name, fn) => this.register(name, fn)),
      cluster: clusterHost(rt),
      lock: lockHost(rt, (name, fn, mode) => this.add(name, fn, mode)),
    };
    // The instance itself is callable (`locker(name, fn)`): see callable.ts.
    return callable(this, (name: string, fn: SingletonFunction, opts?: SingletonOptions) => this.register(name, fn, opts));
  }

  /** This host's node id (the value of its election keys). */
  id(): string {
    return this.runtime.opts.id;
  }

  /** Key prefix of every election of this locker. */
  get prefix(): string {
    return this.runtime.opts.prefix;
  }

  /** Lease TTL in seconds. */
  get ttl(): number {
    return this.runtime.opts.ttl;
  }

  /** Registers `fn` under `name`: this host campaigns, and runs fn whenever elected. Same as `locker(name, fn)`. */
  register(name: string, fn: SingletonFunction, options?: SingletonOptions): Singleton {
    const s = this.add(name, fn, 'queue', options);
    this.runtime.registry.begin(s);
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
    return awaitTryLock(this.features.lock, s, signal);
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
      if (typeof fn !== 'function') throw new TypeError(`fn for lock '${name}' must be a function, got ${typeof fn}`);
      const { signal, timeoutMs } = resolveLockOptions(name, options);
      if (signal?.aborted) return Promise.reject(new LockCancelledError(name, 'aborted', signal.reason));
      return lock(this.features.lock, name, fn, signal, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Validates a registration and registers it (registry.ts); it campaigns once begun. */
  private add(name: string, fn: SingletonFunction, mode: 'queue' | 'try' | 'lock', options?: SingletonOptions): Singleton {
    validateName(name);
    if (typeof fn !== 'function') throw new TypeError(`fn for '${name}' must be a function, got ${typeof fn}`);
    const resolved = resolveSingletonOptions(name, options);
    const rt = this.runtime;
    if (resolved.prefer === undefined && rt.opts.prefer !== undefined && mode === 'queue') {
      const prefer = rt.opts.prefer(name);
      if (prefer !== undefined && !(Array.isArray(prefer) && prefer.every((id) => typeof id === 'string' && id.length > 0))) {
        throw new TypeError(`options.prefer('${name}') must return an array of host ids or undefined, got ${describeTyped(prefer)}`);
      }
      if (prefer !== undefined) resolved.prefer = Object.freeze([...prefer]);
    }
    if (rt.closed) throw new LockerClosedError(`register '${name}'`);
    const s = rt.registry.add(name, () => new Singleton(name, fn, this.features.singleton, mode, resolved));
    rt.ensureStarted(true);
    return s;
  }

  /** Runs `fn` to completion once across the cluster (see README, "run-once jobs"). */
  runOnce(name: string, fn: OnceFunction, options?: OnceOptions): Promise<OnceOutcome> {
    try {
      resolveRunOnceOptions(name, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return runOnce(this.features.once, name, fn, options);
  }

  /** Leader changes of `name`, for any host, campaigning or not. */
  observe(name: string): Observer {
    return observe(this.features.cluster, name);
  }

  /**
   * Every name under the prefix, cluster-wide: leader, token and queue. With
   * `{ hosts: true }`: every host instead — names led and queued, draining, fair share.
   */
  status(options?: SignalOption & { hosts?: false }): Promise<NameStatus[]>;
  status(options: SignalOption & { hosts: true }): Promise<HostStatus[]>;
  status(options: SignalOption & { hosts?: boolean } = {}): Promise<NameStatus[] | HostStatus[]> {
    if (options.hosts) return this.read('status({ hosts: true })', options, () => hostsOf(this.runtime));
    return this.read('status()', options, () => clusterStatus(this.features.cluster));
  }

  /** A one-off read: refused once closed, given up when its signal aborts. */
  private read<T>(operation: string, options: SignalOption, work: () => Promise<T>): Promise<T> {
    try {
      const signal = checkSignal(options.signal, operation);
      if (this.runtime.closed) throw new LockerClosedError(operation);
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
      o = resolveFailoverOptions(name, options, this.ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.read(`failover('${name}')`, o, () => handOver(this.runtime, this.features.cluster, name, o));
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
    const { mover, opts } = this.runtime;
    const id = o.nodeId ?? opts.id;
    await this.read(`drain('${id}')`, o, async () => {
      if (o.nodeId !== undefined && !o.force) await requireHost(this.runtime, `drain('${id}')`, id, false);
      await mover.drains.drained(id, options, () => mover.drains.order(id, true));
    });
  }

  /**
   * Ends a drain (of this host, or of `nodeId`): it takes names again and balancing gives
   * it its share. A `nodeId` that is neither a live host nor drained rejects with a
   * HostNotFoundError, unless `force`.
   */
  async undrain(options: SignalOption & { nodeId?: string; force?: boolean } = {}): Promise<void> {
    const o = resolveUndrainOptions(options);
    const { mover, opts } = this.runtime;
    const id = o.nodeId ?? opts.id;
    await this.read(`undrain('${id}')`, o, async () => {
      if (o.nodeId !== undefined && !o.force) await requireHost(this.runtime, `undrain('${id}')`, id, true);
      await mover.drains.order(id, false);
    });
  }

  /** True while anyone, anywhere, leads `name`. */
  async exists(name: string, options: SignalOption = {}): Promise<boolean> {
    return (await this.leader(name, options)) !== undefined;
  }

  /** The singletons registered on this host, by name. */
  singletons(): Record<string, Singleton> {
    return this.runtime.registry.record();
  }

  /** Node id of the cluster-wide leader of `name`, or undefined when nobody campaigns for it. */
  leader(name: string, options: SignalOption = {}): Promise<string | undefined> {
    const rt = this.runtime;
    return this.read(`leader('${name}')`, options, async () => {
      validateName(name);
      return (await rt.store.readQueue(namePrefix(this.prefix, name), rt.requestTimeoutMs(), true))[0]?.value;
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
      const rt = this.runtime;
      return this.read('health({ members: true })', options, async () => {
        const polled = await polledMembersHealth(
          rt.members,
          this.prefix,
          () => rt.view.watchEndpoint,
          options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
        );
        return { ...this.health(), ...polled };
      });
    }
    return this.runtime.health();
  }

  /**
   * The locker's figures since it was created: per name whether this host leads, its
   * queue position, leaderships started and stopped (by reason); lease losses; the
   * keepalive round-trip histogram. `renderPrometheus(locker.metrics())` is the
   * Prometheus text exposition of it.
   */
  metrics(): MetricsSnapshot {
    const { registry, opts, recorder } = this.runtime;
    const live = new Map<string, { leader: boolean; queuePosition: number | undefined }>();
    for (const s of registry.values()) live.set(s.name, { leader: s.isLeader, queuePosition: s.position });
    const { ready, live: isLive } = this.health();
    const { ttl, renewDeadlineMs, keepaliveIntervalMs } = opts;
    return recorder.snapshot(opts.id, live, { ready, live: isLive, ttl, renewDeadlineMs, keepaliveIntervalMs });
  }

  /** Resolves once the locker holds a lease and watches its prefix (registering a name starts both); rejects once it is closed. */
  ready(options: SignalOption = {}): Promise<void> {
    return this.read('ready()', options, () => this.runtime.whenReady());
  }

  /** Stops every fn, then revokes the lease and closes the client. Idempotent. */
  close(): Promise<void> {
    return this.runtime.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Creates a locker for the etcd cluster at `hosts` (`'h1:2379,h2:2379'` or an array). */
export function locked(hosts: string | string[], options?: LockerOptions): Locker {
  return new Locker(hosts, options);
}
