import type { Clock, Timer } from './clock.js';
import { LeaseLostError, describe } from './errors.js';
import { leaseHex } from '../etcd/keys.js';
import type { Store } from '../etcd/store.js';

/** How one keepalive attempt ended. */
type Outcome = 'acked' | 'failed' | 'ended';
/** Keepalives waiting for an answer at once, at most. */
const MAX_OUTSTANDING = 3;
/** How long (in ttls) a slow round trip keeps keepalives at the strained cadence (keepaliveLoop). */
const STRAIN_MEMORY_TTLS = 2;

export interface SessionTiming {
  ttl: number;
  renewDeadlineMs: number;
  keepaliveIntervalMs: number;
  clock: Clock;
}

/**
 * One etcd lease and the only judge of whether this process may still act on it.
 *
 * THE STEP-DOWN RULE lives here. Let S be the local (monotonic) send time of the last
 * keepalive — or of the grant — that etcd acknowledged with a TTL > 0. etcd received
 * that request no earlier than S, so it cannot expire the lease before S + ttl on its
 * own clock. The session declares itself lost at S + renewDeadline (< ttl): its signal
 * aborts and `onLost` runs, which ends every leadership built on it. A standby can only
 * be elected after the lease expires (or is revoked), so the two never overlap as long
 * as the local clock does not run slower than etcd's by more than ttl / renewDeadline − 1
 * (50 % with the defaults) and the event loop is not blocked across the margin
 * (ttl − renewDeadline) — the fencing token covers that case.
 *
 * Losing the lease never revokes it: fn may still be running on it. The ReleaseGate
 * revokes a lease only once every leadership on it has settled (release.ts).
 */
export class Session {
  readonly leaseId: string;
  /** Lowercase hex of the lease id: the last segment of every election key of this session. */
  readonly hex: string;
  /** Aborted (with a LeaseLostError) when the lease is lost or may be lost, or the session closed. */
  readonly signal: AbortSignal;

  private readonly controller = new AbortController();
  private lastAckSent: number;
  private deadlineTimer: Timer | undefined;
  private loopTimer: Timer | undefined;
  private wake: (() => void) | undefined;
  /** Waiting for the next acknowledgement (or the end): see renewed(). */
  private renewals: (() => void)[] = [];
  private closed = false;
  /** Last keepalive failure, for health reports. */
  lastError: unknown;

  private constructor(
    private readonly store: Store,
    private readonly timing: SessionTiming,
    leaseId: string,
    grantSent: number,
    private readonly onLost: (err: LeaseLostError) => void,
  ) {
    this.leaseId = leaseId;
    this.hex = leaseHex(leaseId);
    this.signal = this.controller.signal;
    this.lastAckSent = grantSent;
    this.armDeadline();
    void this.keepaliveLoop();
  }

  /** Grants a lease and starts keeping it alive. Rejects if etcd does not answer in time. */
  static async grant(store: Store, timing: SessionTiming, onLost: (err: LeaseLostError) => void): Promise<Session> {
    const sent = timing.clock.now();
    const id = await store.grant(timing.ttl, timing.renewDeadlineMs);
    const session = new Session(store, timing, id, sent, onLost);
    // A grant answered after its own deadline (slow etcd, paused process) may expire
    // before we could act on it: give it back (nothing ran on it) and let the caller try again.
    if (!session.alive()) {
      await session.close(true);
      throw new LeaseLostError(`lease ${id} was granted too late to be used (after renewDeadline)`, id);
    }
    return session;
  }

  /** Monotonic time at which this session stops itself unless a keepalive is acknowledged first. */
  deadline(): number {
    return this.lastAckSent + this.timing.renewDeadlineMs;
  }

  /** True while the step-down rule still allows acting on this lease. Pure: no side effects. */
  alive(): boolean {
    return !this.controller.signal.aborted && this.timing.clock.now() < this.deadline();
  }

  /**
   * True when a leadership may START on this session: alive, and its keepalives on
   * schedule — the last acknowledged one was sent at most a keepalive interval plus half
   * an attempt ago (ttl 4: 1.33 s + 0.33 s). A session whose keepalive is overdue (its
   * member froze, etcd is electing a raft leader) may be close to its deadline: fn started
   * now would likely stop again moments later — a second step-down of a name whose last
   * leader just stopped for the same reason. Such a candidate waits for the next
   * acknowledgement (renewed()) and starts then with a full renewDeadline ahead, or loses
   * the session without having started. A leadership already running is not affected:
   * only the deadline ends it.
   */
  startable(): boolean {
    return this.alive() && this.timing.clock.now() - this.lastAckSent <= this.timing.keepaliveIntervalMs + this.attemptMs / 2;
  }

  /** Resolves at the next acknowledged keepalive, or when the session ends (see `ended`). */
  renewed(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.renewals.push(resolve));
  }

  /** Monotonic time of the last acknowledged keepalive's send. */
  lastAcknowledged(): number {
    return this.lastAckSent;
  }

  /** Declares the session lost now if its deadline has passed (e.g. after the process was paused). */
  checkDeadline(): void {
    if (!this.controller.signal.aborted && this.timing.clock.now() >= this.deadline()) {
      this.lose(`no keepalive acknowledged within renewDeadline (${this.timing.renewDeadlineMs} ms)`);
    }
  }

  /**
   * Stops keeping the lease alive. With `revoke`, deletes the lease in etcd (and with it
   * every key of this session) so standbys start at once; bounded by `timeoutMs` since
   * an unreachable etcd expires the lease by itself within the TTL. Only the
   * ReleaseGate revokes: nothing may run on the lease any more.
   */
  async close(revoke: boolean, timeoutMs = this.timing.renewDeadlineMs): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    if (!this.controller.signal.aborted) {
      this.controller.abort(new LeaseLostError(`session of lease ${this.leaseId} closed`, this.leaseId));
    }
    if (revoke) await this.revoke(timeoutMs);
  }

  /** Revokes the lease; true when etcd answered (an unknown lease counts: it is gone). */
  async revoke(timeoutMs: number): Promise<boolean> {
    try {
      await this.store.revoke(this.leaseId, timeoutMs);
      return true;
    } catch (err) {
      // Unreachable: etcd deletes the lease and its keys by itself within the TTL.
      return /not found/i.test(String((err as Error)?.message));
    }
  }

  /** True once this session stopped keeping the lease alive (lost or closed). */
  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  private lose(why: string): void {
    if (this.controller.signal.aborted) return;
    this.stopTimers();
    const err = new LeaseLostError(`lease ${this.leaseId} lost: ${why}`, this.leaseId);
    this.closed = true;
    this.controller.abort(err);
    // No revoke here: fn may still be running on this lease (the gate decides).
    this.onLost(err);
  }

  private stopTimers(): void {
    if (this.deadlineTimer) this.timing.clock.clearTimeout(this.deadlineTimer);
    if (this.loopTimer) this.timing.clock.clearTimeout(this.loopTimer);
    this.deadlineTimer = this.loopTimer = undefined;
    this.wake?.();
    this.notifyRenewed();
  }

  private notifyRenewed(): void {
    const waiting = this.renewals;
    this.renewals = [];
    for (const resolve of waiting) resolve();
  }

  private armDeadline(): void {
    if (this.deadlineTimer) this.timing.clock.clearTimeout(this.deadlineTimer);
    const ms = this.deadline() - this.timing.clock.now();
    this.deadlineTimer = this.timing.clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      this.checkDeadline();
      if (!this.controller.signal.aborted) this.armDeadline();
    }, ms);
  }

  private acknowledge(sent: number): void {
    if (sent > this.lastAckSent) this.lastAckSent = sent;
    // An acknowledgement processed after its deadline (the process was paused while it
    // sat in a socket buffer) extends nothing: etcd may have expired the lease already.
    this.checkDeadline();
    if (!this.controller.signal.aborted) this.armDeadline();
    this.notifyRenewed();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.loopTimer = this.timing.clock.setTimeout(resolve, ms);
    });
  }

  /**
   * Half an interval: the hedge of a keepalive goes to the next member after a third of
   * it, and a candidate may start while its last acknowledgement is at most an interval
   * plus half of this old (startable()).
   */
  private get attemptMs(): number {
    return Math.max(200, this.timing.keepaliveIntervalMs / 2);
  }

  /**
   * Keepalives, each with the send time its acknowledgement extends the deadline from.
   *
   * An attempt waits for its answer until the deadline (hedged to the next member after a
   * third of attemptMs): cutting it short and sending another threw away answers that were
   * on their way — under CPU load (a fleet of hosts starting on two cores) a round trip of
   * 0.5–2 s is normal and etcd had renewed the lease. And an attempt not answered within
   * attemptMs gets company: another keepalive goes out (at most MAX_OUTSTANDING at once),
   * so that when every round trip is slow, acknowledgements still arrive about every
   * attemptMs, each extending the deadline from its own send. With one keepalive at a time
   * a session survives round trips up to renewDeadline − interval (1.67 s at ttl 5); with
   * them overlapping, up to about renewDeadline − attemptMs (2.5 s).
   *
   * Under strain — a round trip longer than half an attempt, a slow or failed attempt, or the
   * session's start, within the last STRAIN_MEMORY_TTLS ttls — keepalives go every attemptMs
   * instead of every interval. Round trips on a loaded machine are spiky (15 ms, then 1.7 s:
   * etcd applies a backlog before it answers a keepalive, the host's own event loop stalls),
   * and the spike that comes after a quick answer gets only renewDeadline − interval if the
   * next keepalive waits a whole interval; sent at half of it, every keepalive has
   * renewDeadline − attemptMs (2.5 s at ttl 5 instead of 1.67 s). Seen in the balance bench:
   * hosts lost their sessions to a 1.7 s round trip after a 44 ms one, and new sessions whose
   * first keepalive went unanswered for 1.7 s while eight hosts booted at once. At rest the
   * cadence stays one per interval.
   */
  private async keepaliveLoop(): Promise<void> {
    const { clock, keepaliveIntervalMs } = this.timing;
    const attemptMs = this.attemptMs;
    const outstanding = new Set<Promise<Outcome>>();
    let retryMs = 50;
    let failures = 0;
    /** Until then keepalives go every attemptMs instead of every interval (see below). */
    let strainedUntil = -Infinity;
    const strained = (): void => void (strainedUntil = clock.now() + STRAIN_MEMORY_TTLS * this.timing.ttl * 1000);
    // A new session starts strained: its host is at its busiest then (registering names,
    // campaigning, reading the prefix) and has no round trip to judge by yet.
    strained();
    let nextAt = this.lastAckSent + attemptMs;
    while (!this.controller.signal.aborted) {
      await this.sleep(nextAt - clock.now());
      if (this.controller.signal.aborted) return;
      if (outstanding.size >= MAX_OUTSTANDING) {
        await Promise.race(outstanding);
        nextAt = clock.now();
        continue;
      }
      const sent = clock.now();
      const attempt = this.attempt(sent, failures);
      outstanding.add(attempt);
      void attempt.then(() => outstanding.delete(attempt));
      const outcome = await this.atMost(attempt, attemptMs);
      if (outcome === 'ended' || this.controller.signal.aborted) return;
      if (outcome === 'acked') {
        retryMs = 50;
        failures = 0;
        if (clock.now() - sent > attemptMs / 2) strained();
        nextAt = sent + (clock.now() < strainedUntil ? attemptMs : keepaliveIntervalMs);
      } else if (outcome === 'failed') {
        strained();
        failures++;
        nextAt = clock.now() + retryMs;
        retryMs = Math.min(retryMs * 2, attemptMs);
      } else {
        strained();
        nextAt = clock.now(); // 'slow': it goes on waiting; send another beside it
      }
    }
  }

  /** One keepalive: acknowledged (the deadline moves to sent + renewDeadline), failed, or the session ended. */
  private async attempt(sent: number, failures: number): Promise<Outcome> {
    const attemptMs = this.attemptMs;
    try {
      const timeoutMs = Math.max(attemptMs, this.deadline() - sent);
      const ttl = await this.store.keepAlive(this.leaseId, timeoutMs, failures, Math.max(100, attemptMs / 3));
      if (this.controller.signal.aborted) return 'ended';
      if (ttl <= 0) {
        this.lose('etcd reports the lease expired or revoked');
        return 'ended';
      }
      this.acknowledge(sent);
      return 'acked';
    } catch (err) {
      if (this.controller.signal.aborted) return 'ended';
      this.lastError = err;
      return 'failed';
    }
  }

  /** `p`'s outcome, or 'slow' if it has none within `ms` (p goes on); 'ended' at once when the session ends. */
  private atMost(p: Promise<Outcome>, ms: number): Promise<Outcome | 'slow'> {
    return new Promise((resolve) => {
      const signal = this.controller.signal;
      const finish = (o: Outcome | 'slow'): void => {
        this.timing.clock.clearTimeout(timer);
        signal.removeEventListener('abort', ended);
        resolve(o);
      };
      const ended = (): void => finish('ended');
      const timer = this.timing.clock.setTimeout(() => finish('slow'), ms);
      signal.addEventListener('abort', ended, { once: true });
      void p.then(finish);
    });
  }

  describeLastError(): string | undefined {
    return this.lastError === undefined ? undefined : describe(this.lastError);
  }
}
