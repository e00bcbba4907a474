// The public handle of one registered name: events, `isLeader`, `leadership`,
// `remove()`. What happens to the name is the per-name machine's (name-machine.ts), run
// with the policy of its mode (mode-policy.ts); this class turns the machine's outputs
// into events and a try-lock's answer, and says when the name has left.
import { EventEmitter } from 'node:events';
import type { Leadership, SingletonFunction, StopReason } from '../core/leadership-types.js';
import { safeEmit } from '../core/emit.js';
import { LockerClosedError, describe } from '../core/errors.js';
import { policyFor } from '../core/mode-policy.js';
import type { NameHost, TryAnswer } from '../core/name-host.js';
import { NameMachine } from '../core/name-machine.js';
import { claimOf, leads, retiring, settled, unsettledRun } from '../core/name-state.js';
import type { HandOverPast } from '../etcd/store.js';
import type { Session } from '../core/session.js';

export type { StopReason, Leadership, SingletonFunction } from '../core/leadership-types.js';

export interface SingletonEvents {
  start: [leadership: Leadership];
  stop: [reason: StopReason, leadership: Leadership];
  error: [error: Error];
}

/** Result of `locker.tryLock()`. */
export type TryLockResult =
  { acquired: true; singleton: Singleton } | { acquired: false; /** Node id of the current leader. */ holder: string | undefined };

/**
 * What a Singleton needs from its locker: what its machine needs (NameHost,
 * core/name-host.ts), plus where the handle reports and says it has left. @internal
 */
export interface SingletonHost extends NameHost {
  /** Errors of a name with no `error` listener of its own: the locker's `error` event. */
  report(err: Error): void;
  /** The name has left for good: the locker forgets it. */
  unregister(s: Singleton): void;
}

/**
 * One registered name on this host: turns election outcomes into runs of fn, events,
 * and an AbortSignal. Graceful step-downs (remove, close, fn failure) abort the signal,
 * let fn settle, and only then delete the key, so the next leader starts after this one
 * has stopped.
 */
export class Singleton extends EventEmitter<SingletonEvents> {
  /** The lifecycle of the name (name-machine.ts). */
  private readonly machine: NameMachine;
  /** Preferred hosts, best first (SingletonOptions.prefer, or the locker's `prefer(name)`). @internal */
  readonly prefer: readonly string[] | undefined;
  /** Pending `tryLock()` answer. */
  private tryAnswer: ((r: TryLockResult | Error) => void) | undefined;
  /** Settles when the name has left for good (retired); made when first asked for (most names never are). */
  private leftPromise: Promise<void> | undefined;
  private resolveLeft: (() => void) | undefined;

  /** @internal */
  constructor(
    readonly name: string,
    fn: SingletonFunction,
    private readonly host: SingletonHost,
    /**
     * 'queue': a singleton (campaign again after every leadership). 'try': campaign once,
     * only if nobody else does (`tryLock`). 'lock': queue once, run fn once, release as
     * soon as it settles (`lock`).
     */
    readonly mode: 'queue' | 'try' | 'lock' = 'queue',
    options?: { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number; prefer?: readonly string[] },
  ) {
    super();
    this.prefer = options?.prefer;
    const events = {
      start: (leadership: Leadership) => this.emitSafe('start', leadership),
      stop: (reason: StopReason, leadership: Leadership) => this.emitSafe('stop', reason, leadership),
      report: (err: Error) => this.report(err),
      answer: (r: TryAnswer | Error) => this.answer(r),
      retired: () => this.retired(),
    };
    this.machine = new NameMachine(name, fn, host, policyFor(mode), events, options);
  }

  private get left(): Promise<void> {
    if (!this.leftPromise) {
      if (this.machine.current.kind === 'retired') this.leftPromise = Promise.resolve();
      else this.leftPromise = new Promise((resolve) => (this.resolveLeft = resolve));
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
    return leads(this.machine.current);
  }

  /** The current leadership, if this host leads. */
  get leadership(): Leadership | undefined {
    const s = this.machine.current;
    return s.kind === 'leading' ? s.run.leadership : undefined;
  }

  /** Our place in the queue (0 = leader), or undefined while not queued. */
  get position(): number | undefined {
    const claim = claimOf(this.machine.current);
    return claim === undefined ? undefined : this.host.view.position(this.name, claim.key);
  }

  /** The session of fn's run while it has not settled (leading, or draining after the leadership ended). @internal */
  get runningOn(): Session | undefined {
    return unsettledRun(this.machine.current)?.session;
  }

  /** Leaving for good but not gone yet (removed, an aborted try-lock): a new registration of the name waits for it. @internal */
  get retiring(): boolean {
    return retiring(this.machine.current);
  }

  /** Name of the current lifecycle state (for status and tests): name-state.ts describes each. */
  get phase(): 'idle' | 'campaigning' | 'queued' | 'leading' | 'draining' | 'resigning' | 'backoff' | 'retired' {
    return this.machine.current.kind;
  }

  /**
   * Un-registers this host: stops leading (fn's signal aborts; the name is handed over
   * once fn has settled) and leaves the queue for good. Resolves when the name is released.
   */
  remove(): Promise<void> {
    this.machine.leave('removed');
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
    this.machine.start();
  }

  /** The view of this name changed (or may have). @internal */
  judge(): void {
    this.machine.judge();
  }

  /**
   * Hands the leadership over gracefully: fn's signal aborts ('handover'), fn drains, then
   * our key is deleted and we queue again at the back, so whoever is next starts after us.
   * False if this host does not lead the name. @internal
   */
  handOver(past?: HandOverPast): boolean {
    return this.machine.handOver(past);
  }

  /** Steps back to the end of the queue if queued and not leading (standby balance). @internal */
  stepBack(past?: HandOverPast): boolean {
    return this.machine.stepBack(past);
  }

  /** `session` is gone: every leadership on it stops now, synchronously. @internal */
  sessionLost(session: Session): void {
    this.machine.sessionLost(session);
  }

  /** A new session is here: a campaign backoff from the old one is not worth waiting out. @internal */
  sessionChanged(): void {
    this.machine.sessionChanged();
  }

  /** The locker is closing: stop; resolves once fn has settled. The lease revoke removes the key. @internal */
  close(): Promise<void> {
    if (this.tryAnswer) this.answer(new LockerClosedError(`try-lock '${this.name}'`));
    return this.machine.close();
  }

  /** Resolves when fn's current or last run has settled. @internal */
  settled(): Promise<void> {
    return settled(this.machine.current);
  }

  // ——— what the machine says ———

  private answer(r: TryAnswer | Error): void {
    const a = this.tryAnswer;
    this.tryAnswer = undefined;
    a?.(r instanceof Error || !r.acquired ? r : { acquired: true, singleton: this });
  }

  /** The name has left for good: a try-lock still waiting hears that the locker closed. */
  private retired(): void {
    if (this.tryAnswer) this.answer(new LockerClosedError(`try-lock '${this.name}'`));
    this.host.unregister(this);
    this.resolveLeft?.();
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emitSafe('error', err);
    else this.host.report(err);
  }

  private emitSafe<K extends keyof SingletonEvents>(event: K, ...args: SingletonEvents[K]): void {
    safeEmit(this, event, args, (err) => this.host.report(new Error(`a '${event}' listener of '${this.name}' threw: ${describe(err)}`)));
  }
}
