import { EventEmitter } from 'node:events';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { Clock, Timer } from './clock.js';
import { publishLeadership } from './diagnostics.js';
import { HealthCheck } from './health-check.js';
import { campaign, resign, type ElectionContext } from './election.js';
import { safeEmit } from './emit.js';
import { EtcdUnavailableError, HealthCheckError, LeaderFunctionError, LockerClosedError, NotLeaderError, describe } from './errors.js';
import type { MetricsRecorder } from './metrics.js';
import type { ReleaseGate } from './release.js';
import type { Session } from './session.js';
import type { CampaignResult } from './store.js';
import type { PrefixView } from './view.js';

/**
 * Why this host stopped leading a name: the `stop` event's reason, the `reason` of the
 * NotLeaderError a leadership's signal aborts with, and the `reason` label of
 * `locked_leaderships_stopped_total`. `STOP_REASONS` lists every value.
 */
export type StopReason =
  /** `remove()` was called: the name is un-registered here. */
  | 'removed'
  /** The lease is, or may be, lost (etcd unreachable past renewDeadline, paused process): the locker re-campaigns with a new lease. */
  | 'lost'
  /** Our election key was deleted by someone else (`failover`, an operator): we queue again at the back. */
  | 'deposed'
  /** fn threw or rejected: we step down and queue again after a backoff. */
  | 'error'
  /** The singleton's health check failed twice in a row and a standby queues: handed over; we queue again once the check passes. */
  | 'unhealthy'
  /** Handed over gracefully to another host (balance, drain, or a `failover` request): we queue again at the back. */
  | 'handover'
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

/**
 * The function a host registers. Runs only while elected; may return a promise.
 * `remove()` called from inside fn ends this leadership and un-registers the name; it
 * resolves at once (it does not wait for fn, which is what it would wait for), and the
 * name is handed over as soon as fn returns.
 */
export type SingletonFunction = (remove: () => Promise<void>, leadership: Leadership) => unknown;

export interface SingletonEvents {
  start: [leadership: Leadership];
  stop: [reason: StopReason, leadership: Leadership];
  error: [error: Error];
}

/** Result of `locker.tryLock()`. */
export type TryLockResult =
  { acquired: true; singleton: Singleton } | { acquired: false; /** Node id of the current leader. */ holder: string | undefined };

/** What a Singleton needs from its locker. @internal */
export interface SingletonHost extends ElectionContext {
  readonly client: Etcd3;
  readonly clock: Clock;
  readonly stopTimeoutMs: number;
  readonly view: PrefixView;
  readonly gate: ReleaseGate;
  /** Counts leaderships started and stopped (metrics.ts). */
  readonly recorder: MetricsRecorder;
  /** The session to campaign with, when the locker has one and its view is current. */
  session(): Session | undefined;
  report(err: Error): void;
  unregister(s: Singleton): void;
  /** Should our queued key of `name` step out of the way (placement.ts)? */
  standsAside(name: string, key: string): boolean;
  /** Should our leadership of `name` (key `key`) be handed over now (placement.ts)? */
  handsOver(name: string, key: string): boolean;
}

/** Our key in etcd: what a campaign wrote. */
interface Claim {
  readonly session: Session;
  readonly key: string;
  /** Create revision of the key: the fencing token. */
  readonly token: bigint;
  /**
   * The view must have reached this revision before it may judge the key: the key's own
   * create revision, so the view has seen it written. (Not the campaign transaction's
   * revision: when the key already existed — a retried write that had landed — that can
   * be a revision of keys outside the prefix, which this view never sees.)
   */
  readonly since: bigint;
}

/** One run of fn. */
interface Run {
  readonly leadership: ActiveLeadership;
  /** The session this run leads on (for health: a run outliving its lease). */
  readonly session: Session;
  /** Resolves when fn's promise has settled, either way. Never rejects. */
  readonly settled: Promise<void>;
  done: boolean;
}

/** What follows once a leadership has drained (or a write in flight has answered). */
type Next =
  /** Queue again (deposed, lost: the key is gone or goes with the lease). */
  | 'campaign'
  /** Delete our key, then wait before queueing again (fn failed: a standby's turn). */
  | 'backoff'
  /** Delete our key (if still ours) and leave for good (remove, try-lock over, close). */
  | 'retire';

/**
 * THE LIFECYCLE OF ONE NAME on this host. Every state carries what it needs; every
 * transition goes through `enter()`. Keys are released through the ReleaseGate, after
 * fn has settled.
 */
type State =
  /** Registered; waits for a session (and a current view) to campaign. */
  | { readonly kind: 'idle' }
  /** The campaign write is in flight; `then` is set if the name must not stay queued. */
  | { readonly kind: 'campaigning'; readonly session: Session; then: Next | undefined }
  /** Our key is in etcd, behind others (or not yet judged). */
  | { readonly kind: 'queued'; readonly claim: Claim; awaitingRenewal?: boolean }
  /** Our key is first: fn runs. */
  | { readonly kind: 'leading'; readonly claim: Claim; readonly run: Run }
  /** The leadership ended; fn's signal is aborted and we wait for fn to settle. The key stays until then. */
  | { readonly kind: 'draining'; claim: Claim | undefined; readonly run: Run; then: Next }
  /** Deleting our key (nothing runs on it). */
  | { readonly kind: 'resigning'; then: Next }
  /** Waiting before the next campaign. */
  | { readonly kind: 'backoff'; readonly timer: Timer; readonly why: 'error' | 'campaign' }
  /** Removed, closed, or a try-lock that is over. */
  | { readonly kind: 'retired' };

/**
 * One registered name on this host: turns election outcomes into runs of fn, events,
 * and an AbortSignal. Graceful step-downs (remove, close, fn failure) abort the signal,
 * let fn settle, and only then delete the key, so the next leader starts after this one
 * has stopped.
 */
export class Singleton extends EventEmitter<SingletonEvents> {
  private state: State = { kind: 'idle' };
  /** Backoff after fn failures; grows until fn succeeds once. */
  private errorBackoff: IBackoff<unknown> | undefined;
  private campaignBackoff: IBackoff<unknown> | undefined;
  /** Pending `tryLock()` answer. */
  private tryAnswer: ((r: TryLockResult | Error) => void) | undefined;
  /** The `healthy` option's check, if any. */
  private readonly check: HealthCheck | undefined;
  /** The leader said once that it keeps leading unhealthy (nobody else queues). */
  private saidKeepsLeading = false;
  /** Settles when the name has left for good (retired); made when first asked for (most names never are). */
  private leftPromise: Promise<void> | undefined;
  private leave: (() => void) | undefined;

  /** @internal */
  constructor(
    readonly name: string,
    private readonly fn: SingletonFunction,
    private readonly host: SingletonHost,
    /**
     * 'queue': a singleton (campaign again after every leadership). 'try': campaign once,
     * only if nobody else does (`tryLock`). 'lock': queue once, run fn once, release as
     * soon as it settles (`lock`).
     */
    readonly mode: 'queue' | 'try' | 'lock' = 'queue',
    options?: { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number },
  ) {
    super();
    if (options?.healthy) {
      this.check = new HealthCheck(options.healthy, options.checkIntervalMs, host.clock, (failures, why) =>
        this.healthChanged(failures, why),
      );
      this.check.start();
    }
  }

  /** A candidate campaigns: always, or once its health check has passed and while it passes. */
  private get candidate(): boolean {
    return this.check === undefined || (this.check.checked && this.check.failures === 0);
  }

  private get left(): Promise<void> {
    if (!this.leftPromise) {
      if (this.state.kind === 'retired') this.leftPromise = Promise.resolve();
      else this.leftPromise = new Promise((resolve) => (this.leave = resolve));
    }
    return this.leftPromise;
  }

  /** For `tryLock`: resolves once the single campaign is decided. @internal */
  outcome(): Promise<TryLockResult> {
    return new Promise((resolve, reject) => {
      this.tryAnswer = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
  }

  /** True while this host leads the name and the step-down deadline has not passed. */
  get isLeader(): boolean {
    return this.state.kind === 'leading' && this.state.claim.session.alive();
  }

  /** The current leadership, if this host leads. */
  get leadership(): Leadership | undefined {
    return this.state.kind === 'leading' ? this.state.run.leadership : undefined;
  }

  /** Our place in the queue (0 = leader), or undefined while not queued. */
  get position(): number | undefined {
    const s = this.state;
    if (s.kind !== 'queued' && s.kind !== 'leading') return undefined;
    return this.host.view.position(this.name, s.claim.key);
  }

  /** The session of fn's run while it has not settled (leading, or draining after the leadership ended). @internal */
  get runningOn(): Session | undefined {
    const s = this.state;
    return (s.kind === 'leading' || s.kind === 'draining') && !s.run.done ? s.run.session : undefined;
  }

  /** Try-locks and locks lead at most once. */
  private get oneShot(): boolean {
    return this.mode !== 'queue';
  }

  /** Name of the current lifecycle state (for status and tests). */
  get phase(): State['kind'] {
    return this.state.kind;
  }

  /**
   * Un-registers this host: stops leading (fn's signal aborts; the name is handed over
   * once fn has settled) and leaves the queue for good. Resolves when the name is released.
   */
  remove(): Promise<void> {
    this.leaveFor('retire', 'removed');
    return this.left;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }

  /** Settles when the name has left this host for good (removed, closed, a try-lock or lock over). @internal */
  released(): Promise<void> {
    return this.left;
  }

  // ——— driven by the locker ———

  /** Campaigns if idle and the locker has a session. Idempotent. @internal */
  start(): void {
    if (this.state.kind !== 'idle') return;
    if (!this.candidate) return; // campaigns again when the health check passes
    const session = this.host.session();
    if (!session) return;
    const st: State = { kind: 'campaigning', session, then: undefined };
    this.enter(st);
    const c = campaign(this.host, this.name, session, this.mode === 'try');
    c.result.then(
      (res) => this.campaigned(st, c.key, res),
      (err: unknown) => this.campaignFailed(st, c.key, err),
    );
  }

  /** The view of this name changed (or may have). @internal */
  judge(): void {
    const s = this.state;
    if (s.kind !== 'queued' && s.kind !== 'leading') return;
    const { claim } = s;
    const verdict = this.host.view.judge(this.name, claim.key, claim.token, claim.since);
    if (verdict === 'unknown') return;
    if (verdict === 'gone') {
      // Deleted by someone else (failover, an operator, expiry): queue again, or for a
      // try-lock, end.
      if (s.kind === 'leading') this.stopLeading(s, 'deposed', this.oneShot ? 'retire' : 'campaign', false);
      else if (this.mode === 'try') this.fail(new Error(`the key ${claim.key} was deleted before it led`), 'retire');
      else (this.enter({ kind: 'idle' }), this.start());
      return;
    }
    if (!this.candidate) {
      if (s.kind === 'queued') return this.standAside(s);
      if (this.check!.failures >= 2) return this.handOverUnhealthy(s);
    }
    // Placement (placement.ts): a standby steps out of the way of a requested move or, on
    // a draining host, of an eligible candidate; a leader hands over when its move is ready.
    if (s.kind === 'queued' && this.mode !== 'try' && this.host.standsAside(this.name, claim.key)) return this.standAside(s);
    if (s.kind === 'leading' && this.mode === 'queue' && this.host.handsOver(this.name, claim.key)) return void this.handOver();
    if (verdict === 'first' && s.kind === 'queued') {
      if (!claim.session.alive()) {
        // Past the step-down deadline (e.g. the process was paused): never start on a
        // lease etcd may already have expired. The session declares itself lost.
        queueMicrotask(() => claim.session.checkDeadline());
        return;
      }
      if (!claim.session.startable()) return this.awaitRenewal(s);
      this.lead(claim);
    }
  }

  /**
   * First in line on a session whose keepalive is overdue (session.ts, startable()):
   * judge again at its next acknowledgement; if the session is lost instead, sessionLost()
   * has moved us on and this state is gone.
   */
  private awaitRenewal(s: Extract<State, { kind: 'queued' }>): void {
    if (s.awaitingRenewal) return;
    s.awaitingRenewal = true;
    void s.claim.session.renewed().then(() => {
      s.awaitingRenewal = false;
      if (this.state === s) this.judge();
    });
  }

  /**
   * Hands the leadership over gracefully: fn's signal aborts ('handover'), fn drains, then
   * our key is deleted and we queue again at the back, so whoever is next starts after us.
   * False if this host does not lead the name. @internal
   */
  handOver(): boolean {
    const s = this.state;
    if (s.kind !== 'leading' || this.mode !== 'queue') return false;
    this.stopLeading(s, 'handover', 'campaign', false);
    return true;
  }

  /** Steps back to the end of the queue if queued and not leading (standby balance). @internal */
  stepBack(): boolean {
    const s = this.state;
    if (s.kind !== 'queued' || this.mode !== 'queue') return false;
    this.standAside(s);
    return true;
  }

  /** `session` is gone: every leadership on it stops now, synchronously. @internal */
  sessionLost(session: Session): void {
    const s = this.state;
    switch (s.kind) {
      case 'campaigning':
        // Whatever the write did, its key goes with the lost lease.
        if (s.session !== session) return;
        if (s.then === 'retire' || this.mode === 'try')
          return this.retire(new EtcdUnavailableError(`try-lock of '${this.name}'`, new Error('the lease was lost')));
        this.enter({ kind: 'idle' });
        return this.start();
      case 'queued':
        if (s.claim.session !== session) return;
        if (this.mode === 'try')
          return this.retire(new EtcdUnavailableError(`try-lock of '${this.name}'`, new Error('the lease was lost')));
        this.enter({ kind: 'idle' });
        return this.start();
      case 'leading':
        if (s.claim.session !== session) return;
        // The key stays under the lost lease; the gate revokes it once fn has settled.
        return this.stopLeading(s, 'lost', this.oneShot ? 'retire' : 'campaign', true);
      case 'draining':
        // Its key now goes with the lost lease, once fn has settled (the gate).
        if (s.claim?.session === session) s.claim = undefined;
        return;
      default:
        return;
    }
  }

  /** The locker is closing: stop; resolves once fn has settled. The lease revoke removes the key. @internal */
  async close(): Promise<void> {
    this.leaveFor('retire', 'closed');
    const s = this.state;
    if (s.kind === 'draining') await s.run.settled;
  }

  /** Resolves when fn's current or last run has settled. @internal */
  settled(): Promise<void> {
    const s = this.state;
    return s.kind === 'leading' || s.kind === 'draining' ? s.run.settled : Promise.resolve();
  }

  // ——— transitions ———

  private enter(next: State): void {
    const prev = this.state;
    if (prev.kind === 'backoff' && next.kind !== 'backoff') this.host.clock.clearTimeout(prev.timer);
    this.state = next;
  }

  /** remove() or close(): leave for good from whatever state. */
  private leaveFor(then: 'retire', reason: 'removed' | 'closed'): void {
    const s = this.state;
    if (reason === 'closed' && this.tryAnswer) this.answer(new LockerClosedError(`try-lock '${this.name}'`));
    switch (s.kind) {
      case 'idle':
      case 'backoff':
        return this.retire();
      case 'campaigning':
        s.then = then;
        return;
      case 'queued':
        if (reason === 'closed') return this.retire(); // the lease revoke deletes the key
        this.enter({ kind: 'resigning', then });
        return void this.resignKey(s.claim, Promise.resolve());
      case 'leading':
        // On close the lease revoke (after every fn settled) deletes the key.
        return this.stopLeading(s, reason, then, reason === 'closed');
      case 'draining':
        if (reason === 'closed') s.then = then;
        else if (s.then !== 'retire') s.then = then;
        return;
      case 'resigning':
        s.then = then;
        return;
      case 'retired':
        return;
    }
  }

  private campaigned(st: Extract<State, { kind: 'campaigning' }>, key: string, res: CampaignResult): void {
    this.campaignBackoff = undefined;
    if (res.createRevision === undefined) {
      // A try-lock found the name taken: nothing of ours is in etcd.
      if (this.state === st) {
        this.answer({ acquired: false, holder: res.candidates[0]?.value });
        this.retire();
      }
      return;
    }
    const claim: Claim = { session: st.session, key, token: res.createRevision, since: res.createRevision };
    if (this.state !== st) return; // the session was lost meanwhile: the key goes with it
    if (st.then !== undefined) {
      // remove() (or close) arrived during the write: take the key back out.
      if (st.then === 'retire' && st.session.ended) return this.retire();
      this.enter({ kind: 'resigning', then: st.then });
      return void this.resignKey(claim, Promise.resolve());
    }
    this.enter({ kind: 'queued', claim });
    this.judge();
  }

  private campaignFailed(st: Extract<State, { kind: 'campaigning' }>, key: string, err: unknown): void {
    if (this.state !== st) return;
    const e = new EtcdUnavailableError(`campaign for '${this.name}'`, err);
    if (this.mode === 'try' || st.then !== undefined) {
      // The write may have landed although its answer was lost: a key left behind would
      // block the name for every host. Delete it (guarded by our lease), then end.
      if (this.mode === 'try') this.answer(e);
      this.enter({ kind: 'resigning', then: 'retire' });
      return void this.resignUnknown(st.session, key);
    }
    this.report(e);
    // Queue mode: campaign again later; put-if-absent finds a key that did land.
    this.backoff('campaign');
  }

  private lead(claim: Claim): void {
    const leadership = new ActiveLeadership(
      this.name,
      this.host.nodeId,
      claim.key,
      claim.token.toString(),
      claim.session,
      this.host.client,
    );
    let resolveSettled!: () => void;
    const run: Run = { leadership, session: claim.session, settled: new Promise<void>((r) => (resolveSettled = r)), done: false };
    const st: State = { kind: 'leading', claim, run };
    this.enter(st);
    this.host.recorder.started(this.name);
    publishLeadership(() => ({ id: this.host.nodeId, name: this.name, event: 'start', token: leadership.token }));
    this.host.gate.hold(claim.session, run.settled);
    this.campaignBackoff = undefined;
    this.answer({ acquired: true, singleton: this });
    let result: unknown;
    try {
      this.emitSafe('start', leadership);
      // A 'start' listener may have removed us, or the session may be gone.
      if (leadership.ended) {
        result = undefined;
      } else {
        result = this.fn(() => this.removeFromInside(run), leadership);
      }
    } catch (err) {
      result = Promise.reject(err);
    }
    Promise.resolve(result).then(
      () => {
        run.done = true;
        resolveSettled();
        this.fnSettled(run, undefined);
      },
      (err: unknown) => {
        run.done = true;
        resolveSettled();
        this.fnSettled(run, err ?? new Error('fn rejected without a reason'));
      },
    );
  }

  /** `remove()` as fn gets it: ends the leadership and resolves at once — fn is what a full release waits for. */
  private removeFromInside(run: Run): Promise<void> {
    const s = this.state;
    if ((s.kind === 'leading' || s.kind === 'draining') && s.run === run) this.leaveFor('retire', 'removed');
    else if (s.kind !== 'retired') this.leaveFor('retire', 'removed');
    return Promise.resolve();
  }

  private fnSettled(run: Run, err: unknown): void {
    const s = this.state;
    if (s.kind === 'leading' && s.run === run) {
      if (err === undefined) {
        // A lock is released as soon as its fn has settled.
        if (this.mode === 'lock') return this.leaveFor('retire', 'removed');
        // fn finished its work while leading: this host keeps the name (a standby would
        // only run it again); the next run comes after the next election.
        this.errorBackoff = undefined;
        return;
      }
      // A lock's fn failing is its caller's answer, not the locker's trouble.
      if (this.mode !== 'lock') this.report(new LeaderFunctionError(this.name, err));
      const now = this.state;
      if (now.kind === 'leading' && now.run === run) this.stopLeading(now, 'error', this.oneShot ? 'retire' : 'backoff', false);
      return;
    }
    if (s.kind === 'draining' && s.run === run) this.drained(s);
  }

  /** Ends a leadership: abort fn's signal, emit `stop`; the key waits for fn in `draining`. */
  private stopLeading(s: Extract<State, { kind: 'leading' }>, reason: StopReason, then: Next, keyGoesWithLease: boolean): void {
    const st: State = { kind: 'draining', claim: keyGoesWithLease || reason === 'deposed' ? undefined : s.claim, run: s.run, then };
    this.enter(st);
    s.run.leadership.end(new NotLeaderError(this.name, reason));
    this.host.recorder.stopped(this.name, reason);
    publishLeadership(() => ({ id: this.host.nodeId, name: this.name, event: 'stop', token: s.run.leadership.token, reason }));
    this.emitSafe('stop', reason, s.run.leadership);
    if (s.run.done) return this.drained(st);
    const timer = this.host.clock.setTimeout(() => {
      if (!s.run.done) {
        this.report(
          new Error(
            `fn of '${this.name}' has not settled ${this.host.stopTimeoutMs} ms after its signal aborted (${reason}); ` +
              `the name stays held by this host until it does`,
          ),
        );
      }
    }, this.host.stopTimeoutMs);
    void s.run.settled.then(() => this.host.clock.clearTimeout(timer));
  }

  /** fn has settled after its leadership ended: release the key if it is ours, then go on. */
  private drained(s: Extract<State, { kind: 'draining' }>): void {
    if (this.state !== s) return;
    if (s.claim && !s.claim.session.ended) {
      this.enter({ kind: 'resigning', then: s.then });
      return void this.resignKey(s.claim, s.run.settled);
    }
    this.proceed(s.then);
  }

  private proceed(then: Next): void {
    if (then === 'retire') return this.retire();
    if (then === 'backoff') return this.backoff('error');
    this.enter({ kind: 'idle' });
    this.start();
  }

  /** Deletes our key through the gate, retrying while our session lives, then proceeds. */
  private async resignKey(claim: Claim, settled: Promise<void>): Promise<void> {
    await this.host.gate.releaseKey(settled, () =>
      this.retrying(claim.session, () => resign(this.host, claim.key, claim.token, claim.session)),
    );
    const s = this.state;
    if (s.kind === 'resigning') this.proceed(s.then);
  }

  /** Deletes a key whose create revision we never learned (guarded by the lease in its name). */
  private async resignUnknown(session: Session, key: string): Promise<void> {
    await this.retrying(session, () => resign(this.host, key, undefined, session));
    const s = this.state;
    if (s.kind === 'resigning') this.proceed(s.then);
  }

  /**
   * Runs an etcd write until it works or the session ends: a key left behind under a
   * lease we keep alive would block the name for everyone, and a key under an ended
   * lease goes with the lease.
   */
  private async retrying(session: Session, op: () => Promise<void>): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 50, maxDelay: 2000 }).next();
    for (;;) {
      try {
        await op();
        return;
      } catch (err) {
        if (session.ended) return;
        this.report(new EtcdUnavailableError(`resign of '${this.name}'`, err));
        await new Promise<void>((r) => this.host.clock.setTimeout(r, backoff.duration));
        backoff = backoff.next(undefined);
      }
    }
  }

  /**
   * Campaign again after an exponential backoff with jitter: after an fn failure so a
   * standby gets its turn (grows until fn succeeds once); after a failed campaign write
   * so a struggling etcd is not hammered.
   */
  private backoff(why: 'error' | 'campaign'): void {
    let duration: number;
    if (why === 'error') {
      this.errorBackoff = (this.errorBackoff ?? new ExponentialBackoff({ initialDelay: 200, maxDelay: 30_000 })).next(undefined);
      duration = this.errorBackoff.duration;
    } else {
      this.campaignBackoff = (this.campaignBackoff ?? new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 })).next(undefined);
      duration = this.campaignBackoff.duration;
    }
    const st: State = {
      kind: 'backoff',
      why,
      timer: this.host.clock.setTimeout(() => {
        if (this.state !== st) return;
        this.enter({ kind: 'idle' });
        this.start();
      }, duration),
    };
    this.enter(st);
  }

  /** A new session is here: a campaign backoff from the old one is not worth waiting out. @internal */
  sessionChanged(): void {
    if (this.state.kind === 'backoff' && this.state.why === 'campaign') {
      this.enter({ kind: 'idle' });
      this.start();
    }
  }

  private fail(err: Error, then: Next): void {
    if (this.mode === 'try') this.answer(new EtcdUnavailableError(`try-lock of '${this.name}'`, err));
    this.proceed(then);
  }

  // ——— health-gated candidacy (health-check.ts runs the check) ———

  private healthChanged(failures: number, why: string | undefined): void {
    const s = this.state;
    if (failures === 0) {
      this.saidKeepsLeading = false;
      return this.start();
    }
    if (failures === 1) this.report(new HealthCheckError(this.name, failures, why!, 'this host is no candidate until it passes'));
    if (s.kind === 'queued') return this.standAside(s);
    if (s.kind === 'leading' && failures >= 2) return this.handOverUnhealthy(s);
    // campaigning: judged once queued; idle and backoff: start() waits for a pass;
    // draining and resigning: go on, then start() waits.
  }

  /** An unhealthy standby leaves the queue (its key is deleted), and campaigns again once healthy. */
  private standAside(s: Extract<State, { kind: 'queued' }>): void {
    this.enter({ kind: 'resigning', then: 'campaign' });
    void this.resignKey(s.claim, Promise.resolve());
  }

  /**
   * A leader whose check failed twice in a row hands over gracefully (fn drained first,
   * then the key deleted) if anyone else queues — unhealthy hosts do not, so a queued
   * standby passed its own check. With nobody else it keeps leading and says so: an
   * unhealthy leader is better than none.
   */
  private handOverUnhealthy(s: Extract<State, { kind: 'leading' }>): void {
    if (this.host.view.queue(this.name).length > 1) return this.stopLeading(s, 'unhealthy', 'campaign', false);
    if (this.saidKeepsLeading) return;
    this.saidKeepsLeading = true;
    this.report(
      new HealthCheckError(
        this.name,
        this.check!.failures,
        this.check!.lastFailure ?? 'unknown',
        'no other candidate queues, so this host keeps leading',
      ),
    );
  }

  private retire(answer?: Error): void {
    this.check?.stop();
    if (answer) this.answer(answer);
    else if (this.tryAnswer) this.answer(new LockerClosedError(`try-lock '${this.name}'`));
    this.enter({ kind: 'retired' });
    this.host.unregister(this);
    this.leave?.();
  }

  private answer(r: TryLockResult | Error): void {
    const a = this.tryAnswer;
    this.tryAnswer = undefined;
    a?.(r);
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emitSafe('error', err);
    else this.host.report(err);
  }

  private emitSafe<K extends keyof SingletonEvents>(event: K, ...args: SingletonEvents[K]): void {
    safeEmit(this, event, args, (err) => this.host.report(new Error(`a '${event}' listener of '${this.name}' threw: ${describe(err)}`)));
  }
}

/**
 * A class rather than an object literal: a literal with a getter gets a hidden class
 * and a property dictionary of its own (~0.6 KB per leadership), and `signal` as a getter
 * lets Node create the AbortSignal (~0.7 KB) only if fn or a listener asks for it.
 */
class ActiveLeadership implements Leadership {
  readonly since = Date.now();
  /** Why the leadership ended; undefined while it lasts. */
  private endedBy: NotLeaderError | undefined;
  // Made on first use of `signal`: a Node AbortSignal costs ~0.8 KB of heap (its own hidden
  // class and two listener maps), more than the rest of a leadership, and many fns never
  // read it. A signal first read after the end is born aborted with the same reason.
  private controller: AbortController | undefined;
  constructor(
    readonly name: string,
    readonly nodeId: string,
    readonly key: string,
    readonly token: string,
    private readonly session: Session,
    private readonly client: Etcd3,
  ) {}
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.endedBy) this.controller.abort(this.endedBy);
    }
    return this.controller.signal;
  }
  /** True once the leadership has ended (its signal is, or will be born, aborted). */
  get ended(): boolean {
    return this.endedBy !== undefined;
  }
  /** Ends the leadership once: aborts the signal if anyone holds it. */
  end(reason: NotLeaderError): void {
    if (this.endedBy) return;
    this.endedBy = reason;
    this.controller?.abort(reason);
  }
  get active(): boolean {
    return this.endedBy === undefined && this.session.alive();
  }
  check(): void {
    if (!this.active) {
      throw new NotLeaderError(this.name, this.endedBy ? String(this.endedBy.reason) : 'lost');
    }
  }
  fence(): ComparatorBuilder {
    return this.client.if(this.key, 'Create', '==', this.token);
  }
}
