// What runs behind a Locker (locker.ts, the public face that validates and delegates): one
// etcd client for the application and one per member for the election core, one lease at a
// time (the Session, granted again after a loss), one view of the prefix (PrefixView), one
// release gate, the mover (balance, drain, requested hand-overs), the registered names
// (registry.ts) and the observers of single names. It recovers by itself: when the session
// is lost it grants a new lease (leases.ts) and every name campaigns again. Features reach
// it through one narrow host interface each (feature-hosts.ts; the mover's and the
// leases' are made here, with them).
import type { EventEmitter } from 'node:events';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, countsAgainstMember } from '../etcd/etcd3.js';
import { CampaignBatcher } from '../core/campaign.js';
import { WriteWindow } from '../core/write-window.js';
import type { Clock } from '../core/clock.js';
import { publishError, publishSession, publishWatchMove } from '../core/diagnostics.js';
import { safeEmit } from '../core/emit.js';
import { LockerClosedError, describe, type LeaseLostError } from '../core/errors.js';
import { EtcdStore } from '../etcd/etcd-store.js';
import { Members, withRequireLeader } from '../etcd/members.js';
import { membersHealth } from '../features/member-health.js';
import { MetricsRecorder, timedKeepalive } from '../features/metrics.js';
import { Mover } from '../features/mover.js';
import { ControlWrites } from '../features/control-writes.js';
import type { Health } from './health.js';
import { Leases } from './leases.js';
import { resolveOptions, type LockerOptions, type ResolvedOptions } from './options.js';
import { ReleaseGate } from '../core/release.js';
import type { Session } from '../core/session.js';
import type { ControlStore } from '../etcd/store.js';
import { onShutdown } from '../features/signals.js';
import { Registry } from './registry.js';
import { PrefixView } from '../core/view.js';

/** gRPC keepalive lets a connection that went silent (no RST) be noticed and replaced. etcd refuses pings more often than every 5 s. */
const GRPC_KEEPALIVE = { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 };

export class LockerRuntime {
  readonly opts: ResolvedOptions;
  /** For the application (fenced writes) and the cluster view. */
  readonly client: Etcd3;
  readonly store: ControlStore;
  readonly members: Members;
  readonly batcher: CampaignBatcher;
  readonly view: PrefixView;
  readonly gate = new ReleaseGate();
  readonly recorder = new MetricsRecorder();
  readonly registry: Registry;
  /** Balance, drain and requested hand-overs (mover.ts drives placement.ts). */
  readonly mover: Mover;
  /** Observers of single names (cluster.ts), fed by the same view. */
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly leases: Leases;
  private current: Session | undefined;
  private watchConnected = false;
  private started = false;
  private readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  /** Names whose start() found no session (NameHost.whenSession): started once there is one. */
  private readonly waiting = new Set<() => void>();
  /** A new session came while the view was not current: every name hears of it once it is. */
  private newSession = false;
  private closing: Promise<void> | undefined;
  private readonly lifetime = new AbortController();
  private readonly unhook: (() => void) | undefined;
  private lastError: Error | undefined;
  private warned = false;

  /** `events`: the Locker, on which `error`, `session` and `lost` are emitted. */
  constructor(
    hosts: unknown,
    options: LockerOptions | undefined,
    store: ControlStore | undefined,
    private readonly events: EventEmitter,
  ) {
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
        host: () => circuitBreaker(handleWhen(countsAgainstMember), { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(3) }),
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
    this.leases = new Leases({
      // The store as sessions see it: every answered keepalive's round trip is recorded.
      store: timedKeepalive(this.store, this.opts.clock, (ms) => this.recorder.keepaliveRtt(ms)),
      opts: this.opts,
      gate: this.gate,
      closeSignal: this.lifetime.signal,
      closed: () => this.closed,
      requestTimeoutMs: () => this.requestTimeoutMs(),
      report: (err) => this.report(err),
    });
    // One window for every write batch of this host: etcd's apply backlog delays keepalives.
    const window = new WriteWindow(this.opts.clock);
    this.batcher = new CampaignBatcher(this.store, () => this.requestTimeoutMs(), window);
    this.registry = new Registry(this.opts.id);
    const names = this.registry;
    this.view = new PrefixView(this.store, this.opts.prefix, this.opts.clock, () => this.requestTimeoutMs(), {
      changed: (changed, reread) => this.changed(reread ? new Set([...changed, ...names.keys(), ...this.watchers.keys()]) : changed),
      trouble: (err) => this.report(err),
      connected: (up) => {
        this.watchConnected = up;
      },
      control: () => this.mover.controlChanged(),
    });
    // The mover's host: the view and store it shares, and the registered names it moves.
    this.mover = new Mover({
      view: this.view,
      store: this.store,
      writes: new ControlWrites(this.store, window),
      prefix: this.opts.prefix,
      nodeId: this.opts.id,
      clock: this.opts.clock,
      ttl: this.opts.ttl,
      balanceConcurrency: this.opts.balanceConcurrency,
      respreadDelayMs: this.opts.respreadDelayMs,
      weight: this.opts.weight,
      zone: this.opts.zone,
      session: () => this.session(),
      requestTimeoutMs: () => this.requestTimeoutMs(),
      handOver: (name, past) => names.get(name)?.handOver(past) ?? false,
      stepBack: (name, past) => names.get(name)?.stepBack(past) ?? false,
      movable: (name) => names.get(name)?.mode === 'queue',
      prefer: (name) => names.get(name)?.prefer,
      anyPrefer: () => names.anyPrefer,
      preferHoldDownMs: this.opts.preferHoldDownMs,
      judge: (which) => {
        for (const name of which === 'all' ? [...names.keys()] : which) names.get(name)?.judge();
      },
      report: (err) => this.report(err),
    });
    this.batcher.onJoining = (on, seenAt) => this.mover.joining(on, seenAt);
    // A fleet's names campaign first on the host meant to lead them (start-gate.ts): only with balancing on.
    if (this.opts.balanceConcurrency > 0) this.batcher.startGate = this.mover.startGate;
    if (this.opts.handleSignals) this.unhook = onShutdown(() => this.close());
  }

  get clock(): Clock {
    return this.opts.clock;
  }

  /** Aborted when close() begins: views living on this locker's client (observers) end with it. */
  get closeSignal(): AbortSignal {
    return this.lifetime.signal;
  }

  /** True once close() has begun: nothing new is registered or read. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Deadline for one etcd request: the step-down deadline, at least 2 s. */
  requestTimeoutMs(): number {
    return Math.max(this.opts.renewDeadlineMs, 2000);
  }

  /** The session to campaign with, when there is one and the view of the prefix is current. */
  session(): Session | undefined {
    // Not `alive()`: a session just past its deadline may still be saved by an answer in
    // flight, and a name registered meanwhile must not wait for an event to campaign.
    // Nothing starts on it unless alive() (Singleton.judge); if it is lost, its names
    // campaign again on the next one.
    return this.view.current && this.current && !this.current.ended ? this.current : undefined;
  }

  /** etcd trouble or a failing fn with no listener of its own: the locker's `error` event. */
  report(err: Error): void {
    this.lastError = err;
    publishError(() => ({ id: this.opts.id, error: err }));
    if (this.events.listenerCount('error') > 0) {
      safeEmit(this.events, 'error', [err], () => {});
    } else if (!this.warned) {
      // No listener: say it once per outage instead of throwing out of an emitter.
      this.warned = true;
      process.emitWarning(`locked: ${err.message} (add an 'error' listener to see every occurrence)`, 'LockedWarning');
    }
  }

  /** Calls `fn` whenever the view of `name` changed; returns the unsubscribe. */
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

  /** Starts watching the prefix and, with `campaign`, holding a lease. Idempotent; nothing once closed. */
  ensureStarted(campaign: boolean): void {
    if (this.closing) return;
    this.view.start();
    if (!campaign || this.started) return;
    this.started = true;
    void this.renew();
  }

  /** Resolves once a lease is held and the view is current; rejects once closed. */
  whenReady(): Promise<void> {
    this.ensureStarted(true);
    if (this.session()) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** The snapshot behind Locker.health(): health.ts says what each field means, Locker.health() why. */
  health(): Health {
    const s = this.current;
    const now = this.clock.now();
    const names = [...this.registry.values()];
    const leading = names.filter((x) => x.isLeader).map((x) => x.name);
    const overdue = names
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
      registered: [...this.registry.keys()],
      watchConnected: this.watchConnected,
      watchEndpoint: this.view.watchEndpoint,
      lastError: this.lastError?.message ?? s?.describeLastError(),
      members: membersHealth(this.members, this.view.watchEndpoint),
    };
  }

  /** Stops every fn, then revokes the lease and closes the clients. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.unhook?.();
    this.mover.close();
    this.lifetime.abort();
    for (const w of this.readyWaiters.splice(0)) w.reject(new LockerClosedError('wait for ready'));
    // Stop every fn first, then revoke: the revoke lets standbys in, so it must come
    // last (the gate). A fn that ignores its signal past stopTimeout is not waited for
    // any longer: the lease is then left to expire by itself, never revoked under it.
    const singletons = this.registry.all();
    const closing = Promise.allSettled(singletons.map((s) => s.close()));
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((resolve) => (timer = this.clock.setTimeout(() => resolve(true), this.opts.stopTimeoutMs))),
    ]);
    if (timer) this.clock.clearTimeout(timer);
    this.registry.clear();
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
    revokes.push(...this.leases.closing());
    await Promise.allSettled([this.view.close(), ...revokes]);
    this.client.close();
    this.members.close();
  }

  // ——— the lease ———

  /** Grants a lease (leases.ts): until etcd answers, or the locker closes. */
  private renew(): Promise<void> {
    return this.leases.grant(
      (session) => this.granted(session),
      (session, err) => this.lost(session, err),
    );
  }

  private granted(session: Session): void {
    this.current = session;
    this.warned = false;
    this.leases.retry();
    // Outside any try: a throwing listener is reported, not taken for a failed grant.
    publishSession(() => ({ id: this.opts.id, event: 'granted', leaseId: session.leaseId }));
    safeEmit(this.events, 'session', [session.leaseId], (e) => this.report(asError(e)));
    this.becameReady(true);
  }

  private lost(session: Session, err: LeaseLostError): void {
    if (this.current !== session) return;
    this.current = undefined;
    this.recorder.leaseLost();
    this.leases.remember(session);
    for (const s of [...this.registry.values()]) s.sessionLost(session);
    publishSession(() => ({ id: this.opts.id, event: 'lost', leaseId: session.leaseId, error: err }));
    safeEmit(this.events, 'lost', [err], (e) => this.report(asError(e)));
    this.leases.giveBack(session);
    if (!this.closing) void this.renew();
  }

  /** NameHost.whenSession: `start` runs at the next becameReady() with a session. */
  whenSession(start: () => void): void {
    this.waiting.add(start);
  }

  /**
   * A session to campaign with exists (the view is current too): ready() waiters resolve,
   * names that found none start, and — after a new session — every name hears of it (a
   * campaign backing off after a lost lease retries at once). Runs on every view change, so
   * it touches only names that wait: iterating every name there cost a 100,000-name host
   * most of its CPU.
   */
  private becameReady(newSession = false): void {
    this.newSession ||= newSession;
    if (!this.session()) return;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    const waiting = [...this.waiting];
    this.waiting.clear();
    if (this.newSession) {
      this.newSession = false;
      // The host record goes out with the names' first campaigns (same turn: one put says
      // whether they make this host joining — host-record.ts publish()).
      this.mover.sessionReady(this.current!);
      for (const s of [...this.registry.values()]) {
        s.sessionChanged();
        s.start();
      }
    }
    for (const start of waiting) start();
  }

  private changed(names: ReadonlySet<string>): void {
    // After a pause (SIGSTOP, VM freeze) I/O callbacks run before timers: judge the
    // step-down deadline first, so a woken leader stops as 'lost' before acting on events.
    this.current?.checkDeadline();
    this.becameReady();
    for (const name of names) {
      this.registry.get(name)?.judge();
      const ws = this.watchers.get(name);
      if (ws) for (const fn of [...ws]) fn();
    }
    this.mover.viewChanged(names);
  }
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(describe(e)));
