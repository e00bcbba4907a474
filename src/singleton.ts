import { EventEmitter } from 'node:events';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { Clock, Timer } from './clock.js';
import { Election, type ElectionContext, type ElectionListener } from './election.js';
import { EtcdUnavailableError, LeaderFunctionError, LockerClosedError, NotLeaderError } from './errors.js';
import type { Candidate, KeyEvent } from './queue.js';
import type { Session } from './session.js';

/** Why this host stopped leading a name. */
export type StopReason =
  /** `remove()` was called: the name is un-registered here. */
  | 'removed'
  /** The lease is, or may be, lost (etcd unreachable past renewDeadline, paused process): the locker re-campaigns with a new lease. */
  | 'lost'
  /** Our election key was deleted by someone else (`failover`, an operator): we queue again at the back. */
  | 'deposed'
  /** fn threw or rejected: we step down and queue again after a backoff. */
  | 'error'
  /** The locker was closed. */
  | 'closed';

/** What the elected host gets: who it is, the fencing token, and a signal aborted when it ends. */
export interface Leadership {
  readonly name: string;
  readonly nodeId: string;
  /** Election key: `<prefix><name>/<lease id hex>`. */
  readonly key: string;
  /** Create revision of `key` (decimal string): grows with every new leadership of the name. Use it as a fencing token. */
  readonly token: string;
  /** Aborted, with a NotLeaderError, when this leadership ends for any reason. */
  readonly signal: AbortSignal;
  /** Wall-clock time (ms since epoch) at which this leadership started. */
  readonly since: number;
  /** False once the leadership ended, or once the step-down deadline passed even if the timer has not fired yet. */
  readonly active: boolean;
  /** Throws a NotLeaderError unless `active`: a cheap check before each unit of work. */
  check(): void;
  /**
   * An etcd transaction guarded by this leadership: `If(CreateRevision(key) == token)`.
   * `await leadership.fence().then(client.put('k').value('v')).commit()` writes only
   * while this leadership's key still exists — a deposed or paused old leader's write fails.
   */
  fence(): ComparatorBuilder;
}

/** The function a host registers. Runs only while elected; may return a promise. */
export type SingletonFunction = (remove: () => Promise<void>, leadership: Leadership) => unknown;

export interface SingletonEvents {
  start: [leadership: Leadership];
  stop: [reason: StopReason, leadership: Leadership];
  error: [error: Error];
}

/** Result of `locker.tryLock()`. */
export type TryLockResult =
  | { acquired: true; singleton: Singleton }
  | { acquired: false; /** Node id of the current leader. */ holder: string | undefined };

/** What a Singleton needs from its locker. */
export interface SingletonHost extends ElectionContext {
  readonly client: Etcd3;
  readonly clock: Clock;
  readonly stopTimeoutMs: number;
  /** The session to campaign with, when the locker has one and its watch is up. */
  session(): Session | undefined;
  report(err: Error): void;
  unregister(s: Singleton): void;
}

interface Lead {
  leadership: Leadership;
  controller: AbortController;
  session: Session;
  /** fn's promise, settled either way. */
  work: Promise<void>;
  /** Once the leadership ended: settles when `work` did, or after stopTimeout. */
  drained?: Promise<void>;
}

/**
 * One registered name on this host: turns election outcomes into runs of fn, events,
 * and an AbortSignal. Graceful step-downs (remove, close, fn failure) abort the signal,
 * let fn finish (up to stopTimeout), and only then delete the key, so the next leader
 * starts after this one has stopped.
 */
export class Singleton extends EventEmitter<SingletonEvents> {
  private readonly election: Election;
  private lead: Lead | undefined;
  private removed = false;
  private closed = false;
  private removing: Promise<void> | undefined;
  /** Set while an erroring leader deletes its key: no new campaign may race that delete. */
  private resigning = false;
  /** Set while the last run of fn settles after its leadership ended. */
  private draining = false;
  private retryTimer: Timer | undefined;
  private retryKind: 'error' | 'campaign' | undefined;
  private backoff: IBackoff<unknown> | undefined;
  private campaignBackoff: IBackoff<unknown> | undefined;

  /** Pending `tryLock()` answer; once settled, a try-lock singleton never campaigns again. */
  private tryAnswer: ((r: TryLockResult | Error) => void) | undefined;

  constructor(
    readonly name: string,
    private readonly fn: SingletonFunction,
    private readonly host: SingletonHost,
    /** 'try': campaign once, only if nobody else does, and never queue again (`tryLock`). */
    readonly mode: 'queue' | 'try' = 'queue',
  ) {
    super();
    this.election = new Election(name, host, new Singleton.Listener(this));
  }

  /** The election's callbacks: one small object with prototype methods, not four closures per name. */
  private static readonly Listener = class implements ElectionListener {
    constructor(private readonly s: Singleton) {}
    elected(key: string, token: bigint, session: Session): void {
      this.s.campaignBackoff = undefined;
      this.s.answer({ acquired: true, singleton: this.s });
      this.s.begin(key, token, session);
    }
    keyLost(wasLeading: boolean): void {
      if (wasLeading) this.s.end('deposed');
      if (this.s.mode === 'try') this.s.retire();
      else this.s.start();
    }
    campaignFailed(err: unknown): void {
      const e = new EtcdUnavailableError(`campaign for '${this.s.name}'`, err);
      if (this.s.mode === 'try') {
        this.s.answer(e);
        this.s.retire();
        return;
      }
      this.s.report(e);
      this.s.retryLater('campaign');
    }
    taken(holder: Candidate | undefined): void {
      this.s.answer({ acquired: false, holder: holder?.value });
      this.s.retire();
    }
  };

  /** For `tryLock`: resolves once the single campaign is decided. */
  outcome(): Promise<TryLockResult> {
    return new Promise((resolve, reject) => {
      this.tryAnswer = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
  }

  private answer(r: TryLockResult | Error): void {
    const a = this.tryAnswer;
    this.tryAnswer = undefined;
    a?.(r);
  }

  /** A try-lock that ended (or never started) leaves the locker for good. */
  private retire(): void {
    this.removed = true;
    this.clearRetry();
    this.host.unregister(this);
  }

  /** True while this host leads the name and the step-down deadline has not passed. */
  get isLeader(): boolean {
    return this.lead !== undefined && this.lead.session.alive();
  }

  /** The current leadership, if this host leads. */
  get leadership(): Leadership | undefined {
    return this.lead?.leadership;
  }

  /** Our place in the queue (0 = leader), or undefined while not queued. */
  get position(): number | undefined {
    return this.election.position();
  }

  /** Un-registers this host: stops leading (handing over at once) and leaves the queue for good. */
  remove(): Promise<void> {
    if (this.removing) return this.removing;
    this.removed = true;
    this.clearRetry();
    this.removing = (async () => {
      const lead = this.end('removed');
      if (lead) await lead.drained;
      await this.resignUntilDone();
      this.host.unregister(this);
    })();
    return this.removing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }

  // ——— driven by the locker ———

  /** Campaigns if registered and the locker has a session. Idempotent. */
  start(): void {
    if (this.removed || this.closed || this.resigning || this.draining || this.retryTimer || this.election.campaigning) return;
    const session = this.host.session();
    if (session) this.election.campaign(session, this.mode === 'try');
  }

  /** The locker's session is gone: stop now, synchronously — the step-down deadline is now. */
  sessionLost(): void {
    this.election.abandon();
    // A campaign that failed on the old lease is retried by the next session at once;
    // only the backoff after an fn failure (the standbys' turn) outlives the session.
    if (this.retryKind === 'campaign') this.clearRetry();
    this.end('lost');
    if (this.mode === 'try') {
      this.answer(new EtcdUnavailableError(`try-lock of '${this.name}'`, new Error('the lease was lost')));
      this.retire();
    }
  }

  events(events: KeyEvent[]): void {
    this.election.apply(events);
  }

  resync(candidates: Candidate[], revision: bigint): void {
    this.election.resync(candidates, revision);
  }

  /** The locker is closing: stop and let fn finish; the lease revoke removes the key. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearRetry();
    this.election.abandon();
    if (this.tryAnswer) this.answer(new LockerClosedError(`try-lock '${this.name}'`));
    const lead = this.end('closed');
    if (lead) await lead.drained;
  }

  // ——— leadership ———

  private begin(key: string, rev: bigint, session: Session): void {
    const controller = new AbortController();
    const leadership = new ActiveLeadership(this.name, this.host.nodeId, key, rev.toString(), controller, session, this.host.client);
    const lead: Lead = { leadership, controller, session, work: Promise.resolve() };
    this.lead = lead;
    this.safeEmit('start', leadership);
    if (this.lead !== lead) return; // a 'start' listener removed us
    let result: unknown;
    try {
      result = this.fn(() => this.remove(), leadership);
    } catch (err) {
      this.failed(lead, err);
      return;
    }
    lead.work = Promise.resolve(result).then(
      () => {
        this.backoff = undefined;
      },
      (err: unknown) => this.failed(lead, err),
    );
  }

  /** Ends the current leadership: abort its signal, emit `stop`. Synchronous. */
  private end(reason: StopReason): Lead | undefined {
    const lead = this.lead;
    if (!lead) return undefined;
    this.lead = undefined;
    lead.controller.abort(new NotLeaderError(this.name, reason));
    this.safeEmit('stop', reason, lead.leadership);
    // Until this run of fn has settled (or stopTimeout passed), this host does not queue
    // again: if it were the only candidate it would be re-elected at once, and two runs
    // of fn would overlap on the same host.
    this.draining = true;
    lead.drained = this.drain(lead).then(() => {
      this.draining = false;
      this.start();
    });
    return lead;
  }

  private failed(lead: Lead, err: unknown): void {
    // A rejection after the leadership ended (typically fn honouring its aborted signal) is no failure.
    if (this.lead !== lead) return;
    this.report(new LeaderFunctionError(this.name, err));
    if (this.lead !== lead) return;
    this.end('error');
    this.resigning = true;
    void this.resignUntilDone().then(() => {
      this.resigning = false;
      if (this.mode === 'try') this.retire();
      else this.retryLater();
    });
  }

  private async drain(lead: Lead): Promise<void> {
    let timer: Timer | undefined;
    await Promise.race([
      lead.work,
      new Promise<void>((resolve) => {
        timer = this.host.clock.setTimeout(resolve, this.host.stopTimeoutMs);
      }),
    ]);
    if (timer) this.host.clock.clearTimeout(timer);
  }

  /**
   * Deletes our key, retrying while our session lives: a key left behind under a lease
   * we keep alive would block the name for everyone.
   */
  private async resignUntilDone(): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 50, maxDelay: 2000 }).next();
    for (;;) {
      try {
        await this.election.resign();
        return;
      } catch (err) {
        const session = this.host.session();
        if (!session || this.closed) return; // the lease (and the key with it) is going away
        this.report(new EtcdUnavailableError(`resign of '${this.name}'`, err));
        await new Promise<void>((r) => this.host.clock.setTimeout(r, backoff.duration));
        backoff = backoff.next(undefined);
      }
    }
  }

  /**
   * Campaign again after an exponential backoff with jitter: after an fn failure so a
   * standby gets its turn (grows until fn succeeds once); after a failed campaign write
   * so a struggling etcd is not hammered (short, reset with every new session).
   */
  private retryLater(kind: 'error' | 'campaign' = 'error'): void {
    if (this.removed || this.closed || this.retryTimer) return;
    let duration: number;
    if (kind === 'error') {
      this.backoff = (this.backoff ?? new ExponentialBackoff({ initialDelay: 200, maxDelay: 30_000 })).next(undefined);
      duration = this.backoff.duration;
    } else {
      this.campaignBackoff = (this.campaignBackoff ?? new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 })).next(undefined);
      duration = this.campaignBackoff.duration;
    }
    this.retryKind = kind;
    this.retryTimer = this.host.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.start();
    }, duration);
  }

  private clearRetry(): void {
    if (this.retryTimer) this.host.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryKind = undefined;
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.safeEmit('error', err);
    else this.host.report(err);
  }

  /** A throwing listener must not break the election logic that emitted. */
  private safeEmit<K extends keyof SingletonEvents>(event: K, ...args: SingletonEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SingletonEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      if (event !== 'error') this.report(err instanceof Error ? err : new Error(String(err)));
      else this.host.report(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/**
 * A class rather than an object literal: a literal with a getter gets a hidden class
 * and a property dictionary of its own (~0.6 KB per leadership), and `signal` as a getter
 * lets Node create the AbortSignal (~0.7 KB) only if fn or a listener asks for it.
 */
class ActiveLeadership implements Leadership {
  readonly since = Date.now();
  constructor(
    readonly name: string,
    readonly nodeId: string,
    readonly key: string,
    readonly token: string,
    private readonly controller: AbortController,
    private readonly session: Session,
    private readonly client: Etcd3,
  ) {}
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get active(): boolean {
    return !this.controller.signal.aborted && this.session.alive();
  }
  check(): void {
    if (!this.active) {
      throw new NotLeaderError(this.name, this.controller.signal.aborted ? String((this.controller.signal.reason as NotLeaderError).reason) : 'lost');
    }
  }
  fence(): ComparatorBuilder {
    return this.client.if(this.key, 'Create', '==', this.token);
  }
}
